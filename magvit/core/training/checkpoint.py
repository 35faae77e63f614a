"""Atomic, prunable training checkpoints.

Layout of a run directory::

    run_dir/checkpoints/
        step-00001000/
            checkpoint.json      # manifest: step, weight groups, extra files, user meta
            model.safetensors    # one file per weights group ("model", "ema", "disc", ...)
            ema.safetensors
            state.pt             # everything else: optimiser, schedulers, RNG, counters
            config.resolved.toml # extra text files, verbatim
        last                     # a text file holding the newest step directory's name

A checkpoint is written into a hidden temporary directory beside its final place, fsynced, and
renamed into place; `last` is replaced the same way. A crash at any moment leaves the previous
checkpoint and the `last` pointer intact.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import safetensors
import safetensors.torch
import torch

from magvit.core.files import apply_umask
from magvit.errors import MagvitError

CHECKPOINTS_DIR = "checkpoints"
LAST = "last"
MANIFEST = "checkpoint.json"
STATE_FILE = "state.pt"
_STEP_DIR = re.compile(r"^step-(\d{8,})$")
_ALIASES_KEY = "magvit.aliases"  # safetensors metadata: tied names -> the stored name
_PLAIN = (str, int, float, bool, type(None), torch.Tensor, torch.dtype, torch.device, torch.Size)


@attrs.frozen
class Checkpoint:
    path: Path
    step: int
    weights: dict[str, dict[str, torch.Tensor]]
    state: dict[str, Any]
    meta: dict[str, Any]
    files: dict[str, str] = attrs.Factory(dict)


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


# ---------------------------------------------------------------------------------------- saving


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _dedupe(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Store each tied tensor once; safetensors refuses tensors that share memory.

    Exact aliases (same memory, shape, strides) become one entry plus an alias; other views of a
    shared storage are cloned into their own memory.
    """
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    by_view: dict[tuple, str] = {}
    storages: set[tuple] = set()
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"weights entry {name!r} is a {type(tensor).__name__}, not a tensor")
        tensor = tensor.detach()
        view = (tensor.device, tensor.data_ptr(), tensor.dtype, tuple(tensor.shape), tensor.stride())
        if tensor.numel() and view in by_view:
            aliases[name] = by_view[view]
            continue
        by_view[view] = name
        storage = (tensor.device, tensor.untyped_storage().data_ptr())
        shared = tensor.numel() and storage in storages
        storages.add(storage)
        tensor = tensor.to("cpu")
        if shared or not tensor.is_contiguous():
            tensor = tensor.clone(memory_format=torch.contiguous_format)
        unique[name] = tensor
    return unique, aliases


