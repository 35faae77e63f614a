"""Built-in tokenizers (`vq3d`, `vq2d`) and the VGG16 perceptual loss used to train them."""

from __future__ import annotations

import magvit
from magvit.core.losses.perceptual import VGG16Perceptual
from magvit.core.tokenizer.vq2d import VQ2D
from magvit.core.tokenizer.vq3d import VQ3D


@magvit.hookimpl
def magvit_register_tokenizers(registry):
    registry.add("vq3d", VQ3D)
    registry.add("vq2d", VQ2D)


@magvit.hookimpl
def magvit_register_perceptual_losses(registry):
    registry.add("vgg16", VGG16Perceptual)
