"""The MAGVIT 3D-VQ tokenizer: 16x128x128 video <-> 4x16x16 tokens (preset B; SPEC §5).

Pixels enter the encoder in [-1, 1]; `forward` returns the reconstruction in [0, 1] space
(unclamped, for the loss) and `decode` clamps it. The quantizer is the paper's VQ unless one is
given (`lfq`, `fsq`: the latent width is then the quantizer's). `encode` runs the quantizer's
ids-only path. With `causal = true` a clip has 1 + k·ft frames and gives 1 + k latent frames,
the first of which depends on the first frame alone.
"""

from __future__ import annotations

import attrs
import torch
from torch import nn

from magvit.core.tokenizer.autoencoder import Decoder, Encoder
from magvit.core.tokenizer.config import TokenizerConfig
from magvit.core.tokenizer.quantizer import Quantizer, VectorQuantizer
from magvit.errors import MagvitError


class VQ3D(nn.Module):
    Config = TokenizerConfig
    temporal_kernel = 3

    def __init__(self, config: TokenizerConfig | None = None, quantizer: Quantizer | None = None):
        super().__init__()
        self.config = config or TokenizerConfig()
        arch = self.config.architecture()
        if quantizer is None:
            quantizer = VectorQuantizer(
                arch.codebook_size, arch.embedding_dim, self.config.commitment_cost,
                self.config.codebook_cost, self.config.entropy_weight, self.config.entropy_temperature,
            )
        elif self.config.embedding_dim not in (None, quantizer.dim):
            raise MagvitError(
                f"tokenizer: embedding_dim = {self.config.embedding_dim} but the quantizer takes "
                f"{quantizer.dim} channels; leave embedding_dim out (the quantizer sets it)"
            )
        self.arch = attrs.evolve(arch, embedding_dim=quantizer.dim, codebook_size=quantizer.codebook_size)
        if self.arch.causal and self.temporal_kernel == 1:
            raise MagvitError(f"{type(self).__name__} tokenizes every frame alone; causal does not apply")
        self.encoder = Encoder(self.arch, self.temporal_kernel)
        self.quantizer = quantizer
        self.decoder = Decoder(self.arch, self.temporal_kernel)
        # `config.checkpoint` is loaded by whoever builds the model from a config (the `vq3d`
        # plugin's factory), not here: constructing a module never reads the disk.

    @property
    def factors(self) -> tuple[int, int, int]:
        return self.arch.factors

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    @property
    def causal(self) -> bool:
        return self.arch.causal

    @property
    def encoder_halo(self) -> int | None:
        """A local encoder's token sees its patch and this many pixels around it; None: any pixel."""
        return self.arch.encoder_halo

    @property
    def decoder_halo(self) -> int | None:
        """A local decoder's pixel depends on its own token and those within this many pixels;
        None: on any token."""
        return self.arch.decoder_halo

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        ft, fh, fw = self.factors
        if self.causal:  # the first frame alone, then groups of ft
            if frames < 1 or (frames - 1) % ft or height % fh or width % fw:
                raise MagvitError(
                    f"{type(self).__name__}: a causal tokenizer takes clips of 1 + k·{ft} frames and "
                    f"sizes divisible by {fh}x{fw}; got {frames}x{height}x{width} (frames x height x width)"
                )
            return (1 + (frames - 1) // ft, height // fh, width // fw)
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
        return self.quantizer.codes(self.encode_latent(video))

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """`(B, t, h, w)` codes -> video in [0, 1]."""
        if tokens.dim() != 4:
            raise MagvitError(f"expected tokens of shape (B, t, h, w), got {tuple(tokens.shape)}")
        if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
            raise MagvitError(f"token ids must be integers (encode gives int64), got {tokens.dtype}; "
                              "a float id would be truncated to another code")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.codebook_size):
            raise MagvitError(
                f"token ids must be in [0, {self.codebook_size}) for this codebook; got "
                f"{int(tokens.min())}..{int(tokens.max())} (special ids such as [MASK] cannot be decoded)"
            )
        return self.decode_latent(self.quantizer.lookup(tokens)).clamp(0, 1)
