"""`magvit demo`: the bundled model (or yours) does every task it knows; see what it makes."""

from __future__ import annotations

from pathlib import Path

from magvit.cli.arguments import (
    add_decoder_options,
    decoder_overrides,
    device,
    input_video,
    integer,
    output_folder,
)


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run every task of a model on held-out clips: mp4s, a contact sheet, a PSNR/SSIM table",
    )
    p.add_argument("--checkpoint", default="default",
                   help="a stage-2 run or checkpoint (default: the model bundled with magvit)")
    p.add_argument("--output", type=output_folder, default=Path("magvit-demo"), help="output folder")
    p.add_argument("--input", dest="inputs", type=input_video, nargs="+", metavar="VIDEO",
                   help="your own videos instead of held-out synthetic clips")
    p.add_argument("--clips", type=integer(1), default=16,
                   help="held-out clips per task (default 16: fewer make the PSNR comparison noisy; a "
                        "synthetic eval split smaller than N is widened, keeping its first clips)")
    p.add_argument("--class", dest="label", type=integer(-1), default=0,
                   help="class label used for --input videos by the class-conditional tasks (-1: no class)")
    p.add_argument("--seed", type=int, default=0, help="seeds which held-out clips are drawn and their generations (default 0)")
    p.add_argument("--device", type=device, default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the transformer and tokenizer (static shapes; CUDA graphs on CUDA)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default=None,
                   help="generation precision (default auto: bf16 on CUDA and on CPUs with bf16 "
                        "instructions, else fp32; or MAGVIT_PRECISION)")
    p.add_argument("--paste-condition", action="store_true",
                   help="paste the given condition pixels into the videos and the contact sheet "
                        "(the scores stay those of the model's own output)")
    p.add_argument("--shape-classifier", type=Path, metavar="FILE",
                   help="the shape classifier that scores CG samples (default: the bundled one when "
                        "it was trained on clips like the model's; make one with python -m "
                        "magvit.workflows.shape_classifier)")
    add_decoder_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from magvit.workflows.demo import run_demo

    report = run_demo(args.checkpoint, args.output, inputs=args.inputs, clips=args.clips,
                      label=args.label, seed=args.seed, device=args.device,
                      precision=args.precision, compile=args.compile, shape_classifier=args.shape_classifier,
                      paste_condition=args.paste_condition, decoder=args.decoder,
                      refine_steps=args.refine_steps, class_search=args.class_search,
                      class_guidance=args.class_guidance, read_classes=args.read_classes,
                      sample_search=args.sample_search,
                      **decoder_overrides(args))
    print(report.table())
    print(f"\nwrote {args.output}/contact_sheet.png, one mp4 per task, results.json and results.txt")
    return 0
