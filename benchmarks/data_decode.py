"""Clips per second decoded from mp4 into 16x128x128 training clips, without and with workers.

Writes small UCF-101-sized mp4s (320x240, 25 fps) of bouncing shapes to a temporary folder, then
reads random training clips (random window, resize to a 128 short side, random 128 crop) through
the `video_folder` dataset and a DataLoader with 0 and with N workers. Worker start-up is not
timed (the first batch is a warm-up). Run: `python benchmarks/data_decode.py [--workers 2]`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from magvit.core.data.folder import VideoFolder
from magvit.core.data.synthetic import SyntheticShapes
from magvit.core.video_io import write_video


def make_videos(root: Path, count: int, frames: int) -> None:
    shapes = SyntheticShapes(frames=frames, resolution=320, speed=0.02).make("eval", seed=0)
    for i in tqdm(range(count), desc="writing mp4s", unit="video"):
        clip = shapes[i]["video"][:, :, 40:280]  # 320x240
        write_video(root / f"class{i % 4}" / f"v{i:03d}.mp4", clip, fps=25, pixel_format="yuv420p")


def clips_per_second(dataset, workers: int, batch_size: int, epochs: int) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                        persistent_workers=workers > 0)
    clips, started = 0, None
    for epoch in range(epochs + 1):
        dataset.set_epoch(epoch)
        for batch in loader:
            if started is None:
                started = time.perf_counter()  # after the warm-up batch
                continue
            clips += len(batch["video"])
    return clips / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--source-frames", type=int, default=48)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        make_videos(Path(tmp), args.videos, args.source_frames)
        dataset = VideoFolder(path=tmp, frames=args.frames, resolution=args.resolution).make("train")
        serial = clips_per_second(dataset, 0, args.batch_size, args.epochs)
        parallel = clips_per_second(dataset, args.workers, args.batch_size, args.epochs)
    print(f"{args.frames}x{args.resolution}x{args.resolution} clips from 320x240 mp4 (h264):")
    print(f"  0 workers: {serial:7.1f} clips/s")
    print(f"  {args.workers} workers: {parallel:7.1f} clips/s")
    print(f"  ratio: {parallel / serial:.2f}x")


if __name__ == "__main__":
    main()
