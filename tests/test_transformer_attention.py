"""Attention backends: the causal alignment, and clear messages where xformers cannot run."""

import importlib.util

import pytest
import torch
import torch.nn.functional as F

import magvit
from magvit.core.transformer import attention
from magvit.errors import MagvitError


def qkv(q_len, k_len, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(2, 3, q_len, 8, generator=g), torch.randn(2, 3, k_len, 8, generator=g),
            torch.randn(2, 3, k_len, 8, generator=g))


def test_causal_mask_is_aligned_to_the_newest_key():
    assert attention.causal_mask(2, 4, torch.device("cpu")).tolist() == [
        [True, True, True, False],
        [True, True, True, True],
    ]


@pytest.mark.parametrize(("q_len", "k_len"), [(5, 5), (1, 5), (3, 7)])
@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_agrees_with_math(q_len, k_len, causal):
    q, k, v = qkv(q_len, k_len)
    torch.testing.assert_close(
        attention.SdpaAttention()(q, k, v, causal=causal),
        attention.MathAttention()(q, k, v, causal=causal), atol=1e-5, rtol=1e-5,
    )


def test_registry_offers_the_backends_with_sdpa_as_default():
    regs = magvit.registries()
    assert {"sdpa", "xformers", "math"} <= set(regs.attentions.names())
    bert_defaults = regs.transformers.get("bert").Config()
    assert bert_defaults.attention.kind == "sdpa"


@pytest.mark.skipif(importlib.util.find_spec("xformers") is not None, reason="xformers installed")
def test_xformers_missing_says_how_to_install_or_switch():
    with pytest.raises(MagvitError, match=r"needs the xformers package.*magvit\[xformers\].*sdpa"):
        magvit.registries().attentions.create("xformers")


def test_xformers_on_cpu_tensors_says_it_is_cuda_only(monkeypatch):
    monkeypatch.setattr(attention.importlib.util, "find_spec", lambda name: object())
    backend = attention.XformersAttention()
    with pytest.raises(MagvitError, match=r"runs on CUDA only, but the model is on cpu.*sdpa"):
        backend(*qkv(4, 4))


@pytest.mark.parametrize("below", [True, False])
def test_bf16_sdpa_on_cpu_kernels_below_avx512_takes_the_math_kernel(monkeypatch, below):
    """torch's CPU flash attention raises for bf16 on AMX hardware run with
    ATEN_CPU_CAPABILITY=avx2 or default; there bf16 goes to the math kernel, and agrees with
    the fp32 reference either way."""
    monkeypatch.setattr(attention, "cpu_kernels_below_avx512", lambda: below)
    seen = []
    honest = F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        seen.append(torch.backends.cuda.flash_sdp_enabled())
        return honest(*args, **kwargs)

    monkeypatch.setattr(attention.F, "scaled_dot_product_attention", spy)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 10, 16, generator=g) for _ in range(3))
    for causal in (False, True):
        out = attention.SdpaAttention()(q.bfloat16(), k.bfloat16(), v.bfloat16(), causal=causal)
        ref = attention.MathAttention()(q, k, v, causal=causal)
        assert out.dtype == torch.bfloat16 and out.shape == ref.shape == (2, 4, 10, 16)
        torch.testing.assert_close(out.float(), ref, atol=3e-2, rtol=3e-2)
    attention.SdpaAttention()(q, k, v)  # fp32 keeps every kernel
    assert seen == [not below, not below, True]
    assert torch.backends.cuda.flash_sdp_enabled()  # restored after the call
