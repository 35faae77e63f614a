"""`magvit reconstruct IN OUT --checkpoint C`: tokenize a video, decode it, report PSNR/SSIM."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("reconstruct", help="round trip a video through a trained tokenizer")
    p.add_argument("source", type=Path, help="input video (any format PyAV reads)")
    p.add_argument("target", type=Path, help="output video (.mp4, .mov, .m4v or .gif)")
    p.add_argument("--checkpoint", required=True, help="a tokenizer run directory or step directory")
    p.add_argument("--frames", type=int, help="clip length (default: the length it was trained on)")
    p.add_argument("--resolution", type=int, help="frame size (default: the trained resolution)")
    p.set_defaults(func=run)


def run(args) -> int:
    from magvit.workflows.reconstruct import reconstruct

    result = reconstruct(args.source, args.target, args.checkpoint,
                         frames=args.frames, resolution=args.resolution)
    clips, t, h, w = result.tokens.shape
    print(f"{args.source} -> {args.target}: {clips} clip(s) of {t}x{h}x{w} tokens")
    print(f"PSNR {result.psnr:.2f} dB  SSIM {result.ssim:.4f}")
    return 0
