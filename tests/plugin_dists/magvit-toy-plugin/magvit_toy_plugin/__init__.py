"""A third-party plugin: one schedule, registered exactly as an outside author would."""

import attrs

import magvit


@attrs.define
class SquareRoot:
    """gamma(r) = 1 - sqrt(r)."""

    floor: float = 1e-6

    def __call__(self, r):
        return max(self.floor, 1.0 - r**0.5)


@magvit.hookimpl
def magvit_register_schedules(registry):
    registry.add("toy_sqrt", SquareRoot)
