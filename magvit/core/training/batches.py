"""Deterministic, resumable batching: the samples of global step k depend only on (seed, k).

Each epoch is a permutation drawn from a generator seeded by `(seed, epoch)`; step k takes the
k-th slice of `batch_size` indices from it (the ragged tail of an epoch is dropped). With N
ranks the global batch is cut into N contiguous shards, so N ranks at global batch G see exactly
the samples that one process sees at G, and a run resumed at step k sees exactly the batches an
uninterrupted run sees from step k.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from magvit.core.training.rng import mix_seed
from magvit.errors import MagvitError


def _check(dataset_len: int, batch_size: int, rank: int, world_size: int) -> int:
    """Validate the split and return the number of batches per epoch."""
    if batch_size < 1 or batch_size % world_size:
        raise MagvitError(
            f"train.batch_size {batch_size} must be a positive multiple of the number of "
            f"processes ({world_size}); it is the global batch, split evenly across ranks"
        )
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of size {world_size}")
    if dataset_len < batch_size:
        raise MagvitError(
            f"the dataset has {dataset_len} samples, fewer than train.batch_size {batch_size}; "
            "lower the batch size or add data"
        )
    return dataset_len // batch_size


def epoch_permutation(dataset_len: int, seed: int, epoch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(mix_seed(seed, epoch))
    return torch.randperm(dataset_len, generator=generator)


def batch_indices(
    dataset_len: int, batch_size: int, *, seed: int, step: int, rank: int = 0, world_size: int = 1
) -> list[int]:
    """This rank's sample indices for global step `step` (`batch_size` is the global batch)."""
    per_epoch = _check(dataset_len, batch_size, rank, world_size)
    epoch, position = divmod(step, per_epoch)
    perm = epoch_permutation(dataset_len, seed, epoch)
    return _shard(perm, position, batch_size, rank, world_size)


def _shard(perm: torch.Tensor, position: int, batch_size: int, rank: int, world_size: int) -> list[int]:
    local = batch_size // world_size
    start = position * batch_size + rank * local
    return perm[start : start + local].tolist()


class _EpochBatches:
    """The batch sampler of one epoch, from step `first` to the epoch's end (or `stop`)."""

    def __init__(self, perm: torch.Tensor, positions: range, batch_size: int, rank: int, world_size: int):
        self.perm, self.positions = perm, positions
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size

    def __iter__(self) -> Iterator[list[int]]:
        for position in self.positions:
            yield _shard(self.perm, position, self.batch_size, self.rank, self.world_size)

    def __len__(self) -> int:
        return len(self.positions)


class BatchStream:
    """Batches of global steps `start_step, start_step + 1, ...` for this rank, endlessly
    (or until `stop_step`), loaded by a `DataLoader` (with `num_workers` worker processes).

    Before each epoch the dataset's `set_epoch(epoch)` is called if it has one, so per-item
    randomness can depend on (seed, epoch, index). A fresh loader per epoch carries that into
    the workers, and each loader has its own seeded generator, so iterating never draws from
    the global torch RNG.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        seed: int,
        start_step: int = 0,
        stop_step: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        collate: Callable | None = None,
        pin_memory: bool = False,
    ):
        self.steps_per_epoch = _check(len(dataset), batch_size, rank, world_size)
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.start_step, self.stop_step = start_step, stop_step
        self.rank, self.world_size = rank, world_size
        self.num_workers, self.collate, self.pin_memory = num_workers, collate, pin_memory

    def __iter__(self) -> Iterator:
        step = self.start_step
        while self.stop_step is None or step < self.stop_step:
            epoch, position = divmod(step, self.steps_per_epoch)
            end = self.steps_per_epoch
            if self.stop_step is not None:
                end = min(end, self.stop_step - epoch * self.steps_per_epoch)
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
            sampler = _EpochBatches(
                epoch_permutation(len(self.dataset), self.seed, epoch),
                range(position, end), self.batch_size, self.rank, self.world_size,
            )
            loader = DataLoader(
                self.dataset,
                batch_sampler=sampler,
                num_workers=self.num_workers,
                collate_fn=self.collate,
                pin_memory=self.pin_memory,
                generator=torch.Generator().manual_seed(mix_seed(self.seed, epoch, self.rank)),
            )
            yield from loader
            step += len(sampler)
