"""Training curves from runs' `metrics.jsonl`: one panel per metric, one colour per run, the raw
values faint and an exponential moving average on top (matplotlib, extra `magvit[plot]`)."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path

from magvit.core.files import atomic_output
from magvit.core.training.loggers import METRICS_FILE, read_metrics
from magvit.errors import MagvitError

SKIP = {"step", "split", "elapsed_s"}
IMAGE_SUFFIXES = (".png", ".svg", ".pdf")


def series(run_dir: Path, split: str) -> dict[str, tuple[list[int], list[float]]]:
    """metric -> (steps, values) of one split of a run."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for record in read_metrics(run_dir):
        if record.get("split", "train") != split:
            continue
        for name, value in record.items():
            if name not in SKIP and isinstance(value, (int, float)) and math.isfinite(value):
                steps, values = out.setdefault(name, ([], []))
                steps.append(int(record["step"]))
                values.append(float(value))
    return out


def smooth(values: list[float], weight: float) -> list[float]:
    """TensorBoard-style EMA, debiased so the first points are not pulled towards 0."""
    out, average = [], 0.0
    for i, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        out.append(average / (1 - weight**i) if weight > 0 else value)
    return out


def plot_runs(runs: Sequence[str | Path], output: str | Path, *, metrics: Sequence[str] = (),
              split: str = "train", smoothing: float = 0.6, log_scale: Sequence[str] = ("loss",)) -> Path:
    if importlib.util.find_spec("matplotlib") is None:
        raise MagvitError("magvit plot needs matplotlib: pip install 'magvit[plot]'")
    if not 0 <= smoothing < 1:
        raise MagvitError(f"--smooth must be in [0, 1), got {smoothing}")
    output = Path(output)
    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise MagvitError(f"{output}: cannot draw an image with suffix {output.suffix or '(none)'!r}; use one of "
                          f"{', '.join(IMAGE_SUFFIXES)}")
    if output.is_dir():
        raise MagvitError(f"{output} is a folder; give a file name such as {output / 'curves.png'}")
    data = {}
    for run in map(Path, runs):
        if not (run / METRICS_FILE).is_file():
            raise MagvitError(f"{run} has no {METRICS_FILE}; give a run folder written by `magvit train`")
        data[run] = series(run, split)
    available = sorted({name for found in data.values() for name in found})
    chosen = list(metrics) or available
    unknown = [m for m in chosen if m not in available]
    if unknown or not chosen:
        raise MagvitError(f"no {split} metric {', '.join(unknown) or ''} in these runs; they log: "
                          f"{', '.join(available) or 'nothing yet'}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(chosen))
    rows = math.ceil(len(chosen) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.flat, chosen):
        for index, (run, found) in enumerate(data.items()):
            if name not in found:
                continue
            steps, values = found[name]
            colour = f"C{index % 10}"
            ax.plot(steps, values, color=colour, alpha=0.25, linewidth=0.8)
            ax.plot(steps, smooth(values, smoothing), color=colour, linewidth=1.6, label=run.name)
        ax.set_title(f"{split}/{name}", fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        if any(word in name for word in log_scale) and all(v > 0 for f in data.values() for v in f.get(name, ([], []))[1]):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(chosen):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    figure.tight_layout()
    with atomic_output(output) as tmp:
        figure.savefig(tmp, dpi=110, format=output.suffix.lower().lstrip("."))
    plt.close(figure)
    return output
