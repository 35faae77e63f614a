"""`magvit eval`: generate for every task a model knows and score it, a row per task.

PSNR and SSIM compare each generated clip with its ground truth (PSNR over the pixels the task
generates, as the demo does). FVD compares I3D features of the generated clips with those of the
real clips; with `folds > 1` each fold generates again with another seed and the row reports
the mean and standard deviation over folds (the paper uses 4). The real clips' statistics are
cached under a key of the clips, the clip size and the extractor's checksum, and reused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import attrs
import torch
from tqdm import tqdm

from magvit.core.files import atomic_output
from magvit.core.frechet import FeatureStats, fold_mean_std, frechet_distance
from magvit.core.metrics import masked_psnr, ssim
from magvit.errors import MagvitError
from magvit.workflows.eval_clips import folder_clips, held_out_clips
from magvit.workflows.pipeline import Pipeline

METRICS = ("psnr", "ssim", "fvd")
RESULT_FILE = "eval.json"


@attrs.frozen
class TaskScores:
    task: str
    samples: int
    seconds: float
    psnr: float | None = None
    ssim: float | None = None
    fvd: float | None = None
    fvd_std: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class EvalReport:
    rows: list[TaskScores]
    metrics: tuple[str, ...]
    source: str
    folds: int
    extractor: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "metrics": list(self.metrics), "folds": self.folds,
                "extractor": self.extractor, "rows": {row.task: row.to_dict() for row in self.rows}}

    def table(self) -> str:
        width = max(6, *(len(row.task) + 2 for row in self.rows))
        header = f"{'task':<{width}}" + "".join(f"{name.upper():>16}" for name in self.metrics) + f"{'samples':>9}{'seconds':>9}"
        lines = [header]
        for row in self.rows:
            cells = []
            for name in self.metrics:
                value = getattr(row, name)
                if value is None:
                    cells.append(f"{'-':>16}")
                elif name == "fvd":
                    shown = f"{value:.2f}" if value >= 0.01 or value == 0 else f"{value:.2e}"
                    cells.append(f"{shown + (f' ± {row.fvd_std:.2g}' if self.folds > 1 else ''):>16}")
                else:
                    cells.append(f"{value:>16.{4 if name == 'ssim' else 2}f}")
            lines.append(f"{row.task:<{width}}" + "".join(cells) + f"{row.samples:>9}{row.seconds:>9.1f}")
        if self.extractor and not self.extractor["verified"]:
            lines.append(f"FVD with UNVERIFIED I3D weights (sha256 {self.extractor['sha256'][:16]}...): "
                         "not comparable with published numbers")
        return "\n".join(lines)


def _cache_dir() -> Path:
    return Path(os.environ.get("MAGVIT_CACHE", Path.home() / ".cache" / "magvit")) / "real-stats"


def _real_stats(extractor, videos: torch.Tensor, key: dict[str, Any], batch: int) -> FeatureStats:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    path = _cache_dir() / f"{digest}.npz"
    if path.is_file():
        stats = FeatureStats.load(path)
        if stats.meta == key:
            return stats
    stats = FeatureStats(meta=key)
    for start in range(0, len(videos), batch):
        stats.update(extractor(videos[start:start + batch]))
    stats.save(path)
    return stats


def evaluate(
    checkpoint: str | Path = "default",
    *,
    tasks: list[str] | None = None,
    metrics: tuple[str, ...] = ("psnr", "ssim"),
    samples: int = 16,
    folds: int = 1,
    seed: int = 0,
    data: str | Path | None = None,
    extractor=None,
    batch_size: int = 8,
    device: str = "auto",
    progress: bool = True,
) -> EvalReport:
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise MagvitError(f"unknown metric(s) {', '.join(unknown)}; available: {', '.join(METRICS)}")
    if "fvd" in metrics and extractor is None:
        raise MagvitError("FVD needs the I3D network's weights: --i3d-weights PATH (docs/evaluation.md "
                          "lists the published files and where they come from)")
    if "fvd" in metrics and samples < 2:
        raise MagvitError(f"FVD needs at least 2 samples per task (a covariance), got {samples}")
    pipe = Pipeline.from_checkpoint(checkpoint, device=device)
    names = list(tasks or pipe.task_names)
    missing = [t for t in names if t not in pipe.task_names]
    if missing:
        raise MagvitError(f"the model was not trained for task(s) {', '.join(missing)}; it knows "
                          f"{', '.join(pipe.task_names)}")
    videos, labels = folder_clips(pipe, data, samples, seed) if data else held_out_clips(pipe, samples, seed)
    real = None
    if "fvd" in metrics:
        key = {"data": str(data or pipe.bundle.experiment.data.to_dict()), "split": "eval", "seed": seed,
               "samples": len(videos), "clip": list(pipe.clip_shape), "extractor": extractor.sha256 or "random",
               "features": extractor.width}
        real = _real_stats(extractor, videos.cpu(), key, batch_size)
    rows = []
    for task_name in tqdm(names, desc="eval", unit="task", disable=not progress):
        rows.append(_score_task(pipe, task_name, videos, labels, metrics, folds, seed, extractor, real, batch_size))
    info = None if extractor is None else {"name": "i3d", "sha256": extractor.sha256, "verified": extractor.verified}
    return EvalReport(rows, tuple(metrics), str(checkpoint), folds, info)


def evaluate_tokenizer(
    checkpoint: str | Path,
    *,
    metrics: tuple[str, ...] = ("psnr", "ssim"),
    samples: int = 16,
    seed: int = 0,
    data: str | Path | None = None,
    extractor=None,
    batch_size: int = 8,
) -> EvalReport:
    """Reconstruction quality of a stage-1 tokenizer (paper Table 7): one row, `reconstruction`,
    with PSNR/SSIM of encode-decode round trips and FVD of the reconstructions against the clips."""
    from magvit.workflows.reconstruct import tokenizer_and_data

    if "fvd" in metrics and extractor is None:
        raise MagvitError("FVD needs the I3D network's weights: --i3d-weights PATH (docs/evaluation.md)")
    tokenizer, data_section = tokenizer_and_data(checkpoint)
    config = data_section.config
    if data:
        from magvit.registry import registries

        dataset = registries().datasets.create("video_folder", path=str(data), frames=config.frames,
                                               resolution=config.resolution).make("eval", seed=seed)
    else:
        dataset = data_section.build().make("eval", seed=seed)
    videos = torch.stack([dataset[i]["video"] for i in range(min(samples, len(dataset)))])
    start = time.perf_counter()
    with torch.inference_mode():
        recon = torch.cat([tokenizer.decode(tokenizer.encode(videos[i:i + batch_size]))
                           for i in range(0, len(videos), batch_size)])
    fvd = None
    if "fvd" in metrics:
        real, fake = FeatureStats(), FeatureStats()
        for i in range(0, len(videos), batch_size):
            real.update(extractor(videos[i:i + batch_size]))
            fake.update(extractor(recon[i:i + batch_size]))
        fvd = frechet_distance(real, fake)
    everything = torch.ones(videos.shape[2:], dtype=torch.bool)
    row = TaskScores(
        task="reconstruction", samples=len(videos), seconds=time.perf_counter() - start,
        psnr=float(masked_psnr(recon, videos, everything).mean()) if "psnr" in metrics else None,
        ssim=float(ssim(recon, videos).mean()) if "ssim" in metrics else None, fvd=fvd,
    )
    info = None if extractor is None else {"name": "i3d", "sha256": extractor.sha256, "verified": extractor.verified}
    return EvalReport([row], tuple(metrics), str(checkpoint), 1, info)


def _score_task(pipe, task_name, videos, labels, metrics, folds, seed, extractor, real, batch_size) -> TaskScores:
    task = pipe.task(task_name)
    start = time.perf_counter()
    psnrs, ssims, fvds = [], [], []
    for fold in range(folds):
        if task.has_condition:
            result = pipe.generate(task_name, videos, label=labels if task.needs_class else None,
                                   seed=seed + 1000 * fold, batch_size=batch_size)
        else:
            result = pipe.generate(task_name, None, label=labels.tolist(), seed=seed + 1000 * fold,
                                   batch_size=batch_size)
        generated, truth = result.video.cpu(), videos.cpu()
        if task.has_condition:
            psnrs.append(float(masked_psnr(generated, truth, ~result.pixel_mask.cpu()).mean()))
            ssims.append(float(ssim(generated, truth).mean()))
        if real is not None:
            fake = FeatureStats()
            for i in range(0, len(generated), batch_size):
                fake.update(extractor(generated[i:i + batch_size]))
            fvds.append(frechet_distance(real, fake))
    fvd, fvd_std = fold_mean_std(fvds) if fvds else (None, None)
    mean = lambda values: sum(values) / len(values) if values else None  # noqa: E731
    return TaskScores(
        task=task_name, samples=len(videos), seconds=time.perf_counter() - start,
        psnr=mean(psnrs) if "psnr" in metrics else None, ssim=mean(ssims) if "ssim" in metrics else None,
        fvd=fvd if fvd is None or math.isfinite(fvd) else None, fvd_std=fvd_std,
    )


def write_report(report: EvalReport, output: str | Path) -> Path:
    path = Path(output) / RESULT_FILE
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return path
