"""The bundled default model: a tiny tokenizer and ten-task transformer trained on the synthetic
bouncing-shapes clips (see `README.md` in this folder for how it was trained and what it reached).

`--checkpoint default` (and `"default"` anywhere a checkpoint path is taken) means this folder;
the workflows resolve the name with `resolve_model_path` before they read a checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from magvit.errors import MagvitError

DEFAULT_NAME = "default"
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / DEFAULT_NAME


def is_default(path: object) -> bool:
    return str(path) == DEFAULT_NAME


def resolve_model_path(path: str | Path) -> str | Path:
    """`"default"` (unless a file or folder of that name exists here) -> the bundled model's
    folder; any other path unchanged."""
    if not is_default(path) or Path(path).exists():
        return path
    if not (DEFAULT_CHECKPOINT / "checkpoint.json").is_file():
        raise MagvitError(
            f"the bundled default model is missing from {DEFAULT_CHECKPOINT}; reinstall magvit "
            "or give a checkpoint you trained (`magvit train transformer tiny`)"
        )
    return DEFAULT_CHECKPOINT
