"""The MAGVIT 3D-VQ tokenizer: 16x128x128 video <-> 4x16x16 tokens (preset B; SPEC §5).

Pixels enter the encoder in [-1, 1]; `forward` returns the reconstruction in [0, 1] space
(unclamped, for the loss) and `decode` clamps it.
"""

from __future__ import annotations

import torch
from torch import nn

from magvit.core.tokenizer.autoencoder import Decoder, Encoder
from magvit.core.tokenizer.config import TokenizerConfig
from magvit.core.tokenizer.quantizer import VectorQuantizer
from magvit.errors import MagvitError


class VQ3D(nn.Module):
    Config = TokenizerConfig
    temporal_kernel = 3

    def __init__(self, config: TokenizerConfig | None = None):
        super().__init__()
        self.config = config or TokenizerConfig()
        self.arch = self.config.architecture()
        self.encoder = Encoder(self.arch, self.temporal_kernel)
        self.quantizer = VectorQuantizer(
            self.arch.codebook_size, self.arch.embedding_dim, self.config.commitment_cost,
            self.config.codebook_cost, self.config.entropy_weight, self.config.entropy_temperature,
        )
        self.decoder = Decoder(self.arch, self.temporal_kernel)
        # `config.checkpoint` is loaded by whoever builds the model from a config (the `vq3d`
        # plugin's factory), not here: constructing a module never reads the disk.

    @property
    def factors(self) -> tuple[int, int, int]:
        return self.arch.factors

    @property
    def codebook_size(self) -> int:
        return self.arch.codebook_size

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        shape = (frames, height, width)
        if any(n % f for n, f in zip(shape, self.factors)):
            raise MagvitError(
                f"{type(self).__name__}: a clip of {frames}x{height}x{width} (frames x height x "
                f"width) must be divisible by the downsampling factors {self.factors}"
            )
        return tuple(n // f for n, f in zip(shape, self.factors))

    # -- the latent path (VQ2D folds frames into the batch around these) ----------------------
    def encode_latent(self, video: torch.Tensor) -> torch.Tensor:
        return self.encoder(video * 2 - 1)

    def decode_latent(self, latent: torch.Tensor) -> torch.Tensor:
        return (self.decoder(latent) + 1) / 2

    def _check_video(self, video: torch.Tensor) -> None:
        if video.dim() != 5 or video.shape[1] != 3:
            raise MagvitError(f"expected video of shape (B, 3, T, H, W), got {tuple(video.shape)}")
        self.latent_shape(*video.shape[2:])

    # -- public interface ---------------------------------------------------------------------
    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Reconstruction (unclamped, [0, 1] space) and the quantizer's losses, codes and usage."""
        self._check_video(video)
        z = self.encode_latent(video)
        quantized, aux = self.quantizer(z)
        aux["latent"] = z
        return self.decode_latent(quantized), aux

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """`(B, 3, T, H, W)` in [0, 1] -> `(B, t, h, w)` int64 codes."""
        self._check_video(video)
        _, aux = self.quantizer(self.encode_latent(video))
        return aux["codes"]

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """`(B, t, h, w)` codes -> video in [0, 1]."""
        if tokens.dim() != 4:
            raise MagvitError(f"expected tokens of shape (B, t, h, w), got {tuple(tokens.shape)}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.codebook_size):
            raise MagvitError(
                f"token ids must be in [0, {self.codebook_size}) for this codebook; got "
                f"{int(tokens.min())}..{int(tokens.max())} (special ids such as [MASK] cannot be decoded)"
            )
        return self.decode_latent(self.quantizer.lookup(tokens)).clamp(0, 1)
