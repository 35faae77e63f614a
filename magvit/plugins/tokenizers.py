"""Built-in tokenizers (`vq3d`, `vq2d`) and the VGG16 perceptual loss used to train them.

The factories build the module and then load `checkpoint` (a run or step folder, or `default`)
when the config names one; the modules themselves never read the disk. A tokenizer section may
name a plugin of the `quantizers` registry (`quantizer = { kind = "lfq", bits = 14 }`).
"""

from __future__ import annotations

import attrs

from magvit.api import component, hookimpl, load_tokenizer_checkpoint
from magvit.core.losses.perceptual import VGG16Perceptual
from magvit.core.tokenizer.config import TokenizerConfig
from magvit.core.tokenizer.vq2d import VQ2D
from magvit.core.tokenizer.vq3d import VQ3D

QuantizerComponent = component("quantizers")


@attrs.define(kw_only=True)
class TokenizerSection(TokenizerConfig):
    quantizer: QuantizerComponent | None = None  # None = the paper's VQ from the fields above


def _quantizer(config: TokenizerSection):
    """The chosen quantizer, its unset fields filled from the tokenizer's (None = default VQ)."""
    if config.quantizer is None:
        return None
    arch = config.architecture()
    own = {**attrs.asdict(config, recurse=False), **attrs.asdict(arch, recurse=False)}
    fill = {f.name: own[f.name] for f in attrs.fields(type(config.quantizer.config))
            if getattr(config.quantizer.config, f.name) is None and own.get(f.name) is not None}
    return config.quantizer.build(**fill)


def _with_weights(model: VQ3D, config: TokenizerConfig) -> VQ3D:
    return load_tokenizer_checkpoint(model, config.checkpoint) if config.checkpoint else model


def vq3d(config: TokenizerSection) -> VQ3D:
    """The MAGVIT 3D-VQ (presets tiny, B, L, B64); any quantizer, causal or not."""
    return _with_weights(VQ3D(config, _quantizer(config)), config)


def vq2d(config: TokenizerSection) -> VQ2D:
    """The MaskGIT-style per-frame 2D-VQ baseline."""
    return _with_weights(VQ2D(config, _quantizer(config)), config)


vq3d.Config = vq2d.Config = TokenizerSection


@hookimpl
def magvit_register_tokenizers(registry):
    registry.add("vq3d", vq3d)
    registry.add("vq2d", vq2d)


@hookimpl
def magvit_register_perceptual_losses(registry):
    registry.add("vgg16", VGG16Perceptual)
