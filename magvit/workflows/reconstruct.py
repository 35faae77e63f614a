"""Round trip a video file through a trained tokenizer: tokens, then back to pixels.

The video is cut into clips of the length the tokenizer was trained on (the checkpoint's
`[data] frames`); frames left over after the last whole clip are dropped. Frames are resized
and centre-cropped to the trained resolution unless `resolution` says otherwise.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import torch

from magvit.core.metrics import psnr, ssim
from magvit.core.video_io import probe_video, read_video, write_video
from magvit.errors import MagvitError
from magvit.workflows.train_tokenizer import load_tokenizer, trained_experiment


@attrs.frozen
class RoundTrip:
    original: torch.Tensor  # (3, T, H, W) in [0, 1]
    reconstruction: torch.Tensor
    tokens: torch.Tensor  # (clips, t, h, w)
    psnr: float
    ssim: float


def _clip_shape(checkpoint: str | Path, frames: int | None, resolution: int | None) -> tuple[int, int | None]:
    data = trained_experiment(checkpoint).data
    trained = getattr(data.config, "frames", None), getattr(data.config, "resolution", None)
    return frames or trained[0], resolution or trained[1]


@torch.no_grad()
def round_trip(video: torch.Tensor, tokenizer: torch.nn.Module, clip_frames: int) -> RoundTrip:
    """Tokenize and decode `video (3, T, H, W)` clip by clip."""
    usable = video.shape[1] // clip_frames * clip_frames
    if usable == 0:
        raise MagvitError(
            f"the video has {video.shape[1]} frames; the tokenizer works on clips of {clip_frames}"
        )
    video = video[:, :usable]
    clips = video.reshape(3, -1, clip_frames, *video.shape[2:]).transpose(0, 1)
    tokens = torch.cat([tokenizer.encode(c[None]) for c in clips])
    decoded = torch.cat([tokenizer.decode(t[None]) for t in tokens])
    reconstruction = decoded.transpose(0, 1).reshape(video.shape)
    whole = lambda v: v[None]  # noqa: E731 - the metrics take a batch
    return RoundTrip(video, reconstruction, tokens, psnr(whole(reconstruction), whole(video)).item(),
                     ssim(whole(reconstruction), whole(video)).item())


def reconstruct(source: str | Path, target: str | Path, checkpoint: str | Path, *,
                frames: int | None = None, resolution: int | None = None) -> RoundTrip:
    tokenizer = load_tokenizer(checkpoint=checkpoint)
    clip_frames, size = _clip_shape(checkpoint, frames, resolution)
    if clip_frames is None:
        raise MagvitError(f"checkpoint {checkpoint} does not record its clip length; pass --frames")
    video = read_video(source, resolution=size)
    result = round_trip(video, tokenizer, clip_frames)
    write_video(target, result.reconstruction, fps=probe_video(source).fps or 8)
    return result
