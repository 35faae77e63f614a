"""Laying clips out as pictures and videos for people to look at (pure torch)."""

from __future__ import annotations

import torch


def upscale(video: torch.Tensor, factor: int) -> torch.Tensor:
    """Nearest-neighbour enlargement of `(..., H, W)` so that tiny clips stay crisp."""
    if factor == 1:
        return video
    return video.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def hstack(images: list[torch.Tensor], gap: int = 0, fill: float = 1.0) -> torch.Tensor:
    """Concatenate `(C, ..., H, W)` tensors along W with `gap` columns of `fill` between them."""
    out = []
    for i, image in enumerate(images):
        if i and gap:
            out.append(torch.full((*image.shape[:-1], gap), fill, dtype=image.dtype))
        out.append(image)
    return torch.cat(out, dim=-1)


def vstack(images: list[torch.Tensor], gap: int = 0, fill: float = 1.0) -> torch.Tensor:
    """Concatenate `(C, ..., H, W)` tensors along H with `gap` rows of `fill` between them."""
    rotated = [image.transpose(-1, -2) for image in images]
    return hstack(rotated, gap, fill).transpose(-1, -2)


def frame_strip(clip: torch.Tensor, scale: int = 1, gap: int = 1) -> torch.Tensor:
    """`(3, T, H, W)` -> `(3, H*scale, T*W*scale + gaps)`: the frames side by side."""
    frames = [upscale(clip[:, t], scale) for t in range(clip.shape[1])]
    return hstack(frames, gap)


def comparison_video(columns: list[torch.Tensor], scale: int = 1, gap: int = 2) -> torch.Tensor:
    """`[(B, 3, T, H, W), ...]` -> `(3, T, rows, cols)`: one row per clip, one column per input."""
    rows = [hstack([upscale(c[b], scale) for c in columns], gap) for b in range(columns[0].shape[0])]
    return vstack(rows, gap)


def even_size(video: torch.Tensor) -> torch.Tensor:
    """Pad H and W to even sizes (4:2:0 video needs them) by repeating the edge."""
    if video.shape[-2] % 2:
        video = torch.cat([video, video[..., -1:, :]], dim=-2)
    if video.shape[-1] % 2:
        video = torch.cat([video, video[..., -1:]], dim=-1)
    return video


def reconstruction_grid(videos: torch.Tensor, recons: torch.Tensor, gap: int = 2) -> torch.Tensor:
    """`(3, H', W')` image: per clip, its frames in a row with the reconstruction's row under it
    (both `(B, 3, T, H, W)` in [0, 1]), for loggers that show images."""
    rows = []
    for video, recon in zip(videos, recons):
        rows += [frame_strip(video), frame_strip(recon)]
    return vstack(rows, gap=gap)
