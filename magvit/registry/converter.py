"""The strict cattrs converter: TOML values are taken as they are, never silently coerced.

cattrs' default converter calls `int(x)`, `str(x)`, `bool(x)`, so `steps = 12.5` becomes 12 and
`"false"` becomes True. Here each scalar type accepts only its own TOML type; the one widening
allowed is int -> float (`lr = 1` means 1.0). Unknown keys are rejected.
"""

from __future__ import annotations

import difflib
import typing
from typing import Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_structure_fn, make_mapping_structure_fn, override

from magvit.errors import InvalidValue

_TOML_TYPE = {bool: "bool", int: "int", float: "float", str: "string", list: "array", dict: "table"}


def toml_type(value: Any) -> str:
    return _TOML_TYPE.get(type(value), type(value).__name__)


class ValueTypeError(TypeError):
    """A value of the wrong TOML type; the message is what the user reads."""


def _strict(expected: type, *accepted: type):
    def hook(value: Any, _type: Any) -> Any:
        if type(value) not in accepted:
            raise ValueTypeError(f"expected {_TOML_TYPE[expected]}, got {toml_type(value)} {value!r}")
        return expected(value)

    return hook


def _tables_only(hook):
    """`hook` for a table (an attrs class or a mapping), refusing any other TOML value first:
    cattrs would read a number or an array as a table and fail with a Python message."""

    def structure(value: Any, cl: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueTypeError(f"expected a table, got {toml_type(value)} {value!r}")
        return hook(value, cl)

    return structure


def _is_mapping(cl: Any) -> bool:
    return typing.get_origin(cl) is dict or cl is dict


def _fields_from_toml(cl: Any, conv: cattrs.Converter):
    """The structure hook of attrs class `cl`: an internal field (set by the code that reads the
    TOML, such as where it came from) is never read from it, so a TOML key of its name is unknown."""
    internal = {f.name: override(omit=True) for f in attrs.fields(cl) if f.metadata.get("internal")}
    return make_dict_structure_fn(cl, conv, **internal)


def make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(int, _strict(int, int))
    conv.register_structure_hook(float, _strict(float, float, int))
    conv.register_structure_hook(str, _strict(str, str))
    conv.register_structure_hook(bool, _strict(bool, bool))
    conv.register_structure_hook_factory(attrs.has, lambda cl: _tables_only(_fields_from_toml(cl, conv)))
    conv.register_structure_hook_factory(
        _is_mapping, lambda cl: _tables_only(make_mapping_structure_fn(cl, conv)))
    return conv


class Problems(Exception):
    """Several problems found inside one value, as `(relative path, message)` pairs.

    Hooks that validate a nested section raise this so the outer walk can prefix their paths.
    """

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{p}: {m}" if p else m for p, m in problems))


def _join(path: str, key: str) -> str:
    if not key:
        return path
    if key.startswith("["):
        return path + key
    return f"{path}.{key}" if path else key


def _describe(exc: BaseException, path: str) -> list[tuple[str, str]]:
    if isinstance(exc, Problems):
        return [(_join(path, p), m) for p, m in exc.problems]
    if isinstance(exc, ForbiddenExtraKeysError):
        known = settable_keys(exc.cl)
        return [(_join(path, key), unknown_key_message(key, known)) for key in sorted(exc.extra_fields)]
    if isinstance(exc, InvalidValue):
        return [(_join(path, exc.key), exc.message)]
    if isinstance(exc, KeyError) and exc.args:
        return [(_join(path, str(exc.args[0])), "required key is missing")]
    return [(path, str(exc) or type(exc).__name__)]


def _walk(exc: BaseException, path: str, out: list[tuple[str, str]]) -> None:
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            if isinstance(sub, KeyError):  # a missing field: the note already names it
                out.append((_join(path, note.name), "required key is missing"))
            else:
                _walk(sub, _join(path, note.name), out)
        for sub in without:
            _walk(sub, path, out)
    elif isinstance(exc, IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            _walk(sub, f"{path}[{note.index}]", out)
        for sub in without:
            _walk(sub, path, out)
    elif isinstance(getattr(exc, "exceptions", None), (list, tuple)):  # any exception group
        for sub in exc.exceptions:
            _walk(sub, path, out)
    else:
        out.extend(_describe(exc, path))


def settable_keys(cl: Any) -> list[str]:
    """The keys a TOML table of attrs class `cl` may hold (no internal or init=False field)."""
    if not attrs.has(cl):
        return []
    return [f.name for f in attrs.fields(cl) if f.init and not f.metadata.get("internal")]


def unknown_key_message(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"unknown key; did you mean {close[0]!r}?" if close else f"unknown key; known keys: {', '.join(known)}"


def with_table_keys(problems: list[tuple[str, str]], keys: tuple[str, ...], schema: Any) -> list[tuple[str, str]]:
    """`problems` of a plugin's config (structured as `schema`), told about `keys` that the table
    holding it reads itself (every component's `kind`, a task's `weight`): an unknown key at the
    table's top level that matches none of the schema's keys is matched against them too. Nested
    tables' keys are their own, so they are left as they are."""
    out = []
    for path, message in problems:
        top_level = path and "." not in path and "[" not in path
        if top_level and message.startswith("unknown key") and "did you mean" not in message:
            message = unknown_key_message(path, [*keys, *settable_keys(schema)])
        out.append((path, message))
    return out


def problem_pairs(exc: BaseException, path: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    _walk(exc, path, out)
    return out


def describe_problems(exc: BaseException, path: str = "") -> list[str]:
    """Flatten a structuring failure into `dotted.path: message` lines."""
    return [f"{p}: {m}" if p else m for p, m in problem_pairs(exc, path)]
