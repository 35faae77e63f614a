"""The `[losses]` section of a tokenizer experiment (SPEC §5 defaults: the paper's recipe)."""

from __future__ import annotations

import attrs

from magvit.registry.components import Component
from magvit.registry.schema import validate
from magvit.registry.validators import at_least, in_range

PerceptualComponent = Component.of("perceptual_losses")


_non_negative = at_least(0.0)


@attrs.define(kw_only=True)
class TokenizerLosses:
    l2: float = attrs.field(default=1.0, validator=_non_negative)
    gan: float = attrs.field(default=0.1, validator=_non_negative)  # 0 = no discriminator
    gan_start_step: int = 0
    r1_cost: float = attrs.field(default=10.0, validator=_non_negative)
    lecam: float = attrs.field(default=0.0, validator=_non_negative)  # paper: on; release: 0
    lecam_decay: float = 0.999
    disc_lr: float | None = None  # None = train.lr
    perceptual: float = attrs.field(default=0.1, validator=_non_negative)
    # The network behind the perceptual loss; none = no perceptual loss (e.g. no weights file).
    perceptual_model: PerceptualComponent | None = None
    # Codebook usage is counted over windows of this many steps; codes unused in a whole
    # window are dead and, with `restart_dead_codes`, moved onto encoder outputs.
    usage_window: int = 100
    restart_dead_codes: bool = False
    # In this fraction of the clips, a box of tokens is moved by a token or two before decoding
    # and its pixels leave the L2: the decoder learns not to let wrong neighbouring tokens blur
    # the right ones (core/training/misplaced_tokens.py). 0 = off.
    misplaced_tokens: float = attrs.field(default=0.0, validator=in_range(0.0, 1.0))
    # In this fraction of the clips, the clip is replaced by a random conditional task's padded
    # video of it (what stage 2 encodes: a first frame repeated, a blend, a zero border), so the
    # tokenizer learns to keep what a task gives (core/training/condition_clips.py). 0 = off.
    condition_clips: float = attrs.field(default=0.0, validator=in_range(0.0, 1.0))


def tokenizer_losses(section: dict) -> TokenizerLosses:
    """Validate an experiment's `[losses]` table (every problem reported as `losses.<key>`)."""
    return validate(TokenizerLosses, section, path="losses")
