"""Which task trains at each step: a weighted cycle, deterministic from the seed.

Smooth weighted round-robin: every step each task earns its weight in credit, the task with the
most credit is drawn and pays back the total. Over any window each task is drawn in proportion to
its weight, within one draw, so even a short run sees every task. The seed only decides the
order in which tasks of equal credit are preferred. `task_at(step)` is a pure function of
(names, weights, seed, step), which is what exact resume needs.
"""

from __future__ import annotations

import random

from magvit.errors import MagvitError


class TaskCycle:
    def __init__(self, weights: dict[str, float], seed: int):
        if not weights:
            raise MagvitError("the experiment has no [tasks.<name>] tables; add at least one task")
        bad = {n: w for n, w in weights.items() if not w > 0}
        if bad:
            raise MagvitError(f"task weights must be positive, got {bad}")
        order = sorted(weights)
        random.Random(seed).shuffle(order)
        self.names = order
        self.weights = [float(weights[n]) for n in order]
        self._total = sum(self.weights)
        self._reset()

    def _reset(self) -> None:
        self._next = 0  # the step the next draw belongs to
        self._last = ""
        self._credit = [0.0] * len(self.names)

    def _draw(self) -> None:
        for i, w in enumerate(self.weights):
            self._credit[i] += w
        best = max(range(len(self.names)), key=lambda i: self._credit[i])
        self._credit[best] -= self._total
        self._last, self._next = self.names[best], self._next + 1

    def task_at(self, step: int) -> str:
        """The task of global step `step` (0-based); cheap for steps visited in order."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        if step < self._next - 1:
            self._reset()
        while self._next <= step:
            self._draw()
        return self._last

    def first(self, count: int) -> list[str]:
        return [self.task_at(s) for s in range(count)]
