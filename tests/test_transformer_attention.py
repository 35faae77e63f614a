"""Attention backends: the causal alignment, and clear messages where xformers cannot run."""

import importlib.util

import pytest
import torch

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
