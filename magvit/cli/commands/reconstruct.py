"""`magvit reconstruct IN OUT --checkpoint C`: tokenize a video, decode it, report PSNR/SSIM."""

from __future__ import annotations

from magvit.cli.arguments import input_video, integer, output_video, refuse_overwriting


def register(sub) -> None:
    p = sub.add_parser("reconstruct", help="round trip a video through a trained tokenizer")
    p.add_argument("source", type=input_video, help="input video (any format PyAV reads)")
    p.add_argument("target", type=output_video, help="output video (.mp4, .mov, .m4v or .gif)")
    p.add_argument("--checkpoint", required=True,
                   help="a tokenizer run or step directory, or a stage-2 model (its tokenizer; `default`)")
    p.add_argument("--frames", type=integer(1), help="clip length (default: the length it was trained on)")
    p.add_argument("--resolution", type=integer(1), help="frame size (default: the trained resolution)")
    p.add_argument("--pixel-format", choices=("yuv420p", "yuv444p"), default="yuv444p",
                   help="H.264 chroma of the output: yuv444p (default) keeps the colour the tokenizer "
                        "made, to judge it; yuv420p plays everywhere")
    p.set_defaults(func=run)


def run(args) -> int:
    from magvit.workflows.reconstruct import reconstruct

    refuse_overwriting([args.target], [args.source])
    result = reconstruct(args.source, args.target, args.checkpoint, frames=args.frames,
                         resolution=args.resolution, pixel_format=args.pixel_format)
    clips, t, h, w = result.tokens.shape
    print(f"{args.source} -> {args.target}: {clips} clip(s) of {t}x{h}x{w} tokens")
    print(f"PSNR {result.psnr:.2f} dB  SSIM {result.ssim:.4f}")
    if result.agreement:
        from magvit.workflows.condition_agreement import format_agreement

        print("condition agreement (each task's padded condition video vs the true clip):")
        print(format_agreement(result.agreement))
    return 0
