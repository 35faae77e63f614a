"""Reading experiment TOML: `extends = [...]` deep-merging and `--set a.b=VALUE` overrides.

All of this works on the raw dict, before validation, so an override can fix a value that would
not validate and `config show` can print exactly what a run will use.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from magvit.errors import ConfigError, MagvitError

# Shipped experiments are package data: found by name after a plain `pip install .`, from any folder.
SHIPPED_EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def shipped_experiments(*, include_bases: bool = False) -> list[str]:
    """Names of the shipped experiments (`tiny`, `bair-mt8`, ...); `base/...` files if asked."""
    files = SHIPPED_EXPERIMENTS.rglob("*.toml") if include_bases else SHIPPED_EXPERIMENTS.glob("*.toml")
    return sorted(str(p.relative_to(SHIPPED_EXPERIMENTS).with_suffix("")) for p in files)


def find_experiment(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    """A path as given, else relative to `relative_to` (an `extends` chain), else
    `./experiments/NAME.toml`, else a shipped experiment by name."""
    raw = Path(name_or_path)
    candidates = [raw] if raw.is_absolute() else [
        *([relative_to / raw] if relative_to else []), raw,
    ]
    stem = raw.name if raw.suffix == ".toml" else raw.name + ".toml"
    for root in (Path.cwd() / "experiments", SHIPPED_EXPERIMENTS):
        candidates.append(root / (raw.parent / stem))
    candidates = list(dict.fromkeys(candidates))
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise MagvitError(
        f"experiment {str(name_or_path)!r} not found (looked at {', '.join(map(str, candidates[:3]))}). "
        f"Give a path to a .toml file, or a shipped experiment: {', '.join(shipped_experiments()) or 'none'} "
        "(`magvit experiments list`)"
    )


def describe_experiment(path: Path) -> str:
    """The one-line purpose of an experiment file: its first comment line."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line.strip():
            break
    return ""


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise MagvitError(f"cannot read experiment {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise MagvitError(f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise MagvitError(f"{path} is not UTF-8 text (byte {exc.start}); TOML files must be "
                          "saved as UTF-8") from None


def deep_merge(base: dict, override: dict) -> dict:
    """`override` on top of `base`; tables merge key by key, anything else replaces. A component
    table that names another `kind` than the base's replaces it: the base's other keys were
    that plugin's config, not the new one's."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not _other_kind(out[key], value):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _other_kind(base: dict, override: dict) -> bool:
    return "kind" in base and "kind" in override and base["kind"] != override["kind"]


def load_raw(name_or_path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file with its `extends` chain merged in (bases first, in the order listed)."""
    relative_to = _chain[-1].parent if _chain else None
    path = find_experiment(name_or_path, relative_to)
    if path in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path))
        raise MagvitError(f"`extends` forms a cycle: {cycle}")
    raw = read_toml(path)
    bases = raw.pop("extends", [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError([f"extends: expected an array of file names, got {bases!r}"], str(path))
    merged: dict[str, Any] = {}
    for base in bases:
        merged = deep_merge(merged, load_raw(base, (*_chain, path)))
    return deep_merge(merged, raw)


_BARE_WORD = re.compile(r"^[A-Za-z_][\w./:-]*$")


def parse_value(text: str) -> Any:
    """A `--set` value as TOML (`12`, `1e-4`, `true`, `"x"`, `[1, 2]`, `{kind = "edge"}`).

    A bare word that is not TOML (`exp`, `runs/x`) is taken as a string, for convenience.
    """
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if _BARE_WORD.match(text) and text not in ("true", "false"):
            return text
        raise


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    problems, given = [], set()  # given: the dotted keys set so far
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            problems.append(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. decoder.steps=8")
            continue
        try:
            value = parse_value(text.strip())
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"--set {key}: {text!r} is not a TOML value ({exc}); quote strings: '\"...\"'")
            continue
        node = out
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                problems.append(f"--set {key}: {'.'.join(parts[: i + 1])} is a value, not a table")
                break
            node = nxt
        else:
            if parts[-1] == "kind" and node.get("kind", value) != value:
                # another plugin: the table's keys from files were the old one's config
                table = ".".join(parts[:-1])
                for name in [n for n in node if f"{table}.{n}" not in given]:
                    del node[name]
            node[parts[-1]] = value
            given.add(key)
    if problems:
        raise ConfigError(problems, "command-line overrides")
    return out
