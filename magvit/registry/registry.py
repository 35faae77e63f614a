"""A registry maps short names to component factories, remembering which plugin gave each one."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs

from magvit.errors import DuplicateNameError, UnknownNameError


@attrs.frozen
class PluginInfo:
    """Where a registration came from: the pluggy plugin name and its distribution."""

    name: str
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"{self.name} ({self.distribution} {self.version})"


UNKNOWN_PLUGIN = PluginInfo("<direct>", "<unknown>", "")


@attrs.frozen
class Entry:
    name: str
    factory: Callable[..., Any]
    plugin: PluginInfo


class Registry:
    """Components of one kind (`schedules`, `tasks`, ...) by name.

    Plugins call `add(name, factory)` from their `magvit_register_<kind>` hook. `create(name,
    **config)` validates `config` against the factory's schema (its attrs fields, or its
    signature) with the project's strict converter, then builds the component.
    """

    def __init__(self, kind: str, singular: str | None = None):
        self.kind = kind
        self.singular = singular or kind.rstrip("s")
        self._entries: dict[str, Entry] = {}
        self._adding_as: PluginInfo = UNKNOWN_PLUGIN
        self._staged: dict[str, Entry] | None = None

    # -- registration -------------------------------------------------------------------------
    def add(self, name: str, factory: Callable[..., Any]) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind}: a registered name must be a non-empty string, got {name!r}")
        if not callable(factory):
            raise TypeError(f"{self.kind}: factory for {name!r} is not callable: {factory!r}")
        target = self._staged if self._staged is not None else self._entries
        existing = target.get(name) or self._entries.get(name)
        if existing is not None:
            raise DuplicateNameError(
                f"{self.kind}: {name!r} is registered twice, by {existing.plugin} and by "
                f"{self._adding_as}; block one of them with MAGVIT_BLOCK_PLUGINS"
            )
        target[name] = Entry(name, factory, self._adding_as)

    @contextmanager
    def adding_as(self, plugin: PluginInfo) -> Iterator[None]:
        """Attribute additions to `plugin`; they land together, or not at all if it raises."""
        self._adding_as, self._staged = plugin, {}
        try:
            yield
            self._entries.update(self._staged)
        finally:
            self._adding_as, self._staged = UNKNOWN_PLUGIN, None

    def discard(self, name: str) -> None:
        """Remove `name` (the plugin manager drops entries whose requirements are missing)."""
        self._entries.pop(name, None)

    # -- lookup -------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self.unknown_name_message(name)) from None

    def get(self, name: str) -> Callable[..., Any]:
        return self.entry(name).factory

    def create(self, name: str, **config: Any) -> Any:
        from magvit.registry.schema import build  # local: schema imports the converter

        return build(self.get(name), config, path=f"{self.kind}.{name}")

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"

    def unknown_name_message(self, name: object) -> str:
        close = difflib.get_close_matches(str(name), self.names(), n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        available = ", ".join(
            f"{e.name} ({e.plugin.distribution})" for e in self.entries()
        ) or "none (no plugin registered any)"
        return (
            f"unknown {self.singular} {name!r} in registry '{self.kind}'.{hint} "
            f"Available: {available}. `magvit plugins` lists what each installed plugin provides."
        )
