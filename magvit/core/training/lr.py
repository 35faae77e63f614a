"""Learning-rate schedule: linear warm-up from 0 to the peak, then cosine decay to a floor."""

from __future__ import annotations

import math

import torch

from magvit.errors import MagvitError


def _check(warmup_steps: int, total_steps: int, min_ratio: float) -> None:
    if total_steps < 1:
        raise MagvitError(f"total_steps must be at least 1, got {total_steps}")
    if not 0 <= warmup_steps <= total_steps:
        raise MagvitError(
            f"warmup_steps must be between 0 and total_steps ({total_steps}), got {warmup_steps}"
        )
    if not 0.0 <= min_ratio <= 1.0:
        raise MagvitError(f"min_ratio (min_lr_ratio) must be in [0, 1], got {min_ratio}")


def warmup_cosine(step: int, *, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """The lr multiplier for optimiser step `step` (0-based).

    0 at step 0 rising linearly to 1 at `warmup_steps`, then a half cosine down to `min_ratio`
    at `total_steps`; it stays at `min_ratio` after that.
    """
    _check(warmup_steps, total_steps, min_ratio)
    if step < warmup_steps:
        return step / warmup_steps
    if total_steps == warmup_steps:
        return 1.0 if step == warmup_steps else min_ratio
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_lr_scheduler(
    optimizer: torch.optim.Optimizer,
    *,
    warmup_steps: int,
    total_steps: int,
    min_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A `LambdaLR` over `warmup_cosine`; call `.step()` once after each `optimizer.step()`.

    The schedule is a plain function, not saved with the state; resume with
    `load_schedule_state`, so a resumed run follows the schedule and peak lr of its current config.
    """
    _check(warmup_steps, total_steps, min_ratio)

    def multiplier(step: int) -> float:
        return warmup_cosine(step, warmup_steps=warmup_steps, total_steps=total_steps, min_ratio=min_ratio)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)


def load_schedule_state(scheduler: torch.optim.lr_scheduler.LambdaLR, state: dict) -> None:
    """Load a checkpoint's scheduler `state` (its step count) into `scheduler`, built from the
    current config, after its optimiser's state was loaded.

    Torch's own `load_state_dict` would also bring back the checkpoint's peak lrs (`base_lrs`)
    and leave the optimiser at the checkpoint's lr for one step; here the peak stays this run's
    and the next step's lr is the current schedule's (bit for bit the saved one when the config
    did not change).
    """
    peaks = list(scheduler.base_lrs)
    scheduler.load_state_dict(state)
    scheduler.base_lrs = peaks
    for group, peak, multiplier in zip(scheduler.optimizer.param_groups, peaks, scheduler.lr_lambdas, strict=True):
        group["initial_lr"] = peak
        group["lr"] = peak * multiplier(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]
