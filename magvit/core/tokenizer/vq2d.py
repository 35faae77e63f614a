"""The MaskGIT-style 2D-VQ baseline: every frame tokenized on its own (8x8 spatial for B).

It is the 3D-VQ with temporal kernel 1 and no temporal downsampling, run on each frame as a
1-frame clip (so norms see one frame), which is also why its weights inflate into a VQ3D.
"""

from __future__ import annotations

import torch

from magvit.core.tokenizer.vq3d import VQ3D


def _frames_to_batch(x: torch.Tensor) -> torch.Tensor:
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, 1, h, w)


def _batch_to_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    bt, c, _, h, w = x.shape
    return x.reshape(bt // frames, frames, c, h, w).transpose(1, 2)


class VQ2D(VQ3D):
    temporal_kernel = 1

    @property
    def factors(self) -> tuple[int, int, int]:
        _, h, w = self.arch.factors
        return (1, h, w)

    def encode_latent(self, video: torch.Tensor) -> torch.Tensor:
        return _batch_to_frames(super().encode_latent(_frames_to_batch(video)), video.shape[2])

    def decode_latent(self, latent: torch.Tensor) -> torch.Tensor:
        return _batch_to_frames(super().decode_latent(_frames_to_batch(latent)), latent.shape[2])
