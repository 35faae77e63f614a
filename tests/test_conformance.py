"""Every registered schedule, padding, task and inflation passes magvit.testing's checks, and
the checks catch plugins that break the rules."""

from __future__ import annotations

import attrs
import pytest
import torch

import magvit
from magvit.plugins.tasks import FramePrediction
from magvit.testing import CHECKS, check_padding, check_registered, check_schedule, check_task

REGISTERED = [(kind, name) for kind in CHECKS for name in magvit.registries()[kind].names()]


def test_every_builtin_is_checked():
    names = {kind: [n for k, n in REGISTERED if k == kind] for kind in CHECKS}
    assert set(names["tasks"]) >= {"fp", "fi", "opc", "opv", "oph", "opd", "ipc", "ipd", "cg", "cfp"}
    assert set(names["schedules"]) >= {"cosine", "linear", "pow", "log", "exp"}
    assert set(names["paddings"]) >= {"edge", "interpolate", "zero"}
    assert set(names["inflations"]) >= {"central", "average"}


@pytest.mark.parametrize("kind,name", REGISTERED, ids=[f"{k}.{n}" for k, n in REGISTERED])
def test_registered_plugin_conforms(kind, name):
    check_registered(kind, name)


@pytest.mark.parametrize("padding", ["edge", "interpolate", "zero"])
@pytest.mark.parametrize("task", ["fp", "fi", "opc", "ipc", "ipd"])
def test_every_padding_fits_every_kind_of_region(task, padding):
    check_task(magvit.registries().tasks.create(task, padding=padding))


def test_check_schedule_catches_a_schedule_that_never_reaches_zero():
    with pytest.raises(AssertionError, match=r"schedule: gamma\(1\) must be 1e-6 \(zero\), got 0.5"):
        check_schedule(lambda r: 1.0 - 0.5 * r if isinstance(r, float) else 1.0 - 0.5 * r.float())


def test_check_schedule_catches_a_rising_schedule():
    def rising(r):
        r = torch.as_tensor(r, dtype=torch.float32)
        out = torch.where(r < 0.5, 1 - r, torch.where(r < 0.9, 0.9 - r + 0.2, 1e-6 + 0 * r)).clamp(1e-6, 1)
        return out if r.dim() else float(out)

    with pytest.raises(AssertionError, match="must not increase; it does after r="):
        check_schedule(rising)


def test_check_padding_catches_a_padding_that_blurs_condition_pixels():
    with pytest.raises(AssertionError, match="padding: random mask: changed a condition pixel"):
        check_padding(lambda video, mask: video * 0.99)


@attrs.define
class LeakyTask(FramePrediction):
    name = "leaky"

    def condition(self, video):
        padded, mask = super().condition(video)
        return padded + 1e-3, mask


def test_check_task_catches_a_task_that_changes_its_condition():
    with pytest.raises(AssertionError, match="task leaky: condition\\(\\) changed a condition pixel"):
        check_task(LeakyTask())
