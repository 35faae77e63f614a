"""`patch`: a space-time patch tokenizer with a pluggable quantizer (a magvit plugin)."""

from __future__ import annotations

import attrs
import torch
from torch import nn

from magvit import api


@attrs.define(kw_only=True)
class PatchConfig:
    patch: tuple[int, int, int] = (2, 4, 4)        # frames, height, width per token
    hidden: int = attrs.field(default=64, validator=api.at_least(1))
    quantizer: api.component("quantizers") = api.default_component("quantizers", "fsq", levels=(8, 5, 5, 5))
    checkpoint: str = ""                             # a stage-1 run to load (EMA weights)


class PatchTokenizer(nn.Module):
    Config = PatchConfig

    def __init__(self, config: PatchConfig):
        super().__init__()
        self.config = config
        self.quantizer = config.quantizer.build()
        dim, width, patch = self.quantizer.dim, config.hidden, tuple(config.patch)
        self.encoder = nn.Sequential(
            nn.Conv3d(3, width, patch, stride=patch), nn.SiLU(),
            nn.Conv3d(width, width, 1), nn.SiLU(), nn.Conv3d(width, dim, 1))
        self.decoder = nn.Sequential(
            nn.Conv3d(dim, width, 1), nn.SiLU(), nn.Conv3d(width, width, 1), nn.SiLU(),
            nn.ConvTranspose3d(width, 3, patch, stride=patch))

    @property
    def factors(self) -> tuple[int, int, int]:
        return tuple(self.config.patch)

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        shape = (frames, height, width)
        if any(n % f for n, f in zip(shape, self.factors)):
            raise api.MagvitError(f"patch tokenizer: clip {frames}x{height}x{width} is not a whole "
                                  f"number of {'x'.join(map(str, self.factors))} patches")
        return tuple(n // f for n, f in zip(shape, self.factors))

    def _check(self, video: torch.Tensor) -> None:
        if video.dim() != 5 or video.shape[1] != 3:
            raise api.MagvitError(f"expected video (B, 3, T, H, W), got {tuple(video.shape)}")
        self.latent_shape(*video.shape[2:])

    def forward(self, video: torch.Tensor):
        self._check(video)
        latent = self.encoder(video * 2 - 1)
        quantized, aux = self.quantizer(latent)
        aux["latent"] = latent
        return (self.decoder(quantized) + 1) / 2, aux

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        self._check(video)
        return self.quantizer.codes(self.encoder(video * 2 - 1))

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 4:
            raise api.MagvitError(f"expected tokens (B, t, h, w), got {tuple(tokens.shape)}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.codebook_size):
            raise api.MagvitError(f"token ids must be in [0, {self.codebook_size})")
        return ((self.decoder(self.quantizer.lookup(tokens)) + 1) / 2).clamp(0, 1)


def patch(config: PatchConfig) -> PatchTokenizer:
    """Space-time patches, one conv each way, any quantizer (default FSQ 8x5x5x5)."""
    model = PatchTokenizer(config)
    return api.load_tokenizer_checkpoint(model, config.checkpoint) if config.checkpoint else model


patch.Config = PatchConfig


@api.hookimpl
def magvit_register_tokenizers(registry):
    registry.add("patch", patch)
