"""Attention backends: `(q, k, v, *, causal, dropout) -> out` on `(B, heads, L, head_dim)` tensors.

`causal` masks the future with the mask aligned to the bottom right, so S new queries appended
after a cache of K - S keys see every cached key and the new keys up to their own position.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from contextlib import nullcontext

import attrs
import torch
import torch.nn.functional as F

from magvit.errors import MagvitError


def causal_mask(q_len: int, k_len: int, device: torch.device) -> torch.Tensor:
    """(q_len, k_len) bool, True where query i (at key position k_len - q_len + i) may look."""
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril(k_len - q_len)


@functools.cache
def cpu_kernels_below_avx512() -> bool:
    """Whether torch's CPU kernels run below AVX-512 (`ATEN_CPU_CAPABILITY=avx2` or `default`).
    There torch 2.13's CPU flash attention still packs bf16 for AMX when the hardware has it and
    raises ("pack_vnni2 is only supported when avx512 is supported"), so bf16 takes the math
    kernel instead."""
    return torch.backends.cpu.get_cpu_capability() not in ("AVX512", "ZVECTOR", "VSX", "SVE256")


def _kernel_for(q: torch.Tensor):
    if q.device.type == "cpu" and q.dtype == torch.bfloat16 and cpu_kernels_below_avx512():
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel(SDPBackend.MATH)
    return nullcontext()


@attrs.define
class SdpaAttention:
    """torch's `scaled_dot_product_attention` (flash / memory-efficient / math kernels)."""

    def __call__(self, q, k, v, *, causal: bool = False, dropout: float = 0.0):
        with _kernel_for(q):
            return self._attend(q, k, v, causal, dropout)

    @staticmethod
    def _attend(q, k, v, causal: bool, dropout: float):
        q_len, k_len = q.shape[-2], k.shape[-2]
        if not causal or q_len == 1:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        if q_len == k_len:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        mask = causal_mask(q_len, k_len, q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)


@attrs.define
class MathAttention:
    """softmax(q kᵀ / √d) v written out, in fp32: the reference the fast backends are tested on."""

    def __call__(self, q, k, v, *, causal: bool = False, dropout: float = 0.0):
        scores = (q.float() @ k.float().transpose(-2, -1)) / math.sqrt(q.shape[-1])
        if causal:
            scores = scores.masked_fill(~causal_mask(q.shape[-2], k.shape[-2], q.device), -math.inf)
        probs = F.dropout(scores.softmax(dim=-1), p=dropout)
        return (probs @ v.float()).to(q.dtype)


@attrs.define
class XformersAttention:
    """xformers' memory-efficient attention. CUDA only: xformers has no CPU kernels."""

    def __attrs_post_init__(self) -> None:
        if importlib.util.find_spec("xformers") is None:
            raise MagvitError(
                "attention backend 'xformers' needs the xformers package, which is not installed: "
                "`pip install magvit[xformers]` (CUDA only), or set transformer.attention = \"sdpa\""
            )

    def __call__(self, q, k, v, *, causal: bool = False, dropout: float = 0.0):
        if not q.is_cuda:
            raise MagvitError(
                f"attention backend 'xformers' runs on CUDA only, but the model is on {q.device.type}"
                ": set transformer.attention = \"sdpa\" (works everywhere) or move the model to a GPU"
            )
        from xformers.ops import fmha

        bias = fmha.attn_bias.LowerTriangularFromBottomRightMask() if causal else None
        # xformers wants (B, L, heads, head_dim).
        out = fmha.memory_efficient_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_bias=bias, p=dropout
        )
        return out.transpose(1, 2)
