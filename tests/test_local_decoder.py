"""`decoder_local`: a pixel depends on its own token and the tokens within 1 pixel, so the tokens
a task generates beside its given region cannot change the given pixels further in; with
`decoder_local_time`, a frame depends on its own latent frame only. Trained on frozen codes
(`codes_from`, a run or a stage-2 bundle), it swaps into the bundle (`export --tokenizer`)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from generation_fixtures import random_clip, save_tiny_bundle
from test_decoder_finetune import _stage1_checkpoint
from test_tokenizer_training import MICRO

import magvit
from magvit.cli.main import main
from magvit.core.tokenizer.blocks import LocalUpsample
from magvit.errors import MagvitError
from magvit.pipeline import Pipeline
from magvit.registry.experiment import validate_experiment
from magvit.testing import check_tokenizer
from magvit.workflows.bundle import load_bundle
from magvit.workflows.train_tokenizer import load_tokenizer, train


def _tokenizer(**overrides):
    torch.manual_seed(0)
    return magvit.registries().tokenizers.create("vq3d", preset="tiny", local=True, **overrides).eval()


def _clips(batch, seed):
    return torch.rand(batch, 3, 8, 32, 32, generator=torch.Generator().manual_seed(seed))


def _reach(decoder, latent, t, y, x):
    """The (T, H, W) pixels whose value moves when the latent at (t, y, x) moves."""
    with torch.no_grad():
        base = decoder(latent)
        moved = latent.clone()
        moved[0, :, t, y, x] += 3.0
        return (decoder(moved) - base).abs().amax(1)[0] > 1e-6


@pytest.mark.parametrize("t, y, x", [(0, 0, 0), (2, 3, 5), (3, 7, 7), (1, 4, 0)])
def test_a_local_decoder_pixel_sees_its_token_and_one_pixel_around(t, y, x):
    tokenizer = _tokenizer(decoder_local=True)
    assert tokenizer.arch.decoder_halo == 1 and _tokenizer().arch.decoder_halo is None
    latent = torch.randn(1, 16, 4, 8, 8, generator=torch.Generator().manual_seed(t * 64 + y * 8 + x))
    reach = _reach(tokenizer.decoder, latent, t, y, x)  # 8x32x32 pixels, 4x8x8 tokens of 2x4x4
    rows = reach.any(0).any(1).nonzero().flatten().tolist()
    cols = reach.any(0).any(0).nonzero().flatten().tolist()
    assert rows == list(range(max(4 * y - 1, 0), min(4 * y + 5, 32)))
    assert cols == list(range(max(4 * x - 1, 0), min(4 * x + 5, 32)))
    assert reach.any(-1).any(-1).sum() >= 2  # time keeps its kernels: the own two frames at least
    # the plain decoder reaches (nearly) everything from one token
    assert _reach(_tokenizer().decoder, latent, t, y, x).float().mean() > 0.9


def test_a_time_local_decoder_frame_sees_its_own_latent_frame_only():
    tokenizer = _tokenizer(decoder_local=True, decoder_local_time=True)
    latent = torch.randn(1, 16, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    for t in range(4):
        frames = _reach(tokenizer.decoder, latent, t, 2, 6).any(-1).any(-1)
        assert frames.nonzero().flatten().tolist() == [2 * t, 2 * t + 1]
    assert tokenizer.decode(tokenizer.encode(_clips(1, 0))).shape == (1, 3, 8, 32, 32)


def test_the_local_decoder_leaves_the_encoder_and_its_tokens_alone():
    plain, local = _tokenizer(), _tokenizer(decoder_local=True, decoder_channels=24)
    clips = _clips(2, 3)
    assert torch.equal(plain.encode(clips), local.encode(clips))
    assert plain.encoder.state_dict().keys() == local.encoder.state_dict().keys()
    ups = [m for m in local.decoder.modules() if isinstance(m, LocalUpsample)]
    assert [u.stride for u in ups] == [(1, 2, 2), (2, 2, 2)]  # 2D near the latent, then 3D
    assert all(m.mode == "channel" for m in local.decoder.modules() if hasattr(m, "mode"))
    assert all(c.kernel_size[1:] == (1, 1) for c in local.decoder.blocks.modules()
               if isinstance(c, torch.nn.Conv3d) and not isinstance(c, torch.nn.ConvTranspose3d))
    assert local.decoder.conv_out.kernel_size == (3, 3, 3)


@pytest.mark.parametrize("temporal, causal, frames", [(False, False, 3), (True, False, 3), (True, True, 3)])
def test_local_upsample_starts_as_the_nearest_resize(temporal, causal, frames):
    up = LocalUpsample(5, temporal, causal)
    x = torch.randn(2, 5, frames, 4, 6)
    y = up(x)
    nearest = F.interpolate(x, scale_factor=(2 if temporal else 1, 2, 2), mode="nearest")
    expected = nearest[:, :, 1:] if causal else nearest
    assert y.shape == expected.shape == (2, 5, (2 * frames - causal) if temporal else frames, 8, 12)
    torch.testing.assert_close(y, expected)


def test_decoder_local_time_needs_decoder_local():
    with pytest.raises(MagvitError, match=r"tokenizer: decoder_local_time = true needs decoder_local = true"):
        _tokenizer(decoder_local_time=True)


def test_a_local_decoder_trains_on_a_bundles_codes_and_swaps_into_it(tmp_path):
    source = save_tiny_bundle(tmp_path / "bundle")
    raw = copy.deepcopy(MICRO)  # the bundle's tokenizer (preset tiny) on its 8x16x16 clips
    raw["data"].update(frames=8, resolution=16)
    raw["tokenizer"] = {"kind": "vq3d", "preset": "tiny", "codes_from": str(source), "decoder_local": True}
    raw["train"].update(steps=2, checkpoint_every=2, warmup_steps=0)
    raw["losses"].update(gan=0.0)
    exp = validate_experiment(raw)
    train(exp, tmp_path / "decoder")  # codes_from a stage-2 bundle: its tokenizer, not its transformer
    bundle, trained = load_bundle(source), load_tokenizer(checkpoint=tmp_path / "decoder")
    clips = random_clip(batch=2, seed=5)
    assert torch.equal(bundle.tokenizer.encode(clips), trained.encode(clips))
    assert main(["export", str(source), str(tmp_path / "swapped"), "--tokenizer", str(tmp_path / "decoder")]) == 0
    swapped = load_bundle(tmp_path / "swapped")
    assert swapped.meta["tokenizer"]["decoder_local"] is True
    # the transformer's own tokens (the condition fit runs through the decoder, so it differs)
    a = Pipeline.from_checkpoint(source, refine_steps=0).generate("opv", clips, seed=1)
    b = Pipeline.from_checkpoint(tmp_path / "swapped", refine_steps=0).generate("opv", clips, seed=1)
    assert torch.equal(a.tokens, b.tokens) and b.video.shape == a.video.shape == (2, 3, 8, 16, 16)
    torch.testing.assert_close(b.video, trained.decode(b.tokens).float().clamp(0, 1))


def test_export_refuses_a_local_decoder_trained_on_other_codes(tmp_path):
    source = save_tiny_bundle(tmp_path / "run")
    bundle = load_bundle(source)

    def nudge(model):
        with torch.no_grad():
            model.encoder.conv_in.weight[0, 0, 0, 0, 0] += 1e-3

    moved = _stage1_checkpoint(tmp_path / "moved", bundle,
                               {"kind": "vq3d", "preset": "tiny", "decoder_local": True}, nudge)
    assert main(["export", str(source), str(tmp_path / "a"), "--tokenizer", str(moved)]) == 2
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("overrides", [{"decoder_local": True}, {"decoder_local": True, "decoder_local_time": True},
                                       {"decoder_local": True, "causal": True}])
def test_local_decoders_pass_the_tokenizer_contract(overrides):
    check_tokenizer(_tokenizer(**overrides))


def test_the_tokenizer_check_catches_a_halo_the_decoder_does_not_keep():
    model = _tokenizer()  # decodes from every token, but claims to be local

    class ClaimsLocal(type(model)):
        decoder_halo = 1

    model.__class__ = ClaimsLocal
    with pytest.raises(AssertionError, match="decoder_halo = 1: changing the tokens right of the first column "
                                             "changed its pixels more than 1 columns left of the second patch"):
        check_tokenizer(model)


def test_decoder_context_widens_the_reach_by_whole_tokens():
    tokenizer = _tokenizer(decoder_local=True, decoder_context=1)
    assert tokenizer.decoder_halo == 1 + 4 and tokenizer.decoder.conv_in.kernel_size[1:] == (3, 3)
    latent = torch.randn(1, 16, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    reach = _reach(tokenizer.decoder, latent, 2, 3, 0)
    rows = reach.any(0).any(1).nonzero().flatten().tolist()
    cols = reach.any(0).any(0).nonzero().flatten().tolist()
    assert rows == list(range(12 - 5, 16 + 5)) and cols == list(range(0, 4 + 5))
    check_tokenizer(tokenizer)
    with pytest.raises(MagvitError, match="decoder_context applies to a local decoder"):
        _tokenizer(decoder_context=1)
    with pytest.raises(MagvitError, match="decoder_context: must be >= 0, got -1"):
        _tokenizer(decoder_local=True, decoder_context=-1)
