"""Field validators for config schemas, core's and plugins' (`attrs.field(validator=...)`): each
raises `InvalidValue`, which config errors report under the field's dotted path with the value
and the accepted range."""

from __future__ import annotations

import math

from magvit.errors import InvalidValue


def at_least(minimum: int | float):
    def check(_instance, attribute, value):
        if value is not None and not value >= minimum:
            raise InvalidValue(attribute.name, f"must be >= {minimum}, got {value}")

    return check


def positive(_instance, attribute, value) -> None:
    if value is not None and not value > 0:
        raise InvalidValue(attribute.name, f"must be > 0, got {value}")


def fraction(_instance, attribute, value) -> None:
    if not 0 < value <= 1:
        raise InvalidValue(attribute.name, f"is a fraction of the frame in (0, 1], got {value}")


def in_range(low: float, high: float, *, high_open: bool = False):
    """low <= value <= high (or < high), finite."""

    def check(_instance, attribute, value):
        above = value >= high if high_open else value > high
        if not math.isfinite(value) or value < low or above:
            bracket = ")" if high_open else "]"
            raise InvalidValue(attribute.name, f"must be in [{low}, {high}{bracket}, got {value}")

    return check


def finite(_instance, attribute, value) -> None:
    if value is not None and not math.isfinite(value):
        raise InvalidValue(attribute.name, f"must be a finite number, got {value}")
