"""Deterministic batching: partition across ranks, exact resume, per-epoch reshuffles."""

from __future__ import annotations

import pytest
import torch

from magvit.core.training.batches import BatchStream, batch_indices
from magvit.errors import MagvitError


class Indexed(torch.utils.data.Dataset):
    """Items are their own index, plus the epoch the dataset was told about."""

    def __init__(self, n):
        self.n, self.epoch = n, -1

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"index": i, "epoch": self.epoch}


def test_epoch_is_a_permutation_and_reshuffles():
    epoch0 = [i for s in range(5) for i in batch_indices(20, 4, seed=7, step=s)]
    epoch1 = [i for s in range(5, 10) for i in batch_indices(20, 4, seed=7, step=s)]
    assert sorted(epoch0) == sorted(epoch1) == list(range(20))
    assert epoch0 != epoch1
    assert batch_indices(20, 4, seed=7, step=3) == batch_indices(20, 4, seed=7, step=3)
    assert batch_indices(20, 4, seed=8, step=3) != batch_indices(20, 4, seed=7, step=3)


def test_ragged_tail_is_dropped():
    seen = [i for s in range(3) for i in batch_indices(14, 4, seed=0, step=s)]
    assert len(set(seen)) == 12  # 3 full batches per epoch; 2 samples sit out this epoch


@pytest.mark.parametrize("world_size", [2, 4])
@pytest.mark.parametrize("step", [0, 3, 11])
def test_ranks_partition_the_global_batch(world_size, step):
    whole = batch_indices(50, 8, seed=1, step=step)
    shards = [batch_indices(50, 8, seed=1, step=step, rank=r, world_size=world_size)
              for r in range(world_size)]
    assert [i for shard in shards for i in shard] == whole
    assert all(len(shard) == 8 // world_size for shard in shards)


def test_bad_splits_are_explained():
    with pytest.raises(MagvitError, match="train.batch_size 6 must be a positive multiple of the number of processes \\(4\\)"):
        batch_indices(50, 6, seed=0, step=0, world_size=4)
    with pytest.raises(MagvitError, match="the dataset has 3 samples, fewer than train.batch_size 4"):
        batch_indices(3, 4, seed=0, step=0)


def _indices(stream, n):
    it = iter(stream)
    return [next(it)["index"].tolist() for _ in range(n)]


def test_stream_resumed_at_k_matches_uninterrupted_run():
    data = Indexed(10)  # 3 steps per epoch at batch 3: resume crosses epoch boundaries
    full = _indices(BatchStream(data, 3, seed=4), 8)
    assert full == [batch_indices(10, 3, seed=4, step=s) for s in range(8)]
    for k in (1, 3, 5):
        assert _indices(BatchStream(data, 3, seed=4, start_step=k), 8 - k) == full[k:]


def test_stream_sets_the_epoch_and_stops():
    data = Indexed(6)
    batches = list(BatchStream(data, 2, seed=0, start_step=2, stop_step=7))
    assert [b["epoch"].tolist() for b in batches] == [[0, 0], [1, 1], [1, 1], [1, 1], [2, 2]]


def test_stream_does_not_touch_the_global_rng():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    list(BatchStream(Indexed(8), 2, seed=0, stop_step=9))
    assert torch.equal(torch.rand(1), expected)


def test_stream_with_workers_matches_in_process():
    data = Indexed(12)
    in_process = list(BatchStream(data, 4, seed=2, start_step=1, stop_step=5))
    workers = list(BatchStream(data, 4, seed=2, start_step=1, stop_step=5, num_workers=2))
    assert [b["index"].tolist() for b in workers] == [b["index"].tolist() for b in in_process]
    assert [b["epoch"].tolist() for b in workers] == [[0] * 4, [0] * 4, [1] * 4, [1] * 4]


def test_partition_property_over_random_shapes():
    rng = torch.Generator().manual_seed(0)
    for _ in range(30):
        world = int(torch.randint(1, 5, (1,), generator=rng))
        batch = world * int(torch.randint(1, 5, (1,), generator=rng))
        n = batch + int(torch.randint(0, 40, (1,), generator=rng))
        per_epoch = n // batch
        step = int(torch.randint(0, 3 * per_epoch, (1,), generator=rng))
        shards = [batch_indices(n, batch, seed=5, step=step, rank=r, world_size=world) for r in range(world)]
        flat = [i for shard in shards for i in shard]
        assert flat == batch_indices(n, batch, seed=5, step=step)
        assert len(set(flat)) == batch and all(0 <= i < n for i in flat)
        epoch_start = step - step % per_epoch  # no sample repeats within an epoch
        epoch = [i for s in range(epoch_start, epoch_start + per_epoch)
                 for i in batch_indices(n, batch, seed=5, step=s)]
        assert len(set(epoch)) == per_epoch * batch
