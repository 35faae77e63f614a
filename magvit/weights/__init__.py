"""The bundled default model: a tiny tokenizer and ten-task transformer trained on the synthetic
bouncing-shapes clips (see `README.md` in this folder for how it was trained and what it reached).

`--checkpoint default` (and `"default"` anywhere a checkpoint path is taken) means this folder.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_NAME = "default"
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / DEFAULT_NAME


def is_default(path: object) -> bool:
    return str(path) == DEFAULT_NAME
