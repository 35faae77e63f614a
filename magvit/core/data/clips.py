"""Where a clip is cut from a video: temporal windows and spatial crops (paper Appendix B.3).

Training takes a random window and a random crop; evaluation takes `count` fixed windows spread
uniformly over the video and `count` fixed crops spread uniformly along its long side (1 crop is
the centre crop, 3 are the usual left/centre/right or top/centre/bottom).
"""

from __future__ import annotations

import torch


def window_span(frames: int, stride: int) -> int:
    """Source frames covered by a clip of `frames` frames taken every `stride` frames."""
    return (frames - 1) * stride + 1


def random_window(num_frames: int, frames: int, stride: int, generator: torch.Generator) -> int:
    """A uniformly random first frame; 0 when the video is shorter than the clip."""
    last = max(0, num_frames - window_span(frames, stride))
    return int(torch.randint(last + 1, (), generator=generator))


def uniform_windows(num_frames: int, frames: int, stride: int, count: int) -> list[int]:
    """`count` first frames spread evenly from the start to the last full window.

    One window is the first clip (the BAIR protocol); 15 windows of 16 frames over 30 frames
    are the 15 possible starts (the paper's "debiased" BAIR protocol).
    """
    last = max(0, num_frames - window_span(frames, stride))
    if count == 1:
        return [0]
    return [round(i * last / (count - 1)) for i in range(count)]


def random_crop(height: int, width: int, size: int, generator: torch.Generator) -> tuple[int, int]:
    """Top-left corner of a uniformly random `size x size` square."""
    top = int(torch.randint(height - size + 1, (), generator=generator))
    left = int(torch.randint(width - size + 1, (), generator=generator))
    return top, left


def uniform_crops(height: int, width: int, size: int, count: int) -> list[tuple[int, int]]:
    """Top-left corners of `count` squares spread along the long side, centred on the short one."""
    if count == 1:
        return [((height - size) // 2, (width - size) // 2)]
    if width >= height:
        top = (height - size) // 2
        return [(top, round(i * (width - size) / (count - 1))) for i in range(count)]
    left = (width - size) // 2
    return [(round(i * (height - size) / (count - 1)), left) for i in range(count)]


def crop(video: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    """The `size x size` square of a `(..., H, W)` tensor at (`top`, `left`)."""
    return video[..., top:top + size, left:left + size]


def pad_frames(video: torch.Tensor, frames: int) -> torch.Tensor:
    """Repeat the last frame of a `(3, T, H, W)` clip until it has `frames` frames."""
    missing = frames - video.shape[1]
    if missing <= 0:
        return video
    return torch.cat([video, video[:, -1:].expand(-1, missing, -1, -1)], dim=1)