def _check_plain(value: Any, where: str) -> None:
    """The state must load with `torch.load(weights_only=True)`: containers, numbers, tensors."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN):
        raise TypeError(
            f"checkpoint {where} is a {type(value).__module__}.{type(value).__qualname__}; state "
            "may hold only dicts, lists, numbers, strings and tensors (use .item() / .tolist())"
        )


def _write_checkpoint_dir(
    out: Path, step: int, weights: dict, state: dict, files: dict[str, str], meta: dict
) -> None:
    for group, tensors in weights.items():
        unique, aliases = _dedupe(tensors)
        path = out / f"{group}.safetensors"
        safetensors.torch.save_file(unique, path, metadata={_ALIASES_KEY: json.dumps(aliases)})
        _fsync(path)
    with open(out / STATE_FILE, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    for name, text in files.items():
        _write_text(out / name, text)
    manifest = {
        "format": 1,
        "step": step,
        "groups": sorted(weights),
        "files": sorted(files),
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "torch": torch.__version__,
        "meta": meta,
    }
    _write_text(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    _fsync(out)


def _check_names(weights: dict, files: dict[str, str]) -> None:
    reserved = {MANIFEST, STATE_FILE} | {f"{g}.safetensors" for g in weights}
    for group in weights:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", group):
            raise ValueError(f"weights group name {group!r} must be a plain file-name stem")
    for name in files:
        if "/" in name or os.sep in name or name.startswith(".") or name in reserved:
            raise ValueError(f"extra checkpoint file name {name!r} is not allowed here")


def _point_last(checkpoints: Path, name: str) -> None:
    tmp = checkpoints / f".{LAST}.{os.getpid()}.tmp"
    _write_text(tmp, name + "\n")
    os.replace(tmp, checkpoints / LAST)
    _fsync(checkpoints)


def _replace_dir(tmp: Path, final: Path) -> None:
    """Rename `tmp` to `final`; an existing `final` (the same step saved again) is moved aside first."""
    if final.exists():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def _remove_stale_temporaries(checkpoints: Path) -> None:
    """Leftovers of a save that crashed (only the main process saves, so none is in use)."""
    for path in checkpoints.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in checkpoints.glob(".old-*"):
        shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    *,
    weights: dict[str, dict[str, torch.Tensor]],
    state: dict,
    files: dict[str, str] | None = None,
    meta: dict | None = None,
    keep: int | None = 3,
) -> Path:
    """Write `run_dir/checkpoints/step-XXXXXXXX/` atomically, point `last` at it, prune to `keep`.

    `weights` maps a group name ("model", "ema", ...) to a state dict; tied tensors are stored
    once. `state` is anything `torch.load(weights_only=True)` reads back. `files` are extra text
    files written verbatim; `meta` (JSON-able) lands in the manifest. `keep=None` keeps all.
    """
    if keep is not None and keep < 1:
        raise ValueError(f"keep must be at least 1 (or None to keep every checkpoint), got {keep}")
    files = dict(files or {})
    _check_names(weights, files)
    _check_plain(state, "state")
    checkpoints = Path(run_dir) / CHECKPOINTS_DIR
    checkpoints.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(checkpoints)
    final = checkpoints / step_dir_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=checkpoints))
    try:
        _write_checkpoint_dir(tmp, step, weights, state, files, json.loads(json.dumps(meta or {})))
        apply_umask(tmp)  # mkdtemp and safetensors create private files; a run is shared like any output
        _replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync(checkpoints)
    _point_last(checkpoints, final.name)
    if keep is not None:
        prune_checkpoints(run_dir, keep)
    return final


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete step directories of a run, oldest first."""
    checkpoints = Path(run_dir) / CHECKPOINTS_DIR
    if not checkpoints.is_dir():
        return []
    found = [p for p in checkpoints.iterdir() if _STEP_DIR.match(p.name) and (p / MANIFEST).is_file()]
    return sorted(found, key=lambda p: int(_STEP_DIR.match(p.name).group(1)))


