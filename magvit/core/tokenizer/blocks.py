"""Building blocks shared by the VQ encoder and decoder (SPEC §5, paper Appendix A.1).

Every conv is a `Conv3d`; a 2D layer is the same layer with temporal kernel 1, so a 2D-VQ
checkpoint inflates into the 3D model one weight at a time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

PADDING_MODES = {"reflect": "reflect", "zero": "zeros"}


def conv(in_ch: int, out_ch: int, kernel: int, padding: str, temporal_kernel: int | None = None,
         bias: bool = True) -> nn.Conv3d:
    """A 'same' conv with kernel (kT, k, k); padding is "reflect" (paper) or "zero" (release)."""
    kt = kernel if temporal_kernel is None else temporal_kernel
    return nn.Conv3d(
        in_ch, out_ch, (kt, kernel, kernel), padding=(kt // 2, kernel // 2, kernel // 2),
        padding_mode=PADDING_MODES[padding], bias=bias,
    )


def group_norm(channels: int) -> nn.GroupNorm:
    """GN with 32 groups; narrow (tiny) layers get fewer, keeping at least 2 channels per
    group, since a 1-channel group would cancel the preceding conv's bias."""
    return nn.GroupNorm(math.gcd(32, max(channels // 2, 1)), channels, eps=1e-6)


class ResBlock(nn.Module):
    """GN -> swish -> conv -> GN -> swish -> conv, plus a (1x1x1 conv when needed) skip."""

    def __init__(self, in_ch: int, out_ch: int, padding: str, temporal_kernel: int = 3):
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = conv(in_ch, out_ch, 3, padding, temporal_kernel, bias=False)
        self.norm2 = group_norm(out_ch)
        self.conv2 = conv(out_ch, out_ch, 3, padding, temporal_kernel, bias=False)
        self.skip = nn.Conv3d(in_ch, out_ch, 1, bias=False) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Average pooling by (2, 2, 2) or, near the latent, (1, 2, 2)."""

    def __init__(self, temporal: bool):
        super().__init__()
        self.stride = (2 if temporal else 1, 2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool3d(x, self.stride, self.stride)


class Upsample(nn.Module):
    """Nearest resize by (2, 2, 2) or (1, 2, 2), then a 3x3x3 conv."""

    def __init__(self, channels: int, temporal: bool, padding: str, temporal_kernel: int = 3):
        super().__init__()
        self.scale = (2 if temporal else 1, 2, 2)
        self.conv = conv(channels, channels, 3, padding, temporal_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=self.scale, mode="nearest"))
