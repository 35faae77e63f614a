"""Loading plugins into registries.

Built-in plugins are the modules of `magvit.plugins`; third-party plugins are the entry points
of the group `magvit`. A plugin that fails to import or register is recorded in `failures` and
skipped, so one broken distribution cannot take the tool down; `MAGVIT_STRICT_PLUGINS=1` makes
that fatal (for CI). Environment switches, by plugin name (entry-point name, distribution name,
or built-in module name such as `magvit.plugins.decoders`):

- `MAGVIT_BLOCK_PLUGINS=a,b`: never load these.
- `MAGVIT_LOAD_PLUGINS=a,b`: load only these third-party plugins (empty: none); built-ins load
  unless blocked.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import pkgutil
import sys
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import pluggy

from magvit.errors import PluginLoadError
from magvit.registry import hookspecs
from magvit.registry.components import Component, using_registries
from magvit.registry.registry import Entry, PluginInfo, Registry
from magvit.registry.schema import schema_of

ENTRY_POINT_GROUP = "magvit"
BUILTIN_PACKAGE = "magvit.plugins"


@attrs.define
class PluginFailure:
    plugin: str
    distribution: str
    stage: str  # "import", "hooks", "register" or "resolve" (a component it names is missing)
    error: str
    details: str = ""

    def __str__(self) -> str:
        return f"{self.plugin} ({self.distribution}) failed to {self.stage}: {self.error}"


@attrs.define
class LoadedPlugin:
    info: PluginInfo
    builtin: bool
    registered: dict[str, list[str]] = attrs.Factory(dict)  # kind -> names


class Registries:
    """All registries of one plugin manager, as attributes (`regs.schedules`, `regs.tasks`, ...)."""

    def __init__(self) -> None:
        self._by_kind = {kind: Registry(kind, singular) for kind, singular in hookspecs.KINDS.items()}
        self.plugins: list[LoadedPlugin] = []
        self.failures: list[PluginFailure] = []
        self.blocked: list[str] = []
        self.warnings: list[str] = []  # environment switches that matched nothing

    def __getattr__(self, kind: str) -> Registry:
        try:
            return self.__dict__["_by_kind"][kind]
        except KeyError:
            raise AttributeError(
                f"no registry {kind!r}; registries are: {', '.join(hookspecs.KINDS)}"
            ) from None

    def __getitem__(self, kind: str) -> Registry:
        return getattr(self, kind)

    def kinds(self) -> list[str]:
        return list(self._by_kind)

    def versions(self) -> dict[str, str]:
        """Distribution -> version of every loaded plugin (recorded with each run)."""
        return {p.info.distribution: p.info.version for p in self.plugins}


def _split(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {v.strip() for v in value.split(",") if v.strip()}


def _magvit_version() -> str:
    from magvit import __version__

    return __version__


def _builtin_modules() -> list[str]:
    package = importlib.import_module(BUILTIN_PACKAGE)
    return sorted(
        f"{BUILTIN_PACKAGE}.{m.name}"
        for m in pkgutil.iter_modules(package.__path__)
        if not m.name.startswith("_")
    )


def load_registries(
    *,
    builtins: bool = True,
    entry_points: bool = True,
    extra_plugins: Iterable[tuple[str, Any]] = (),
    env: Mapping[str, str] | None = None,
) -> Registries:
    """Build a fresh plugin manager and fill every registry from it.

    `extra_plugins` are `(name, module_or_object)` pairs registered after the entry points (tests
    and embedding applications use it).
    """
    env = os.environ if env is None else env
    strict = env.get("MAGVIT_STRICT_PLUGINS", "") not in ("", "0")
    blocked = _split(env.get("MAGVIT_BLOCK_PLUGINS")) or set()
    allowed = _split(env.get("MAGVIT_LOAD_PLUGINS"))

    regs = Registries()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)

    candidates: list[tuple[PluginInfo, bool, Any]] = []  # (info, builtin, loader)
    if builtins:
        version = _magvit_version()
        for module in _builtin_modules():
            info = PluginInfo(module, "magvit", version)
            candidates.append((info, True, lambda m=module: importlib.import_module(m)))
    if entry_points:
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else "<unknown>"
            version = ep.dist.version if ep.dist else ""
            candidates.append((PluginInfo(ep.name, dist, version), False, ep.load))
    for name, obj in extra_plugins:
        module = getattr(obj, "__name__", name)
        candidates.append((PluginInfo(name, module, ""), False, lambda o=obj: o))

    known = {n for info, _, _ in candidates for n in (info.name, info.distribution)}
    for variable, names in (("MAGVIT_LOAD_PLUGINS", allowed), ("MAGVIT_BLOCK_PLUGINS", blocked)):
        unknown = sorted((names or set()) - known - ({"magvit"} if variable == "MAGVIT_BLOCK_PLUGINS" else set()))
        if unknown:
            third_party = sorted(info.name for info, builtin, _ in candidates if not builtin)
            regs.warnings.append(
                f"{variable} names {', '.join(map(repr, unknown))}, which no plugin has "
                f"(third-party plugins installed: {', '.join(third_party) or 'none'}; built-ins are "
                "named like magvit.plugins.tasks)")
    for info, builtin, loader in candidates:
        names = {info.name, info.distribution}
        if names & blocked or (not builtin and allowed is not None and not names & allowed):
            regs.blocked.append(info.name)
            continue
        _load_one(pm, regs, info, builtin, loader, strict)
    _drop_unmet_requirements(regs, strict)
    return regs


def _required_components(factory: Any, regs: Registries) -> list[tuple[str, str]]:
    """(registry, name) of every plugin that `factory`'s default config names."""
    try:
        schema = schema_of(factory)
    except (TypeError, ValueError):  # no inspectable signature: nothing it names by default
        return []
    if not attrs.has(schema):
        return []
    needed = []
    for field in attrs.fields(schema):
        if "magvit_requires" in field.metadata:  # `api.default_component`: known without building
            needed.append(field.metadata["magvit_requires"])
            continue
        default = field.default
        if isinstance(default, attrs.Factory) and not default.takes_self:
            try:
                with using_registries(regs):
                    default = default.factory()
            except Exception:  # the factory's own problem, reported when the entry is used
                continue
        if isinstance(default, Component):
            needed.append((default.REGISTRY, default.kind))
    return needed


