"""The step loop both training stages share: resume, progress bar, NaN stop, metrics, checkpoints.

A *stage* is any object with

- `train_step(step: int) -> dict[str, float]`: one optimiser step (0-based global step), returning
  its metrics (the same names on every rank);
- `checkpoint_payload() -> (weights, state)`: weight groups (`{"model": state_dict, ...}`) and
  everything else needed to continue (optimiser and scheduler states, counters);
- `load_payload(weights, state)`: the inverse, called on resume;
- optionally `begin(start_step)`, called once before the first step (e.g. to build the data
  stream at the right position), and `evaluate(step) -> dict[str, float]` (with `eval_every`).

The loop saves every `checkpoint_every` completed steps and at the end. Ctrl-C (SIGINT) lets the
current step finish, saves, then raises `KeyboardInterrupt`; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch
import torch.distributed as dist
from tqdm import tqdm

from magvit.core.allocator import malloc_setting
from magvit.core.training.checkpoint import (
    Checkpoint,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from magvit.core.training.distributed import (
    DistContext,
    all_gather_objects,
    all_reduce_mean,
    barrier,
)
from magvit.core.training.loggers import JsonlLogger, Logger
from magvit.core.training.precision import check_finite
from magvit.core.training.rng import capture_rng_state, restore_rng_state
from magvit.errors import MagvitError


def runtime_record() -> dict[str, object]:
    """What shaped this process's speed and its floating-point sums, beside the config: torch's
    threads, the CPU kernels ATen picked (`ATEN_CPU_CAPABILITY`) and what malloc does."""
    return {"threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "malloc": malloc_setting()}


class Stage(Protocol):
    def train_step(self, step: int) -> dict[str, float]: ...

    def checkpoint_payload(self) -> tuple[dict[str, dict[str, torch.Tensor]], dict]: ...

    def load_payload(self, weights: dict[str, dict[str, torch.Tensor]], state: dict) -> None: ...


class _InterruptFlag:
    """Turns the first SIGINT into a request to stop after the current step."""

    def __enter__(self) -> _InterruptFlag:
        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT) or signal.SIG_DFL
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)  # a second Ctrl-C interrupts at once

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def agreed(self, ctx: DistContext) -> bool:
        """Whether any rank was interrupted (every rank must stop at the same step)."""
        if not ctx.distributed:
            return self.requested
        flag = torch.tensor([float(self.requested)], device=ctx.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


class _MetricWindow:
    """Running sums of the metrics since the last log line (a metric may skip some steps)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
            self.counts[name] = self.counts.get(name, 0) + 1

    def mean(self, ctx: DistContext) -> dict[str, float]:
        """The window's means, averaged over ranks (every rank must report the same names)."""
        names = sorted(self.sums)
        values = torch.tensor([self.sums[n] / self.counts[n] for n in names], dtype=torch.float64)
        values = all_reduce_mean(values, ctx).cpu() if names else values
        self.sums, self.counts = {}, {}
        return dict(zip(names, values.tolist()))


def _fmt(metrics: dict[str, float]) -> dict[str, str]:
    return {name: f"{value:.4g}" for name, value in metrics.items()}


