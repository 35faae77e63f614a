"""Learning-rate schedule, EMA, RNG capture, precision and single-process distributed set-up."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from torch import nn

from magvit.core.training.distributed import (
    DistContext,
    all_reduce_mean,
    setup_distributed,
    wrap_ddp,
)
from magvit.core.training.ema import EMA
from magvit.core.training.lr import load_schedule_state, make_lr_scheduler, warmup_cosine
from magvit.core.training.precision import (
    NonFiniteLossError,
    autocast,
    check_finite,
    full_precision,
)
from magvit.core.training.rng import capture_rng_state, mix_seed, restore_rng_state
from magvit.errors import MagvitError

# ------------------------------------------------------------------------------------ lr


def lr(step, warmup=10, total=110, floor=0.1):
    return warmup_cosine(step, warmup_steps=warmup, total_steps=total, min_ratio=floor)


def test_warmup_cosine_landmarks():
    assert lr(0) == 0.0
    assert lr(5) == pytest.approx(0.5)
    assert lr(10) == 1.0  # end of warm-up: the peak
    assert lr(60) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the cosine
    assert lr(110) == pytest.approx(0.1)  # the end: the floor
    assert lr(500) == pytest.approx(0.1)  # and it stays there
    assert warmup_cosine(0, warmup_steps=0, total_steps=4) == 1.0
    assert warmup_cosine(4, warmup_steps=0, total_steps=4) == pytest.approx(0.0, abs=1e-12)


def test_warmup_cosine_is_monotone_after_warmup_and_bounded():
    values = [lr(s) for s in range(0, 120)]
    assert all(a <= b for a, b in zip(values[:11], values[1:11]))
    assert all(a >= b - 1e-12 for a, b in zip(values[10:], values[11:]))
    assert all(0.0 <= v <= 1.0 for v in values)


def _optimiser_and_schedule(peak, warmup, total):
    optimiser = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(3))], lr=peak)
    return optimiser, make_lr_scheduler(optimiser, warmup_steps=warmup, total_steps=total, min_ratio=0.1)


def _run(optimiser, schedule, steps):
    for _ in range(steps):
        optimiser.step()
        schedule.step()


def test_a_resumed_schedule_follows_the_current_config_from_its_first_step():
    optimiser, schedule = _optimiser_and_schedule(1e-3, 10, 110)
    _run(optimiser, schedule, 50)
    saved_optimiser, saved_schedule = optimiser.state_dict(), schedule.state_dict()

    # same config: every lr bit for bit what the uninterrupted run uses
    again, again_schedule = _optimiser_and_schedule(1e-3, 10, 110)
    again.load_state_dict(saved_optimiser)
    load_schedule_state(again_schedule, saved_schedule)
    assert again.param_groups[0]["lr"] == optimiser.param_groups[0]["lr"] == 1e-3 * lr(50)
    _run(optimiser, schedule, 7)
    _run(again, again_schedule, 7)
    assert again.param_groups[0]["lr"] == optimiser.param_groups[0]["lr"]

    # a longer run at half the peak: the new schedule from the first resumed step on
    longer, longer_schedule = _optimiser_and_schedule(5e-4, 10, 210)
    longer.load_state_dict(saved_optimiser)
    load_schedule_state(longer_schedule, saved_schedule)
    assert longer_schedule.last_epoch == 50 and longer_schedule.base_lrs == [5e-4]
    assert longer.param_groups[0]["lr"] == pytest.approx(5e-4 * lr(50, total=210), rel=1e-12)
    assert longer_schedule.get_last_lr() == [longer.param_groups[0]["lr"]]
    _run(longer, longer_schedule, 1)
    assert longer.param_groups[0]["lr"] == pytest.approx(5e-4 * lr(51, total=210), rel=1e-12)

    # what torch's load_state_dict alone does: the old peak comes back
    plain, plain_schedule = _optimiser_and_schedule(5e-4, 10, 210)
    plain.load_state_dict(saved_optimiser)
    plain_schedule.load_state_dict(saved_schedule)
    _run(plain, plain_schedule, 1)
    assert plain.param_groups[0]["lr"] == pytest.approx(1e-3 * lr(51, total=210), rel=1e-12)


def test_warmup_cosine_rejects_bad_settings():
    with pytest.raises(MagvitError, match="warmup_steps must be between 0 and total_steps \\(5\\), got 9"):
        warmup_cosine(0, warmup_steps=9, total_steps=5)
    with pytest.raises(MagvitError, match="min_ratio \\(min_lr_ratio\\) must be in \\[0, 1\\], got 2"):
        warmup_cosine(0, warmup_steps=0, total_steps=5, min_ratio=2)


def test_scheduler_follows_the_multiplier_and_round_trips():
    def make():
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2.0)
        return opt, make_lr_scheduler(opt, warmup_steps=2, total_steps=6, min_ratio=0.0)

    opt, sched = make()
    seen = []
    for _ in range(6):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [2.0 * warmup_cosine(s, warmup_steps=2, total_steps=6) for s in range(6)]
    assert seen == pytest.approx(expected)
    opt2, sched2 = make()
    sched2.load_state_dict(sched.state_dict())
    assert sched2.last_epoch == 6 and sched2.get_last_lr() == pytest.approx(sched.get_last_lr())


# ------------------------------------------------------------------------------------ EMA


def test_ema_math_on_one_parameter():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = EMA(model, decay=0.9)
    expected = 1.0
    for value in (2.0, 4.0, -1.0):
        with torch.no_grad():
            model.weight.fill_(value)
        ema.update(model)
        expected = 0.9 * expected + 0.1 * value
        assert ema.state_dict()["weight"].item() == pytest.approx(expected, rel=1e-6)
    ema.copy_to(model)
    assert model.weight.item() == pytest.approx(expected, rel=1e-6)


def test_ema_shadow_is_fp32_copies_buffers_and_keeps_ties():
    model = nn.Sequential(nn.Embedding(4, 2), nn.Linear(2, 4), nn.BatchNorm1d(4)).to(torch.bfloat16)
    model[1].weight = nn.Parameter(torch.ones(4, 2, dtype=torch.bfloat16))
    model[0].weight = model[1].weight  # tied
    ema = EMA(model, decay=0.5)
    sd = ema.state_dict()
    assert sd["0.weight"] is sd["1.weight"] and sd["1.weight"].dtype == torch.float32
    with torch.no_grad():
        model[1].weight.fill_(3.0)
        model[2].running_mean.fill_(7.0)
    model[2].num_batches_tracked += 5
    ema.update(model)
    assert sd["1.weight"].unique().tolist() == [2.0]  # averaged once, though two names
    assert sd["2.running_mean"].unique().tolist() == [7.0]  # buffers copied, not averaged
    assert sd["2.num_batches_tracked"].item() == 5
    fresh = EMA(model, decay=0.5)
    fresh.load_state_dict(sd)
    assert torch.equal(fresh.state_dict()["1.weight"], sd["1.weight"])
    with pytest.raises(MagvitError, match="EMA weights do not match the model: missing \\['0.weight'"):
        fresh.load_state_dict({k: v for k, v in sd.items() if k != "0.weight"})
    with pytest.raises(MagvitError, match="EMA decay must be in \\[0, 1\\), got 1.0"):
        EMA(model, decay=1.0)


# ------------------------------------------------------------------------------------ RNG


def _draws():
    return random.random(), np.random.rand(), torch.rand(3).tolist(), torch.randn(2).tolist()


def test_rng_capture_restore_reproduces_every_generator():
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    _draws()
    state = capture_rng_state()
    first = _draws()
    _draws()
    restore_rng_state(state)
    assert _draws() == first


def test_rng_state_survives_a_safe_torch_save(tmp_path):
    torch.save(capture_rng_state(), tmp_path / "rng.pt")
    state = torch.load(tmp_path / "rng.pt", weights_only=True)
    first = _draws()
    restore_rng_state(state)
    assert _draws() == first


def test_mix_seed_separates_neighbours():
    seeds = {mix_seed(s, e) for s in range(20) for e in range(20)}
    assert len(seeds) == 400 and all(0 <= s < 2**63 for s in seeds)
    assert mix_seed(1, 2) == mix_seed(1, 2) != mix_seed(2, 1)


# ------------------------------------------------------------------------------------ precision


def test_check_finite_names_loss_and_step():
    check_finite(torch.tensor([1.0, 2.0]), step=3, name="loss")
    check_finite(0.5, step=3, name="loss")
    with pytest.raises(NonFiniteLossError, match="loss 'recon' is nan at step 12; try a lower lr or fp32"):
        check_finite(torch.tensor([1.0, math.nan]), step=12, name="recon")
    with pytest.raises(MagvitError, match="loss 'gan' is inf at step 0"):
        check_finite(math.inf, step=0, name="gan")


def test_autocast_bf16_and_fp32_escape():
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with autocast("cpu", "fp32"):
        assert (a @ b).dtype == torch.float32
    with autocast("cpu", "bf16"):
        assert (a @ b).dtype == torch.bfloat16
        with full_precision("cpu"):
            assert (a @ b).dtype == torch.float32
    with pytest.raises(MagvitError, match="unknown precision 'fp16'; choose one of fp32, bf16"):
        autocast("cpu", "fp16")


# ------------------------------------------------------------------------------------ distributed


def test_single_process_context_without_torchrun(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ctx = setup_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.distributed) == (0, 1, True, False)
    assert ctx.device == torch.device("cpu")
    model = nn.Linear(2, 2)
    assert wrap_ddp(model, ctx) is model
    assert all_reduce_mean(2.5, ctx) == 2.5


def test_setup_distributed_explains_bad_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(MagvitError, match="environment variable WORLD_SIZE='two' is not an integer"):
        setup_distributed("cpu")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(MagvitError, match="WORLD_SIZE=2 but MASTER_ADDR is unset; launch with torchrun"):
        setup_distributed("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(MagvitError, match="run.device is 'cuda' but torch sees no CUDA device"):
            setup_distributed("cuda")
    assert DistContext().is_main
