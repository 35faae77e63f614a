"""`kind = "..."` sections: a plugin name plus that plugin's validated config.

A field typed `Component.of("paddings")` accepts a table `{kind = "edge", ...}` (or just the name
`"edge"`); the plugin's factory schema validates the other keys, so nested sections such as a
task's `padding` are checked with their full dotted path.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Any, ClassVar

import attrs
from cattrs.errors import BaseValidationError

from magvit.registry.converter import (
    Problems,
    ValueTypeError,
    problem_pairs,
    toml_type,
    with_table_keys,
)
from magvit.registry.schema import CONVERTER, config_dict, instantiate, schema_of

_REGISTRIES: contextvars.ContextVar = contextvars.ContextVar("magvit_registries", default=None)


def current_registries():
    regs = _REGISTRIES.get()
    if regs is None:
        from magvit.registry.manager import registries

        regs = registries()
    return regs


@contextlib.contextmanager
def using_registries(regs):
    """Validate and build components against `regs` instead of the global registries."""
    token = _REGISTRIES.set(regs)
    try:
        yield regs
    finally:
        _REGISTRIES.reset(token)


@attrs.frozen
class Component:
    """A chosen plugin (`kind`) and its structured config."""

    REGISTRY: ClassVar[str] = ""
    kind: str
    config: Any

    @classmethod
    @functools.cache
    def of(cls, registry: str) -> type[Component]:
        name = registry.title().replace("_", "") + "Component"
        return type(name, (cls,), {"REGISTRY": registry, "__slots__": ()})

    def build(self, **overrides: Any) -> Any:
        """A new instance of the component (optionally with config fields replaced)."""
        factory = current_registries()[self.REGISTRY].get(self.kind)
        config = attrs.evolve(self.config, **overrides) if overrides else self.config
        return instantiate(factory, config)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **config_dict(self.config)}


def structure_component(value: Any, cls: type[Component], table_keys: tuple[str, ...] = ()) -> Component:
    """`value` (a table, or a name) as a `cls` component; `table_keys` are keys its table holds beside
    the plugin's config (taken out before it is structured), for the unknown-key messages."""
    registry = current_registries()[cls.REGISTRY]
    if isinstance(value, str):
        value = {"kind": value}
    if not isinstance(value, dict):
        raise ValueTypeError(
            f"expected a table with kind = \"...\" (or a {registry.singular} name), "
            f"got {toml_type(value)} {value!r}"
        )
    if "kind" not in value:
        raise Problems([("kind", f"required key is missing; one of: {', '.join(registry.names())}")])
    kind = value["kind"]
    if type(kind) is not str:
        raise Problems([("kind", f"expected string, got {toml_type(kind)} {kind!r}")])
    if kind not in registry:
        raise Problems([("kind", registry.unknown_name_message(kind))])
    rest = {k: v for k, v in value.items() if k != "kind"}
    schema = schema_of(registry.get(kind))
    try:
        config = CONVERTER.structure(rest, schema)
    except BaseValidationError as exc:
        raise Problems(with_table_keys(problem_pairs(exc), (*table_keys, "kind"), schema)) from None
    except (TypeError, ValueError) as exc:  # a validator inside the plugin's schema
        raise Problems([("", str(exc))]) from None
    return cls(kind, config)


CONVERTER.register_structure_hook_func(
    lambda t: isinstance(t, type) and issubclass(t, Component), structure_component
)
CONVERTER.register_unstructure_hook_func(
    lambda t: isinstance(t, type) and issubclass(t, Component), lambda c: c.to_dict()
)
