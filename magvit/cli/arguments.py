"""Argument types shared by the sub-commands: each value is checked when the command line is
parsed, before any model loads, and a bad one ends in `magvit: error: argument --x: ...`."""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

from magvit.core.video_io import WRITABLE_SUFFIXES
from magvit.errors import MagvitError


class Parser(argparse.ArgumentParser):
    """argparse with magvit's error line (`magvit: error: ...`, exit 2) for every sub-command."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        command = self.prog.removeprefix("magvit").strip()
        self.exit(2, f"magvit: error: {command + ': ' if command else ''}{message}\n")


def integer(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def batch_size(text: str) -> int | str:
    """A batch size of at least 1, or "auto" (as many as fit in free memory)."""
    if text == "auto":
        return text
    try:
        return integer(1)(text)
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"{error}; or give auto") from None


batch_size.__name__ = "batch size"


def number(minimum: float = -math.inf, *, above: bool = False):
    """A finite float >= minimum (> minimum with `above`)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if value < minimum or (above and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if above else '>='} {minimum:g}, got {value:g}")
        return value

    parse.__name__ = "number"
    return parse


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def device(text: str) -> str:
    if not _DEVICE.match(text):
        raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda or cuda:N, got {text!r}")
    return text


def input_video(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a video file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"video {text} does not exist")
    return path


def output_video(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in WRITABLE_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"{text}: cannot write a video with suffix {path.suffix or '(none)'!r}; use one of "
            f"{', '.join(WRITABLE_SUFFIXES)}")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name such as {text}/out.mp4")
    return path


def output_folder(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; give a folder")
    return path


def refuse_overwriting(outputs, inputs) -> None:
    """Raise if writing any of `outputs` would replace one of `inputs` (the user's files)."""
    given = {Path(p).resolve() for p in inputs if p is not None and Path(p).exists()}
    for out in outputs:
        if Path(out).resolve() in given:
            raise MagvitError(f"{out} is also an input; writing it would destroy the input. "
                              "Choose another output name")


DECODER_OPTIONS = ("steps", "schedule", "temperature", "top_k", "guidance_scale", "kv_cache")


def add_decoder_options(parser: argparse.ArgumentParser) -> None:
    """`--decoder` and the decoder config keys a command may override."""
    d = parser.add_argument_group("decoder (default: the experiment's [decoder])")
    d.add_argument("--decoder", help="commit, maskgit, autoregressive, or a plugin's decoder")
    d.add_argument("--steps", type=integer(1), help="decoding steps (COMMIT and MaskGIT; the paper's 12)")
    d.add_argument("--schedule", help="mask schedule name (cosine, linear, pow, log, exp)")
    d.add_argument("--temperature", type=number(0),
                   help="COMMIT and MaskGIT: the noise on which sampled tokens each step keeps, annealed to 0 "
                        "(the paper's 4.5); autoregressive: the sampling temperature")
    d.add_argument("--top-k", type=integer(0), help="sample among the k likeliest tokens (0 = all)")
    d.add_argument("--guidance-scale", type=number(),
                   help="classifier-free guidance of the decoder: logits + S x (logits - unconditional "
                        "logits); 0 = off")
    d.add_argument("--no-kv-cache", dest="kv_cache", action="store_false", default=None,
                   help="autoregressive: recompute the full sequence every step")
    d.add_argument("--refine-steps", type=integer(0), metavar="N",
                   help="steps that fit the generated tokens to the given pixels through the tokenizer's "
                        "decoder (default 10 where the tokenizer allows it; 0 = the tokens as generated)")
    d.add_argument("--class-search", type=integer(0), metavar="N",
                   help="FP and other tasks with a class-conditional twin (CFP): run the twin N times for "
                        "every class and keep the result that best redraws the given pixels (default 4 "
                        "for a model with a class reader, 2 for one with classes and none; 0 = off)")
    d.add_argument("--read-classes", type=integer(0), metavar="K",
                   help="with --class-search, try only the K classes the model's class reader finds most likely in "
                        "the given pixels (default 1 for a model with a class reader; 0 = every class)")
    d.add_argument("--sample-search", type=integer(1), metavar="N",
                   help="tasks with given pixels that run no class search: generate N samples per clip and keep "
                        "the one that best redraws the given pixels (default 1: one sample, no search)")
    d.add_argument("--class-guidance", type=number(0), metavar="S",
                   help="classifier-free guidance toward the class for CG and other tasks given a class and "
                        "no pixels, unless the decoder has guidance of its own (--guidance-scale); default 3 "
                        "for a model with classes; 0 = off")


def decoder_overrides(args: argparse.Namespace) -> dict:
    """The decoder config keys given on the command line."""
    return {k: getattr(args, k) for k in DECODER_OPTIONS if getattr(args, k) is not None}