def prune_checkpoints(run_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` checkpoints (never the one `last` points at)."""
    pointed = _read_last(Path(run_dir) / CHECKPOINTS_DIR / LAST)
    removed = []
    for path in list_checkpoints(run_dir)[:-keep]:
        if path != pointed:
            shutil.rmtree(path)
            removed.append(path)
    return removed


# ---------------------------------------------------------------------------------------- finding


def _read_last(last: Path) -> Path | None:
    """The directory `checkpoints/last` names, if it is a complete checkpoint."""
    try:
        name = last.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    target = last.parent / name
    if _STEP_DIR.match(name) and (target / MANIFEST).is_file():
        return target
    return None


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The step directory `last` points at; the newest complete one if `last` is missing or stale."""
    pointed = _read_last(Path(run_dir) / CHECKPOINTS_DIR / LAST)
    if pointed is not None:
        return pointed
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def resolve_checkpoint(path: str | Path) -> Path:
    """The step directory meant by a run dir, its `checkpoints` dir, a step dir or a `last` path.

    (Names such as `"default"`, the bundled model, are resolved above the core:
    `magvit.weights.resolve_model_path`.)
    """
    given = path = Path(path)
    if path.name == LAST and not path.is_dir():
        if path.is_file():
            target = _read_last(path)
            if target is None:
                raise MagvitError(f"checkpoint pointer {path} names no complete checkpoint")
            return target
        path = path.parent  # `runs/NAME/last` is shorthand for that run's newest checkpoint
    if not path.exists():
        raise MagvitError(f"checkpoint {given} does not exist; give a run directory or a step directory")
    if (path / MANIFEST).is_file():
        return path
    if path.is_dir() and _STEP_DIR.match(path.name):
        raise MagvitError(f"checkpoint {path} is incomplete (no {MANIFEST}); use an earlier step")
    run_dir = path.parent if path.name == CHECKPOINTS_DIR else path
    found = latest_checkpoint(run_dir)
    partial = sorted(p.name for p in (run_dir / CHECKPOINTS_DIR).glob("step-*") if p.is_dir()) \
        if (run_dir / CHECKPOINTS_DIR).is_dir() else []
    if found is None and partial:
        raise MagvitError(
            f"the checkpoints in {run_dir / CHECKPOINTS_DIR} are incomplete (no {MANIFEST} in "
            f"{', '.join(partial)}): they were not finished writing or were damaged"
        )
    if found is None and path.is_file():
        raise MagvitError(f"checkpoint {path} is a file; give a run directory or a step directory")
    if found is None:
        raise MagvitError(
            f"no checkpoint found at {path}: expected a run directory with {CHECKPOINTS_DIR}/, "
            "a checkpoints directory, or a step-XXXXXXXX directory"
        )
    return found


# ---------------------------------------------------------------------------------------- loading


def _read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        int(manifest["step"]), list(manifest["groups"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MagvitError(f"checkpoint {path} has a missing or corrupt {MANIFEST}: {exc}") from None
    return manifest


def _load_group(path: Path, group: str) -> dict[str, torch.Tensor]:
    file = path / f"{group}.safetensors"
    try:
        with safetensors.safe_open(file, framework="pt") as f:
            aliases = json.loads((f.metadata() or {}).get(_ALIASES_KEY, "{}"))
        tensors = safetensors.torch.load_file(file)
    except (OSError, ValueError, safetensors.SafetensorError) as exc:
        raise MagvitError(f"checkpoint weights {file} cannot be read ({exc}); the file is corrupt") from None
    for alias, name in aliases.items():
        tensors[alias] = tensors[name]
    return tensors


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Every weights group, the state and the extra files of a checkpoint (tensors on CPU)."""
    path = resolve_checkpoint(path)
    manifest = _read_manifest(path)
    weights = {group: _load_group(path, group) for group in manifest["groups"]}
    try:
        state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle raises many types on a damaged file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MagvitError(f"checkpoint state {path / STATE_FILE} is damaged ({first})") from None
    files = {}
    for name in manifest.get("files", []):
        try:
            files[name] = (path / name).read_text(encoding="utf-8")
        except OSError as exc:
            raise MagvitError(f"checkpoint file {path / name} cannot be read: {exc}") from None
    return Checkpoint(path, int(manifest["step"]), weights, state, manifest.get("meta", {}), files)


def checkpoint_manifest(path: str | Path) -> dict:
    """A checkpoint's manifest alone: its `step`, weights `groups` (`model`, `ema`,
    `tokenizer`, ...), `files` and `meta`."""
    return _read_manifest(resolve_checkpoint(path))


def load_weights(path: str | Path, group: str = "ema", fallback: str | None = "model") -> dict[str, torch.Tensor]:
    """One weights group of a checkpoint (`group`, else `fallback`), without reading the rest."""
    path = resolve_checkpoint(path)
    groups = _read_manifest(path)["groups"]
    for name in (group, fallback):
        if name is not None and name in groups:
            return _load_group(path, name)
    wanted = repr(group) if fallback is None else f"{group!r} or {fallback!r}"
    raise MagvitError(f"checkpoint {path} has no weights {wanted}; it has: {', '.join(groups) or 'none'}")
