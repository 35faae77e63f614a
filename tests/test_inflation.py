"""Kernel inflation reproduces the release's `inflate_2d_to_3d` (tests/data/inflation.npz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import magvit
from magvit.core.inflation import inflate_state_dict
from magvit.errors import MagvitError

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def ref():
    return np.load(DATA / "inflation.npz")


def torch_kernel_2d(ref) -> torch.Tensor:
    return torch.from_numpy(ref["kernel_2d"]).permute(3, 2, 0, 1).contiguous()  # flax HWIO -> OIHW


@pytest.mark.parametrize("method", ["central", "average"])
def test_kernel_and_conv_output_match_release(ref, method):
    inflate = magvit.registries().inflations.create(method)
    weight = inflate(torch_kernel_2d(ref), 3)
    # the release computes k * (1/3) for average, which can differ from k / 3 in the last bit
    torch.testing.assert_close(weight, torch.from_numpy(ref[f"kernel_3d_{method}_torch"]), rtol=1.2e-7, atol=0)
    x = torch.from_numpy(ref["x_ndhwc"]).permute(0, 4, 1, 2, 3)
    y = nn.functional.conv3d(x, weight, torch.from_numpy(ref["bias"])).permute(0, 2, 3, 4, 1)
    torch.testing.assert_close(y, torch.from_numpy(ref[f"y_{method}_ndhwc"]), rtol=1e-5, atol=1e-5)


def test_central_is_exact_and_zero_off_centre(ref):
    weight = magvit.registries().inflations.create("central")(torch_kernel_2d(ref), 3)
    assert torch.equal(weight[:, :, 1], torch_kernel_2d(ref))
    assert not weight[:, :, [0, 2]].any()


@pytest.mark.parametrize("method", ["central", "average"])
@pytest.mark.parametrize("kt", [1, 3, 4])
def test_property_static_video_gives_the_2d_output(method, kt):
    gen = torch.Generator().manual_seed(kt)
    weight = torch.randn(6, 4, 3, 3, generator=gen)
    frame = torch.randn(1, 4, 9, 9, generator=gen)
    video = frame.unsqueeze(2).expand(-1, -1, kt + 2, -1, -1)
    inflated = magvit.registries().inflations.create(method)(weight, kt)
    out3d = nn.functional.conv3d(video, inflated)
    out2d = nn.functional.conv2d(frame, weight)
    for t in range(out3d.shape[2]):
        torch.testing.assert_close(out3d[:, :, t], out2d, rtol=1e-5, atol=1e-5)


class Net2d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3)
        self.norm = nn.GroupNorm(2, 8)
        self.head = nn.Conv2d(8, 2, 1)
        self.extra = nn.Linear(2, 2)


class Net3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(4, 8, 3)
        self.norm = nn.GroupNorm(2, 8)
        self.head = nn.Conv3d(8, 3, 1)  # 3 outputs: does not fit the 2D head
        self.temporal = nn.Conv3d(8, 8, (3, 1, 1))


def test_state_dict_inflation_reports_every_parameter_by_name():
    torch.manual_seed(0)
    net2d, net3d = Net2d(), Net3d()
    central = magvit.registries().inflations.create("central")
    state, report = inflate_state_dict(net2d.state_dict(), net3d.state_dict(), central)
    assert report.inflated == ["conv.weight"]
    assert report.copied == ["conv.bias", "norm.weight", "norm.bias"]
    assert report.mismatched == {"head.weight": "(2, 8, 1, 1) vs (3, 8, 1, 1, 1)", "head.bias": "(2,) vs (3,)"}
    assert report.missing == ["temporal.weight", "temporal.bias"]
    assert report.unused == ["extra.weight", "extra.bias"]
    assert not report.complete
    assert "shape mismatch: head.weight ((2, 8, 1, 1) vs (3, 8, 1, 1, 1))" in str(report)
    assert torch.equal(state["conv.weight"][:, :, 1], net2d.conv.weight.detach())
    assert torch.equal(state["head.weight"], net3d.head.weight.detach())  # kept as initialised
    net3d.load_state_dict(state)  # the result loads into the 3D model


def test_state_dict_inflation_with_a_function_and_bad_kernels():
    state, report = inflate_state_dict({"w": torch.ones(1, 1, 1, 1)}, {"w": torch.zeros(1, 1, 2, 1, 1)},
                                       lambda w, kt: w.unsqueeze(2).repeat(1, 1, kt, 1, 1))
    assert report.inflated == ["w"] and report.complete and state["w"].sum() == 2
    with pytest.raises(MagvitError, match=r"got \(3, 3\) and kT=3"):
        magvit.registries().inflations.create("average")(torch.zeros(3, 3), 3)
