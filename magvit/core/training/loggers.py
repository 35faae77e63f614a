"""Where a training loop's numbers go: `metrics.jsonl` always by default, other trackers by
plugin (`loggers` registry: tensorboard, wandb, ...). The loop calls these on rank 0 only.

A logger has `start(run_dir, start_step, config)` (a resumed run starts at its checkpoint's
step: records after it are dropped, they will be redone), `log(step, split, metrics)`,
`log_images(step, images)` with `(3, H, W)` images in [0, 1], and `close()`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import torch

METRICS_FILE = "metrics.jsonl"


class Logger(Protocol):
    def start(self, run_dir: Path, start_step: int, config: dict[str, Any]) -> None: ...

    def log(self, step: int, split: str, metrics: dict[str, float]) -> None: ...

    def log_images(self, step: int, images: dict[str, torch.Tensor]) -> None: ...

    def close(self) -> None: ...


class JsonlLogger:
    """One JSON object per line: `{"step": ..., "split": "train" | "eval", <metrics>}`."""

    def start(self, run_dir: Path, start_step: int, config: dict[str, Any]) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        if self.path.exists():  # drop lines past the step we (re)start from
            lines = self.path.read_text(encoding="utf-8").splitlines()
            kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= start_step]
            self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def log(self, step: int, split: str, metrics: dict[str, float]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, "split": split, **metrics}) + "\n")

    def log_images(self, step: int, images: dict[str, torch.Tensor]) -> None:
        pass  # scalars only; images go to trackers that show them

    def close(self) -> None:
        pass


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of a run's `metrics.jsonl` (what `magvit plot` draws)."""
    path = Path(run_dir) / METRICS_FILE
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
