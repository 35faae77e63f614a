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
from magvit.core.training.checkpoint import resolve_checkpoint
from magvit.core.video_io import probe_video, read_video, write_video
from magvit.errors import MagvitError
from magvit.weights import resolve_model_path
from magvit.workflows.bundle import BUNDLE_FILE, load_bundle
from magvit.workflows.condition_agreement import condition_agreement, condition_tasks
from magvit.workflows.train_tokenizer import load_tokenizer, trained_experiment


@attrs.frozen
class RoundTrip:
    original: torch.Tensor  # (3, T, H, W) in [0, 1]
    reconstruction: torch.Tensor
    tokens: torch.Tensor  # (clips, t, h, w)
    psnr: float
    ssim: float
    agreement: dict = attrs.field(factory=dict)  # per task: condition tokens kept, condition PSNR


def tokenizer_and_data(checkpoint: str | Path) -> tuple[torch.nn.Module, object]:
    """The tokenizer of a stage-1 run, or of a stage-2 model (which embeds its tokenizer), and
    the `[data]` section it was trained with."""
    path = resolve_checkpoint(resolve_model_path(checkpoint))
    if (path / BUNDLE_FILE).is_file():
        bundle = load_bundle(path)
        return bundle.tokenizer, bundle.experiment.data
    return load_tokenizer(checkpoint=path), trained_experiment(path).data


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
    agreement = condition_agreement(tokenizer, clips, condition_tasks(), true_tokens=tokens)
    return RoundTrip(video, reconstruction, tokens, psnr(whole(reconstruction), whole(video)).item(),
                     ssim(whole(reconstruction), whole(video)).item(), agreement)


def reconstruct(source: str | Path, target: str | Path, checkpoint: str | Path, *,
                frames: int | None = None, resolution: int | None = None,
                pixel_format: str = "yuv444p") -> RoundTrip:
    tokenizer, data = tokenizer_and_data(checkpoint)
    clip_frames = frames or getattr(data.config, "frames", None)
    size = resolution or getattr(data.config, "resolution", None)
    if clip_frames is None:
        raise MagvitError(f"checkpoint {checkpoint} does not record its clip length; pass --frames")
    video = read_video(source, resolution=size)
    result = round_trip(video, tokenizer, clip_frames)
    if pixel_format == "yuv420p" and any(n % 2 for n in result.reconstruction.shape[-2:]):
        pixel_format = "yuv444p"  # 4:2:0 needs even sizes
    write_video(target, result.reconstruction, fps=probe_video(source).fps or 8, pixel_format=pixel_format)
    return result
