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
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F

from magvit.core.training.rng import mix_seed
from magvit.workflows.commit_inputs import CommitExample, CommitInputs


class HeldOutEval:
    def __init__(
        self,
        inputs: CommitInputs,
        clips: Iterable[tuple[torch.Tensor, torch.Tensor]],
        task_names: Iterable[str],
        *,
        seed: int,
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ):
        self.autocast = autocast
        clips = list(clips)
        starts = [sum(len(video) for video, _ in clips[:i]) for i in range(len(clips))]
        self.examples: dict[str, list[CommitExample]] = {}
        for t, name in enumerate(task_names):
            generator = torch.Generator().manual_seed(mix_seed(seed, 7919, t))
            self.examples[name] = [
                inputs(name, video, labels, inputs.draws(len(video), generator),
                       indices=torch.arange(start, start + len(video)))
                for start, (video, labels) in zip(starts, clips)
            ]
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
        for name, examples in self.examples.items():
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
        model.train(was_training)
        return scores


def code_entropy(codes: torch.Tensor) -> float:
    """Entropy in nats of the empirical distribution of `codes` (integer ids)."""
    if codes.numel() == 0:
        raise ValueError("code_entropy needs at least one code")
    counts = torch.bincount(codes.flatten().long()).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())
