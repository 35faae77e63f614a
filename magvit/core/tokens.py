"""The token vocabulary and the transformer's input sequence (SPEC §4).

Ids, in order: codebook codes [0, C), one id per class (C + label), the unconditional class
(C + num_classes), [MASK], then one prompt per task in the experiment's task list. Every special
id sits above every code, so [MASK] can never collide with a codebook entry. The model's logits
cover the codebook only; special ids are inputs, never predictions.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch

from magvit.errors import MagvitError


def _check_task_names(_instance, _attribute, names: tuple[str, ...]) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise MagvitError(f"task names must be unique in the vocabulary, repeated: {repeated}")


def _check_sizes(instance: Vocabulary) -> None:
    if instance.codebook_size <= 0 or instance.num_classes < 0:
        raise MagvitError(
            f"vocabulary needs codebook_size > 0 and num_classes >= 0, got "
            f"{instance.codebook_size} and {instance.num_classes}"
        )


@attrs.frozen
class Vocabulary:
    codebook_size: int
    num_classes: int = 0
    task_names: tuple[str, ...] = attrs.field(default=(), converter=tuple, validator=_check_task_names)

    def __attrs_post_init__(self) -> None:
        _check_sizes(self)

    @property
    def uncond_id(self) -> int:
        return self.codebook_size + self.num_classes

    @property
    def mask_id(self) -> int:
        return self.uncond_id + 1

    @property
    def size(self) -> int:
        """Embedding rows the transformer needs."""
        return self.mask_id + 1 + len(self.task_names)

    @property
    def prefix_length(self) -> int:
        """Positions before the latent tokens: [prompt, class] with tasks, [class] without."""
        return 2 if self.task_names else 1

    def class_id(self, label: int) -> int:
        if not 0 <= label < self.num_classes:
            raise MagvitError(
                f"class label {label} is outside [0, {self.num_classes}); the vocabulary was "
                f"built with num_classes={self.num_classes} (use uncond_id for no class)"
            )
        return self.codebook_size + label

    def prompt_id(self, task: str) -> int:
        if task not in self.task_names:
            known = ", ".join(self.task_names) or "none (a single-task vocabulary)"
            raise MagvitError(
                f"task {task!r} has no prompt in this vocabulary; its tasks are: {known}. "
                "Prompts come from the experiment's [tasks] list the model was trained with."
            )
        return self.mask_id + 1 + self.task_names.index(task)

    def to_dict(self) -> dict[str, Any]:
        return {
            "codebook_size": self.codebook_size,
            "num_classes": self.num_classes,
            "task_names": list(self.task_names),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        expected = {"codebook_size", "num_classes", "task_names"}
        if set(data) != expected:
            raise MagvitError(
                f"vocabulary record has keys {sorted(data)}, expected {sorted(expected)}; "
                "the checkpoint may be from another version"
            )
        return cls(int(data["codebook_size"]), int(data["num_classes"]), tuple(data["task_names"]))


def token_dtype(codebook_size: int) -> torch.dtype:
    """The narrowest integer type that holds every id of a codebook: int16 up to 2^15 codes,
    uint16 up to 2^16 (FSQ 8x8x8x5x5x5 = 64,000), int32 beyond (LFQ 2^18)."""
    if codebook_size <= 2**15:
        return torch.int16
    return torch.uint16 if codebook_size <= 2**16 else torch.int32


def class_ids(vocab: Vocabulary, labels: torch.Tensor | None, batch: int) -> torch.Tensor:
    """(B,) class-token ids; `labels` None or -1 (unlabelled) give the unconditional id."""
    if labels is None:
        return torch.full((batch,), vocab.uncond_id, dtype=torch.long)
    labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
    if labels.numel() != batch:
        raise MagvitError(f"expected {batch} labels, got {labels.numel()}")
    bad = labels[(labels < -1) | (labels >= vocab.num_classes)]
    if bad.numel():
        raise MagvitError(
            f"class labels {bad.tolist()} are outside [0, {vocab.num_classes}) "
            "(-1 means unconditional); check the dataset's num_classes"
        )
    return torch.where(labels >= 0, labels + vocab.codebook_size, vocab.uncond_id)


def build_sequence(
    vocab: Vocabulary, latent: torch.Tensor, task: str | None, labels: torch.Tensor | None
) -> torch.Tensor:
    """Prepend the prefix to flattened latent tokens (B, N): [prompt, class] + latent with a
    multi-task vocabulary, [class] + latent with a single-task one."""
    if latent.dim() != 2:
        raise MagvitError(f"latent tokens must be flattened to (B, N), got {tuple(latent.shape)}")
    if latent.numel() and (latent.min() < 0 or latent.max() >= vocab.size):
        raise MagvitError(
            f"latent ids span [{int(latent.min())}, {int(latent.max())}], outside the "
            f"vocabulary [0, {vocab.size})"
        )
    batch = latent.shape[0]
    prefix = [class_ids(vocab, labels, batch)]
    if vocab.task_names:
        if task is None:
            raise MagvitError(
                f"this vocabulary has task prompts ({', '.join(vocab.task_names)}); name the task"
            )
        prefix.insert(0, torch.full((batch,), vocab.prompt_id(task), dtype=torch.long))
    elif task is not None:
        raise MagvitError(f"task {task!r} given, but this single-task vocabulary has no prompts")
    prefix = torch.stack(prefix, dim=1).to(latent.device)
    return torch.cat([prefix, latent.long()], dim=1)
