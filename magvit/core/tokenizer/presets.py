"""Tokenizer architectures by name (SPEC §5, paper Appendix B.2).

`B` and `L` map 16x128x128 clips to 4x16x16 tokens; `B64` (BAIR) maps 16x64x64 to 4x16x16;
`tiny` is the CPU-sized model of the bundled default: 8x32x32 clips to 4x8x8 tokens.
"""

from __future__ import annotations

import attrs

from magvit.errors import MagvitError

NORMS = ("group", "frame", "channel")
DOWNSAMPLES = ("pool", "conv")


@attrs.frozen(kw_only=True)
class Architecture:
    base_channels: int = 64
    channel_multipliers: tuple[int, ...] = (1, 2, 2, 4)
    # One entry per downsampling step (between encoder levels): True = (2,2,2), False = (1,2,2).
    temporal_downsample: tuple[bool, ...] = (True, True, False)
    num_res_blocks: int = 2
    embedding_dim: int = 256
    codebook_size: int = 1024
    padding: str = "reflect"  # "reflect" (paper) or "zero" (authors' release)
    disc_channels: int = 64
    disc_multipliers: tuple[int, ...] = (2, 4, 4, 4, 4)
    # Causal in time (MAGVIT-v2): clips of 1 + k·ft frames, the first frame tokenized alone.
    causal: bool = False
    norm: str = "group"  # "group" (over the clip, paper), "frame" or "channel" (local statistics)
    # Spatially local encoder: convs after the first level are pointwise in space and its norm is
    # per position, so a token sees its own patch plus `encoder_halo` pixels around it (the
    # decoder keeps `norm`: per-position statistics on both sides stall training).
    local: bool = False
    # ... and local in time (needs `local`): the encoder's ResBlocks are pointwise in time, so a
    # token sees its own frames and the first conv's one frame either side, and a shape moving a
    # whole token per latent frame gets the same codes one token over (tokens are shift-consistent).
    local_time: bool = False
    # The decoder's base width (None: `base_channels`); a wider decoder can be trained on the
    # frozen codes of a finished tokenizer (`codes_from`), leaving its tokens as they were.
    decoder_channels: int | None = None
    # ResBlocks per decoder level (None: `num_res_blocks`): a deeper decoder on the same codes
    # (more layers to place an edge inside a token from its neighbours' codes).
    decoder_res_blocks: int | None = None
    # How the encoder halves a level: "pool" (average, paper) or "conv" (a learned conv whose
    # kernel is its stride: the same block, each position weighed on its own).
    downsample: str = "pool"
    # Spatially local decoder: every layer before the 3x3 output conv is pointwise in space, each
    # upsampling is learned per position (a transposed conv whose kernel is its stride) and the
    # norm is per position, so a pixel depends on its own token and those within `decoder_halo`
    # pixels: generated tokens beside a task's given region cannot blur the given pixels. Train
    # it on a finished tokenizer's frozen codes (`codes_from`); the encoder is unchanged.
    decoder_local: bool = False
    # ... whose first conv also sees the tokens up to this many away on the latent grid (a
    # (2N+1)x(2N+1) kernel): shape and colour can be read off neighbouring tokens, for a halo
    # that many patches wider.
    decoder_context: int = 0
    # ... and local in time (needs `decoder_local`): every decoder conv is pointwise in time, so
    # a frame depends on its own latent frame only (frame prediction's given frame included).
    decoder_local_time: bool = False

    def __attrs_post_init__(self) -> None:
        if len(self.temporal_downsample) != len(self.channel_multipliers) - 1:
            raise MagvitError(
                f"tokenizer: temporal_downsample has {len(self.temporal_downsample)} entries but "
                f"channel_multipliers {self.channel_multipliers} needs "
                f"{len(self.channel_multipliers) - 1} (one per downsampling step)"
            )
        if self.padding not in ("reflect", "zero"):
            raise MagvitError(f"tokenizer: padding {self.padding!r} must be \"reflect\" or \"zero\"")
        if self.decoder_channels is not None and self.decoder_channels < 1:
            raise MagvitError(f"tokenizer: decoder_channels must be at least 1, got {self.decoder_channels}")
        if self.decoder_res_blocks is not None and self.decoder_res_blocks < 1:
            raise MagvitError(
                f"tokenizer: decoder_res_blocks must be at least 1, got {self.decoder_res_blocks}")
        if self.local_time and not self.local:
            raise MagvitError("tokenizer: local_time = true needs local = true (a clip-wide norm "
                              "would let every frame reach every token)")
        if self.decoder_context < 0:
            raise MagvitError(f"tokenizer: decoder_context must be at least 0, got {self.decoder_context}")
        if self.decoder_context and not self.decoder_local:
            raise MagvitError("tokenizer: decoder_context applies to a local decoder (decoder_local = "
                              "true); the plain decoder sees every token already")
        if self.decoder_local_time and not self.decoder_local:
            raise MagvitError("tokenizer: decoder_local_time = true needs decoder_local = true (a "
                              "clip-wide norm would let every latent frame reach every frame)")
        if self.downsample not in DOWNSAMPLES:
            raise MagvitError(f"tokenizer: downsample {self.downsample!r} must be one of "
                              f"{', '.join(DOWNSAMPLES)}")
        if self.norm not in NORMS:
            raise MagvitError(f"tokenizer: norm {self.norm!r} must be one of {', '.join(NORMS)}")

    @property
    def encoder_halo(self) -> int | None:
        """Pixels beyond its own patch that a token of a local encoder sees (None: not local):
        the first conv and the first level's ResBlocks, all 3x3 in space at full resolution."""
        return 1 + 2 * self.num_res_blocks if self.local else None

    @property
    def decoder_halo(self) -> int | None:
        """Pixels beyond its own token's patch whose tokens a local decoder's pixel depends on
        (None: not local): the output conv's (3x3 in space) and `decoder_context` patches."""
        if not self.decoder_local:
            return None
        return 1 + self.decoder_context * max(self.factors[1:])

    @property
    def factors(self) -> tuple[int, int, int]:
        steps = len(self.temporal_downsample)
        return (2 ** sum(self.temporal_downsample), 2**steps, 2**steps)


PRESETS: dict[str, Architecture] = {
    "B": Architecture(),
    "L": Architecture(base_channels=128, disc_channels=128),
    "B64": Architecture(
        channel_multipliers=(1, 2, 4), temporal_downsample=(True, True), disc_multipliers=(2, 4, 4, 4),
    ),
    "tiny": Architecture(
        base_channels=16, channel_multipliers=(1, 2, 4), temporal_downsample=(True, False),
        num_res_blocks=1, embedding_dim=16, codebook_size=512,
        disc_channels=16, disc_multipliers=(2, 4, 4),
    ),
}


def resolve(preset: str, **overrides) -> Architecture:
    """The preset's architecture with every non-None override applied."""
    if preset not in PRESETS:
        raise MagvitError(
            f"tokenizer: unknown preset {preset!r}; choose one of {', '.join(PRESETS)} "
            "(and override single fields, e.g. base_channels = 32)"
        )
    changes = {k: v for k, v in overrides.items() if v is not None}
    return attrs.evolve(PRESETS[preset], **changes)
