"""User-facing errors. The CLI turns any `MagvitError` into a message and exit status 2."""

from __future__ import annotations


class MagvitError(Exception):
    """An error caused by the user's input (a name, a file, a config value), not by a bug."""


class UnknownNameError(MagvitError, LookupError):
    """A registry lookup for a name that no plugin registered."""


class DuplicateNameError(MagvitError):
    """Two plugins registered the same name in one registry."""


class PluginLoadError(MagvitError):
    """A plugin failed to import or register (fatal only under MAGVIT_STRICT_PLUGINS=1)."""


class ConfigError(MagvitError):
    """One or more problems in an experiment config, each with its dotted path."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = [f"{len(self.problems)} problem(s){where}:"] + [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class InvalidValue(ValueError):
    """A config value out of its range, raised by a field validator: `key` is the field's name,
    so a config error reads `decoder.steps: must be >= 1, got 0`."""

    def __init__(self, key: str, message: str):
        self.key, self.message = key, message
        super().__init__(f"{key} {message}")
