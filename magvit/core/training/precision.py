"""Mixed precision: bf16 autocast for the model, fp32 for losses, and a stop on NaN/inf."""

from __future__ import annotations

import contextlib
import copy
import math

import torch

from magvit.errors import MagvitError

PRECISIONS = ("fp32", "bf16")  # training
INFERENCE_PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # generation; auto = bf16 where it is fast
_HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLossError(MagvitError):
    """A loss or metric became NaN or infinite; training stops rather than learn garbage."""

    def __init__(self, name: str, value: float, step: int):
        self.name, self.value, self.step = name, value, step
        kind = "nan" if math.isnan(value) else "inf"
        super().__init__(f"loss '{name}' is {kind} at step {step}; try a lower lr or fp32")


def _device_type(device: str | torch.device) -> str:
    kind = torch.device(device).type
    return "cpu" if kind == "meta" else kind  # meta tensors (sizing runs) never autocast


def autocast(device: str | torch.device, precision: str):
    """A context for the forward pass: a no-op for "fp32", bf16 autocast for "bf16"."""
    if precision not in PRECISIONS:
        raise MagvitError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=_device_type(device), dtype=torch.bfloat16)


def full_precision(device: str | torch.device):
    """Turn autocast off inside a bf16 region (losses, quantizer distances); cast inputs `.float()`."""
    return torch.autocast(device_type=_device_type(device), enabled=False)


def check_finite(value: torch.Tensor | float, *, step: int, name: str) -> None:
    """Raise `NonFiniteLossError` naming `name` and `step` if `value` holds a NaN or inf."""
    if isinstance(value, torch.Tensor):
        if bool(torch.isfinite(value).all()):
            return
        bad = value.detach().float().flatten()
        bad = bad[~torch.isfinite(bad)][0].item()
    else:
        if math.isfinite(value):
            return
        bad = float(value)
    raise NonFiniteLossError(name, bad, step)


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX or AVX-512 BF16), from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def resolve_inference_precision(device: str | torch.device, precision: str | None = None) -> str:
    """`precision` (or MAGVIT_PRECISION, else "auto") made concrete for `device`: "auto" is
    bf16 on CUDA devices that support it and on CPUs with bf16 instructions, else fp32."""
    import os

    precision = precision or os.environ.get("MAGVIT_PRECISION") or "auto"
    if precision not in INFERENCE_PRECISIONS:
        raise MagvitError(f"unknown precision {precision!r}; choose one of {', '.join(INFERENCE_PRECISIONS)}")
    if precision != "auto":
        if precision == "fp16" and _device_type(device) == "cpu":
            raise MagvitError("fp16 runs on CUDA only; on a CPU use bf16 or fp32")
        return precision
    if _device_type(device) == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if _device_type(device) == "cpu" and cpu_has_fast_bf16() else "fp32"


def precision_dtype(precision: str) -> torch.dtype:
    """The dtype a concrete precision computes in: float32 for "fp32", else its half type."""
    return _HALF.get(precision, torch.float32)


def weights_in_precision(module: torch.nn.Module, precision: str) -> torch.nn.Module:
    """`module` itself in fp32, else a copy whose linear and embedding weights are stored in the
    half dtype. Autocast rounds a matmul's weights to that dtype at every call anyway; stored so,
    the copy skips that cast (a quarter of the B transformer's forward on CPU). Norms and free
    parameters (biases added to the logits) stay fp32. The original is left as it was."""
    if precision == "fp32":
        return module
    half = copy.deepcopy(module)
    for part in half.modules():
        if isinstance(part, (torch.nn.Linear, torch.nn.Embedding)):
            part.to(_HALF[precision])
    return half


def inference_autocast(device: str | torch.device, precision: str):
    """Autocast for generation in a concrete precision ("fp32": none)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=_device_type(device), dtype=_HALF[precision])
