"""`magvit tasks list|preview`: the registered tasks' masked shares, and a picture of one task."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from magvit.cli.arguments import integer
from magvit.errors import MagvitError
from magvit.registry import registries

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _factors(text: str) -> tuple[int, int, int]:
    try:
        factors = tuple(int(v) for v in text.split(","))
    except ValueError:
        factors = ()
    if len(factors) != 3 or min(factors) < 1:
        raise argparse.ArgumentTypeError(f"must be three positive integers like 4,8,8, got {text!r}")
    return factors


def _task_config(pairs: list[str]) -> dict:
    config = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        try:
            config[key.strip()] = tomllib.loads(f"v = {value}")["v"] if sep else None
        except tomllib.TOMLDecodeError:
            config[key.strip()] = None
        if config[key.strip()] is None:
            raise MagvitError(f"--set {pair!r}: expected KEY=VALUE with VALUE in TOML, e.g. width=0.25")
    return config


def register(sub) -> None:
    p = sub.add_parser("tasks", help="inspect the conditional generation tasks")
    tsub = p.add_subparsers(dest="tasks_command", metavar="ACTION", required=True)
    lst = tsub.add_parser("list", help="masked pixel and token shares of every task (Table 12)")
    lst.add_argument("--frames", type=integer(1), default=16, help="clip length (default 16, the paper's)")
    lst.add_argument("--resolution", type=integer(1), default=128, help="frame size (default 128, the paper's)")
    lst.add_argument("--factors", type=_factors, default=(4, 8, 8), help="tokenizer factors t,h,w")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(func=run_list)

    pre = tsub.add_parser("preview", help="draw a task's condition region and padding over a clip")
    pre.add_argument("--task", required=True, help="a task name (magvit registry list tasks)")
    pre.add_argument("--set", dest="config", action="append", default=[], metavar="KEY=VALUE",
                     help="task config, e.g. --set width=0.25 --set 'padding=\"edge\"'")
    pre.add_argument("--frames", type=integer(1), default=16, help="clip length (default 16)")
    pre.add_argument("--resolution", type=integer(1), default=128, help="frame size (default 128)")
    pre.add_argument("--synthetic", action="store_true", help="draw on a generated clip, no INPUT")
    pre.add_argument("paths", nargs="+", metavar="[INPUT] OUT.png",
                     help="the video to draw on (not with --synthetic), then the PNG to write")
    pre.set_defaults(func=run_preview)


def masked_shares(task, clip, factors) -> tuple[float, float]:
    latent = tuple(c // f for c, f in zip(clip, factors))
    pixels, tokens = task.pixel_mask(clip), task.latent_mask(latent, factors)
    return 100 * (1 - pixels.float().mean().item()), 100 * (1 - tokens.float().mean().item())


def run_list(args) -> int:
    clip = (args.frames, args.resolution, args.resolution)
    if any(c % f for c, f in zip(clip, args.factors)):
        raise MagvitError(
            f"a clip of {'x'.join(map(str, clip))} is not divisible by the tokenizer factors "
            f"{','.join(map(str, args.factors))}; use --frames and --resolution that are multiples of them"
        )
    if not registries().tasks.names():
        raise MagvitError(f"no task is registered{_blocked_note()}; `magvit plugins` shows what loaded")
    rows = {}
    for name in registries().tasks.names():
        task = registries().tasks.create(name)
        try:
            pixels, tokens = masked_shares(task, clip, args.factors)
        except MagvitError as exc:
            rows[name] = {"error": str(exc)}
            continue
        rows[name] = {"masked_pixels": pixels, "masked_tokens": tokens,
                      "needs_class": task.needs_class, "padding": _padding_name(task)}
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"clip {'x'.join(map(str, clip))}, tokenizer factors {args.factors}")
    print(f"{'task':<8}{'masked pixels':>15}{'masked tokens':>15}  class  padding")
    for name, row in rows.items():
        if "error" in row:
            print(f"{name:<8}  {row['error']}")
            continue
        print(f"{name:<8}{row['masked_pixels']:>14.2f}%{row['masked_tokens']:>14.2f}%  "
              f"{'yes' if row['needs_class'] else 'no':<5}  {row['padding']}")
    return 0


def _blocked_note() -> str:
    blocked = registries().blocked
    return f" (blocked plugins: {', '.join(blocked)})" if blocked else ""


def _padding_name(task) -> str:
    padding = getattr(task, "padding", None)
    return getattr(padding, "kind", "-")


def _clip(args) -> torch.Tensor:
    if args.synthetic:
        dataset = registries().datasets.create("synthetic", frames=args.frames, resolution=args.resolution)
        return dataset.make("eval", 0)[0]["video"]
    from magvit.core.video_io import read_video

    video = read_video(args.paths[0], frames=args.frames, resolution=args.resolution)
    if video.shape[1] < args.frames:
        raise MagvitError(f"{args.paths[0]} has {video.shape[1]} frames, fewer than --frames {args.frames}")
    return video


def run_preview(args) -> int:
    from magvit.core.task_preview import preview_image
    from magvit.core.video_io import write_image

    if len(args.paths) != (1 if args.synthetic else 2):
        raise MagvitError("give INPUT and OUT.png, or --synthetic and OUT.png")
    task = registries().tasks.create(args.task, **_task_config(args.config))
    video = _clip(args)
    padded, mask = task.condition(video.unsqueeze(0))
    out = write_image(Path(args.paths[-1]), preview_image(video, padded[0], mask.cpu()))
    share = 100 * (1 - mask.float().mean().item())
    print(f"{out}: task {args.task}, {share:.2f}% of pixels to generate, "
          f"padding {_padding_name(task)}")
    return 0
