import pytest
import torch
from magvit_task_rewind import Rewind

import magvit
from magvit.errors import ConfigError
from magvit.testing import check_registered, check_task


def test_conformance():
    check_task(Rewind())
    check_registered("tasks", "rewind", cond_frames=2)


def test_last_frames_are_given_and_repeated_backwards():
    video = torch.rand(1, 3, 8, 32, 32)
    padded, mask = Rewind(cond_frames=2).condition(video)
    assert mask[6:].all() and not mask[:6].any()
    assert torch.equal(padded[:, :, 6:], video[:, :, 6:])
    assert torch.equal(padded[:, :, :6], video[:, :, 6:7].expand(-1, -1, 6, -1, -1))


def test_latent_mask_is_the_last_latent_frame():
    latent = Rewind().latent_mask((4, 8, 8), factors=(2, 4, 4))
    assert latent[3].all() and not latent[:3].any()


def test_registered_with_validated_config():
    tasks = magvit.registries().tasks
    assert tasks.entry("rewind").plugin.distribution == "magvit-task-rewind"
    with pytest.raises(ConfigError, match="cond_frames: expected int, got float 1.5"):
        tasks.create("rewind", cond_frames=1.5)
