"""Helpers for testing training code: run a function in N gloo processes, and a toy stage.

    from magvit.core.training.testing import run_ddp

    def train_two_steps(scale):            # module level, so spawned processes can import it
        ctx = setup_distributed("cpu")     # reads the env run_ddp sets
        ...
        return model.state_dict()          # anything torch.save can write

    results = run_ddp(train_two_steps, world_size=2, args=(0.5,))   # one result per rank
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from magvit.core.training.batches import BatchStream
from magvit.core.training.distributed import DistContext, unwrap, wrap_ddp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_entry(rank: int, world_size: int, port: int, fn: Callable, args: tuple, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size), LOCAL_WORLD_SIZE=str(world_size),
    )
    torch.set_num_threads(1)  # N processes share the machine's cores
    try:
        torch.save({"result": fn(*args)}, Path(out) / f"rank{rank}.pt")
    except BaseException:
        (Path(out) / f"rank{rank}.err").write_text(traceback.format_exc())
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run_ddp(
    fn: Callable, world_size: int = 2, *, args: tuple = (), timeout_s: float = 120.0,
    start_method: str | None = None,
) -> list:
    """Run `fn(*args)` in `world_size` processes with torchrun's environment variables set
    (gloo on CPU via `setup_distributed("cpu")`); return each rank's result in rank order.

    Ranks are spawned (fresh interpreters), so `fn` must be importable: defined at module level.
    Forking is faster but unsafe once the parent has run torch's or gloo's threads (a forked
    rank can inherit a held lock and wait forever); pass `start_method="fork"` only for tiny,
    thread-free functions. A rank that fails re-raises here with its traceback; ranks still
    running after `timeout_s` are terminated and a `TimeoutError` is raised.
    """
    start_method = start_method or "spawn"
    with tempfile.TemporaryDirectory(prefix="magvit-ddp-") as out:
        context = mp.start_processes(
            _ddp_entry, args=(world_size, _free_port(), fn, args, out),
            nprocs=world_size, join=False, start_method=start_method,
        )
        deadline = time.monotonic() + timeout_s
        try:
            while not context.join(timeout=1.0):
                if time.monotonic() > deadline:
                    for process in context.processes:
                        if process.is_alive():
                            process.terminate()
                    raise TimeoutError(f"DDP ranks still running after {timeout_s:.0f} s; terminated")
        except (mp.ProcessRaisedException, mp.ProcessExitedException) as exc:
            errors = sorted(Path(out).glob("rank*.err"))
            finished = all((Path(out) / f"rank{r}.pt").is_file() for r in range(world_size))
            if errors or not finished:
                details = "\n".join(f"--- {p.stem} ---\n{p.read_text()}" for p in errors) or str(exc)
                raise RuntimeError(f"a DDP rank failed:\n{details}") from None
            # Every rank returned its result, then one died while tearing down the process
            # group (seen once here as a silent exit): the work under test is complete.
            warnings.warn(f"a DDP rank exited abnormally after returning its result: {exc}",
                          RuntimeWarning, stacklevel=2)
        return [torch.load(Path(out) / f"rank{r}.pt", weights_only=False)["result"]
                for r in range(world_size)]


class ToyRegression(torch.utils.data.Dataset):
    """`n` fixed (x, y) pairs of a noisy linear map, the same for every seed-matched process."""

    def __init__(self, n: int = 64, dim: int = 4, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, dim, generator=g)
        self.y = self.x @ torch.randn(dim, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


class ToyStage:
    """A minimal stage for loop tests: a Linear model, AdamW, warm-up + cosine, EMA, and a
    draw from the global torch RNG each step (input noise) so that RNG restore matters."""

    def __init__(self, ctx: DistContext | None = None, *, batch_size: int = 4, total_steps: int = 20,
                 seed: int = 0, noise: float = 0.01):
        from magvit.core.training.ema import EMA
        from magvit.core.training.lr import make_lr_scheduler

        self.ctx = ctx or DistContext()
        torch.manual_seed(seed)
        self.model = nn.Linear(4, 1)
        self.ddp = wrap_ddp(self.model, self.ctx)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=0.05, weight_decay=0.01)
        self.sched = make_lr_scheduler(self.opt, warmup_steps=3, total_steps=total_steps, min_ratio=0.1)
        self.ema = EMA(self.model, 0.9)
        self.data, self.batch_size, self.seed, self.noise = ToyRegression(), batch_size, seed, noise
        self.batches = None

    def begin(self, start_step: int) -> None:
        self.batches = iter(BatchStream(self.data, self.batch_size, seed=self.seed, start_step=start_step,
                                        rank=self.ctx.rank, world_size=self.ctx.world_size))

    def train_step(self, step: int) -> dict[str, float]:
        x, y = next(self.batches)
        x = x + self.noise * torch.randn_like(x)
        loss = nn.functional.mse_loss(self.ddp(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        self.ema.update(self.model)
        return {"loss": loss.item(), "lr": self.sched.get_last_lr()[0]}

    def checkpoint_payload(self):
        weights = {"model": unwrap(self.model).state_dict(), "ema": self.ema.state_dict()}
        return weights, {"optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict()}

    def load_payload(self, weights, state) -> None:
        self.model.load_state_dict(weights["model"])
        self.ema.load_state_dict(weights["ema"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
