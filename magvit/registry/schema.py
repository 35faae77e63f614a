"""What config keys a factory takes, and building a component from a validated config.

A factory's schema is the factory itself when it is an attrs class, its `Config` attribute when
that is an attrs class, and otherwise an attrs class derived from its signature (annotations
and defaults), so a plain function or an `nn.Module` with typed keyword arguments validates too.
"""

from __future__ import annotations

import functools
import inspect
import typing
from typing import Any

import attrs
from cattrs.errors import BaseValidationError

from magvit.errors import ConfigError
from magvit.registry.converter import describe_problems, make_converter

CONVERTER = make_converter()


@functools.cache
def schema_of(factory: Any) -> type:
    if attrs.has(factory):
        return factory
    config_cls = getattr(factory, "Config", None)
    if config_cls is not None and attrs.has(config_cls):
        return config_cls
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: fall back to "any value"
        hints = {}
    fields: dict[str, Any] = {}
    for p in inspect.signature(factory).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name == "self":
            continue
        default = attrs.NOTHING if p.default is p.empty else p.default
        fields[p.name] = attrs.field(type=hints.get(p.name, Any), default=default, kw_only=True)
    name = getattr(factory, "__name__", "Component") + "Config"
    return attrs.make_class(name, fields, kw_only=True)


def validate(factory: Any, config: dict, path: str = "") -> Any:
    """Structure `config` into the factory's schema; every problem raised together."""
    try:
        return CONVERTER.structure(dict(config), schema_of(factory))
    except BaseValidationError as exc:
        raise ConfigError(describe_problems(exc, path)) from None
    except (TypeError, ValueError) as exc:  # a validator in the schema itself
        raise ConfigError(describe_problems(exc, path)) from None


def instantiate(factory: Any, structured: Any) -> Any:
    """Build the component from a structured schema instance."""
    schema = schema_of(factory)
    if schema is factory:
        return attrs.evolve(structured)
    kwargs = {f.name: getattr(structured, f.name) for f in attrs.fields(schema)}
    if schema is getattr(factory, "Config", None):
        return factory(structured)
    return factory(**kwargs)


def build(factory: Any, config: dict, path: str = "") -> Any:
    return instantiate(factory, validate(factory, config, path))


def config_dict(structured: Any) -> dict:
    """The plain (TOML-ready) form of a structured config."""
    return CONVERTER.unstructure(structured)


def describe(component: Any) -> str:
    """`Name: key=value, ...` of a built component (a nested component shows its kind), or its
    repr when it is not an attrs class (a third-party plugin's own class)."""
    try:
        config = config_dict(component)
    except Exception:  # noqa: BLE001 - cattrs refuses what it cannot unstructure
        return repr(component)
    if not isinstance(config, dict):
        return repr(component)
    values = ", ".join(f"{k}={v['kind'] if isinstance(v, dict) and 'kind' in v else v}"
                       for k, v in config.items())
    return f"{type(component).__name__}: {values}"
