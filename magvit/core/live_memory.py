"""Peak bytes of the tensors a computation keeps alive at once, measured without allocating.

Run a module on the `meta` device (tensors with sizes but no data) under `PeakLiveBytes`: every
tensor an operation returns is counted while any tensor on its storage is alive, so the peak is
what an allocator would hold at most for that computation's own intermediates (its inputs and
the weights are not counted). A meta tensor has no values, so `.item()` (and `bool(t)`, `int(t)`)
reads 0 here: input checks pass, and a computation whose sizes depend on values cannot be
measured this way. `module_peak_bytes` runs a real module that way with meta stand-ins
for its weights, so nothing is copied. Nothing here is exact to the byte: allocators
round and cache, and fused kernels may skip an intermediate; it sizes batches, with a margin.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves, tree_map

_SCALAR_READS = {  # what reading a meta tensor's value gives here (`.item()`, `bool(t)`)
    torch.ops.aten._local_scalar_dense.default: 0,
    torch.ops.aten.is_nonzero.default: False,
}


class PeakLiveBytes(TorchDispatchMode):
    """`live` and `peak`: bytes of the storages created under this mode that are still (and
    were at most) referenced by a tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._refs: dict[int, list[int]] = {}  # storage id -> [tensors alive, bytes]

    def _release(self, key: int) -> None:
        entry = self._refs.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self._refs[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in _SCALAR_READS and args[0].device.type == "meta":
            return _SCALAR_READS[func]  # a meta tensor has no value: a check reads 0 and passes
        out = func(*args, **(kwargs or {}))
        given = {t.untyped_storage()._cdata for t in tree_leaves((args, kwargs))
                 if isinstance(t, torch.Tensor)}
        for tensor in tree_leaves(out):
            if not isinstance(tensor, torch.Tensor):
                continue
            key = tensor.untyped_storage()._cdata
            entry = self._refs.get(key)
            if entry is None:
                if key in given:
                    continue  # a view of, or an in-place op on, memory from before: not new
                entry = self._refs[key] = [0, tensor.untyped_storage().nbytes()]
                self.live += entry[1]
                self.peak = max(self.peak, self.live)
            entry[0] += 1  # a view or an in-place result keeps the storage alive too
            weakref.finalize(tensor, self._release, key)
        return out


def peak_live_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes of intermediates alive at once while `fn()` runs (its result included)."""
    with PeakLiveBytes() as counter:
        result = fn()
        del result
    return counter.peak


def module_peak_bytes(module: torch.nn.Module, method: str, *args: Any, **kwargs: Any) -> int:
    """Peak live bytes of `getattr(module, method)(*args, **kwargs)`, run on the meta device
    with meta stand-ins for the module's weights and for the tensor arguments (none of which
    count), so that nothing real is allocated or copied."""
    state = {name: torch.empty_like(t, device="meta")
             for name, t in (*module.named_parameters(), *module.named_buffers())}
    meta_args, meta_kwargs = tree_map(
        lambda t: t.to("meta") if isinstance(t, torch.Tensor) else t, (args, kwargs))
    with torch.nn.utils.stateless._reparametrize_module(module, state):
        return peak_live_bytes(lambda: getattr(module, method)(*meta_args, **meta_kwargs))
