"""`[losses] misplaced_tokens`: a box of a clip's tokens moved by a token or two before decoding,
and the L2 over the pixels of the tokens left in place only."""

from __future__ import annotations

import pytest
import torch
from test_tokenizer_training import experiment, kill_then_resume

from magvit.core.training import DistContext
from magvit.core.training.misplaced_tokens import kept_pixels, misplace_tokens
from magvit.errors import ConfigError, MagvitError
from magvit.workflows.tokenizer_losses import tokenizer_losses
from magvit.workflows.tokenizer_stage import TokenizerStage
from magvit.workflows.train_tokenizer import build_tokenizer


def _latent(seed=0, batch=8):
    return torch.randn(batch, 5, 4, 8, 8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("seed", range(6))
def test_each_misplaced_position_holds_a_rolled_neighbour_and_the_rest_is_untouched(seed):
    latent = _latent(seed)
    out, kept = misplace_tokens(latent, 1.0, torch.Generator().manual_seed(seed))
    assert out.shape == latent.shape and kept.shape == (8, 1, 4, 8, 8) and kept.dtype == torch.bool
    assert torch.equal(torch.where(kept, out, latent), latent)  # kept positions: their own latent
    for b in range(8):
        moved = ~kept[b, 0]
        if not moved.any():
            continue
        assert not moved.all()
        # one shift explains every moved position, and it is a real move of at most (1, 2, 2)
        fits = [(dt, dy, dx) for dt in (-1, 0, 1) for dy in range(-2, 3) for dx in range(-2, 3)
                if (dt, dy, dx) != (0, 0, 0)
                and torch.equal(out[b][:, moved], torch.roll(latent[b], (dt, dy, dx), (1, 2, 3))[:, moved])]
        assert fits, b


def test_the_fraction_and_the_seed_decide_which_clips_move():
    latent = _latent(batch=64)
    none, kept = misplace_tokens(latent, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(none, latent) and kept.all()
    a = misplace_tokens(latent, 0.5, torch.Generator().manual_seed(3))
    b = misplace_tokens(latent, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    moved = int((~a[1]).flatten(1).any(1).sum())
    assert 18 <= moved <= 40  # about half of 64 (a box may also be skipped as the whole grid)
    everything = misplace_tokens(latent, 1.0, torch.Generator().manual_seed(3))[1]
    assert int((~everything).flatten(1).any(1).sum()) >= 56


def test_kept_pixels_cover_each_kept_tokens_patch():
    kept = torch.ones(1, 1, 4, 8, 8, dtype=torch.bool)
    kept[0, 0, 1, 2, 5] = False
    pixels = kept_pixels(kept, 8, 32, 32)
    assert pixels.shape == (1, 1, 8, 32, 32) and pixels.dtype == torch.float32
    assert torch.equal(pixels[0, 0, 2:4, 8:12, 20:24], torch.zeros(2, 4, 4))
    assert pixels.sum() == 8 * 32 * 32 - 2 * 4 * 4


def _stage(fraction):
    exp = experiment(losses={"gan": 0.0, "misplaced_tokens": fraction})
    torch.manual_seed(0)
    model = build_tokenizer(exp.tokenizer)
    data = exp.data.build().make("train", 0)
    return TokenizerStage(model, data, tokenizer_losses(exp.losses), exp.train,
                          ctx=DistContext(torch.device("cpu")), seed=3)


def test_the_loss_counts_only_the_pixels_of_tokens_left_in_place():
    stage = _stage(1.0)
    video = torch.rand(4, 3, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _, recon, _, metrics = stage._generator_loss(video, False, (5, 0))
        model = stage.model
        quantized, _ = model.quantizer(model.encode_latent(video))
        moved, kept = misplace_tokens(quantized, 1.0, torch.Generator().manual_seed(3 * 1_000_003 + 5 * 997))
        want = model.decode_latent(moved)
    assert not kept.all()
    torch.testing.assert_close(recon, want)
    weight = kept_pixels(kept, 4, 16, 16)
    err = (2 * (want - video)).pow(2)
    assert metrics["l2"] == pytest.approx(((err * weight).sum() / (weight.sum() * 3)).item(), rel=1e-5)
    assert metrics["l2"] != pytest.approx(err.mean().item(), rel=1e-3)  # not the plain mean
    with torch.no_grad():  # the same step and micro-batch draw the same boxes
        again = stage._generator_loss(video, False, (5, 0))[1]
        other = stage._generator_loss(video, False, (6, 0))[1]
    assert torch.equal(again, recon) and not torch.equal(other, recon)


def test_misplaced_tokens_is_checked():
    with pytest.raises(ConfigError, match=r"losses.misplaced_tokens: must be in \[0.0, 1.0\], got 1.5"):
        tokenizer_losses({"misplaced_tokens": 1.5})
    exp = experiment(losses={"gan": 0.0, "misplaced_tokens": 0.5})
    with pytest.raises(MagvitError, match="losses.misplaced_tokens: needs a tokenizer with encode_latent, quantizer "
                                          "and decode_latent \\(vq3d\\); Linear lacks encode_latent, quantizer, "
                                          "decode_latent; set misplaced_tokens = 0"):
        TokenizerStage(torch.nn.Linear(2, 2), exp.data.build().make("train", 0), tokenizer_losses(exp.losses),
                       exp.train, ctx=DistContext(torch.device("cpu")), seed=0)


def test_a_resumed_run_draws_the_same_boxes_and_ends_bit_equal(tmp_path, monkeypatch):
    from magvit.core.training.checkpoint import load_checkpoint
    from magvit.workflows.train_tokenizer import train

    exp = experiment(losses={"gan": 0.0, "misplaced_tokens": 0.5},
                     train={"steps": 4, "checkpoint_every": 2, "warmup_steps": 0})
    train(exp, tmp_path / "straight")
    kill_then_resume(exp, tmp_path / "cut", monkeypatch, at_step=3)
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "cut")
    assert a.step == b.step == 4
    for group in ("model", "ema"):
        assert a.weights[group].keys() == b.weights[group].keys()
        assert all(torch.equal(a.weights[group][k], b.weights[group][k]) for k in a.weights[group])
    plain = experiment(losses={"gan": 0.0}, train={"steps": 4, "checkpoint_every": 2, "warmup_steps": 0})
    train(plain, tmp_path / "plain")  # the option changes what is learned
    c = load_checkpoint(tmp_path / "plain")
    assert not torch.equal(c.weights["model"]["decoder.conv_out.weight"], a.weights["model"]["decoder.conv_out.weight"])
