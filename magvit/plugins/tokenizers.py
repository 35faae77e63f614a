"""Built-in tokenizers (`vq3d`, `vq2d`) and the VGG16 perceptual loss used to train them.

The factories build the module and then load `checkpoint` (a run or step folder, or `default`)
when the config names one; the modules themselves never read the disk.
"""

from __future__ import annotations

from magvit.api import hookimpl
from magvit.core.losses.perceptual import VGG16Perceptual
from magvit.core.tokenizer.config import TokenizerConfig
from magvit.core.tokenizer.loading import load_tokenizer_weights
from magvit.core.tokenizer.vq2d import VQ2D
from magvit.core.tokenizer.vq3d import VQ3D
from magvit.weights import resolve_model_path


def _with_weights(model: VQ3D, config: TokenizerConfig) -> VQ3D:
    if config.checkpoint:
        load_tokenizer_weights(model, str(resolve_model_path(config.checkpoint)))
    return model


def vq3d(config: TokenizerConfig) -> VQ3D:
    """The MAGVIT 3D-VQ (presets tiny, B, L, B64)."""
    return _with_weights(VQ3D(config), config)


def vq2d(config: TokenizerConfig) -> VQ2D:
    """The MaskGIT-style per-frame 2D-VQ baseline."""
    return _with_weights(VQ2D(config), config)


vq3d.Config = vq2d.Config = TokenizerConfig


@hookimpl
def magvit_register_tokenizers(registry):
    registry.add("vq3d", vq3d)
    registry.add("vq2d", vq2d)


@hookimpl
def magvit_register_perceptual_losses(registry):
    registry.add("vgg16", VGG16Perceptual)
