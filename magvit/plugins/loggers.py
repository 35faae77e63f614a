"""Built-in loggers: `jsonl` (metrics.jsonl, the default), `tensorboard` (event files under
`<run>/tensorboard`, extra `magvit[tensorboard]`) and `wandb` (Weights & Biases, offline by
default so it needs no network or account; extra `magvit[wandb]`).

Choose them in TOML (`[run] loggers = ["jsonl", "tensorboard"]`) or on the command line
(`--set 'run.loggers=["jsonl","wandb"]'`). Scalars are logged as `<split>/<name>`
(`train/loss`, `eval/psnr`); images every `run.media_every` steps.
"""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from typing import Any, Literal

import attrs
import torch

from magvit.api import MagvitError, hookimpl
from magvit.core.training.loggers import JsonlLogger


def _require(module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise MagvitError(f"logger {extra!r} needs the {module} package: pip install 'magvit[{extra}]' "
                          f"(or drop {extra!r} from run.loggers)")


def _uint8_hwc(image: torch.Tensor):
    return image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


@attrs.define
class Jsonl(JsonlLogger):
    """`metrics.jsonl` in the run folder, one record per log line (what `magvit plot` reads)."""


@attrs.define
class TensorBoard:
    """TensorBoard event files through torch's `SummaryWriter`."""

    folder: str = "tensorboard"  # inside the run folder
    _writer: Any = attrs.field(default=None, init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        _require("tensorboard", "tensorboard")

    def start(self, run_dir: Path, start_step: int, config: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events past a resumed run's checkpoint: they will be logged again
        self._writer = SummaryWriter(str(Path(run_dir) / self.folder), purge_step=start_step + 1 if start_step else None)
        if start_step == 0 and config:
            self._writer.add_text("config", "\n".join(f"    {line}" for line in _lines(config)), 0)

    def log(self, step: int, split: str, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self._writer.add_scalar(f"{split}/{name}", value, step)

    def log_images(self, step: int, images: dict[str, torch.Tensor]) -> None:
        for name, image in images.items():
            self._writer.add_image(name, image.detach().float().clamp(0, 1).cpu(), step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@attrs.define
class Wandb:
    """Weights & Biases. `mode = "offline"` (default) writes under `<run>/wandb` for a later
    `wandb sync`; "online" needs an account and network. A resumed run continues the same
    W&B run (its id is kept in `<run>/wandb-id.txt`)."""

    project: str = "magvit"
    entity: str = ""
    mode: Literal["offline", "online", "disabled"] = "offline"
    _run: Any = attrs.field(default=None, init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        _require("wandb", "wandb")

    def start(self, run_dir: Path, start_step: int, config: dict[str, Any]) -> None:
        import wandb

        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        id_file = run_dir / "wandb-id.txt"
        if not id_file.exists():
            id_file.write_text(uuid.uuid4().hex[:12] + "\n")  # W&B run ids: [a-z0-9]
        self._run = wandb.init(project=self.project, entity=self.entity or None, mode=self.mode,
                               dir=str(run_dir), id=id_file.read_text().strip(), resume="allow",
                               name=run_dir.name, config=config, settings=wandb.Settings(silent=True))

    def log(self, step: int, split: str, metrics: dict[str, float]) -> None:
        self._run.log({f"{split}/{name}": value for name, value in metrics.items()}, step=step)

    def log_images(self, step: int, images: dict[str, torch.Tensor]) -> None:
        import wandb

        self._run.log({name: wandb.Image(_uint8_hwc(image)) for name, image in images.items()}, step=step)

    def close(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None


def _lines(config: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in config.items():
        if isinstance(value, dict):
            out += _lines(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key} = {value!r}")
    return out


@hookimpl
def magvit_register_loggers(registry):
    registry.add("jsonl", Jsonl)
    registry.add("tensorboard", TensorBoard)
    registry.add("wandb", Wandb)
