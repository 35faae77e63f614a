"""Padding functions: condition pixels kept bit for bit, the rest filled as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import magvit
from magvit.core import regions
from magvit.errors import MagvitError

TASKS = ["fp", "fi", "opc", "opv", "oph", "opd", "ipc", "ipd", "cg", "cfp"]


def create(name):
    return magvit.registries().paddings.create(name)


def clip(seed=0, shape=(2, 3, 16, 128, 128)):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("task_name", TASKS)
def test_every_task_keeps_condition_pixels_bit_for_bit_at_16x128x128(task_name):
    video = clip()
    padded, mask = magvit.registries().tasks.create(task_name).condition(video)
    assert padded.shape == video.shape and padded.dtype == video.dtype
    keep = mask.expand_as(video)
    assert torch.equal(padded[keep], video[keep])
    assert torch.isfinite(padded).all()


def test_edge_equals_numpy_edge_padding_around_a_box():
    video = clip(1, (1, 3, 4, 32, 32))
    padded = create("edge")(video, regions.centred_box((4, 32, 32), 0.5, 0.5))
    centre = video[..., 8:24, 8:24].numpy()
    expected = np.pad(centre, [(0, 0)] * 3 + [(8, 8), (8, 8)], mode="edge")
    assert np.array_equal(padded.numpy(), expected)


def test_edge_copies_the_nearest_frame_and_ties_go_earlier():
    video = clip(2, (1, 3, 5, 2, 2))
    mask = torch.zeros(5, 2, 2, dtype=torch.bool)
    mask[[0, 2]] = True  # frame 1 is equally near frames 0 and 2; frames 3, 4 copy frame 2
    padded = create("edge")(video, mask)
    assert torch.equal(padded[:, :, 1], video[:, :, 0])
    assert torch.equal(padded[:, :, 3], video[:, :, 2]) and torch.equal(padded[:, :, 4], video[:, :, 2])


def test_interpolate_fills_a_hole_linearly_across_rows():
    video = torch.zeros(1, 1, 1, 5, 1)
    video[..., 0, 0], video[..., 4, 0] = 1.0, 5.0
    mask = torch.tensor([True, False, False, False, True]).view(1, 5, 1)
    assert create("interpolate")(video, mask).flatten().tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_zero_padding_and_empty_mask():
    video = clip(3, (1, 3, 2, 4, 4)) + 0.1
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, 1, 1] = True
    padded = create("zero")(video, mask)
    assert padded.count_nonzero().item() == 3 and torch.equal(padded[..., 0, 1, 1], video[..., 0, 1, 1])
    for name in ("edge", "interpolate", "zero"):  # nothing given: nothing to copy from
        assert not create(name)(video, torch.zeros(2, 4, 4, dtype=torch.bool)).any()


@pytest.mark.parametrize("name", ["edge", "interpolate", "zero"])
def test_property_random_masks_keep_condition_pixels(name):
    gen = torch.Generator().manual_seed(4)
    for _ in range(5):
        video = torch.randn(2, 3, 4, 8, 8, generator=gen)
        mask = torch.rand(4, 8, 8, generator=gen) < 0.3
        padded = create(name)(video, mask)
        keep = mask.expand_as(video)
        assert torch.equal(padded[keep], video[keep])
        if name != "zero":  # every missing pixel copies or blends given values of its channel
            lo = video.amin(dim=(2, 3, 4), keepdim=True)
            hi = video.amax(dim=(2, 3, 4), keepdim=True)
            assert ((padded >= lo) & (padded <= hi)).all()


def test_mask_shape_mismatch_is_named():
    with pytest.raises(MagvitError, match=r"got \(1, 3, 4, 8, 8\) and \(4, 8\)"):
        create("edge")(torch.zeros(1, 3, 4, 8, 8), torch.zeros(4, 8, dtype=torch.bool))
