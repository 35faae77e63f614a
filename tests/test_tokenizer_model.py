"""3D-VQ / 2D-VQ architecture: reference parameter counts, token shapes, errors."""

from __future__ import annotations

import pytest
import torch

import magvit
from magvit.core.tokenizer.autoencoder import Decoder, Encoder
from magvit.core.tokenizer.discriminator import Discriminator
from magvit.core.tokenizer.presets import PRESETS
from magvit.errors import MagvitError


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "preset, encoder, decoder, generator",
    [("B", 17.15e6, 23.17e6, 40.58e6), ("L", None, None, 157.8e6)],
)
def test_generator_parameter_counts_match_the_reference(preset, encoder, decoder, generator):
    arch = PRESETS[preset]
    enc, dec = count(Encoder(arch)), count(Decoder(arch))
    total = enc + dec + arch.codebook_size * arch.embedding_dim
    assert total == pytest.approx(generator, rel=0.01)
    if encoder:
        assert enc == pytest.approx(encoder, rel=0.01)
        assert dec == pytest.approx(decoder, rel=0.01)


@pytest.mark.parametrize("preset, expected", [("B", 15.34e6), ("L", 61.3e6)])
def test_discriminator_parameter_counts_match_the_reference(preset, expected):
    arch = PRESETS[preset]
    disc = Discriminator(arch.disc_channels, arch.disc_multipliers, frames=16, resolution=128)
    assert count(disc) == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize(
    "preset, clip, latent",
    [("B", (16, 128, 128), (4, 16, 16)), ("L", (16, 128, 128), (4, 16, 16)),
     ("B64", (16, 64, 64), (4, 16, 16)), ("tiny", (8, 32, 32), (4, 8, 8))],
)
def test_presets_map_clips_to_the_paper_token_grids(preset, clip, latent):
    arch = PRESETS[preset]
    assert tuple(c // f for c, f in zip(clip, arch.factors)) == latent


def test_tiny_vq3d_round_trip_shapes_and_ranges():
    torch.manual_seed(0)
    model = magvit.registries().tokenizers.create("vq3d", preset="tiny")
    video = torch.rand(2, 3, 8, 32, 32)
    tokens = model.encode(video)
    assert tokens.shape == (2, 4, 8, 8) and tokens.dtype == torch.int64
    assert 0 <= int(tokens.min()) and int(tokens.max()) < model.codebook_size
    decoded = model.decode(tokens)
    assert decoded.shape == video.shape
    assert float(decoded.min()) >= 0.0 and float(decoded.max()) <= 1.0
    recon, aux = model(video)
    assert torch.equal(aux["codes"], tokens)
    # decode(encode(x)) is (up to the straight-through rounding) the clamped forward reconstruction
    assert torch.allclose(decoded, recon.clamp(0, 1), atol=1e-5)
    assert model.latent_shape(8, 32, 32) == (4, 8, 8)


def test_vq2d_tokenizes_each_frame_on_its_own():
    torch.manual_seed(0)
    model = magvit.registries().tokenizers.create("vq2d", preset="tiny").eval()
    assert model.factors == (1, 4, 4)
    video = torch.rand(1, 3, 4, 32, 32)
    tokens = model.encode(video)
    assert tokens.shape == (1, 4, 8, 8)
    # Changing frame 2 changes only frame 2's tokens and frame 2's decoding.
    edited = video.clone()
    edited[:, :, 2] = 1 - edited[:, :, 2]
    new = model.encode(edited)
    assert torch.equal(new[:, [0, 1, 3]], tokens[:, [0, 1, 3]])
    assert not torch.equal(new[:, 2], tokens[:, 2])
    assert torch.equal(model.decode(new)[:, :, [0, 1, 3]], model.decode(tokens)[:, :, [0, 1, 3]])


@pytest.mark.parametrize("padding", ["reflect", "zero"])
def test_padding_mode_is_config(padding):
    model = magvit.registries().tokenizers.create("vq3d", preset="tiny", padding=padding)
    assert model.encoder.conv_in.padding_mode == {"reflect": "reflect", "zero": "zeros"}[padding]


def test_bad_clip_and_token_errors_name_the_fix():
    model = magvit.registries().tokenizers.create("vq3d", preset="tiny")
    with pytest.raises(MagvitError, match=r"7x32x32 .* divisible by the downsampling factors \(2, 4, 4\)"):
        model.encode(torch.rand(1, 3, 7, 32, 32))
    with pytest.raises(MagvitError, match=r"token ids must be in \[0, 512\)"):
        model.decode(torch.full((1, 4, 8, 8), 512))
    for dtype in (torch.float32, torch.bfloat16, torch.bool):
        with pytest.raises(MagvitError, match=f"token ids must be integers \\(encode gives int64\\), got {dtype}"):
            model.decode(torch.ones((1, 4, 8, 8), dtype=dtype))
    ids = torch.randint(0, 512, (1, 4, 8, 8), generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.decode(ids.int()), model.decode(ids))  # int32 ids are ids
    with pytest.raises(MagvitError, match="unknown preset 'XL'; choose one of B, L, B64, tiny"):
        magvit.registries().tokenizers.create("vq3d", preset="XL")
    with pytest.raises(MagvitError, match="temporal_downsample has 1 entries"):
        magvit.registries().tokenizers.create("vq3d", preset="B", temporal_downsample=[True])
