"""`magvit eval`: generate for every task a model knows and score it, a row per task.

PSNR and SSIM compare each generated clip with its ground truth (PSNR over the pixels the task
generates, as the demo does). FVD compares I3D features of the generated clips with those of the
real clips; with `folds > 1` each fold generates again with another seed and the row reports
the mean and standard deviation over folds (the paper uses 4). The real clips' statistics are
cached under a key of the clips, the clip size and the extractor's checksum, and reused. CE
generates nothing: it is the masked-token cross-entropy that a training run's held-out
evaluation reports (`commit_eval`), so checkpoints can be compared on more clips than the run's
evaluation used; it is computed once, whatever the folds. CLASS is the share of the samples of
the class-conditional tasks (CG, CFP) that a shape classifier puts in the class they were asked
for (the demo's CG accuracy, on as many clips as `samples` draws).
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

from magvit.core.features.c3d import inception_score
from magvit.core.files import atomic_output
from magvit.core.frechet import FeatureStats, fold_mean_std, frechet_distance
from magvit.core.metrics import masked_psnr, ssim
from magvit.core.shape_classifier import predict
from magvit.core.training.distributed import DistContext, all_gather_objects, barrier
from magvit.errors import MagvitError
from magvit.workflows.eval_clips import folder_clips, held_out_clips
from magvit.workflows.eval_protocols import Protocol
from magvit.workflows.eval_sources import ProtocolClips, TensorClips
from magvit.workflows.pipeline import Pipeline

METRICS = ("psnr", "ssim", "lpips", "fvd", "is", "class", "ce")
GENERATED = ("psnr", "ssim", "lpips", "fvd", "is", "class")  # the metrics that need generated clips
RESULT_FILE = "eval.json"


@attrs.frozen
class TaskScores:
    task: str
    samples: int
    seconds: float
    psnr: float | None = None
    ssim: float | None = None
    lpips: float | None = None
    fvd: float | None = None
    fvd_std: float | None = None
    inception: float | None = None  # IS (C3D class probabilities, 10 splits)
    inception_std: float | None = None
    ce: float | None = None  # masked-token cross-entropy in nats (teacher-forced, no generation)
    class_accuracy: float | None = None  # share of class-conditional samples in their class

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class EvalReport:
    rows: list[TaskScores]
    metrics: tuple[str, ...]
    source: str
    folds: int
    extractor: dict[str, Any] | None
    protocol: dict[str, Any] | None = None
    refine_steps: int = 0  # the pipeline's condition fit (0 under a protocol: the paper's decoding)
    class_search: int = 0  # the pipeline's class search (0 under a protocol, likewise)
    class_guidance: float = 0.0  # the pipeline's guidance of class-only tasks (0 under a protocol, likewise)
    read_classes: int = 0  # the class reader's classes the class search tries (0: every class)
    sample_search: int = 1  # samples per clip of the other tasks with given pixels (1: no search)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "metrics": list(self.metrics), "folds": self.folds,
                "protocol": self.protocol, "extractor": self.extractor, "refine_steps": self.refine_steps,
                "class_search": self.class_search, "class_guidance": self.class_guidance,
                "read_classes": self.read_classes, "sample_search": self.sample_search,
                "rows": {row.task: row.to_dict() for row in self.rows}, "ce_mean": self.ce_mean}

    @property
    def ce_mean(self) -> float | None:
        """The mean CE over the rows (the number a training run's eval reports as `mean`)."""
        scores = [row.ce for row in self.rows if row.ce is not None]
        return sum(scores) / len(scores) if scores else None

    def table(self) -> str:
        width = max(6, *(len(row.task) + 2 for row in self.rows))
        header = f"{'task':<{width}}" + "".join(f"{name.upper():>16}" for name in self.metrics) + f"{'samples':>9}{'seconds':>9}"
        lines = [header]
        for row in self.rows:
            cells = []
            for name in self.metrics:
                value = getattr(row, {"is": "inception", "class": "class_accuracy"}.get(name, name))
                if value is None:
                    cells.append(f"{'-':>16}")
                elif name == "is":
                    cells.append(f"{f'{value:.2f} ± {row.inception_std:.2g}':>16}")
                elif name == "fvd":
                    shown = f"{value:.2f}" if value >= 0.01 or value == 0 else f"{value:.2e}"
                    cells.append(f"{shown + (f' ± {row.fvd_std:.2g}' if self.folds > 1 else ''):>16}")
                else:
                    cells.append(f"{value:>16.{4 if name in ('ssim', 'lpips', 'class') else 3 if name == 'ce' else 2}f}")
            lines.append(f"{row.task:<{width}}" + "".join(cells) + f"{row.samples:>9}{row.seconds:>9.1f}")
        if self.ce_mean is not None:
            lines.append(f"mean CE over the {len(self.rows)} task(s): {self.ce_mean:.4f} nats")
        if self.extractor and not self.extractor["verified"]:
            lines.append(f"FVD with UNVERIFIED I3D weights (sha256 {self.extractor['sha256'][:16]}...): "
                         "not comparable with published numbers")
        return "\n".join(lines)


def _extractor_info(extractor) -> dict[str, Any] | None:
    return None if extractor is None else {"name": "i3d", "sha256": extractor.sha256, "verified": extractor.verified}


def _cache_dir() -> Path:
    return Path(os.environ.get("MAGVIT_CACHE", Path.home() / ".cache" / "magvit")) / "real-stats"


def _real_stats(source, fold: int, has_condition: bool, extractor, batch: int, ctx: DistContext) -> FeatureStats:
    """The real distribution's features for one fold: each part (clips, times) extracted once,
    sharded over the ranks, cached on disk under its key, and counted `times` times."""
    total = FeatureStats()
    for indices, times in source.real_parts(fold, has_condition):
        key = {**source.real_key(fold, has_condition), "extractor": extractor.sha256 or "random",
               "features": extractor.width, "clips": hashlib.sha256(json.dumps(indices).encode()).hexdigest()[:16],
               "count": len(indices)}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
        path = _cache_dir() / f"{digest}.npz"
        stats = FeatureStats.load(path) if path.is_file() else None
        if stats is None or stats.meta != key:
            share = FeatureStats(meta=key)
            for b in range(ctx.rank, math.ceil(len(indices) / batch), ctx.world_size):
                videos, _ = source.clips(indices[b * batch:(b + 1) * batch], has_condition)
                share.update(extractor(source.for_features(videos)))
            stats = _merged(share, ctx, key)
            if ctx.is_main:
                stats.save(path)
            barrier(ctx)
        total.merge(stats.repeated(times))
    return total


def _merged(share: FeatureStats, ctx: DistContext, meta: dict[str, Any] | None = None) -> FeatureStats:
    """Every rank's statistics combined, in rank order (the same on every rank)."""
    total = FeatureStats(meta=meta or share.meta)
    for part in all_gather_objects(share, ctx):
        total.merge(part)
    return total


def evaluate(
    checkpoint: str | Path = "default",
    *,
    tasks: list[str] | None = None,
    metrics: tuple[str, ...] = ("psnr", "ssim"),
    samples: int | None = None,
    folds: int | None = None,
    seed: int = 0,
    data: str | Path | None = None,
    protocol: Protocol | None = None,
    extractor=None,
    classifier=None,
    perceptual=None,
    shape_classifier=None,
    batch_size: int = 8,
    device: str = "auto",
    progress: bool = True,
    ctx: DistContext | None = None,
    partial_dir: str | Path | None = None,
    save_every: float = 60.0,
    precision: str | None = None,
    refine_steps: int | None = None,
    class_search: int | None = None,
    class_guidance: float | None = None,
    read_classes: int | None = None,
    sample_search: int | None = None,
) -> EvalReport:
    """Score every task. Without a `protocol`, on the model's held-out clips (or the first clips
    of `data`), every fold the same clips with new seeds (default 16 clips, 1 fold); with one, on
    the protocol's clips of the folder `data` (its samples and folds unless given). Under
    torchrun (`ctx`), the batches are dealt round-robin to the ranks and the scores and feature
    statistics gathered: each batch is generated with its own seed, so any number of processes
    gives the statistics of one. With `partial_dir`, finished (task, fold)s and, every
    `save_every` seconds, each rank's progress inside a fold are kept there for --resume.
    `refine_steps`, `class_search`, `read_classes`, `sample_search` and `class_guidance`: the
    pipeline's condition fit, class search, the class reader's share in it, sample search and
    class-only guidance (default: its own, but 0 (one sample) under a protocol, whose published
    numbers come from the paper's decoding without them). `shape_classifier` (a
    `ShapeClassifier` or its file) scores CLASS; default: the bundled one where it fits the
    model's data (`classifier_for`)."""
    ctx = ctx or DistContext()
    folds = folds or (protocol.folds if protocol else 1)
    samples = samples or (protocol.samples if protocol else 16)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise MagvitError(f"unknown metric(s) {', '.join(unknown)}; available: {', '.join(METRICS)}")
    if "fvd" in metrics and extractor is None:
        raise MagvitError("FVD needs the I3D network's weights: --i3d-weights PATH (docs/evaluation.md "
                          "lists the published files and where they come from)")
    if "fvd" in metrics and samples < 2:
        raise MagvitError(f"FVD needs at least 2 samples per task (a covariance), got {samples}")
    if "lpips" in metrics and perceptual is None:
        raise MagvitError("LPIPS needs its weights: --lpips-vgg PATH --lpips-heads PATH (docs/evaluation.md)")
    if "is" in metrics and classifier is None:
        raise MagvitError("IS needs the C3D network's weights: --c3d-weights PATH (docs/evaluation.md)")
    if "is" in metrics and samples < 10:
        raise MagvitError(f"IS is computed over 10 splits: it needs at least 10 samples, got {samples}")
    if protocol is not None and data is None:
        raise MagvitError(f"protocol {protocol.name} runs on a folder of videos: give --data DIR")
    if protocol is not None and "class" in metrics:
        raise MagvitError(f"protocol {protocol.name} has no shape classes to score: drop class from --metrics")
    if protocol is not None and "ce" in metrics:
        raise MagvitError(f"protocol {protocol.name} scores generated videos; CE scores the model's tokens "
                          "on the clips: drop ce from --metrics, or --protocol")
    overrides = protocol.decoder if protocol else {}
    if protocol is not None:
        refine_steps = 0 if refine_steps is None else refine_steps
        class_search = 0 if class_search is None else class_search
        class_guidance = 0.0 if class_guidance is None else class_guidance
        sample_search = 1 if sample_search is None else sample_search
    pipe = Pipeline.from_checkpoint(checkpoint, device=ctx.device if ctx.distributed else device,
                                    precision=precision, refine_steps=refine_steps, class_search=class_search,
                                    class_guidance=class_guidance, read_classes=read_classes,
                                    sample_search=sample_search, **overrides)
    names = list(tasks or pipe.task_names)
    missing = [t for t in names if t not in pipe.task_names]
    if missing:
        raise MagvitError(f"the model was not trained for task(s) {', '.join(missing)}; it knows "
                          f"{', '.join(pipe.task_names)}")
    if "class" in metrics:
        if not any(pipe.task(name).needs_class for name in names):
            with_class = [name for name in pipe.task_names if pipe.task(name).needs_class]
            raise MagvitError(f"class scores the class-conditional tasks ({', '.join(with_class) or 'none here'}), "
                              f"and none of {', '.join(names)} is one: add one to --tasks, or drop class "
                              "from --metrics")
        shape_classifier = _shape_classifier_for(pipe, shape_classifier, data)
    if protocol is not None:
        if tuple(pipe.clip_shape) != (protocol.frames, protocol.resolution, protocol.resolution):
            raise MagvitError(
                f"protocol {protocol.name} scores {protocol.frames}x{protocol.resolution}x{protocol.resolution} "
                f"clips; this model makes {'x'.join(map(str, pipe.clip_shape))}")
        source = ProtocolClips(protocol, str(data), pipe.device, seed, samples)
    else:
        videos, labels = folder_clips(pipe, data, samples, seed) if data else held_out_clips(pipe, samples, seed)
        key = {"data": str(data or pipe.bundle.experiment.data.to_dict()), "split": "eval", "seed": seed,
               "samples": len(videos), "clip": list(pipe.clip_shape)}
        source = TensorClips(videos, labels, key)
    ce = _cross_entropy(pipe, source, names, seed, progress and ctx.is_main) if "ce" in metrics else {}
    if any(m in GENERATED for m in metrics):
        batches = math.ceil(source.samples / batch_size)
        mine = [b for b in range(batches) if b % ctx.world_size == ctx.rank]
        per_fold = sum(min(batch_size, source.samples - b * batch_size) for b in mine)
        bar = tqdm(total=len(names) * folds * per_fold, desc="eval", unit="clip",
                   disable=not progress or not ctx.is_main, dynamic_ncols=True)
        run = _Run(pipe, source, metrics, seed, extractor, classifier, perceptual, batch_size, mine, ctx, bar,
                   partial_dir, save_every, shape_classifier)
        with bar:
            rows = [run.score_task(task_name, folds) for task_name in names]
    else:
        rows = [TaskScores(task=name, samples=source.samples, seconds=0.0) for name in names]
    if ce:
        rows = [attrs.evolve(row, ce=ce[row.task][0], seconds=row.seconds + ce[row.task][1]) for row in rows]
    report = EvalReport(rows, tuple(metrics), str(checkpoint), folds, _extractor_info(extractor))
    return attrs.evolve(report, protocol=protocol.to_dict() if protocol else None,
                        refine_steps=pipe.refine_steps, class_search=pipe.class_search,
                        class_guidance=pipe.class_guidance,
                        read_classes=pipe.read_classes if pipe.class_search else 0,
                        sample_search=pipe.sample_search)


def _shape_classifier_for(pipe: Pipeline, given, data):
    """The shape classifier that scores CLASS: `given` (an object, or a file checked against the
    model's data), else the bundled one when it fits the model's held-out clips."""
    from magvit.workflows.shape_classifier import classifier_for

    if given is not None and not isinstance(given, (str, Path)):
        return given
    config = pipe.bundle.experiment.data
    found = classifier_for(None if data is not None or config is None else config.build(), given)
    if found is None:
        raise MagvitError("class accuracy needs a shape classifier for these clips, and none bundled "
                          "fits them: give --shape-classifier FILE (make one with `python -m "
                          "magvit.workflows.shape_classifier --out FILE`)")
    return found


def _cross_entropy(pipe: Pipeline, source, names: list[str], seed: int,
                   progress: bool) -> dict[str, tuple[float, float]]:
    """Task -> (masked-token CE, seconds) of the pipeline's transformer on the source's clips, the
    masks drawn from `seed` as a training run's held-out evaluation draws them; in the
    pipeline's precision, with the bundle's own (fp32) weights as training evaluates them."""
    from magvit.core.training.precision import inference_autocast
    from magvit.workflows.commit_eval import bundle_held_out_eval

    held_out = bundle_held_out_eval(pipe.bundle, source.videos, source.labels, seed=seed, only=names,
                                    autocast=lambda: inference_autocast(pipe.device, pipe.precision),
                                    progress=progress)
    scores = held_out(pipe.bundle.transformer)
    return {name: (scores[name], held_out.seconds[name]) for name in names}


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
    if {"is", "lpips", "ce", "class"} & set(metrics):
        raise MagvitError("a tokenizer run is scored with psnr, ssim and fvd (IS and class score generated "
                          "samples, LPIPS is reported for generation, and CE scores a transformer)")
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
    return EvalReport([row], tuple(metrics), str(checkpoint), 1, _extractor_info(extractor))


@attrs.define
class _Run:
    """One evaluation's fixed parts; `score_task` runs every fold of a task."""

    pipe: Pipeline
    source: Any
    metrics: tuple[str, ...]
    seed: int
    extractor: Any
    classifier: Any
    perceptual: Any
    batch_size: int
    mine: list[int]
    ctx: DistContext
    bar: Any
    partial_dir: Any
    save_every: float
    shape_classifier: Any = None

    def score_task(self, task_name: str, folds: int) -> TaskScores:
        task = self.pipe.task(task_name)
        start = time.perf_counter()
        psnrs, ssims, lpipses, fvds, inceptions, hits = [], [], [], [], [], []
        for fold in range(folds):
            done = _load_partial(self.partial_dir, task_name, fold)
            if done is None:
                done = self.run_fold(task, task_name, fold)
                if self.ctx.is_main:
                    _save_partial(self.partial_dir, task_name, fold, done)
            psnrs += done["psnr"]
            ssims += done["ssim"]
            lpipses += [v for v in done.get("lpips", []) if v is not None]
            hits += done.get("class", [])
            if done["fvd"] is not None:
                fvds.append(done["fvd"])
            if done.get("is") is not None:
                inceptions.append(done["is"])
        fvd, fvd_std = fold_mean_std(fvds) if fvds else (None, None)
        inception, inception_std = (fold_mean_std([m for m, _ in inceptions]) if len(inceptions) > 1
                                    else inceptions[0] if inceptions else (None, None))
        mean = lambda values: sum(values) / len(values) if values else None  # noqa: E731
        metrics = self.metrics
        return TaskScores(
            task=task_name, samples=self.source.samples, seconds=time.perf_counter() - start,
            psnr=mean(psnrs) if "psnr" in metrics else None, ssim=mean(ssims) if "ssim" in metrics else None,
            lpips=mean(lpipses) if "lpips" in metrics else None,
            fvd=fvd if fvd is None or math.isfinite(fvd) else None, fvd_std=fvd_std,
            inception=inception, inception_std=inception_std,
            class_accuracy=mean(hits) if "class" in metrics else None,
        )

    def run_fold(self, task, task_name: str, fold: int) -> dict:
        """This rank's batches of one fold; returns everyone's per-clip scores and the FVD."""
        pipe, source, bs = self.pipe, self.source, self.batch_size
        real = None
        if "fvd" in self.metrics:
            real = _real_stats(source, fold, task.has_condition, self.extractor, bs, self.ctx)
        progress = _FoldProgress.load(self.partial_dir, task_name, fold, self.ctx.rank)
        last_save = time.monotonic()
        for b in self.mine:
            count = min(bs, source.samples - b * bs)
            if b in progress.batches:
                self.bar.update(count)
                continue
            indices = [source.index(fold, b * bs + j) for j in range(count)]
            videos, labels = source.clips(indices, task.has_condition)
            batch_seed = self.seed + 1_000_003 * fold + b  # a batch's samples do not depend on the ranks
            if task.has_condition:
                result = pipe.generate(task_name, videos, seed=batch_seed, batch_size=bs,
                                       label=labels if task.needs_class else None)
            else:
                result = pipe.generate(task_name, None, label=labels.tolist(), seed=batch_seed, batch_size=bs)
            generated, truth = result.video.cpu(), videos.cpu()
            if task.has_condition:
                psnr = masked_psnr(generated, truth, ~result.pixel_mask.cpu()).tolist()
                lpips = (self.perceptual(generated, truth).tolist() if self.perceptual is not None
                         else [None] * len(psnr))
                progress.scores += [[b, i, p, s, lp] for i, (p, s, lp)
                                    in enumerate(zip(psnr, ssim(generated, truth).tolist(), lpips))]
            if real is not None:
                progress.fake.update(self.extractor(source.for_features(generated)))
            if self.shape_classifier is not None and task.needs_class:
                hits = (predict(self.shape_classifier, generated) == labels.cpu()).tolist()
                progress.classes += [[b, i, int(hit)] for i, hit in enumerate(hits)]
            if self.classifier is not None:
                progress.probabilities.append([b, self.classifier(source.for_features(generated)).tolist()])
            progress.batches.add(b)
            self.bar.update(count)
            if time.monotonic() - last_save > self.save_every:
                progress.save(self.partial_dir, task_name, fold, self.ctx.rank)
                last_save = time.monotonic()
        ctx = self.ctx
        everyone = sorted(s for part in all_gather_objects(progress.scores, ctx) for s in part)  # clip order
        fvd = frechet_distance(real, _merged(progress.fake, ctx)) if real is not None else None
        inception = None
        if self.classifier is not None:
            ordered = sorted((b, p) for part in all_gather_objects(progress.probabilities, ctx) for b, p in part)
            inception = inception_score(torch.cat([torch.tensor(p) for _, p in ordered]), splits=10)
        classes = sorted(c for part in all_gather_objects(progress.classes, ctx) for c in part)
        _FoldProgress.remove(self.partial_dir, task_name, fold, ctx.rank)
        psnr, ssims = [s[2] for s in everyone], [s[3] for s in everyone]
        if getattr(getattr(source, "protocol", None), "best_of_generations", False):
            # BAIR: each evaluation clip scores its best generation (of the ~100 in the fold)
            clips = [source.clip_id(source.index(fold, s[0] * bs + s[1])) for s in everyone]
            psnr, ssims = _best_per_clip(clips, psnr), _best_per_clip(clips, ssims)
        return {"psnr": psnr, "ssim": ssims, "lpips": [s[4] for s in everyone], "fvd": fvd, "is": inception,
                "class": [c[2] for c in classes]}


def _best_per_clip(clips: list[int], values: list[float]) -> list[float]:
    best: dict[int, float] = {}
    for clip, value in zip(clips, values):
        if clip not in best or value > best[clip]:
            best[clip] = value
    return [best[c] for c in sorted(best)]


@attrs.define
class _FoldProgress:
    """One rank's finished batches of a fold (scores, fake-feature statistics, class
    probabilities, shape-class hits), saved now and then so --resume continues inside the fold."""

    batches: set[int] = attrs.field(factory=set)
    scores: list = attrs.field(factory=list)
    fake: FeatureStats = attrs.field(factory=FeatureStats)
    probabilities: list = attrs.field(factory=list)
    classes: list = attrs.field(factory=list)  # [batch, clip, 1 if in its class]

    @staticmethod
    def _paths(partial_dir, task_name: str, fold: int, rank: int) -> tuple[Path, Path] | None:
        if partial_dir is None:
            return None
        stem = Path(partial_dir) / f"{task_name}-fold{fold}-rank{rank}"
        return stem.with_suffix(".progress.json"), stem.with_suffix(".fake.npz")

    @classmethod
    def load(cls, partial_dir, task_name: str, fold: int, rank: int) -> _FoldProgress:
        paths = cls._paths(partial_dir, task_name, fold, rank)
        if paths is None or not paths[0].is_file():
            return cls()
        record = json.loads(paths[0].read_text())
        fake = FeatureStats.load(paths[1]) if paths[1].is_file() else FeatureStats()
        return cls(set(record["batches"]), record["scores"], fake, record["probabilities"],
                   record.get("classes", []))

    def save(self, partial_dir, task_name: str, fold: int, rank: int) -> None:
        paths = self._paths(partial_dir, task_name, fold, rank)
        if paths is None:
            return
        if self.fake.count:
            self.fake.save(paths[1])
        record = {"batches": sorted(self.batches), "scores": self.scores, "probabilities": self.probabilities,
                  "classes": self.classes}
        with atomic_output(paths[0]) as tmp:  # written last: it names what the statistics hold
            tmp.write_text(json.dumps(record))

    @classmethod
    def remove(cls, partial_dir, task_name: str, fold: int, rank: int) -> None:
        paths = cls._paths(partial_dir, task_name, fold, rank)
        for path in paths or ():
            path.unlink(missing_ok=True)


def _partial_path(partial_dir, task_name: str, fold: int) -> Path | None:
    return None if partial_dir is None else Path(partial_dir) / f"{task_name}-fold{fold}.json"


def _load_partial(partial_dir, task_name: str, fold: int) -> dict | None:
    path = _partial_path(partial_dir, task_name, fold)
    if path is None or not path.is_file():
        return None
    return json.loads(path.read_text())


def _save_partial(partial_dir, task_name: str, fold: int, done: dict) -> None:
    path = _partial_path(partial_dir, task_name, fold)
    if path is not None:
        with atomic_output(path) as tmp:
            tmp.write_text(json.dumps(done))


def write_report(report: EvalReport, output: str | Path) -> Path:
    path = Path(output) / RESULT_FILE
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return path
