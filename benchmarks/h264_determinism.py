"""Does `write_video` give the same bytes for the same frames? x264's parameters as magvit sets
them (`X264_PARAMS`) against x264's defaults, on one clip written again and again in one
process, each write after a single-threaded decode of a video (the condition under which x264's
macroblock tree read memory it had not written, see `magvit.core.video_io`).

Prints, for each setting, how many writes gave other bytes than the most common ones, and the
round-trip PSNR. The clip: `--clip FILE`, else the first 8x16x16 synthetic-shapes clip
(`--size` sets its height and width; at 32 the defaults varied most). torch is imported before
PyAV, as magvit's commands do: the other way round the heap differs, and x264's defaults gave
the same bytes in 1,000 writes of a clip that varied here.
Run: `python benchmarks/h264_determinism.py [--writes 2000] [--clip FILE] [--size 16]`.
"""

# ruff: noqa: I001 - torch before av on purpose (see above)
from __future__ import annotations

import argparse
import hashlib
import tempfile
from collections import Counter
from pathlib import Path

import torch
import av

import magvit.core.video_io as video_io
from magvit.core.data.synthetic import SyntheticShapes

SETTINGS = {"x264 defaults (mbtree=1)": "mbtree=1",
            "magvit (x264-params " + video_io.X264_PARAMS + ")": video_io.X264_PARAMS}


def decode_single_threaded(path: Path) -> list:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]


def digests(clip: torch.Tensor, params: str, writes: int, folder: Path, pixel_format: str,
            decoded: Path | None) -> Counter:
    """How often each byte string came out of `writes` writes of `clip` with `params`."""
    video_io.X264_PARAMS = params
    decoded = decoded or video_io.write_video(folder / "decoded.mp4", clip, fps=8, pixel_format=pixel_format)
    seen: Counter = Counter()
    for i in range(writes):
        frames = decode_single_threaded(decoded)  # noqa: F841 - alive during the write, as in a reader
        path = video_io.write_video(folder / f"w{i % 4}.mp4", clip, fps=8, pixel_format=pixel_format)
        seen[hashlib.sha1(path.read_bytes()).hexdigest()] += 1
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--clip", type=Path, help="a video to write (default: a synthetic-shapes clip)")
    parser.add_argument("--size", type=int, default=16, help="the synthetic clip's height and width")
    parser.add_argument("--pixel-format", default="yuv420p", choices=("yuv420p", "yuv444p"),
                        help="of the decoded video and the writes (yuv420p: as `magvit generate`)")
    args = parser.parse_args()
    if args.clip:
        clip = video_io.read_video(args.clip)
    else:
        clip = SyntheticShapes(resolution=args.size).make("eval", seed=0)[0]["video"]
    ours = video_io.X264_PARAMS
    with tempfile.TemporaryDirectory() as tmp:
        for name, params in SETTINGS.items():
            seen = digests(clip, params, args.writes, Path(tmp), args.pixel_format, args.clip)
            path = video_io.write_video(Path(tmp) / "psnr.mp4", clip, fps=8, pixel_format=args.pixel_format)
            mse = (video_io.read_video(path) - clip).pow(2).mean().item()
            other = args.writes - seen.most_common(1)[0][1]
            print(f"{name}: {other} of {args.writes} writes gave other bytes ({len(seen)} distinct); "
                  f"round trip {10 * torch.log10(torch.tensor(1 / mse)).item():.2f} dB")
    video_io.X264_PARAMS = ours


if __name__ == "__main__":
    main()
