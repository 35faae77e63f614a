"""Held-out evaluation of stage 2: the masked-token cross-entropy of every task.

The eval clips, their tokens, the masks and the mask ratios are drawn once from a fixed seed (with
a token memo in `inputs`, each clip's target tokens are encoded once for all tasks), so
every evaluation of a run (and of a resumed run) scores the same inputs. The score is the plain
cross-entropy (no label smoothing) averaged over the masked positions (those set to [MASK] or
to a condition token), in nats; a model that knows nothing scores ln(codebook size).

Beside it, `frequency_ce` is the entropy of the held-out masked codes themselves: the score of the
best predictor that ignores context (one that knew those code frequencies in advance). The gap
between the two is what the condition and the visible tokens buy.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from tqdm import tqdm

import magvit
from magvit.core.training.rng import mix_seed
from magvit.workflows.commit_inputs import CommitExample, CommitInputs
from magvit.workflows.token_memo import TokenMemo


class HeldOutEval:
    def __init__(
        self,
        inputs: CommitInputs,
        clips: Iterable[tuple[torch.Tensor, torch.Tensor]],
        task_names: Iterable[str],
        *,
        seed: int,
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
        only: Iterable[str] | None = None,
        progress: bool = False,
    ):
        """`only`: score these of `task_names` (each still drawn from its place in the list);
        `progress`: a bar over the tasks while the inputs are built and while they are scored."""
        self.autocast, self.progress = autocast, progress
        clips = list(clips)
        starts = [sum(len(video) for video, _ in clips[:i]) for i in range(len(clips))]
        self.examples: dict[str, list[CommitExample]] = {}
        self.build_seconds: dict[str, float] = {}  # per task: building its examples
        self.seconds: dict[str, float] = {}  # per task: building, plus the last call's scoring
        only = None if only is None else set(only)
        chosen = [(t, name) for t, name in enumerate(task_names) if only is None or name in only]
        for t, name in tqdm(chosen, desc="CE inputs", unit="task", disable=not progress, dynamic_ncols=True):
            began = time.perf_counter()
            generator = torch.Generator().manual_seed(mix_seed(seed, 7919, t))
            self.examples[name] = [
                inputs(name, video, labels, inputs.draws(len(video), generator),
                       indices=torch.arange(start, start + len(video)))
                for start, (video, labels) in zip(starts, clips)
            ]
            self.build_seconds[name] = time.perf_counter() - began
        self.frequency_ce = {
            name: code_entropy(torch.cat([ex.batch.targets[ex.batch.should_mask] for ex in examples]))
            for name, examples in self.examples.items()
        }

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        """Task name -> mean CE over masked tokens; the model is left in its previous mode."""
        was_training = model.training
        model.eval()
        scores = {}
        for name, examples in tqdm(self.examples.items(), desc="CE", unit="task", disable=not self.progress,
                                   dynamic_ncols=True):
            began = time.perf_counter()
            total, count = 0.0, 0
            for ex in examples:
                with self.autocast():
                    logits = model(ex.sequence)
                n = ex.batch.targets.shape[1]
                ce = F.cross_entropy(logits[:, -n:].float().transpose(1, 2), ex.batch.targets,
                                     reduction="none")
                total += float(ce[ex.batch.should_mask].sum())
                count += int(ex.batch.should_mask.sum())
            scores[name] = total / count
            self.seconds[name] = self.build_seconds[name] + time.perf_counter() - began
        model.train(was_training)
        return scores


def code_entropy(codes: torch.Tensor) -> float:
    """Entropy in nats of the empirical distribution of `codes` (integer ids)."""
    if codes.numel() == 0:
        raise ValueError("code_entropy needs at least one code")
    counts = torch.bincount(codes.flatten().long()).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


def mask_schedule_of(exp):
    """The experiment's training mask schedule (`commit.mask_schedule`, cosine when unset)."""
    schedule = exp.commit.mask_schedule
    return schedule.build() if schedule else magvit.registries().schedules.create("cosine")


def bundle_held_out_eval(bundle, videos: torch.Tensor, labels: torch.Tensor, *, seed: int,
                         autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                         batch_size: int | None = None, only: Iterable[str] | None = None,
                         progress: bool = False) -> HeldOutEval:
    """A stage-2 bundle's held-out evaluation on `videos`/`labels` (of the tasks in `only`, else
    all), ready to score a transformer. The clips go in batches of the experiment's
    `train.batch_size` (or `batch_size`), and the masks are drawn from `seed` per task as its
    training run's evaluation draws them, so the run's own eval clips (the first of the eval
    split drawn with `run.seed`) and that seed give the numbers of its `eval.json`."""
    exp = bundle.experiment
    inputs = CommitInputs(
        tokenizer=bundle.tokenizer, tasks={name: exp.tasks[name].task.build() for name in bundle.task_names},
        vocab=bundle.vocab, latent_shape=tuple(bundle.meta["latent_shape"]), schedule=mask_schedule_of(exp),
        weight_mode=exp.commit.weight_mode, memo=TokenMemo(bundle.vocab.codebook_size),
    )
    size = batch_size or exp.train.batch_size
    clips = [(videos[i:i + size], labels[i:i + size].cpu()) for i in range(0, len(videos), size)]
    return HeldOutEval(inputs, clips, bundle.task_names, seed=seed, autocast=autocast, only=only,
                       progress=progress)
