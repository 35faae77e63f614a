"""Building blocks shared by the VQ encoder and decoder (SPEC §5, paper Appendix A.1).

Every conv is a `Conv3d`; a 2D layer is the same layer with temporal kernel 1, so a 2D-VQ
checkpoint inflates into the 3D model one weight at a time. `Layers` says how every block of one
model pads, normalises and looks along time:

- causal (MAGVIT-v2): temporal padding only on the past, so frame t sees frames <= t; pooling
  and upsampling keep the first frame on its own (clips of 1 + k·s frames, 1 + k latent frames);
- norm "group" (paper): GroupNorm statistics over the whole clip; "frame": per frame; "channel":
  per position over the channels (nothing shared across space or time). All three keep
  GroupNorm's `weight`/`bias` parameters, so checkpoints load across them.
"""

from __future__ import annotations

import math

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from magvit.core.tokenizer.presets import NORMS

PADDING_MODES = {"reflect": "reflect", "zero": "zeros"}


@attrs.frozen
class Layers:
    padding: str = "reflect"  # spatial (and, when not causal, temporal) padding
    temporal_kernel: int = 3
    causal: bool = False
    norm: str = "group"


class CausalConv3d(nn.Conv3d):
    """A conv whose temporal padding is all in the past: the first frame repeated (reflect
    models) or zeros (zero-padding models)."""

    def __init__(self, *args, past: int, replicate: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.past, self.replicate = past, replicate

    def pad_past(self, x: torch.Tensor) -> torch.Tensor:
        """`x` with its `past` frames of temporal padding in front."""
        if not self.past:
            return x
        if self.replicate:
            return torch.cat([x[:, :, :1].expand(-1, -1, self.past, -1, -1), x], dim=2)
        return F.pad(x, (0, 0, 0, 0, self.past, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.pad_past(x))


def conv(in_ch: int, out_ch: int, kernel: int, padding: str | Layers, temporal_kernel: int | None = None,
         bias: bool = True) -> nn.Conv3d:
    """A 'same' conv with kernel (kT, k, k); padding "reflect" (paper) or "zero" (release), or
    a `Layers` (then also causal when it says so)."""
    layers = padding if isinstance(padding, Layers) else Layers(padding=padding)
    kt = kernel if temporal_kernel is None else temporal_kernel
    mode = PADDING_MODES[layers.padding]
    if layers.causal and kt > 1:
        return CausalConv3d(in_ch, out_ch, (kt, kernel, kernel), padding=(0, kernel // 2, kernel // 2),
                            padding_mode=mode, bias=bias, past=kt - 1, replicate=layers.padding == "reflect")
    return nn.Conv3d(
        in_ch, out_ch, (kt, kernel, kernel), padding=(kt // 2, kernel // 2, kernel // 2),
        padding_mode=mode, bias=bias,
    )


class Norm(nn.GroupNorm):
    """GroupNorm over the clip ("group"), over each frame ("frame"), or LayerNorm over the
    channels at each position ("channel")."""

    def __init__(self, channels: int, mode: str = "group"):
        # Narrow (tiny) layers get fewer groups, keeping at least 2 channels per group, since
        # a 1-channel group would cancel the preceding conv's bias.
        super().__init__(math.gcd(32, max(channels // 2, 1)), channels, eps=1e-6)
        if mode not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {mode!r}")
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "group":
            return super().forward(x)
        if self.mode == "frame":
            b, c, t, h, w = x.shape
            frames = x.transpose(1, 2).reshape(b * t, c, h, w)          # (B·T, C, H, W)
            return super().forward(frames).reshape(b, t, c, h, w).transpose(1, 2)
        y = F.layer_norm(x.movedim(1, -1), (self.num_channels,), self.weight, self.bias, self.eps)
        return y.movedim(-1, 1)


def group_norm(channels: int, mode: str = "group") -> Norm:
    return Norm(channels, mode)


class ResBlock(nn.Module):
    """GN -> swish -> conv -> GN -> swish -> conv, plus a (1x1x1 conv when needed) skip."""

    def __init__(self, in_ch: int, out_ch: int, padding: str | Layers, temporal_kernel: int = 3,
                 spatial_kernel: int = 3):
        super().__init__()
        layers = padding if isinstance(padding, Layers) else Layers(padding, temporal_kernel)
        k = spatial_kernel  # 1: pointwise in space (a local encoder's deeper levels)
        self.norm1 = group_norm(in_ch, layers.norm)
        self.conv1 = conv(in_ch, out_ch, k, layers, layers.temporal_kernel, bias=False)
        self.norm2 = group_norm(out_ch, layers.norm)
        self.conv2 = conv(out_ch, out_ch, k, layers, layers.temporal_kernel, bias=False)
        self.skip = nn.Conv3d(in_ch, out_ch, 1, bias=False) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Average pooling by (2, 2, 2) or, near the latent, (1, 2, 2). Causal: the first frame is
    pooled with copies of itself, so 1 + 2k frames give 1 + k.

    `channels` given: a learned conv whose kernel is its stride instead (`downsample = "conv"`).
    It sees the same block as the pooling, so a local encoder stays local, but it can weigh each
    position of the block differently: after pointwise layers an average cannot tell where in the
    block a feature was. It starts as the average (identity over channels / block size)."""

    def __init__(self, temporal: bool, causal: bool = False, channels: int | None = None):
        super().__init__()
        self.stride = (2 if temporal else 1, 2, 2)
        self.causal = causal and temporal
        self.conv = None
        if channels is not None:
            self.conv = nn.Conv3d(channels, channels, self.stride, self.stride, bias=False)
            with torch.no_grad():
                eye = torch.eye(channels) / math.prod(self.stride)
                self.conv.weight.copy_(eye[:, :, None, None, None].expand_as(self.conv.weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.causal:
            x = torch.cat([x[:, :, :1], x], dim=2)
        if self.conv is not None:
            return self.conv(x)
        return F.avg_pool3d(x, self.stride, self.stride)


class LocalUpsample(nn.Module):
    """A local decoder's upsampling: a transposed conv whose kernel is its stride, (2, 2, 2) or
    (1, 2, 2), so each input position becomes its own block and nothing else (a nearest resize
    and a 3x3 conv would mix neighbours), weighed per position in the block. It starts as the
    nearest resize (identity over channels). Causal: the copy before the first frame is dropped,
    so 1 + k frames give 1 + 2k."""

    def __init__(self, channels: int, temporal: bool, causal: bool = False):
        super().__init__()
        self.stride = (2 if temporal else 1, 2, 2)
        self.causal = causal and temporal
        self.conv = nn.ConvTranspose3d(channels, channels, self.stride, self.stride)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(channels)[:, :, None, None, None].expand_as(self.conv.weight))
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y[:, :, 1:] if self.causal else y


def _phase_taps(weight: torch.Tensor, axis: int, phase: int) -> torch.Tensor:
    """A 3-tap kernel along `axis` applied to a nearest-doubled input, as the 2-tap kernel over
    the small input that gives the outputs of even (`phase` 0) or odd (1) index."""
    a, b, c = weight.unbind(axis)
    return torch.stack([a, b + c] if phase == 0 else [a + b, c], axis)


class Upsample(nn.Module):
    """Nearest resize by (2, 2, 2) or (1, 2, 2), then a 3x3x3 conv. Causal: the copy before the
    first frame is dropped, so 1 + k frames give 1 + 2k.

    Computed without the resize where it can be (`subpixel`): a 3-tap conv over a nearest-doubled
    axis sees only two distinct input values per output, so each output phase (even or odd index)
    is a 2-tap conv of the small input with summed taps, `(a, b + c)` and `(a + b, c)`. One conv
    with the 2^d phase kernels stacked on the output channels, then an interleave, gives the same
    values with 27/8 (3D) or 9/4 (2D) times fewer multiply-adds. Padding the doubled input by
    reflection equals padding the small one by replication; zeros stay zeros. Causal time
    doubling (the first frame repeated into the past) is the same conv with its last output frame
    dropped; with zero padding it is not (the first output would see one zero frame, not two),
    so that case keeps the resize."""

    def __init__(self, channels: int, temporal: bool, padding: str | Layers, temporal_kernel: int = 3):
        super().__init__()
        layers = padding if isinstance(padding, Layers) else Layers(padding, temporal_kernel)
        self.scale = (2 if temporal else 1, 2, 2)
        self.causal = layers.causal and temporal
        self.conv = conv(channels, channels, 3, layers, layers.temporal_kernel)
        self.padding = layers.padding
        self.subpixel = (not temporal or self.conv.kernel_size[0] == 3) and not (
            self.causal and layers.padding == "zero")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.subpixel:
            return self._subpixel(x)
        x = F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return self.conv(x[:, :, 1:] if self.causal else x)

    def _subpixel(self, x: torch.Tensor) -> torch.Tensor:
        doubled_time = self.scale[0] == 2
        time_phases = (0, 1) if doubled_time else (None,)
        kernels = []  # (kt', 2, 2) kernels, phase order (pt, ph, pw)
        for pt in time_phases:
            wt = self.conv.weight if pt is None else _phase_taps(self.conv.weight, 2, pt)
            for ph in (0, 1):
                wh = _phase_taps(wt, 3, ph)
                kernels += [_phase_taps(wh, 4, pw) for pw in (0, 1)]
        bias = None if self.conv.bias is None else self.conv.bias.repeat(len(kernels))
        y = F.conv3d(self._pad(x, doubled_time), torch.cat(kernels), bias)
        # (B, P x C, T', h + 1, w + 1) -> phase (pt, ph, pw) holds outputs (2i + pt, 2j + ph, 2k + pw)
        b, c = x.shape[0], self.conv.out_channels
        t, h, w = y.shape[2] - doubled_time, y.shape[3] - 1, y.shape[4] - 1
        steps = len(time_phases)  # along time: 2 when doubled, else 1
        y = y.view(b, steps, 2, 2, c, *y.shape[2:])
        out = y.new_empty(b, c, t * steps, 2 * h, 2 * w)
        for i in range(steps):  # the interleave: one strided copy per phase
            for ph in (0, 1):
                for pw in (0, 1):
                    out[:, :, i::steps, ph::2, pw::2] = y[:, i, ph, pw, :, i:i + t, ph:ph + h, pw:pw + w]
        return out[:, :, :-1] if self.causal else out  # causal: 1 + k frames give 1 + 2k

    def _pad(self, x: torch.Tensor, doubled_time: bool) -> torch.Tensor:
        small = "replicate" if self.padding == "reflect" else "constant"
        kt = self.conv.kernel_size[0]
        if doubled_time:
            return F.pad(x, (1, 1, 1, 1, 1, 1), mode=small)
        if isinstance(self.conv, CausalConv3d):
            x = self.conv.pad_past(x)
        elif kt > 1:
            x = F.pad(x, (0, 0, 0, 0, kt // 2, kt // 2),
                      mode="reflect" if self.padding == "reflect" else "constant")
        return F.pad(x, (1, 1, 1, 1, 0, 0), mode=small)
