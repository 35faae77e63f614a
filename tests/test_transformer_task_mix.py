"""The weighted task cycle: proportions, determinism, random access for resume."""

import collections

import pytest

from magvit.core.task_mix import TaskCycle
from magvit.errors import MagvitError

TEN = {name: 1.0 for name in "fp fi opc opv oph opd ipc ipd cg cfp".split()}


def test_equal_weights_visit_every_task_once_per_round():
    cycle = TaskCycle(TEN, seed=0)
    draws = cycle.first(30)
    for start in range(0, 30, 10):
        assert sorted(draws[start:start + 10]) == sorted(TEN)


@pytest.mark.parametrize("weights", [{"fp": 1.0, "opd": 0.5}, {"a": 3.0, "b": 1.0, "c": 0.25},
                                     {"x": 0.7, "y": 0.2, "z": 0.1}])
def test_every_window_matches_the_weights_within_one_draw(weights):
    draws = TaskCycle(weights, seed=1).first(400)
    total = sum(weights.values())
    for end in range(1, 401):
        counts = collections.Counter(draws[:end])
        for name, w in weights.items():
            assert abs(counts[name] - end * w / total) <= 1.0 + 1e-9, (name, end)


def test_order_depends_on_the_seed_only_and_random_access_matches():
    a, b, c = TaskCycle(TEN, 4), TaskCycle(TEN, 4), TaskCycle(TEN, 5)
    assert a.first(20) == b.first(20) and a.first(20) != c.first(20)
    sequence = TaskCycle(TEN, 4).first(50)
    jumping = TaskCycle(TEN, 4)
    assert [jumping.task_at(s) for s in (37, 3, 3, 49, 0)] == [sequence[s] for s in (37, 3, 3, 49, 0)]


def test_bad_mixes_are_refused():
    with pytest.raises(MagvitError, match=r"no \[tasks.<name>\] tables"):
        TaskCycle({}, 0)
    with pytest.raises(MagvitError, match="task weights must be positive.*'cg': 0.0"):
        TaskCycle({"fp": 1.0, "cg": 0.0}, 0)
