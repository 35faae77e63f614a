"""Registry: names, lookup, creation with validated config, and its error messages."""

from __future__ import annotations

import attrs
import pytest

from magvit.errors import ConfigError, DuplicateNameError, UnknownNameError
from magvit.registry import PluginInfo, Registry


@attrs.define
class Cosine:
    floor: float = 1e-6


def linear_schedule(slope: float = 1.0, name: str = "linear"):
    return ("linear", slope, name)


@pytest.fixture
def schedules() -> Registry:
    reg = Registry("schedules", "schedule")
    with reg.adding_as(PluginInfo("magvit.plugins.schedules", "magvit", "0.1.0")):
        reg.add("cosine", Cosine)
        reg.add("linear", linear_schedule)
    with reg.adding_as(PluginInfo("fancy", "magvit-fancy", "2.0")):
        reg.add("exp", Cosine)
    return reg


def test_names_get_and_create(schedules):
    assert schedules.names() == ["cosine", "exp", "linear"]
    assert schedules.get("cosine") is Cosine
    assert schedules.create("cosine", floor=0.5) == Cosine(floor=0.5)
    assert schedules.create("linear", slope=2) == ("linear", 2.0, "linear")
    assert "exp" in schedules and "nope" not in schedules
    assert schedules.entry("exp").plugin.distribution == "magvit-fancy"


def test_unknown_name_lists_close_matches_and_providers(schedules):
    with pytest.raises(UnknownNameError) as err:
        schedules.get("cosin")
    msg = str(err.value)
    assert "unknown schedule 'cosin' in registry 'schedules'" in msg
    assert "Did you mean 'cosine'?" in msg
    assert "cosine (magvit), exp (magvit-fancy), linear (magvit)" in msg


def test_unknown_name_without_close_match_has_no_suggestion(schedules):
    msg = str(pytest.raises(UnknownNameError, schedules.get, "zzz").value)
    assert "Did you mean" not in msg and "Available: cosine" in msg


def test_duplicate_name_names_both_plugins(schedules):
    with pytest.raises(DuplicateNameError) as err:
        with schedules.adding_as(PluginInfo("other", "magvit-other", "1.0")):
            schedules.add("cosine", Cosine)
    msg = str(err.value)
    assert "'cosine' is registered twice" in msg
    assert "magvit.plugins.schedules (magvit 0.1.0)" in msg
    assert "other (magvit-other 1.0)" in msg


def test_a_failing_plugin_adds_nothing(schedules):
    with pytest.raises(RuntimeError):
        with schedules.adding_as(PluginInfo("half", "magvit-half", "1.0")):
            schedules.add("pow", Cosine)
            raise RuntimeError("boom")
    assert "pow" not in schedules


def test_create_validates_config_strictly(schedules):
    with pytest.raises(ConfigError) as err:
        schedules.create("linear", slope="2", nmae="x")
    assert err.value.problems == [
        "schedules.linear.slope: expected float, got string '2'",
        "schedules.linear.nmae: unknown key; did you mean 'name'?",
    ]


@pytest.mark.parametrize("bad", ["", None])
def test_add_rejects_empty_names(bad):
    with pytest.raises(ValueError, match="non-empty string"):
        Registry("tasks").add(bad, Cosine)


def test_add_rejects_non_callables():
    with pytest.raises(TypeError, match="not callable"):
        Registry("tasks").add("x", 3)
