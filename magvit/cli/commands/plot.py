"""`magvit plot RUN [RUN ...] --output curves.png`: training curves from metrics.jsonl."""

from __future__ import annotations

from pathlib import Path

from magvit.cli.arguments import number


def register(sub) -> None:
    p = sub.add_parser("plot", help="draw training curves of one or more runs into a PNG")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folders (with metrics.jsonl)")
    p.add_argument("--output", type=Path, default=Path("curves.png"), help="the image to write (.png, .svg, .pdf)")
    p.add_argument("--metric", dest="metrics", action="append", default=[],
                   help="a metric to draw (repeatable; default: every metric the runs log)")
    p.add_argument("--split", default="train", choices=("train", "eval"),
                   help="the training metrics (train, the default) or the held-out evaluation's (eval)")
    p.add_argument("--smooth", type=number(0.0), default=0.6, help="EMA weight in [0, 1) (0 = raw only)")
    p.set_defaults(func=run)


def run(args) -> int:
    from magvit.workflows.plot import plot_runs

    out = plot_runs(args.runs, args.output, metrics=args.metrics, split=args.split, smoothing=args.smooth)
    print(f"wrote {out}")
    return 0
