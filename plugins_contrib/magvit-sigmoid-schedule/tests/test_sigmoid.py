import pytest
import torch
from magvit_sigmoid_schedule import Sigmoid

import magvit
from magvit.errors import ConfigError
from magvit.testing import check_registered, check_schedule


@pytest.mark.parametrize("sharpness", [1.0, 10.0, 40.0])
def test_conformance(sharpness):
    check_schedule(Sigmoid(sharpness))


def test_values():
    gamma = Sigmoid(10.0)
    assert gamma(0.0) == 1.0 and gamma(1.0) == pytest.approx(1e-6, rel=1e-6)
    assert gamma(0.5) == pytest.approx(0.5, abs=1e-6)  # symmetric about the middle
    r = torch.tensor([0.25, 0.75])
    assert torch.allclose(gamma(r)[0] + gamma(r)[1], torch.tensor(1.0), atol=1e-6)


def test_registered_and_validated():
    check_registered("schedules", "sigmoid", sharpness=5.0)
    assert magvit.registries().schedules.entry("sigmoid").plugin.distribution == "magvit-sigmoid-schedule"
    with pytest.raises(ConfigError, match="sharpness: must be > 0"):
        magvit.registries().schedules.create("sigmoid", sharpness=-1.0)
