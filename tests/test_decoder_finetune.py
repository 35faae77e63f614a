"""A new decoder on a finished tokenizer's frozen codes (`codes_from`), and swapping it into a
stage-2 bundle (`magvit export --tokenizer`): the tokens never change."""

from __future__ import annotations

import json

import pytest
import torch
from generation_fixtures import random_clip, save_tiny_bundle
from test_tokenizer_training import experiment, kill_then_resume

from magvit.cli.main import main
from magvit.core.tokenizer.loading import take_codes
from magvit.core.training import seed_everything
from magvit.core.training.checkpoint import load_checkpoint, save_checkpoint
from magvit.errors import MagvitError
from magvit.pipeline import Pipeline
from magvit.registry.experiment import experiment_toml, validate_experiment
from magvit.workflows.bundle import load_bundle
from magvit.workflows.train_tokenizer import build_tokenizer, load_tokenizer, train

BASE = {"train": {"steps": 2, "checkpoint_every": 2, "warmup_steps": 0}, "losses": {"gan": 0.0}}


def _code_tensors(state):
    return {k: v for k, v in state.items() if k.startswith(("encoder.", "quantizer.")) and k != "quantizer.hits"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A trained micro tokenizer (VQ, dead-code restarts on) whose codes the tests keep."""
    run = tmp_path_factory.mktemp("codes") / "run"
    train(experiment(**BASE), run)
    return run


def _decoder_run(source, **train_changes):
    # dead-code restarts and the GAN stay on: neither may touch the frozen codebook
    return experiment(tokenizer={"codes_from": str(source), "decoder_channels": 12},
                      train={"steps": 3, "checkpoint_every": 3, "warmup_steps": 0, **train_changes})


def test_codes_from_trains_a_wider_decoder_and_keeps_every_token(finished, tmp_path):
    exp = _decoder_run(finished)
    seed_everything(exp.run.seed)
    start = build_tokenizer(exp.tokenizer)  # what train() starts from
    initial = start.state_dict()
    train(exp, tmp_path / "decoder")

    before = load_tokenizer(checkpoint=finished)
    after = load_tokenizer(checkpoint=tmp_path / "decoder")
    clips = random_clip(batch=3, seed=1)
    assert torch.equal(before.encode(clips), after.encode(clips))
    assert after.decoder.conv_in.out_channels == 12 * 2 and before.decoder.conv_in.out_channels == 8 * 2

    ckpt = load_checkpoint(tmp_path / "decoder")
    source = _code_tensors(load_checkpoint(finished).weights["ema"])
    for group in ("model", "ema"):  # frozen in the trained weights and in their average
        codes = _code_tensors(ckpt.weights[group])
        assert codes.keys() == source.keys() and all(torch.equal(codes[k], source[k]) for k in codes)
    trained = {k: v for k, v in ckpt.weights["model"].items() if k.startswith("decoder.")}
    assert all(v.shape == initial[k].shape for k, v in trained.items())
    assert sum(not torch.equal(v, initial[k]) for k, v in trained.items()) == len(trained)
    # the optimiser holds the decoder's parameters alone
    optimised = ckpt.state["stage"]["optimizer"]["param_groups"][0]["params"]
    assert len(optimised) == len(list(start.decoder.parameters())) < len(list(start.parameters()))


def test_a_resumed_decoder_run_keeps_the_codes_frozen_and_ends_bit_equal(finished, tmp_path, monkeypatch):
    exp = _decoder_run(finished, steps=4, checkpoint_every=2)
    train(exp, tmp_path / "straight")
    kill_then_resume(exp, tmp_path / "cut", monkeypatch, at_step=3)  # the codes come from its own checkpoint
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "cut")
    assert a.step == b.step == 4
    source = _code_tensors(load_checkpoint(finished).weights["ema"])
    for group in ("model", "ema"):
        assert a.weights[group].keys() == b.weights[group].keys()
        assert all(torch.equal(a.weights[group][k], b.weights[group][k]) for k in a.weights[group])
        assert all(torch.equal(b.weights[group][k], v) for k, v in source.items())


def test_codes_from_a_tokenizer_of_another_shape_or_nowhere_is_refused(finished, tmp_path):
    wider = experiment(tokenizer={"codes_from": str(finished), "base_channels": 16})
    with pytest.raises(MagvitError, match=r"tokenizer.codes_from: the encoder and quantizer in \S+ do not "
                                          r"fit this model \(missing \[\], other shapes \['encoder\."):
        build_tokenizer(wider.tokenizer)
    nowhere = experiment(tokenizer={"codes_from": str(tmp_path / "nope")})
    with pytest.raises(MagvitError, match=r"tokenizer.codes_from: '\S+nope' does not exist; give the "
                                          "stage-1 run directory whose tokens to keep"):
        train(nowhere, tmp_path / "run")
    with pytest.raises(MagvitError, match="tokenizer.decoder_channels: must be >= 1, got 0"):
        experiment(tokenizer={"decoder_channels": 0}).tokenizer.build()
    with pytest.raises(MagvitError, match="tokenizer.decoder_res_blocks: must be >= 1, got 0"):
        experiment(tokenizer={"decoder_res_blocks": 0}).tokenizer.build()


def test_keep_decoder_continues_the_source_decoder_on_its_frozen_codes(finished, tmp_path):
    exp = experiment(tokenizer={"codes_from": str(finished), "keep_decoder": True},
                     train={"steps": 3, "checkpoint_every": 3, "warmup_steps": 0})
    source = load_checkpoint(finished).weights["ema"]
    start = build_tokenizer(exp.tokenizer).state_dict()
    decoder = sorted(k for k in source if k.startswith("decoder."))
    assert decoder and all(torch.equal(start[k], source[k]) for k in decoder)
    assert all(torch.equal(start[k], v) for k, v in _code_tensors(source).items())
    fresh = build_tokenizer(_decoder_run(finished).tokenizer).state_dict()  # without keep_decoder
    assert fresh["decoder.conv_in.weight"].shape != source["decoder.conv_in.weight"].shape

    train(exp, tmp_path / "more")
    after = load_checkpoint(tmp_path / "more").weights["model"]
    assert sum(not torch.equal(after[k], source[k]) for k in decoder) == len(decoder)  # it trained
    assert all(torch.equal(after[k], v) for k, v in _code_tensors(source).items())
    clips = random_clip(batch=2, seed=3)
    assert torch.equal(load_tokenizer(checkpoint=finished).encode(clips),
                       load_tokenizer(checkpoint=tmp_path / "more").encode(clips))


def test_keep_decoder_needs_codes_from_and_the_same_decoder(finished, tmp_path):
    wider = experiment(tokenizer={"codes_from": str(finished), "keep_decoder": True, "decoder_channels": 12})
    with pytest.raises(MagvitError, match=r"tokenizer.keep_decoder: the decoder in \S+ does not fit this model "
                                          r"\(missing \[\], other shapes \['decoder\..*set keep_decoder = false"):
        build_tokenizer(wider.tokenizer)
    alone = experiment(tokenizer={"keep_decoder": True})
    with pytest.raises(MagvitError, match="tokenizer.keep_decoder: takes the decoder of tokenizer.codes_from, "
                                          "which is not set; set codes_from"):
        train(alone, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_decoder_res_blocks_deepens_the_decoder_alone():
    import magvit
    make = lambda **kw: magvit.registries().tokenizers.create("vq3d", preset="tiny", **kw)  # noqa: E731
    torch.manual_seed(0)
    plain = make()
    torch.manual_seed(0)
    deep = make(decoder_res_blocks=3)
    blocks = lambda m: sum(type(b).__name__ == "ResBlock" for b in m.blocks)  # noqa: E731
    # tiny: 3 levels + the latent's own -> 4 groups of num_res_blocks (1) ResBlocks
    assert blocks(plain.decoder) == 4 and blocks(deep.decoder) == 4 * 3
    assert blocks(plain.encoder) == blocks(deep.encoder) == 4
    assert plain.decoder.conv_out.weight.shape == deep.decoder.conv_out.weight.shape
    # the encoder is built first from the same seed: the same tokens
    clips = random_clip(batch=2, seed=4)
    assert torch.equal(plain.encode(clips), deep.encode(clips))
    tokens = plain.encode(clips)
    assert deep.decode(tokens).shape == plain.decode(tokens).shape == clips.shape


def test_codes_from_an_encoder_with_other_downsampling_is_refused_both_ways():
    import magvit
    make = lambda downsample: magvit.registries().tokenizers.create(  # noqa: E731
        "vq3d", preset="tiny", local=True, downsample=downsample)
    conv, pool = make("conv"), make("pool")
    learned = r"\['encoder.blocks.1.conv.weight', 'encoder.blocks.3.conv.weight'\]"
    with pytest.raises(MagvitError, match=rf"missing \[\], other shapes \[\], not in this model {learned}"):
        take_codes(pool, conv.state_dict(), "a conv-downsampling run")
    with pytest.raises(MagvitError, match=rf"missing {learned}, other shapes \[\], not in this model \[\]"):
        take_codes(conv, pool.state_dict(), "an averaging run")
    assert all(p.requires_grad for p in pool.parameters())  # refused before anything froze
    take_codes(make("conv"), conv.state_dict(), "its own kind")


# -- swapping the decoder into a stage-2 bundle -------------------------------------------------

def _stage1_checkpoint(path, bundle, tokenizer_section, edit=None):
    """A stage-1 checkpoint holding the bundle's encoder and quantizer and a fresh decoder."""
    exp = validate_experiment({"tokenizer": tokenizer_section})
    torch.manual_seed(7)
    model = exp.tokenizer.build()
    take_codes(model, bundle.tokenizer.state_dict(), "the bundle")
    if edit is not None:
        edit(model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    save_checkpoint(path, 5, weights={"model": state, "ema": state}, state={},
                    files={"config.resolved.toml": experiment_toml(exp)})
    return path


def test_export_swaps_in_a_decoder_trained_on_the_same_codes(tmp_path):
    source = save_tiny_bundle(tmp_path / "run")
    bundle = load_bundle(source)
    decoder = _stage1_checkpoint(tmp_path / "decoder", bundle,
                                 {"kind": "vq3d", "preset": "tiny", "decoder_channels": 24,
                                  "decoder_res_blocks": 2})
    assert main(["export", str(source), str(tmp_path / "swapped"), "--tokenizer", str(decoder)]) == 0

    swapped = load_bundle(tmp_path / "swapped")
    assert swapped.meta["tokenizer"]["decoder_channels"] == 24
    assert swapped.meta["tokenizer"]["decoder_res_blocks"] == 2
    assert swapped.meta["tokenizer_source"] == str(decoder)
    assert swapped.experiment.tokenizer.config.checkpoint == str(decoder)
    assert swapped.tokenizer.decoder.conv_in.out_channels == 24 * 4
    # the transformer's own tokens (the condition fit and the class search both judge by the
    # decoder's pixels, so they differ)
    a = Pipeline.from_checkpoint(source, refine_steps=0, class_search=0).generate("fp", random_clip(), seed=3)
    b = Pipeline.from_checkpoint(tmp_path / "swapped", refine_steps=0, class_search=0).generate(
        "fp", random_clip(), seed=3)
    assert torch.equal(a.tokens, b.tokens)  # same codes in, same transformer: same tokens out
    assert a.video.shape == b.video.shape and not torch.equal(a.video, b.video)  # another decoder
    assert b.video.shape == (1, 3, 8, 16, 16) and b.tokens.shape == (1, 4, 4, 4)
    torch.testing.assert_close(b.video, load_tokenizer(checkpoint=decoder).decode(b.tokens))


def test_a_swapped_export_of_an_exported_model_keeps_its_cards_scores_and_commands(tmp_path):
    """Exporting an exported folder again (to swap its decoder) has no run folder to read; the
    new card takes the cross-entropy table and training commands from the folder's card, and
    says which tokenizer was swapped in."""
    source = save_tiny_bundle(tmp_path / "run")
    (tmp_path / "run" / "command.txt").write_text("magvit train transformer tiny --set train.steps=4\n")
    (tmp_path / "run" / "eval.json").write_text(json.dumps({"masked_token_ce": {"fp": 3.25, "cg": 4.5}}))
    assert main(["export", str(source), str(tmp_path / "model")]) == 0
    first = (tmp_path / "model" / "README.md").read_text()
    assert "| fp | 3.250 |" in first and "swapped in" not in first
    decoder = _stage1_checkpoint(tmp_path / "decoder", load_bundle(tmp_path / "model"),
                                 {"kind": "vq3d", "preset": "tiny", "decoder_channels": 24})
    assert main(["export", str(tmp_path / "model"), str(tmp_path / "swapped"), "--tokenizer", str(decoder)]) == 0
    card = (tmp_path / "swapped" / "README.md").read_text()
    assert "| fp | 3.250 |" in card and "| cg | 4.500 |" in card
    assert "magvit train transformer tiny --set train.steps=4" in card
    assert f"The tokenizer is that of `{decoder}`, trained on the same codes and swapped in" in card


def test_export_refuses_a_tokenizer_that_would_encode_other_tokens(tmp_path, capsys):
    source = save_tiny_bundle(tmp_path / "run")
    bundle = load_bundle(source)

    def nudge(model):
        with torch.no_grad():
            model.encoder.conv_in.weight[0, 0, 0, 0, 0] += 1e-3

    moved = _stage1_checkpoint(tmp_path / "moved", bundle, {"kind": "vq3d", "preset": "tiny"}, nudge)
    assert main(["export", str(source), str(tmp_path / "a"), "--tokenizer", str(moved)]) == 2
    err = capsys.readouterr().err
    assert "its encoder and quantizer are not the bundle's (1 tensors differ, e.g. " \
           "encoder.conv_in.weight), so it would encode other tokens" in err
    assert "Traceback" not in err and not (tmp_path / "a").exists()

    other = _stage1_checkpoint(tmp_path / "other", bundle,
                               {"kind": "vq3d", "preset": "tiny", "padding": "zero"})
    assert main(["export", str(source), str(tmp_path / "b"), "--tokenizer", str(other)]) == 2
    err = capsys.readouterr().err
    assert "its [tokenizer] settings differ from the bundle's in padding (None -> 'zero'); only " \
           "checkpoint, init, codes_from, keep_decoder, decoder_channels, decoder_res_blocks, " \
           "decoder_local, decoder_context, decoder_local_time may differ" in err
