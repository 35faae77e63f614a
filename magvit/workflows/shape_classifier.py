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
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import attrs
import safetensors
import safetensors.torch
import torch
import torch.nn.functional as F
from tqdm import tqdm

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


class _ClipCache:
    """The clips of a split, rendered on first use and kept as uint8 (a quarter of the memory
    of fp32; at most 1/510 off), handed out as fp32."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.clips: torch.Tensor | None = None
        self.labels = torch.full((len(dataset),), -1, dtype=torch.int64)
        self.ready = torch.zeros(len(dataset), dtype=torch.bool)

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for i in indices[~self.ready[indices]].unique().tolist():
            item = self.dataset[i]
            if self.clips is None:
                self.clips = torch.empty((len(self.dataset), *item["video"].shape), dtype=torch.uint8)
            self.clips[i] = (item["video"].clamp(0, 1) * 255).round().to(torch.uint8)
            self.labels[i], self.ready[i] = item["label"], True
        return self.clips[indices].float() / 255, self.labels[indices]


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
                           progress: bool = False) -> ShapeClassifier:
    """A classifier trained for `steps` AdamW steps (10% warm-up, then cosine decay from `lr`)
    on `batch_size` clips of the `train` split (`data_config.make("train", seed=0)`; default
    `SyntheticShapes()`), in fp32, each step looking at `FRAMES_PER_CLIP` random frames of each
    clip. The same seed gives the same model on the same machine (it calls `torch.manual_seed`).
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
    cache = _ClipCache(data_config.make("train", seed=0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(steps))
    bar = tqdm(range(steps), desc="shape classifier", unit="step", disable=not progress)
    for _ in bar:
        clips, labels = cache.batch(torch.randint(len(cache.labels), (batch_size,), generator=g))
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
                              clips: int | None = None) -> float:
    """Accuracy on the first `clips` (default all) clips of the `eval` split."""
    data_config = SyntheticShapes() if data_config is None else data_config
    _check_labelled(data_config)
    videos, labels = _eval_split(data_config, clips)
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
    config it was trained on (`model.trained_on`) and `accuracy` (default
    `model.held_out_accuracy`)."""
    held_out = accuracy if accuracy is not None else getattr(model, "held_out_accuracy", None)
    meta = {"format": FORMAT, "config": model.config.to_dict(),
            "data": getattr(model, "trained_on", None) or {}, "held_out_accuracy": held_out}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path = Path(path)
    with atomic_output(path) as tmp:
        safetensors.torch.save_file(state, tmp, metadata={METADATA_KEY: json.dumps(meta)})
    return path


def read_metadata(path: str | Path) -> dict:
    """The metadata of a saved classifier: `format`, `config`, `data`, `held_out_accuracy`."""
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
    """The classifier saved at `path`, in eval mode, with `trained_on` (the data config dict) and
    `held_out_accuracy` set. With `expect` (a data config) a file made for other classes,
    frames or resolution raises `MagvitError`."""
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


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(prog="python -m magvit.workflows.shape_classifier",
                                     description="Train and save the synthetic shape classifier.")
    parser.add_argument("--out", required=True, type=Path, help="the .safetensors file to write")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--data-json", default="{}",
                        help="SyntheticShapes fields as JSON, e.g. '{\"background\": \"flat\"}'")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: OMP_NUM_THREADS, else the usable cores)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    apply_thread_policy(args.threads)
    try:
        fields = json.loads(args.data_json)
        data_config = SyntheticShapes(**fields)
    except (ValueError, TypeError) as exc:
        parser.error(f"--data-json: {exc}")
    model = train_shape_classifier(data_config, steps=args.steps, batch_size=args.batch_size,
                                   seed=args.seed, lr=args.lr, progress=not args.no_progress)
    model.held_out_accuracy = evaluate_shape_classifier(model, data_config)
    save_shape_classifier(model, args.out)
    print(f"held-out accuracy {model.held_out_accuracy:.4f} on {data_config.eval_clips} "
          f"eval clips; wrote {args.out}")
    return model.held_out_accuracy


if __name__ == "__main__":
    main()

