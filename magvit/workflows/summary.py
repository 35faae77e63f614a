"""Parameter counts per component of an experiment (`magvit model summary EXP`).

Models are built on the `meta` device: counting the 158M-parameter L tokenizer allocates
nothing and loads no checkpoint.
"""

from __future__ import annotations

import torch

from magvit.registry.experiment import Experiment


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tokenizer_without_weights(component) -> torch.nn.Module:
    """The tokenizer a `[tokenizer]` section builds, on the meta device, reading no weights."""
    from magvit.workflows.bundle import self_contained_tokenizer

    with torch.device("meta"):
        return self_contained_tokenizer(component).build()


def tokenizer_counts(exp: Experiment) -> dict[str, int]:
    from magvit.core.tokenizer.discriminator import Discriminator
    from magvit.workflows.tokenizer_losses import tokenizer_losses

    model = tokenizer_without_weights(exp.tokenizer)
    counts = {f"tokenizer.{name}": _count(child) for name, child in model.named_children()}
    counts["tokenizer"] = _count(model)
    stage_one = exp.transformer is None and exp.data is not None
    if stage_one and tokenizer_losses(exp.losses).gan and hasattr(model, "arch"):
        frames, resolution = exp.data.config.frames, exp.data.config.resolution
        with torch.device("meta"):
            disc = Discriminator(model.arch.disc_channels, model.arch.disc_multipliers, frames, resolution)
        counts["discriminator"] = _count(disc)
    return counts


def transformer_count(exp: Experiment) -> int:
    """The stage-2 transformer at the sizes its vocabulary and sequence give it (SPEC §4)."""
    from magvit.workflows.stage2_layout import layout_without_weights

    layout = layout_without_weights(exp)
    with torch.device("meta"):
        return _count(layout.transformer.build())


def parameter_counts(exp: Experiment) -> dict[str, int]:
    """`{"tokenizer.encoder": n, ..., "tokenizer": total, "discriminator": n, "transformer": n}`
    for the components the experiment defines (the discriminator only for a stage-1 GAN run;
    the transformer for a stage-2 experiment, sized by its vocabulary)."""
    counts: dict[str, int] = {}
    if exp.tokenizer is not None:
        counts.update(tokenizer_counts(exp))
    if exp.transformer is not None and exp.tasks and exp.data is not None:
        counts["transformer"] = transformer_count(exp)
    return counts
