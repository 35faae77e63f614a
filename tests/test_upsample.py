"""The tokenizer's Upsample computes resize + conv as one conv of the small input (sub-pixel)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from magvit.core.tokenizer.blocks import Layers, Upsample

pytestmark = pytest.mark.numerics  # the two paths agree on every CPU kernel, not just this one


def resize_then_conv(up: Upsample, x: torch.Tensor) -> torch.Tensor:
    """The definition: nearest resize, (causal: drop the copy before the first frame), conv."""
    big = F.interpolate(x, scale_factor=up.scale, mode="nearest")
    return up.conv(big[:, :, 1:] if up.causal else big)


CASES = [(p, t, kt, c) for p, t, kt, c in itertools.product(("reflect", "zero"), (True, False), (1, 3), (False, True))
         if not (t and kt == 1)]


@pytest.mark.parametrize(("padding", "temporal", "kt", "causal"), CASES)
@pytest.mark.parametrize("shape", [(3, 5, 4), (1, 1, 1), (2, 7, 3)])
def test_upsample_equals_resize_then_conv_forward_and_backward(padding, temporal, kt, causal, shape):
    torch.manual_seed(sum(shape) + kt)
    up = Upsample(6, temporal, Layers(padding, kt, causal), kt)
    # causal time doubling with zero padding keeps the resize
    assert up.subpixel == (not (causal and temporal and padding == "zero"))
    x = torch.randn(2, 6, *shape, dtype=torch.float64, requires_grad=True)
    up = up.double()
    try:
        ref = resize_then_conv(up, x)
    except RuntimeError as error:  # one frame cannot be reflected in time: the same refusal
        with pytest.raises(RuntimeError, match="Padding size should be less"):
            up(x)
        assert "Padding size should be less" in str(error)
        return
    out = up(x)
    assert out.shape == ref.shape
    expected_t = shape[0] * 2 - (1 if causal else 0) if temporal else shape[0]
    assert out.shape == (2, 6, expected_t, 2 * shape[1], 2 * shape[2])
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    upstream = torch.randn_like(out)
    params = [x, up.conv.weight, up.conv.bias]
    grads = torch.autograd.grad(out, params, upstream)
    ref_grads = torch.autograd.grad(ref, params, upstream)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_under_bf16_autocast_the_output_stays_bf16_and_close():
    torch.manual_seed(0)
    up = Upsample(16, True, Layers("reflect", 3), 3)
    x = torch.randn(1, 16, 3, 8, 8)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out, ref = up(x), resize_then_conv(up, x)
    assert out.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref.float(), rtol=0.03, atol=0.03)


def test_checkpoints_keep_their_keys():
    up = Upsample(4, False, "reflect", 3)
    assert set(up.state_dict()) == {"conv.weight", "conv.bias"}
    assert up.conv.weight.shape == (4, 4, 3, 3, 3)
