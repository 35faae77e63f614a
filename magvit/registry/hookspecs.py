"""The hooks a plugin implements: one `magvit_register_<kind>(registry)` per registry."""

from __future__ import annotations

import pluggy

PROJECT = "magvit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# kind -> singular noun used in messages. The order is the order of `magvit registry list`.
KINDS: dict[str, str] = {
    "tokenizers": "tokenizer",
    "quantizers": "quantizer",
    "transformers": "transformer",
    "tasks": "task",
    "paddings": "padding",
    "schedules": "schedule",
    "decoders": "decoder",
    "inflations": "inflation",
    "attentions": "attention backend",
    "datasets": "dataset",
    "perceptual_losses": "perceptual loss",
    "loggers": "logger",
    "feature_extractors": "feature extractor",
}


@hookspec
def magvit_register_tokenizers(registry):
    """Add video tokenizers (`nn.Module` with encode/decode) to `registry`."""


@hookspec
def magvit_register_quantizers(registry):
    """Add tokenizer quantizers (`codes`, `lookup`, `forward`, `codebook_size`, `dim`) to `registry`."""


@hookspec
def magvit_register_transformers(registry):
    """Add token transformers (stage 2 models) to `registry`."""


@hookspec
def magvit_register_tasks(registry):
    """Add conditional generation tasks (condition + latent mask) to `registry`."""


@hookspec
def magvit_register_paddings(registry):
    """Add padding functions `(video, pixel_mask) -> padded video` to `registry`."""


@hookspec
def magvit_register_schedules(registry):
    """Add mask schedules `gamma(r) -> mask ratio` to `registry`."""


@hookspec
def magvit_register_decoders(registry):
    """Add token decoders (COMMIT, MaskGIT, autoregressive, ...) to `registry`."""


@hookspec
def magvit_register_inflations(registry):
    """Add 2D-to-3D kernel inflation methods to `registry`."""


@hookspec
def magvit_register_attentions(registry):
    """Add attention backends `(q, k, v) -> out` to `registry`."""


@hookspec
def magvit_register_datasets(registry):
    """Add video datasets to `registry`."""


@hookspec
def magvit_register_perceptual_losses(registry):
    """Add perceptual losses `(video, target) -> scalar` (they load user-named weights)."""


def hook_name(kind: str) -> str:
    return f"magvit_register_{kind}"


@hookspec
def magvit_register_loggers(registry):
    """Add experiment trackers (`start`, `log`, `log_images`, `close`) to `registry`."""


@hookspec
def magvit_register_feature_extractors(registry):
    """Add evaluation networks `(B, 3, T, H, W) in [0, 1] -> (B, width)` features to `registry`."""
