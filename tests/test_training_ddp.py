"""DDP on CPU (gloo): 2 processes at global batch 4 train exactly as 1 process at batch 4."""

from __future__ import annotations

import json

import pytest
import torch

from magvit.core.training.checkpoint import load_checkpoint
from magvit.core.training.distributed import all_reduce_mean, setup_distributed
from magvit.core.training.loop import TrainLoop
from magvit.core.training.testing import ToyStage, run_ddp

BATCH = 4


def train(run_dir, total_steps, resume=False, distributed=True):
    """Train the toy model (no input noise, so ranks draw nothing that one process would not)."""
    ctx = setup_distributed("cpu") if distributed else None
    stage = ToyStage(ctx, batch_size=BATCH, noise=0.0)
    TrainLoop(run_dir, total_steps=total_steps, checkpoint_every=3, log_every=1, ctx=ctx).run(
        stage, resume=resume
    )
    return {k: v.clone() for k, v in stage.model.state_dict().items()}


def rank_mean():
    ctx = setup_distributed("cpu")
    return all_reduce_mean(float(ctx.rank + 1), ctx), ctx.rank, ctx.world_size


def fail_on_rank_one():
    ctx = setup_distributed("cpu")
    if ctx.rank == 1:
        raise ValueError("rank one is unwell")
    return ctx.rank


def losses(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


def test_two_ranks_equal_one_process_and_resume(tmp_path):
    single = train(tmp_path / "single", 6, distributed=False)
    # 3 steps on 2 ranks, then a second launch resumes to step 6.
    first = run_ddp(train, 2, args=(tmp_path / "ddp", 3))
    assert torch.equal(first[0]["weight"], first[1]["weight"])  # ranks stay in sync
    resumed = run_ddp(train, 2, args=(tmp_path / "ddp", 6, True))
    for name, value in single.items():
        for rank in (0, 1):
            torch.testing.assert_close(resumed[rank][name], value, atol=1e-6, rtol=0)
    assert not torch.equal(single["weight"], ToyStage().model.weight.detach())  # it did train
    # Logged losses are averaged over ranks: the same global mean one process sees.
    assert losses(tmp_path / "ddp") == pytest.approx(losses(tmp_path / "single"), abs=1e-6)
    assert load_checkpoint(tmp_path / "ddp").meta["world_size"] == 2


def test_run_ddp_gathers_results_and_reports_failures():
    assert run_ddp(rank_mean, 2) == [(1.5, 0, 2), (1.5, 1, 2)]
    with pytest.raises(RuntimeError, match="(?s)rank1.*ValueError: rank one is unwell"):
        run_ddp(fail_on_rank_one, 2)


def test_a_device_torch_does_not_know_is_named_with_the_choices():
    from magvit.core.training.distributed import resolve_device
    from magvit.errors import MagvitError
    from magvit.pipeline import Pipeline

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    for bad in ("tpu", "cpu:x", 3.5):
        with pytest.raises(MagvitError, match=f"unknown device {bad!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'"):
            resolve_device(bad)
    with pytest.raises(MagvitError, match="unknown device 'tpu'"):  # before any weights are read
        Pipeline.from_checkpoint("default", device="tpu")
