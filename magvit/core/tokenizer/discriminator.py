"""StyleGAN-style 3D ResNet discriminator (paper §3.1, Appendix B.2).

conv 3³ -> one ResBlockDown per channel multiplier (each halves T, H and W; T stops at 1)
-> conv 3³ -> flatten -> dense -> dense(1). All activations are leaky ReLU(0.2); a block's
output is `(skip + residual) / √2`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _downsample(x: torch.Tensor) -> torch.Tensor:
    stride = (2 if x.shape[2] > 1 else 1, 2, 2)
    return F.avg_pool3d(x, stride, stride)


class ResBlockDown(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = nn.Conv3d(in_ch, in_ch, 3, padding=1)
        self.conv2 = nn.Conv3d(in_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv3d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _downsample(F.leaky_relu(self.conv1(x), 0.2))
        h = F.leaky_relu(self.conv2(h), 0.2)
        return (self.skip(_downsample(x)) + h) / math.sqrt(2)


class Discriminator(nn.Module):
    """Logits `(B,)` for clips `(B, 3, frames, resolution, resolution)` in [0, 1]."""

    def __init__(self, channels: int, multipliers: tuple[int, ...], frames: int, resolution: int):
        super().__init__()
        widths = [channels * m for m in multipliers]
        self.conv_in = nn.Conv3d(3, channels, 3, padding=1)
        self.blocks = nn.Sequential(
            *(ResBlockDown(a, b) for a, b in zip([channels, *widths[:-1]], widths))
        )
        self.conv_out = nn.Conv3d(widths[-1], widths[-1], 3, padding=1)
        t, s = frames, resolution
        for _ in widths:
            t, s = (t // 2 if t > 1 else 1), s // 2
        if s < 1:
            raise ValueError(
                f"discriminator: {len(widths)} downsampling blocks need a resolution of at "
                f"least {2 ** len(widths)}, got {resolution}"
            )
        self.dense = nn.Linear(widths[-1] * t * s * s, widths[-1])
        self.logit = nn.Linear(widths[-1], 1)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv_in(video * 2 - 1), 0.2)
        h = F.leaky_relu(self.conv_out(self.blocks(h)), 0.2)
        h = F.leaky_relu(self.dense(h.flatten(1)), 0.2)
        return self.logit(h).squeeze(-1)
