"""DDP set-up from `torchrun`'s environment (gloo on CPU, nccl on CUDA); one process when unset."""

from __future__ import annotations

import contextlib
import datetime
import os

import attrs
import torch
import torch.distributed as dist
from torch import nn

from magvit.errors import MagvitError


@attrs.frozen
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None  # None when not distributed

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise MagvitError(f"environment variable {name}={value!r} is not an integer") from None


def resolve_device(device: str | torch.device, local_rank: int = 0) -> torch.device:
    """`"auto"` picks CUDA when there is one; a bare `"cuda"` means this process's GPU."""
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise MagvitError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MagvitError("run.device is 'cuda' but torch sees no CUDA device; use 'cpu' or 'auto'")
        if device.index is None:
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
    return device


def setup_distributed(device: str | torch.device = "auto", timeout_s: float = 600.0) -> DistContext:
    """Read RANK / WORLD_SIZE / LOCAL_RANK (set by `torchrun`) and join the process group."""
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    device = resolve_device(device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size <= 1:
        return DistContext(device=device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if name not in os.environ:
                raise MagvitError(f"WORLD_SIZE={world_size} but {name} is unset; launch with torchrun")
        dist.init_process_group(
            backend, rank=rank, world_size=world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    return DistContext(rank, world_size, local_rank, device, backend)


def wrap_ddp(model: nn.Module, ctx: DistContext, **ddp_kwargs) -> nn.Module:
    """`DistributedDataParallel` when distributed, the model itself otherwise."""
    if not ctx.distributed:
        return model
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, **ddp_kwargs)


def sync_gradients(model: nn.Module, sync: bool):
    """A context in which DDP all-reduces gradients on backward only when `sync` (the last
    micro-batch of an accumulated step); a no-op for a plain module."""
    if sync or not isinstance(model, nn.parallel.DistributedDataParallel):
        return contextlib.nullcontext()
    return model.no_sync()


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP (or `torch.compile`) wrapper."""
    while isinstance(model, nn.parallel.DistributedDataParallel) or hasattr(model, "_orig_mod"):
        model = model.module if hasattr(model, "module") else model._orig_mod
    return model


def all_reduce_mean(x: torch.Tensor | float, ctx: DistContext) -> torch.Tensor | float:
    """The mean of `x` over ranks (a float in, a float out); `x` itself when not distributed."""
    if not ctx.distributed:
        return x
    is_float = not isinstance(x, torch.Tensor)
    t = torch.tensor(x, dtype=torch.float64) if is_float else x.detach().clone()
    t = t.to(ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= ctx.world_size
    return t.item() if is_float else t


def all_gather_objects(obj, ctx: DistContext) -> list:
    """Every rank's `obj`, in rank order (a one-element list when not distributed)."""
    if not ctx.distributed:
        return [obj]
    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def cleanup(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()
