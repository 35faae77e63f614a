"""`magvit bench MODEL [--precision P] [--compile] [--json PATH]`: seconds per clip and how close
to the machine's GEMM rate the transformer runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from magvit.cli.arguments import device, integer


def register(sub) -> None:
    p = sub.add_parser("bench", help="time generation of one clip (tokenizer, transformer, whole clip)")
    p.add_argument("model", nargs="?", default="default",
                   help="an experiment (random weights of its sizes), a stage-2 run or `default`")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default=None,
                   help="default auto: bf16 on CUDA and on CPUs with bf16 instructions, else fp32")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                   help="torch.compile the transformer (static shapes)")
    p.add_argument("--repeats", type=integer(1), default=5, help="timed runs per measurement (median)")
    p.add_argument("--batches", type=_sizes, default=(),
                   help="also the clips/s of generate at these batch sizes, e.g. 1,8,32 (the best is reported)")
    p.add_argument("--device", type=device, default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--compare", action="store_true",
                   help="also measure fp32 without compile, alternating with these settings, and print the ratios")
    p.add_argument("--rounds", type=integer(1), default=2,
                   help="with --compare: alternations of the two settings (the fastest of each is kept)")
    p.add_argument("--json", type=Path, help="also write the numbers to this file")
    p.set_defaults(func=run)


def _sizes(text: str) -> tuple[int, ...]:
    from magvit.errors import MagvitError

    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise MagvitError(f"--batches takes comma-separated batch sizes such as 1,8,32, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise MagvitError(f"--batches takes batch sizes of at least 1, got {text!r}")
    return sizes


def run(args) -> int:
    import json

    from magvit.core.files import atomic_output
    from magvit.workflows.bench import bench, compare

    settings = dict(device=args.device, precision=args.precision, compile=args.compile, repeats=args.repeats)
    if args.compare:
        result, baseline = compare(args.model, rounds=args.rounds, **settings)
        print(baseline.table())
        print(result.table())
        ratios = {"clip": baseline.clip_s / result.clip_s,
                  "transformer_forward": baseline.transformer_step_s / result.transformer_step_s,
                  "tokenizer_decode": baseline.decode_s / result.decode_s}
        print("speed-up over fp32: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
        record = {**result.to_dict(), "baseline": baseline.to_dict(), "speedup": ratios}
    else:
        result = bench(args.model, batches=args.batches, **settings)
        print(result.table())
        record = result.to_dict()
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