class TrainLoop:
    def __init__(
        self,
        run_dir: str | Path,
        *,
        total_steps: int,
        checkpoint_every: int,
        log_every: int = 10,
        ctx: DistContext | None = None,
        desc: str = "train",
        files: dict[str, str] | None = None,
        keep: int | None = 3,
        eval_every: int = 0,
        check_resume: Callable[[Checkpoint], None] | None = None,
        loggers: list[Logger] | None = None,
        run_config: dict | None = None,
        media_every: int = 0,
    ):
        for name, value in (("total_steps", total_steps), ("checkpoint_every", checkpoint_every),
                            ("log_every", log_every)):
            if value < 1:
                raise MagvitError(f"train.{name} must be at least 1, got {value}")
        self.run_dir = Path(run_dir)
        self.total_steps, self.checkpoint_every, self.log_every = total_steps, checkpoint_every, log_every
        self.ctx = ctx or DistContext()
        self.desc, self.files, self.keep, self.eval_every = desc, dict(files or {}), keep, eval_every
        self.loggers = [JsonlLogger()] if loggers is None else list(loggers)
        self.run_config, self.media_every = dict(run_config or {}), media_every
        self.check_resume = check_resume  # raises when a checkpoint cannot continue this run
        self.window = _MetricWindow()

    # ------------------------------------------------------------------------------ the loop

    def run(self, stage: Stage, resume: bool = False) -> Path:
        """Train from step 0 (or the last checkpoint when `resume`); return the last checkpoint."""
        start = self._resume(stage) if resume else self._refuse_overwrite()
        if start >= self.total_steps:
            self._say(f"{self.run_dir} is already at step {start} = train.steps: nothing left to do; "
                      "raise train.steps (--set train.steps=N) to train on")
            return latest_checkpoint(self.run_dir)
        if hasattr(stage, "begin"):
            stage.begin(start)
        if self.ctx.is_main:
            for logger in self.loggers:
                logger.start(self.run_dir, start, self.run_config)
        try:
            return self._steps(stage, start)
        finally:
            if self.ctx.is_main:
                for logger in self.loggers:
                    logger.close()

    def _steps(self, stage: Stage, start: int) -> Path:
        saved_at = None
        started = time.monotonic()
        window = self.window
        bar = tqdm(total=self.total_steps, initial=start, desc=self.desc, unit="step",
                   disable=not self.ctx.is_main, dynamic_ncols=True)
        with bar, _InterruptFlag() as interrupt:
            for step in range(start, self.total_steps):
                tick = time.perf_counter()
                metrics = {name: float(value) for name, value in stage.train_step(step).items()}
                metrics.update(_throughput(metrics, time.perf_counter() - tick))
                for name, value in metrics.items():
                    check_finite(value, step=step, name=name)
                window.add(metrics)
                done = step + 1
                bar.update(1)
                if done % self.log_every == 0 or done == self.total_steps:
                    means = window.mean(self.ctx)
                    bar.set_postfix(_fmt(means), refresh=False)
                    self._log({"step": done, "split": "train", **means,
                               "elapsed_s": round(time.monotonic() - started, 3)})
                if self.eval_every and done % self.eval_every == 0 and hasattr(stage, "evaluate"):
                    self._log({"step": done, "split": "eval", **stage.evaluate(done)})
                if self.media_every and done % self.media_every == 0 and hasattr(stage, "media"):
                    images = stage.media(done)
                    if self.ctx.is_main:
                        for logger in self.loggers:
                            logger.log_images(done, images)
                if done % self.checkpoint_every == 0 or done == self.total_steps:
                    self._save(stage, done)
                    saved_at = done
                if interrupt.agreed(self.ctx):
                    if saved_at != done:
                        self._save(stage, done)
                    bar.close()
                    raise KeyboardInterrupt(f"interrupted after step {done}; checkpoint saved")
        return latest_checkpoint(self.run_dir)

    # ------------------------------------------------------------------------------ helpers

    def _refuse_overwrite(self) -> int:
        existing = latest_checkpoint(self.run_dir)
        if existing is not None:
            raise MagvitError(
                f"run directory {self.run_dir} already has a checkpoint ({existing.name}); "
                "pass --resume to continue it, or pick another run.name / --output-dir"
            )
        return 0

    def _resume(self, stage: Stage) -> int:
        ckpt = self._newest_readable_checkpoint()
        if ckpt is None:
            self._say(f"nothing to resume in {self.run_dir}: starting at step 0")
            return 0
        if not {"stage", "rng"} <= set(ckpt.state):
            raise MagvitError(
                f"checkpoint {ckpt.path} was not written by a training loop (no stage/RNG state), so "
                "it cannot be resumed; start a new run that initialises from its weights instead"
            )
        if self.check_resume is not None:
            self.check_resume(ckpt)
        if ckpt.step > self.total_steps:
            raise MagvitError(
                f"{ckpt.path} is at step {ckpt.step}, past train.steps = {self.total_steps}: nothing "
                f"to do. Raise train.steps (--set train.steps=N with N > {ckpt.step}) to train on"
            )
        try:
            stage.load_payload(ckpt.weights, ckpt.state["stage"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise MagvitError(
                f"the weights in {ckpt.path} do not fit this run's model ({str(exc).splitlines()[0]}); "
                "the experiment changed since the checkpoint: restore it, or start a new run"
            ) from None
        rng = ckpt.state["rng"]
        # Each rank continues its own streams; a different world size reuses them round-robin.
        restore_rng_state(rng[self.ctx.rank % len(rng)])
        windows = ckpt.state.get("window")
        if windows and len(windows) == self.ctx.world_size:  # the log line in progress goes on
            self.window.sums, self.window.counts = (dict(d) for d in windows[self.ctx.rank])
        self._say(f"resuming {self.run_dir} from {ckpt.path.name} (step {ckpt.step} of {self.total_steps})")
        return ckpt.step

    def _newest_readable_checkpoint(self) -> Checkpoint | None:
        """The newest checkpoint that loads; a damaged newer one is reported and skipped."""
        candidates = list_checkpoints(self.run_dir)[::-1]
        pointed = latest_checkpoint(self.run_dir)
        if pointed is not None and pointed in candidates:  # `last` first, then by step
            candidates.remove(pointed)
            candidates.insert(0, pointed)
        damaged = []
        for path in candidates:
            try:
                ckpt = load_checkpoint(path)
            except MagvitError as exc:
                damaged.append(path)
                self._say(f"warning: {exc}; trying the previous checkpoint")
                continue
            if damaged:
                self._say(f"warning: skipped damaged checkpoint(s) {', '.join(p.name for p in damaged)}; "
                          f"resuming from {path.name}")
            return ckpt
        if damaged:
            raise MagvitError(f"no checkpoint in {self.run_dir} can be read ({len(damaged)} damaged); "
                              "start a new run (another --output-dir / run.name)")
        return None

    def _say(self, message: str) -> None:
        if self.ctx.is_main:
            print(message, file=sys.stderr)

    def _save(self, stage: Stage, step: int) -> Path | None:
        weights, stage_state = stage.checkpoint_payload()
        rng = all_gather_objects(capture_rng_state(), self.ctx)
        windows = all_gather_objects([dict(self.window.sums), dict(self.window.counts)], self.ctx)
        path = None
        if self.ctx.is_main:
            path = save_checkpoint(
                self.run_dir, step,
                weights=weights,
                state={"stage": stage_state, "rng": rng, "window": windows},
                files=self.files,
                meta={"total_steps": self.total_steps, "world_size": self.ctx.world_size,
                      "desc": self.desc, "runtime": runtime_record()},
                keep=self.keep,
            )
        barrier(self.ctx)
        return path

    def _log(self, record: dict) -> None:
        if not self.ctx.is_main:
            return
        record = dict(record)
        step, split = record.pop("step"), record.pop("split")
        for logger in self.loggers:
            logger.log(step, split, record)


def _throughput(metrics: dict[str, float], seconds: float) -> dict[str, float]:
    """A stage that reports `batch_clips` / `batch_tokens` (whole step, all ranks) gets them
    turned into clips/s and tokens/s of this step."""
    out = {}
    for name in ("clips", "tokens"):
        count = metrics.pop(f"batch_{name}", None)
        if count is not None and seconds > 0:
            out[f"{name}_per_s"] = count / seconds
    return out
