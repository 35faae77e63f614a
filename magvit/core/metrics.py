"""Video quality metrics in fp32: PSNR and SSIM per clip, and PSNR over a pixel mask."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(video: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`(B, 3, T, H, W)` in [0, 1] -> `(B,)` PSNR in dB (peak 1) over each whole clip."""
    mse = (video.float().clamp(0, 1) - target.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


def masked_psnr(video: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`(B,)` PSNR over the pixels where `mask (T, H, W)` is True (e.g. the pixels a task had to
    generate), every channel; NaN where the mask selects nothing."""
    err = (video.float().clamp(0, 1) - target.float()).pow(2)
    weight = mask.to(err.device, torch.float32).expand_as(err[0])
    mse = (err * weight).flatten(1).sum(1) / weight.sum()
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(video: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`(B,)` mean SSIM (Wang et al. 2004: 11x11 Gaussian window, σ 1.5, valid region) over
    every frame and channel; frames smaller than the window use a window of their size."""
    b, c, t, h, w = video.shape
    frames = lambda v: v.float().clamp(0, 1).transpose(1, 2).reshape(b * t * c, 1, h, w)  # noqa: E731
    x, y = frames(video), frames(target)
    size = min(11, h, w)
    window = _gaussian_window(size).to(x.device)[None, None]
    blur = lambda v: F.conv2d(v, window)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.reshape(b, -1).mean(1)
