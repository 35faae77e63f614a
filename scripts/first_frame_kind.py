"""Why frame prediction falls short on `synthetic` clips: where the first frame's shape kind is lost.

The class of a synthetic clip fixes both the shape kind and the direction of motion, so FP (one
given frame) is well posed only if the tokens of that frame keep the kind. This prints, for a
stage-2 model (default: the bundled one):

1. direction: the share of FP and CFP samples (seed 0, no condition fit) that move in their
   class's direction, judged by which class direction's shift best maps frame 0 onto frame 2,
   and FP's gain over copying the frame on the samples that do and do not;
2. kind: a small CNN trained on true first frames, then asked the kind of the first frame of
   round trips: of the moving clip, of the moving clip's first latent frame repeated, of FP's
   padded clip (the first frame repeated: what the transformer gets), and of that padded clip's
   first latent frame followed by the true later ones;
3. kind in the tokens: the same CNN trained on the code vectors of the first latent frame
   (FP's padded clip's, and the moving clip's) instead of pixels: what the tokens themselves
   hold, which no decoder stands between (the transformer reads tokens, not pixels).

    python scripts/first_frame_kind.py                      # 64 demo clips, 8,192 training clips
    python scripts/first_frame_kind.py --checkpoint runs/x --clips 16 --train-clips 1024 --steps 200
    python scripts/first_frame_kind.py --tokenizer runs/tok   # part 2 alone, on the run's own clips
    python scripts/first_frame_kind.py --tokenizer default --data-json '{"min_radius": 0.18, "max_radius": 0.26}'

`--tokenizer` (a stage-1 run, or a bundle) measures part 2 alone, for a tokenizer that has no
transformer yet, on the clips it was trained on; `--data-json` changes fields of those clips
(`SyntheticShapes`), to ask a tokenizer about clips it never saw.
"""

from __future__ import annotations

import argparse
import json
import sys

import attrs
import torch
import torch.nn.functional as F

from magvit.core.data.synthetic import MOTION_CLASSES
from magvit.core.metrics import masked_psnr, psnr
from magvit.pipeline import Pipeline
from magvit.registry import registries
from magvit.workflows.tokenizer_data import trained_data
from magvit.workflows.train_tokenizer import load_tokenizer


def class_steps(config) -> list[tuple[int, int]]:
    """Each class's motion in whole pixels per frame (x, y), as the dataset moves it."""
    steps = []
    for _, (dx, dy) in MOTION_CLASSES[:config.num_classes]:
        if config.per_axis_speed:
            dx, dy = (float(torch.sign(torch.tensor(d))) for d in (dx, dy))
        pixels = config.speed * config.resolution
        steps.append((round(dx * pixels), round(dy * pixels)))
    return steps


def direction(video: torch.Tensor, steps: list[tuple[int, int]], frames: int = 2) -> torch.Tensor:
    """`(B, 3, T, H, W)` -> `(B,)` the class whose motion best maps frame 0 onto frame `frames`
    (the frame's border left out, where shapes bounce and shifted pixels wrap)."""
    first, later = video[:, :, 0], video[:, :, frames]
    border = max(abs(v) for step in steps for v in step) * frames + 2
    errors = []
    for dx, dy in steps:
        shifted = torch.roll(first, shifts=(dy * frames, dx * frames), dims=(2, 3))
        errors.append((shifted - later)[..., border:-border, border:-border].pow(2).flatten(1).mean(1))
    return torch.stack(errors, 1).argmin(1)