def _drop_unmet_requirements(regs: Registries, strict: bool) -> None:
    """An entry whose defaults name a plugin nobody registered (its provider blocked, failed
    or not installed) is removed at load time with a failure naming both, not at first use."""
    blocked = f" (blocked: {', '.join(regs.blocked)})" if regs.blocked else ""
    for kind in regs.kinds():
        registry: Registry = regs[kind]
        for entry in registry.entries():
            for needed_kind, name in _required_components(entry.factory, regs):
                needed = regs._by_kind.get(needed_kind)
                if needed is not None and name in needed:
                    continue
                error = PluginLoadError(
                    f"{registry.singular} {entry.name!r} needs {needed_kind if needed is None else needed.singular} "
                    f"{name!r}, which no loaded plugin registers{blocked}; unblock or install the "
                    f"plugin that provides it, or block {entry.plugin.name} too"
                )
                _drop(regs, registry, entry)
                _fail(regs, entry.plugin, "resolve", error, strict)
                break


def _drop(regs: Registries, registry: Registry, entry: Entry) -> None:
    registry.discard(entry.name)
    for loaded in regs.plugins:
        if entry.name in loaded.registered.get(registry.kind, []) and loaded.info == entry.plugin:
            loaded.registered[registry.kind].remove(entry.name)


def _fail(regs: Registries, info: PluginInfo, stage: str, exc: BaseException, strict: bool) -> None:
    failure = PluginFailure(
        info.name, info.distribution, stage, f"{type(exc).__name__}: {exc}",
        "".join(traceback.format_exception(exc)),
    )
    if strict:
        raise PluginLoadError(f"{failure} (MAGVIT_STRICT_PLUGINS is set)") from exc
    regs.failures.append(failure)


def _load_one(pm, regs: Registries, info: PluginInfo, builtin: bool, loader, strict: bool) -> None:
    try:
        plugin = loader()
    except Exception as exc:
        return _fail(regs, info, "import", exc, strict)
    if pm.is_registered(plugin):
        return
    try:
        pm.register(plugin, name=info.name)
        pm.check_pending()  # a misspelled hook name has no spec: refuse the plugin
    except (pluggy.PluginValidationError, ValueError) as exc:
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        return _fail(regs, info, "hooks", exc, strict)

    loaded = LoadedPlugin(info, builtin)
    for kind in regs.kinds():
        caller = getattr(pm.hook, hookspecs.hook_name(kind))
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            registry = regs[kind]
            before = set(registry.names())
            try:
                with registry.adding_as(info):
                    impl.function(registry=registry)
            except Exception as exc:
                _fail(regs, info, "register", exc, strict)
                continue
            added = sorted(set(registry.names()) - before)
            if added:
                loaded.registered[kind] = added
    regs.plugins.append(loaded)


_CACHE: Registries | None = None


def registries(reload: bool = False) -> Registries:
    """The registries of the built-in and installed plugins (loaded once per process)."""
    global _CACHE
    if _CACHE is None or reload:
        _CACHE = load_registries()
        for warning in _CACHE.warnings:
            print(f"magvit: warning: {warning}", file=sys.stderr)
    return _CACHE
