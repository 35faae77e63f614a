"""Registries, hookspecs, the plugin manager and config structuring."""

from magvit.registry.hookspecs import KINDS, hookimpl, hookspec
from magvit.registry.manager import Registries, load_registries, registries
from magvit.registry.registry import Entry, PluginInfo, Registry

__all__ = [
    "KINDS", "Entry", "PluginInfo", "Registries", "Registry", "hookimpl", "hookspec",
    "load_registries", "registries",
]
