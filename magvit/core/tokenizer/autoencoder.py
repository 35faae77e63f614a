"""The VQ encoder and its mirrored decoder (SPEC §5).

Encoder: conv -> per level `num_res_blocks` ResBlocks, average-pool (or, `downsample = "conv"`,
a conv with kernel = stride) between levels (3D steps first, 2D near the latent) -> more
ResBlocks -> GN -> swish -> 1x1x1 conv to the embedding.
A local encoder (`local = true`) makes every ResBlock after the first level pointwise in space
(time keeps its kernel) and normalises per position, so a token sees its own patch and
`encoder_halo` pixels around it; `local_time` also makes every ResBlock pointwise in time, so
only the first conv reaches one frame beyond a token's own.
Decoder: conv -> ResBlocks -> per level (deepest first) ResBlocks, nearest-resize + conv up
(2D steps first, then 3D) -> GN -> swish -> conv to RGB; `decoder_channels` and
`decoder_res_blocks` size it apart from the encoder. A local decoder (`decoder_local = true`)
makes every layer but the output conv pointwise in space, upsamples with per-position
transposed convs and normalises per position, so a pixel sees its own token and the tokens
within `decoder_halo` pixels (1; `decoder_context` tokens more when its first conv sees them);
`decoder_local_time` also makes every conv pointwise in time.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from magvit.core.tokenizer.blocks import (
    Downsample,
    Layers,
    LocalUpsample,
    ResBlock,
    Upsample,
    conv,
    group_norm,
)
from magvit.core.tokenizer.presets import Architecture


def layers_of(arch: Architecture, temporal_kernel: int) -> Layers:
    return Layers(arch.padding, temporal_kernel, arch.causal and temporal_kernel > 1, arch.norm)


class Encoder(nn.Module):
    def __init__(self, arch: Architecture, temporal_kernel: int = 3):
        super().__init__()
        pad, kt = layers_of(arch, temporal_kernel), temporal_kernel
        if arch.local:  # frame or clip statistics would let every pixel reach every token
            pad = attrs.evolve(pad, norm="channel")
        widths = [arch.base_channels * m for m in arch.channel_multipliers]
        self.conv_in = conv(3, widths[0], 3, pad, kt, bias=False)
        if arch.local_time:  # after the first conv, nothing mixes frames but the pooling
            pad = attrs.evolve(pad, temporal_kernel=1)
        layers: list[nn.Module] = []
        ch = widths[0]
        for level, width in enumerate(widths):
            k = 1 if arch.local and level > 0 else 3
            for _ in range(arch.num_res_blocks):
                layers.append(ResBlock(ch, width, pad, kt, spatial_kernel=k))
                ch = width
            if level < len(widths) - 1:
                learned = ch if arch.downsample == "conv" else None
                layers.append(Downsample(arch.temporal_downsample[level] and kt > 1, pad.causal, learned))
        k = 1 if arch.local else 3
        layers += [ResBlock(ch, ch, pad, kt, spatial_kernel=k) for _ in range(arch.num_res_blocks)]
        self.blocks = nn.Sequential(*layers)
        self.norm_out = group_norm(ch, pad.norm)
        self.conv_out = nn.Conv3d(ch, arch.embedding_dim, 1)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.conv_in(video))
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, arch: Architecture, temporal_kernel: int = 3):
        super().__init__()
        pad, kt = layers_of(arch, temporal_kernel), temporal_kernel
        local = arch.decoder_local
        if local:  # clip or frame statistics would let every token reach every pixel
            pad = attrs.evolve(pad, norm="channel")
        body = attrs.evolve(pad, temporal_kernel=1) if arch.decoder_local_time else pad
        k = 1 if local else 3  # the spatial kernel of every layer but the output conv
        widths = [(arch.decoder_channels or arch.base_channels) * m for m in arch.channel_multipliers]
        depth = arch.decoder_res_blocks or arch.num_res_blocks
        ch = widths[-1]
        reach = 2 * arch.decoder_context + 1 if local else 3  # the first conv's, over the tokens
        self.conv_in = conv(arch.embedding_dim, ch, reach, body, body.temporal_kernel)
        layers: list[nn.Module] = [ResBlock(ch, ch, body, spatial_kernel=k) for _ in range(depth)]
        for level in reversed(range(len(widths))):
            for _ in range(depth):
                layers.append(ResBlock(ch, widths[level], body, spatial_kernel=k))
                ch = widths[level]
            if level > 0:
                temporal = arch.temporal_downsample[level - 1] and kt > 1
                layers.append(LocalUpsample(ch, temporal, pad.causal) if local
                              else Upsample(ch, temporal, pad, kt))
        self.blocks = nn.Sequential(*layers)
        self.norm_out = group_norm(ch, pad.norm)
        self.conv_out = conv(ch, 3, 3, body, body.temporal_kernel)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.conv_in(latent))
        return self.conv_out(F.silu(self.norm_out(h)))
