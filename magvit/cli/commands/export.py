"""`magvit export CHECKPOINT OUT`: a slim, self-contained copy of a stage-2 checkpoint."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("export", help="write a slim copy of a transformer checkpoint (weights only)")
    p.add_argument("checkpoint", help="a `train transformer` run directory or checkpoint")
    p.add_argument("output", type=Path, help="the folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace the folder if it exists")
    p.add_argument("--tokenizer", metavar="RUN",
                   help="a stage-1 run trained with codes_from on this model's tokenizer: its "
                        "decoder replaces the bundle's (the tokens stay the same; checked)")
    p.add_argument("--class-reader", metavar="FILE",
                   help="a shape classifier file (python -m magvit.workflows.shape_classifier) trained on "
                        "this model's clips: the class search then tries the class it reads from the "
                        "given pixels (FP: the first frame) instead of every class")
    p.set_defaults(func=run)


def run(args) -> int:
    from magvit.workflows.export import export_bundle

    out = export_bundle(args.checkpoint, args.output, overwrite=args.overwrite,
                        tokenizer=args.tokenizer, class_reader=args.class_reader)
    size = sum(f.stat().st_size for f in out.iterdir()) / 2**20
    print(f"wrote {out} ({size:.1f} MiB); use it as --checkpoint {out}")
    return 0