def kind_probe(frames: torch.Tensor, labels: torch.Tensor, classes: int, steps: int,
               stride: int = 2) -> torch.nn.Module:
    """A small CNN trained on `frames (N, C, H, W)` (pixels, or code vectors with `stride` 1:
    an 8x8 grid of tokens halved would merge the 4x4-pixel patches a shape spans) to tell their
    class."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(frames.shape[1], 32, 3, padding=1), torch.nn.GELU(),
        torch.nn.Conv2d(32, 64, 3, padding=1, stride=stride), torch.nn.GELU(),
        torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.GELU(),
        torch.nn.AdaptiveMaxPool2d(1), torch.nn.Flatten(), torch.nn.Linear(64, classes))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(steps):
        pick = torch.randint(len(frames), (128,))
        loss = F.cross_entropy(net(frames[pick]), labels[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--clips", type=int, default=64, help="demo (eval-split) clips to generate")
    parser.add_argument("--train-clips", type=int, default=8192, help="training clips for the CNN")
    parser.add_argument("--held-out", type=int, default=1024, help="clips the CNN is scored on")
    parser.add_argument("--steps", type=int, default=1500, help="the CNN's training steps")
    parser.add_argument("--tokenizer", default="", help="the kind part alone, for this tokenizer "
                        "(a stage-1 run or a bundle) on the clips it was trained on")
    parser.add_argument("--data-json", default="", help="fields of SyntheticShapes to change, as JSON")
    args = parser.parse_args(argv)
    source = args.tokenizer or args.checkpoint
    if args.tokenizer:
        pipe, tok = None, load_tokenizer(checkpoint=args.tokenizer).float()
        data_section = trained_data(args.tokenizer)
    else:
        pipe = Pipeline.from_checkpoint(args.checkpoint, device="cpu", refine_steps=0)
        tok, data_section = pipe.tokenizer, pipe.bundle.experiment.data
    config = getattr(data_section, "config", None)
    if not hasattr(config, "per_axis_speed"):
        parser.error(f"{source} was not trained on `synthetic` clips; this measures those only")
    if args.data_json:
        try:
            config = attrs.evolve(config, **json.loads(args.data_json))
        except (ValueError, TypeError) as exc:
            parser.error(f"--data-json: {exc}")
    out: dict[str, float] = {}
    if pipe is not None:
        out.update(directions(pipe, config, args.clips))
    fp = pipe.task("fp") if pipe is not None else registries().tasks.create("fp")
    train = config.make("train", seed=0)
    count = args.train_clips + args.held_out
    clips = torch.stack([train[i]["video"] for i in range(count)])   # the CNNs train on the first train_clips
    kinds = torch.tensor([train[i]["label"] for i in range(count)])
    tokens = {"moving": encode(tok, clips), "padded": encode(tok, fp.condition(clips)[0])}  # each clip once
    out.update(kinds_kept(tok, clips, tokens, kinds, config, args))
    out.update(kinds_in_tokens(tok, tokens, kinds, config, args))
    for name, value in out.items():
        print(f"{name:<30} {value:8.3f}")
    return out


def directions(pipe: Pipeline, config, clips: int) -> dict[str, float]:
    """Part 1: how often FP's and CFP's samples move their class's way, and FP's gains."""
    steps = class_steps(config)
    out: dict[str, float] = {}
    demo = config.make("eval", seed=0)
    video = torch.stack([demo[i]["video"] for i in range(clips)])
    labels = torch.tensor([demo[i]["label"] for i in range(clips)])
    out["truth_direction"] = float((direction(video, steps) == labels).float().mean())
    for task in ("fp", "cfp"):
        result = pipe.generate(task, video, label=labels if task == "cfp" else None, seed=0)
        right = direction(result.video, steps) == labels
        gain = masked_psnr(result.video, video, ~result.pixel_mask) - masked_psnr(
            result.condition, video, ~result.pixel_mask)
        out[f"{task}_direction"] = float(right.float().mean())
        out[f"{task}_gain_right"] = float(gain[right].mean()) if right.any() else float("nan")
        out[f"{task}_gain_wrong"] = float(gain[~right].mean()) if (~right).any() else float("nan")
    return out


def encode(tok: torch.nn.Module, clips: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """`(N, 3, T, H, W)` clips -> `(N, t, h, w)` their tokens, `batch` clips at a time."""
    with torch.no_grad():
        return torch.cat([tok.encode(clips[s:s + batch]) for s in range(0, len(clips), batch)])


def kinds_kept(tok: torch.nn.Module, clips, tokens, kinds, config, args) -> dict[str, float]:
    """Part 2: the share of first frames whose kind a CNN trained on true ones still tells, on
    round trips through `tok` of the held-out clips (`tokens`: every clip's, moving and FP's
    padded clip)."""
    out: dict[str, float] = {}
    first = args.train_clips
    probe = kind_probe(clips[:first, :, 0], kinds[:first], config.num_classes, args.steps)
    held, held_kinds = clips[first:], kinds[first:]
    moving, padded = tokens["moving"][first:], tokens["padded"][first:]     # (B, t, h, w)
    with torch.no_grad():
        score = lambda frames: float((probe(frames).argmax(1) == held_kinds).float().mean())  # noqa: E731
        decode = lambda tokens: tok.decode(tokens).float().clamp(0, 1)[:, :, 0]  # noqa: E731
        mixed = moving.clone()
        mixed[:, 0] = padded[:, 0]
        out["kind_true_frame"] = score(held[:, :, 0])
        out["kind_moving_round_trip"] = score(decode(moving))
        out["kind_first_latent_repeated"] = score(decode(moving[:, :1].expand_as(moving).contiguous()))
        out["kind_fp_padded_round_trip"] = score(decode(padded))
        out["kind_padded_first_true_later"] = score(decode(mixed))
        out["round_trip_psnr"] = float(psnr(tok.decode(moving), held).mean())
    return out


def first_latent_vectors(tok: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """`(N, t, h, w)` tokens -> `(N, D, h, w)` the code vectors of their first latent frame."""
    with torch.no_grad():
        return tok.quantizer.lookup(tokens[:, :1]).float()[:, :, 0]       # (N, D, 1, h, w) -> (N, D, h, w)


def kinds_in_tokens(tok: torch.nn.Module, tokens, kinds, config, args) -> dict[str, float]:
    """Part 3: the share of held-out clips whose kind a CNN trained on the first latent frame's
    code vectors tells, for FP's padded clips and for the moving clips (each its own CNN)."""
    first, out = args.train_clips, {}
    for name in ("padded", "moving"):
        vectors = first_latent_vectors(tok, tokens[name])
        probe = kind_probe(vectors[:first], kinds[:first], config.num_classes, args.steps, stride=1)
        with torch.no_grad():
            found = probe(vectors[first:]).argmax(1)
        out[f"kind_tokens_{name}_latent0"] = float((found == kinds[first:]).float().mean())
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
