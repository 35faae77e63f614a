"""Train, check, save and load the shape classifier that scores class-conditional generation.

The CG score of the `synthetic` dataset is `cg_accuracy`: the share of generated clips that
`magvit.core.shape_classifier.ShapeClassifier` assigns to the class they were asked for. The
classifier trains on the dataset's `train` split (`train_shape_classifier`), is checked on its
`eval` split (`evaluate_shape_classifier`) and is saved as one safetensors file whose metadata
holds its config, the data config it was trained on and its held-out accuracy
(`save_shape_classifier`); `load_shape_classifier(path, expect=data_config)` refuses a file made
for other classes, frames or resolution.

(Re)make a file from the command line (prints the held-out accuracy at the end)::

    python -m magvit.workflows.shape_classifier --out shapes.safetensors
    python -m magvit.workflows.shape_classifier --out flat.safetensors --steps 400 --seed 1 \\
        --data-json '{"background": "flat", "palette": 6, "min_radius": 0.18, "max_radius": 0.26}'

`--data-json` sets fields of `SyntheticShapes` (the defaults: 8 frames of 32x32, 4 classes).
The defaults (300 steps of 32 clips) take about 15 s on one CPU core and reach 99.6-100%
held-out accuracy on `SyntheticShapes()` and on the flat, 6-colour, large-shape variant above.
On cores shared with other work, also set `OMP_WAIT_POLICY=PASSIVE` (see `magvit.core.threads`).

CG samples come out of a tokenizer's decoder, which blurs small shapes: a classifier that only
saw clean clips put 33% of the bundled tokenizer's own round trips in their class (chance is
25%), so it could not tell a good CG sample from a bad one. `--tokenizer CHECKPOINT` trains on
that model's round trips too (each clip of a batch is its round trip with probability 1/2; the
data defaults to the model's), and reports the held-out accuracy on both. The bundled
classifier was made with `--tokenizer default --steps 1200` (magvit/weights/README.md).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path

import attrs
import safetensors
import safetensors.torch
import torch
import torch.nn.functional as F
from tqdm import tqdm

from magvit.core.allocator import keep_freed_memory
from magvit.core.data.synthetic import SyntheticShapes
from magvit.core.files import atomic_output
from magvit.core.shape_classifier import ShapeClassifier, ShapeClassifierConfig, accuracy
from magvit.core.threads import apply_thread_policy
from magvit.errors import MagvitError

METADATA_KEY = "magvit.shape_classifier"
FORMAT = 1
CHECKED_FIELDS = ("num_classes", "frames", "resolution")
FRAMES_PER_CLIP = 2  # training looks at this many random frames of each clip per step
REMAKE = "python -m magvit.workflows.shape_classifier --out PATH --data-json '{...}'"
ROUND_TRIP_SHARE = 0.5  # with a round trip, the chance that a training clip is its round trip

# clips (B, 3, T, H, W) in [0, 1] -> what a tokenizer makes of them, the same shape, in [0, 1]
RoundTrip = Callable[[torch.Tensor], torch.Tensor]


def _to_uint8(clips: torch.Tensor) -> torch.Tensor:
    return (clips.float().clamp(0, 1) * 255).round().to(torch.uint8)


def _round_trip_of(round_trip: RoundTrip, clips: torch.Tensor) -> torch.Tensor:
    out = round_trip(clips)
    if tuple(out.shape) != tuple(clips.shape):
        raise MagvitError(f"the round trip turned clips of shape {tuple(clips.shape)} into "
                          f"{tuple(out.shape)}; it must keep the shape (a tokenizer for these clips)")
    if not bool(torch.isfinite(out).all()):
        raise MagvitError("the round trip returned NaN or infinite pixels")
    return out.float().cpu()


class _ClipCache:
    """The clips of a split (and, with `round_trip`, their round trips), made on first use and
    kept as uint8 (a quarter of the memory of fp32; at most 1/510 off), handed out as fp32."""

    def __init__(self, dataset, round_trip: RoundTrip | None = None):
        self.dataset, self.round_trip = dataset, round_trip
        self.clips: torch.Tensor | None = None
        self.decoded: torch.Tensor | None = None
        self.labels = torch.full((len(dataset),), -1, dtype=torch.int64)
        self.ready = torch.zeros(len(dataset), dtype=torch.bool)

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """`(clips, labels, round trips or None)` of `indices`."""
        new = indices[~self.ready[indices]].unique()
        for i in new.tolist():
            item = self.dataset[i]
            if self.clips is None:
                self.clips = torch.empty((len(self.dataset), *item["video"].shape), dtype=torch.uint8)
            self.clips[i] = _to_uint8(item["video"])
            self.labels[i], self.ready[i] = item["label"], True
        if self.round_trip is not None and len(new):
            if self.decoded is None:
                self.decoded = torch.empty_like(self.clips)
            # one call per step for the clips it has not seen: a tokenizer batches them
            self.decoded[new] = _to_uint8(_round_trip_of(self.round_trip, self.clips[new].float() / 255))
        decoded = None if self.decoded is None else self.decoded[indices].float() / 255
        return self.clips[indices].float() / 255, self.labels[indices], decoded


def _check_labelled(data_config) -> None:
    if getattr(data_config, "num_classes", 0) < 2:
        raise MagvitError(
            f"a shape classifier needs a labelled dataset with at least 2 classes; this one has "
            f"num_classes={getattr(data_config, 'num_classes', 0)} (set data num_classes to 2..4)"
        )


def _data_dict(data_config) -> dict:
    return attrs.asdict(data_config) if attrs.has(type(data_config)) else {}


def _warmup_cosine(steps: int):
    warmup = max(1, steps // 10)

    def factor(step: int) -> float:
        decay = min(1.0, max(0.0, (step - warmup) / max(1, steps - warmup)))
        return min((step + 1) / warmup, 0.5 * (1 + math.cos(math.pi * decay)))

    return factor


def train_shape_classifier(data_config=None, *, steps: int = 300, batch_size: int = 32,
                           seed: int = 0, lr: float = 3e-3, width: int = 16,
                           progress: bool = False, round_trip: RoundTrip | None = None,
                           round_trip_source: str | None = None) -> ShapeClassifier:
    """A classifier trained for `steps` AdamW steps (10% warm-up, then cosine decay from `lr`)
    on `batch_size` clips of the `train` split (`data_config.make("train", seed=0)`; default
    `SyntheticShapes()`), in fp32, each step looking at `FRAMES_PER_CLIP` random frames of each
    clip. With `round_trip` (e.g. `Pipeline.roundtrip`), each clip of a batch is replaced by its
    round trip with probability `ROUND_TRIP_SHARE`, so the classifier also knows the shapes as a
    tokenizer's decoder draws them; `round_trip_source` names that tokenizer in the saved file.
    The same seed gives the same model on the same machine (it calls `torch.manual_seed`).
    `model.trained_on` is the data config as a dict."""
    data_config = SyntheticShapes() if data_config is None else data_config
    _check_labelled(data_config)
    if steps < 1 or batch_size < 1:
        raise MagvitError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    config = ShapeClassifierConfig(num_classes=data_config.num_classes, frames=data_config.frames,
                                   resolution=data_config.resolution, width=width)
    model = ShapeClassifier(config).train()
    model.trained_on = _data_dict(data_config)
    model.round_trip_source = round_trip_source if round_trip is not None else None
    cache = _ClipCache(data_config.make("train", seed=0), round_trip)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(steps))
    bar = tqdm(range(steps), desc="shape classifier", unit="step", disable=not progress)
    for _ in bar:
        clips, labels, decoded = cache.batch(torch.randint(len(cache.labels), (batch_size,), generator=g))
        if decoded is not None:
            use = torch.rand(batch_size, generator=g) < ROUND_TRIP_SHARE
            clips = torch.where(use[:, None, None, None, None], decoded, clips)
        t = clips.shape[2]
        pick = torch.randint(t, (batch_size, min(FRAMES_PER_CLIP, t)), generator=g)
        frames = clips.transpose(1, 2)[torch.arange(batch_size)[:, None], pick]  # (B, k, 3, H, W)
        logits = model.frame_logits(frames.flatten(0, 1))
        loss = F.cross_entropy(logits, labels.repeat_interleave(pick.shape[1]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return model.eval()


def _eval_split(data_config, clips: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    dataset = data_config.make("eval", seed=0)
    count = len(dataset) if clips is None else min(clips, len(dataset))
    items = [dataset[i] for i in range(count)]
    return torch.stack([it["video"] for it in items]), torch.tensor([it["label"] for it in items])


def evaluate_shape_classifier(model: ShapeClassifier, data_config=None,
                              clips: int | None = None, round_trip: RoundTrip | None = None) -> float:
    """Accuracy on the first `clips` (default all) clips of the `eval` split, or, with
    `round_trip`, on their round trips."""
    data_config = SyntheticShapes() if data_config is None else data_config
    _check_labelled(data_config)
    videos, labels = _eval_split(data_config, clips)
    if round_trip is not None:
        videos = torch.cat([_round_trip_of(round_trip, part) for part in videos.split(64)])
    return accuracy(model, videos, labels)


def cg_accuracy(classifier: ShapeClassifier, videos: torch.Tensor, labels) -> float:
    """The share of generated `videos (B, 3, T, H, W)` that `classifier` assigns to the class
    each was generated for (`labels`, (B,) in 0..num_classes-1)."""
    labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
    if len(labels) and not bool(((labels >= 0) & (labels < classifier.num_classes)).all()):
        raise MagvitError(f"CG labels must be in 0..{classifier.num_classes - 1} (the classifier's "
                          f"classes), got {sorted(set(labels.tolist()))}")
    return accuracy(classifier, videos, labels)


def save_shape_classifier(model: ShapeClassifier, path: str | Path, *,
                          accuracy: float | None = None) -> Path:
    """Write `model` to `path` (safetensors): weights, plus metadata with its config, the data
    config it was trained on (`model.trained_on`), `accuracy` (default
    `model.held_out_accuracy`) and, when it also trained on a tokenizer's round trips, which
    one (`round_trip`) and its accuracy on the held-out round trips."""
    held_out = accuracy if accuracy is not None else getattr(model, "held_out_accuracy", None)
    meta = {"format": FORMAT, "config": model.config.to_dict(),
            "data": getattr(model, "trained_on", None) or {}, "held_out_accuracy": held_out,
            "round_trip": getattr(model, "round_trip_source", None),
            "held_out_roundtrip_accuracy": getattr(model, "held_out_roundtrip_accuracy", None)}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path = Path(path)
    with atomic_output(path) as tmp:
        safetensors.torch.save_file(state, tmp, metadata={METADATA_KEY: json.dumps(meta)})
    return path


def read_metadata(path: str | Path) -> dict:
    """The metadata of a saved classifier: `format`, `config`, `data`, `held_out_accuracy`,
    and in files saved since round trips could be trained on, `round_trip` and
    `held_out_roundtrip_accuracy` (None when it saw clean clips only)."""
    path = Path(path)
    if not path.is_file():
        raise MagvitError(f"no shape classifier at {path}; make one with {REMAKE}")
    try:
        with safetensors.safe_open(path, framework="pt") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
    except (OSError, ValueError, safetensors.SafetensorError) as exc:
        raise MagvitError(f"{path} is not a readable safetensors file ({exc})") from exc
    if raw is None:
        raise MagvitError(f"{path} is not a shape classifier file (no {METADATA_KEY!r} metadata); "
                          f"make one with {REMAKE}")
    meta = json.loads(raw)
    if meta.get("format") != FORMAT:
        raise MagvitError(f"{path} has shape classifier format {meta.get('format')!r}; this "
                          f"version reads format {FORMAT}: remake it with {REMAKE}")
    return meta


def check_matches(config: ShapeClassifierConfig, data_config, source: str = "the classifier") -> None:
    """Raise `MagvitError` naming each of classes, frames and resolution that differ."""
    wrong = [f"{name}={getattr(config, name)} but the data has {name}={getattr(data_config, name)}"
             for name in CHECKED_FIELDS if getattr(config, name) != getattr(data_config, name)]
    if wrong:
        data = json.dumps({n: getattr(data_config, n) for n in CHECKED_FIELDS})
        raise MagvitError(f"{source} was trained on other clips: " + "; ".join(wrong) +
                          f"; train one for this data: python -m magvit.workflows.shape_classifier "
                          f"--out PATH --data-json '{data}'")


def load_shape_classifier(path: str | Path, *, expect=None) -> ShapeClassifier:
    """The classifier saved at `path`, in eval mode, with `trained_on` (the data config dict),
    `held_out_accuracy`, `round_trip_source` and `held_out_roundtrip_accuracy` set. With
    `expect` (a data config) a file made for other classes, frames or resolution raises
    `MagvitError`."""
    meta = read_metadata(path)
    try:
        config = ShapeClassifierConfig.from_dict(meta["config"])
    except (KeyError, TypeError) as exc:
        raise MagvitError(f"{path}: unreadable shape classifier config ({exc}); remake it with "
                          f"{REMAKE}") from exc
    if expect is not None:
        check_matches(config, expect, source=f"shape classifier {path}")
    model = ShapeClassifier(config)
    try:
        model.load_state_dict(safetensors.torch.load_file(path))
    except RuntimeError as exc:
        raise MagvitError(f"{path}: weights do not fit its config ({exc}); remake it with "
                          f"{REMAKE}") from exc
    model.trained_on, model.held_out_accuracy = meta["data"], meta["held_out_accuracy"]
    model.round_trip_source = meta.get("round_trip")
    model.held_out_roundtrip_accuracy = meta.get("held_out_roundtrip_accuracy")
    return model.eval()


# The classifier shipped for the bundled default model's clips (`magvit demo` scores CG with it).
BUNDLED = Path(__file__).resolve().parent.parent / "weights" / "shape_classifier.safetensors"
# Fields that only say how many clips a split has; they do not change what a clip looks like.
_SPLIT_SIZES = ("train_clips", "eval_clips")


def classifier_for(data_config, path: str | Path | None = None) -> ShapeClassifier | None:
    """The classifier that scores CG samples of `data_config`'s clips: the one at `path`
    (checked against the data's classes, frames and resolution), else the bundled one when it
    was trained on clips drawn exactly like these, else None (no classifier fits; the demo
    then reports no CG accuracy)."""
    if path is not None:
        return load_shape_classifier(path, expect=data_config)
    if not isinstance(data_config, SyntheticShapes) or data_config.num_classes < 2 or not BUNDLED.is_file():
        return None
    wanted = {k: v for k, v in _data_dict(data_config).items() if k not in _SPLIT_SIZES}
    # Rebuilt through the data class, a field added after the file was saved takes its default,
    # which draws the clips as before; a field this version no longer has matches nothing.
    try:
        saved = type(data_config)(**read_metadata(BUNDLED)["data"])
    except (TypeError, ValueError):
        return None
    trained_on = {k: v for k, v in _data_dict(saved).items() if k not in _SPLIT_SIZES}
    return load_shape_classifier(BUNDLED) if trained_on == wanted else None


def _model_round_trip(checkpoint: str, parser: argparse.ArgumentParser):
    """(`Pipeline.roundtrip` of the model at `checkpoint`, its clip shape (T, H, W), its data
    config or None)."""
    from magvit.workflows.pipeline import Pipeline  # the model stack, only when asked for

    try:
        pipe = Pipeline.from_checkpoint(checkpoint)
    except MagvitError as exc:
        parser.error(f"--tokenizer {checkpoint}: {exc}")
    data = pipe.bundle.experiment.data
    return pipe.roundtrip, pipe.clip_shape, (data.build() if data is not None else None)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(prog="python -m magvit.workflows.shape_classifier",
                                     description="Train and save the synthetic shape classifier.")
    parser.add_argument("--out", required=True, type=Path, help="the .safetensors file to write")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--data-json", default=None,
                        help="SyntheticShapes fields as JSON, e.g. '{\"background\": \"flat\"}' "
                             "(default: SyntheticShapes(), or the --tokenizer model's data)")
    parser.add_argument("--tokenizer", metavar="CHECKPOINT", default=None,
                        help="also train on the round trips of this model's tokenizer (a run "
                             "directory, an exported bundle or 'default'), as CG samples look")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: OMP_NUM_THREADS, else the usable cores)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    keep_freed_memory()
    apply_thread_policy(args.threads)
    round_trip, model_data = None, None
    if args.tokenizer is not None:
        round_trip, clip_shape, model_data = _model_round_trip(args.tokenizer, parser)
    if args.data_json is None and isinstance(model_data, SyntheticShapes):
        data_config = model_data
    else:
        try:
            data_config = SyntheticShapes(**json.loads(args.data_json or "{}"))
        except (ValueError, TypeError) as exc:
            parser.error(f"--data-json: {exc}")
    if round_trip is not None:
        wanted = (data_config.frames, data_config.resolution, data_config.resolution)
        if tuple(clip_shape) != wanted:
            parser.error(f"--tokenizer {args.tokenizer} takes clips of (frames, height, width) = "
                         f"{tuple(clip_shape)} but the data has {wanted}; set frames and "
                         f"resolution in --data-json to the model's")
    try:
        model = train_shape_classifier(data_config, steps=args.steps, batch_size=args.batch_size,
                                       seed=args.seed, lr=args.lr, progress=not args.no_progress,
                                       round_trip=round_trip, round_trip_source=args.tokenizer)
        model.held_out_accuracy = evaluate_shape_classifier(model, data_config)
        line = f"held-out accuracy {model.held_out_accuracy:.4f} on {data_config.eval_clips} eval clips"
        if round_trip is not None:
            model.held_out_roundtrip_accuracy = evaluate_shape_classifier(
                model, data_config, round_trip=round_trip)
            line += f", {model.held_out_roundtrip_accuracy:.4f} on their round trips through {args.tokenizer}"
    except MagvitError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    save_shape_classifier(model, args.out)
    print(f"{line}; wrote {args.out}")
    return model.held_out_accuracy


if __name__ == "__main__":
    main()

