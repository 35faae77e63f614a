"""From clips to the transformer's COMMIT training input, for one task (paper §3.2, SPEC §4).

    z  = tokenize(video)                     target tokens (or read from a token cache)
    z~ = tokenize(task.condition(video))     condition tokens from the padded condition video
    ratio = gamma(U[0,1)), per example       the mask schedule (cosine)
    input = commit_mask(z, z~, latent mask)  [MASK] / z~ / z per Eq. 2
    sequence = [prompt, class] + input      the task prompt with a multi-task vocabulary

The class token is the label for tasks that take one (CG, CFP), dropped to the unconditional
class with probability `class_dropout` (classifier-free guidance); other tasks get the
unconditional class.
"""

from __future__ import annotations

import math

import attrs
import torch
from tqdm.auto import tqdm

from magvit.api import latent_mask_for
from magvit.core.masking import CommitBatch, commit_mask, sample_mask_ratio
from magvit.core.tokens import Vocabulary, build_sequence
from magvit.core.training.precision import full_precision
from magvit.errors import MagvitError
from magvit.workflows.token_memo import TokenMemo


@attrs.frozen
class CommitDraws:
    """The randomness of one COMMIT batch: mask ratio (B,), token scores (B, N) and a uniform
    (B,) for class dropout. Drawn for the global batch and sliced per rank, so N processes
    train on exactly what one process would."""

    ratio: torch.Tensor
    scores: torch.Tensor
    class_draw: torch.Tensor

    @classmethod
    def sample(cls, batch: int, num_tokens: int, schedule, generator: torch.Generator):
        ratio = sample_mask_ratio(batch, schedule, generator)
        scores = torch.rand(batch, num_tokens, generator=generator)
        return cls(ratio, scores, torch.rand(batch, generator=generator))

    def rows(self, start: int, stop: int) -> CommitDraws:
        return CommitDraws(self.ratio[start:stop], self.scores[start:stop], self.class_draw[start:stop])


@attrs.frozen
class CommitExample:
    """A batch ready for the model: `sequence` (B, prefix + N) and the COMMIT targets/weights."""

    sequence: torch.Tensor
    batch: CommitBatch


class CommitInputs:
    def __init__(
        self,
        *,
        tokenizer,
        tasks: dict,
        vocab: Vocabulary,
        latent_shape: tuple[int, int, int],
        schedule,
        weight_mode: str = "mask+refine+recons",
        class_dropout: float = 0.0,
        memo: TokenMemo | None = None,
    ):
        """`schedule` maps U[0, 1) to the mask ratio; `draws(batch, generator)` uses it."""
        if not 0.0 <= class_dropout <= 1.0:
            raise MagvitError(f"commit.class_dropout must be in [0, 1], got {class_dropout}")
        self.tokenizer, self.tasks, self.vocab = tokenizer, tasks, vocab
        self.schedule, self.weight_mode, self.class_dropout = schedule, weight_mode, class_dropout
        self.memo = memo
        self.num_tokens = math.prod(latent_shape)
        self.latent_masks = {
            name: latent_mask_for(task, tokenizer, latent_shape).flatten()
            for name, task in tasks.items()
        }

    def draws(self, batch: int, generator: torch.Generator) -> CommitDraws:
        return CommitDraws.sample(batch, self.num_tokens, self.schedule, generator)

    @torch.no_grad()
    def tokenize(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, N) flattened codes, in fp32 with the tokenizer in eval mode."""
        with full_precision(video.device):
            return self.tokenizer.encode(video.float()).flatten(1)

    def _remembered(self, kind: str, indices, encode, video: torch.Tensor) -> torch.Tensor:
        if self.memo is None or indices is None:
            return encode(video)
        tokens = self.memo.tokens(kind, torch.as_tensor(indices), lambda rows: encode(video[rows]))
        return tokens.to(video.device)

    @torch.no_grad()  # not inference_mode: the remembered tensors are used by training steps
    def warm(self, clips, batch_size: int, device: torch.device, progress: bool = True) -> int:
        """Encode every item of `clips` (a dataset whose items carry `video` and their dataset
        `index`) for the target (unless the items carry cached `tokens`) and each task with a
        condition, into the memo. Returns the number of (kind, clip) pairs it encoded; pairs
        already remembered are skipped."""
        if self.memo is None:
            raise MagvitError("warming the token memo needs one: set commit.memoize_tokens = true")
        cached = len(clips) > 0 and "tokens" in clips[0]  # a token cache gives the targets
        kinds = [] if cached else [("target", self.tokenize)]
        kinds += [
            (name, lambda v, task=task: self.tokenize(task.condition(v)[0]))
            for name, task in self.tasks.items() if task.has_condition
        ]
        before, total = len(self.memo), len(clips)
        bar = tqdm(total=total * len(kinds), desc="tokenizing clips", unit="clip", disable=not progress)
        for start in range(0, total, batch_size):
            items = [clips[i] for i in range(start, min(total, start + batch_size))]
            video = torch.stack([item["video"] for item in items]).to(device)
            indices = torch.tensor([int(item["index"]) for item in items])
            for kind, encode in kinds:
                self.memo.tokens(kind, indices, lambda rows, encode=encode, video=video: encode(video[rows]))
                bar.update(len(items))
        bar.close()
        return len(self.memo) - before

    def class_labels(self, task_name: str, labels: torch.Tensor, class_draw: torch.Tensor):
        """Labels for the class token: -1 (unconditional) unless the task takes a class."""
        labels = labels.long().cpu()
        if not self.tasks[task_name].needs_class:
            return torch.full_like(labels, -1)
        if bool((labels < 0).any()):
            raise MagvitError(
                f"task {task_name!r} needs class labels but the dataset gave unlabelled clips "
                "(label -1); use a labelled dataset or drop the task from [tasks]"
            )
        drop = class_draw < self.class_dropout
        return torch.where(drop, torch.full_like(labels, -1), labels)

    def __call__(
        self,
        task_name: str,
        video: torch.Tensor,
        labels: torch.Tensor,
        draws: CommitDraws,
        targets: torch.Tensor | None = None,
        indices: torch.Tensor | None = None,
    ) -> CommitExample:
        """One COMMIT example for `task_name`. `targets` (B, N) are cached target tokens, if any;
        `indices` are the clips' dataset indices, which key the token memo when there is one."""
        if targets is None:
            targets = self._remembered("target", indices, self.tokenize, video)
        task = self.tasks[task_name]
        cond_mask = self.latent_masks[task_name].to(targets.device)
        if task.has_condition:  # z~ = tokens of the padded condition video
            cond = self._remembered(
                task_name, indices, lambda v: self.tokenize(task.condition(v)[0]), video
            )
        else:
            cond, cond_mask = targets, torch.zeros_like(cond_mask)
        if draws.scores.shape != targets.shape:
            raise ValueError(f"draws for {tuple(draws.scores.shape)} tokens, batch has {tuple(targets.shape)}")
        batch = commit_mask(
            targets, cond, cond_mask.unsqueeze(0), draws.ratio.to(targets.device),
            mask_id=self.vocab.mask_id, scores=draws.scores.to(targets.device),
            weight_mode=self.weight_mode,
        )
        prompt = task_name if self.vocab.task_names else None
        classes = self.class_labels(task_name, labels, draws.class_draw)
        sequence = build_sequence(self.vocab, batch.inputs, prompt, classes)
        return CommitExample(sequence=sequence, batch=batch)
