"""The generation pipeline on a tiny random-weight model."""

from __future__ import annotations

import re

import attrs
import pytest
import torch
from decoder_stubs import WithoutCache
from generation_fixtures import CLIP, LATENT, random_clip, tiny_bundle

import magvit
from magvit.core.decoding.model_logits import PrefixedLogits
from magvit.core.tokens import build_sequence
from magvit.core.video_io import pixels_in_unit_range
from magvit.errors import MagvitError
from magvit.pipeline import Pipeline, outpaint_ultrawide
from magvit.registry.experiment import validate_experiment

FAST = {"decoder": {"kind": "commit", "steps": 4}}  # few steps keep the tests quick


@pytest.fixture(scope="module")
def pipe():
    return Pipeline(tiny_bundle(validate_experiment(FAST)))


class Spy:
    """Wraps the transformer and records every sequence it is given."""

    def __init__(self, model):
        self.model, self.inputs = model, []
        self.config = model.config

    def parameters(self):
        return self.model.parameters()

    def eval(self):
        return self

    def __call__(self, ids, **kwargs):
        self.inputs.append(ids.clone())
        return self.model(ids, **kwargs)


def test_frame_prediction_returns_condition_video_and_tokens(pipe):
    clip = random_clip()
    result = pipe.generate("fp", clip, seed=0)
    padded, mask = magvit.registries().tasks.create("fp").condition(clip.unsqueeze(0))
    assert torch.equal(result.condition, padded)
    assert torch.equal(result.pixel_mask, mask)
    assert result.video.shape == (1, 3, *CLIP) and result.tokens.shape == (1, *LATENT)
    assert result.tokens.dtype == torch.int64 and int(result.tokens.max()) < 512
    assert 0 <= float(result.video.min()) and float(result.video.max()) <= 1
    assert torch.equal(result.side_by_side()[..., :16], padded)
    assert torch.equal(result.side_by_side()[..., 16:], result.video)
    assert set(result.seconds) == {"tokenizer", "transformer"}
    assert all(s > 0 for s in result.seconds.values())


def test_a_seed_reproduces_the_result(pipe):
    clip = random_clip(seed=1)
    a, b = (pipe.generate("opv", clip, seed=5).tokens for _ in range(2))
    c = pipe.generate("opv", clip, seed=6).tokens
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sequences_carry_the_task_prompt_and_class(pipe):
    spy = Spy(pipe.transformer)
    spied = Pipeline(pipe.bundle)
    spied.transformer = spy
    spied.generate("cfp", random_clip(2), label=[2, 0])
    vocab = pipe.vocab
    first = spy.inputs[0]
    assert first[:, 0].tolist() == [vocab.prompt_id("cfp")] * 2
    assert first[:, 1].tolist() == [512 + 2, 512 + 0]
    assert len(spy.inputs) == 4  # the experiment's steps, one forward each


def test_samples_and_batch_size_split_the_work(pipe):
    result = pipe.generate("cg", label=[0, 1], samples=2, batch_size=3, seed=0)
    assert result.video.shape == (4, 3, *CLIP)
    assert not torch.equal(result.tokens[0], result.tokens[1])  # two samples of class 0


def test_maskgit_keeps_the_condition_tokens_commit_may_refine_them(pipe):
    clip = random_clip(seed=2)
    task = magvit.registries().tasks.create("fp")
    z_cond = pipe.tokenizer.encode(task.condition(clip.unsqueeze(0))[0])
    first_frame = task.latent_mask(LATENT, pipe.tokenizer.factors)
    # the decoders' own tokens, before the condition fit (which moves given tokens too)
    kept = pipe.generate("fp", clip, decoder=pipe.make_decoder("maskgit", steps=4), refine_steps=0).tokens
    assert torch.equal(kept[0][first_frame], z_cond[0][first_frame])
    refined = pipe.generate("fp", clip, decoder="commit", seed=0, refine_steps=0).tokens
    assert not torch.equal(refined[0][first_frame], z_cond[0][first_frame])


def test_autoregressive_with_and_without_cache_agree_on_the_real_transformer(pipe):
    """The causal view of the transformer, full-sequence or KV-cached, samples the same tokens."""
    vocab = pipe.vocab
    prefix = build_sequence(vocab, torch.zeros(2, 0, dtype=torch.long), "fp", None)
    cond_tokens = torch.randint(0, 512, (2, 64), generator=torch.Generator().manual_seed(0))
    cond_mask = torch.zeros(2, 64, dtype=torch.bool)
    cond_mask[:, :48] = True  # fed; the last 16 positions are sampled
    decoder = pipe.make_decoder("autoregressive")
    runs = []
    for kv_cache in (True, False):
        logits_fn = PrefixedLogits(pipe.transformer, prefix, causal=True)
        with torch.inference_mode():
            runs.append(attrs.evolve(decoder, kv_cache=kv_cache).decode(
                logits_fn if kv_cache else WithoutCache(logits_fn), cond_tokens, cond_mask,
                generator=torch.Generator().manual_seed(4)))
    assert torch.equal(runs[0], runs[1])
    assert torch.equal(runs[0][:, :48], cond_tokens[:, :48])


def test_decoder_comes_from_the_experiment_with_the_vocabulary_ids():
    exp = validate_experiment({"decoder": {"kind": "maskgit", "steps": 4, "schedule": "exp"}})
    pipe = Pipeline(tiny_bundle(exp))
    assert type(pipe.decoder).__name__ == "MaskGIT"
    assert (pipe.decoder.steps, pipe.decoder.schedule.kind) == (4, "exp")
    assert (pipe.decoder.codebook_size, pipe.decoder.mask_id) == (512, pipe.vocab.mask_id)
    assert pipe.make_decoder("maskgit", steps=6).steps == 6  # overrides keep the rest
    assert pipe.make_decoder("maskgit", steps=6).schedule.kind == "exp"
    assert pipe.make_decoder("commit").steps == 12  # another kind starts from its defaults


def test_labels_may_be_a_number_a_list_a_tensor_or_an_array(pipe):
    import numpy as np

    plain = pipe.generate("cg", label=[0, 2], seed=1)
    for same in ((0, 2), torch.tensor([0, 2]), np.array([0, 2]), [np.int64(0), 2], torch.tensor([[0], [2]])):
        assert torch.equal(pipe.generate("cg", label=same, seed=1).tokens, plain.tokens), same
    one = pipe.generate("cg", label=np.int64(1), samples=2, seed=1)
    assert torch.equal(one.tokens, pipe.generate("cg", label=[1, 1], seed=1).tokens)


def test_bad_requests_name_the_fix(pipe):
    clip = random_clip()
    with pytest.raises(MagvitError, match=r"not trained for task 'ipc'; its tasks are: fp, cg"):
        pipe.generate("ipc", clip)
    with pytest.raises(MagvitError, match=r"task 'cfp' needs a class label; pass one \(--class N\)"):
        pipe.generate("cfp", clip)
    with pytest.raises(MagvitError, match=r"task 'fp' takes no class label"):
        pipe.generate("fp", clip, label=1)
    with pytest.raises(MagvitError, match=r"task 'fp' needs a condition video"):
        pipe.generate("fp")
    with pytest.raises(MagvitError, match=r"expected clips shaped \(B, 3, 8, 16, 16\).*got \(1, 3, 8, 32, 32\)"):
        pipe.generate("fp", torch.rand(3, 8, 32, 32))
    for bad, named in ((7, "[7]"), ([0, 3, -2], "[3, -2]"), (1.0, "[1.0]"), (True, "[True]"),
                       (torch.tensor([0.5]), "[0.5]"), ("1", "['1']")):
        with pytest.raises(MagvitError, match=re.escape(f"class label(s) {named} are not classes of this model: "
                                                        "give whole numbers from 0 to 2 (3 classes; -1: no "
                                                        "class), one for all clips or one each (--class N)")):
            pipe.generate("cg", label=bad)
    with pytest.raises(MagvitError, match=r"task 'cg' got no class labels; give at least one \(--class N\)"):
        pipe.generate("cg", label=[])
    with pytest.raises(MagvitError, match=r"got 0 labels for 1 input clips; give one or one each"):
        pipe.generate("cfp", random_clip(), label=[])


def test_ultrawide_outpainting_grows_both_sides_and_keeps_the_strip(pipe):
    strip = random_clip(seed=5)[..., 4:12]  # the centre half of a 16-wide clip
    wide = outpaint_ultrawide(pipe, strip, repeats=2, seed=0)
    assert wide.shape == (3, 8, 16, 8 + 2 * 2 * 4)
    assert torch.equal(wide[..., 8:16], strip)
    with pytest.raises(MagvitError, match=r"needs a strip shaped \(3, 8, 16, >= 8\)"):
        outpaint_ultrawide(pipe, strip[..., :5], repeats=1)


def test_roundtrip_is_the_tokenizers_own_in_batches(pipe):
    clips = random_clip(3, seed=3)
    with torch.inference_mode():
        expect = pipe.tokenizer.decode(pipe.tokenizer.encode(clips)).float().clamp(0, 1)
    out = pipe.roundtrip(clips, batch_size=2)
    assert out.shape == (3, 3, *CLIP) and out.dtype == torch.float32
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    assert torch.allclose(out, expect, atol=1e-5)
    assert torch.allclose(pipe.roundtrip(clips[0]), expect[:1], atol=1e-5)  # one (3, T, H, W) clip
    with pytest.raises(MagvitError, match=r"expected clips shaped \(B, 3, 8, 16, 16\)"):
        pipe.roundtrip(torch.rand(3, 8, 32, 32))


def test_seeds_and_sample_counts_are_whole_numbers_in_range(pipe):
    import numpy as np

    clip = random_clip()
    assert torch.equal(pipe.generate("fp", clip, seed=np.int64(7)).tokens, pipe.generate("fp", clip, seed=7).tokens)
    assert pipe.generate("fp", clip, seed=-1).video.shape == (1, 3, *CLIP)  # torch takes negative seeds too
    for bad in (1.5, True, "3", 2**64, -2**63 - 1):
        with pytest.raises(MagvitError, match=re.escape(f"seed must be a whole number from -2**63 to 2**64 - 1, "
                                                        f"got {bad!r}")):
            pipe.generate("fp", clip, seed=bad)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(MagvitError, match=re.escape(f"samples must be a whole number of at least 1 (results "
                                                        f"per input clip or label), got {bad!r}")):
            pipe.generate("fp", clip, samples=bad)


def test_pixels_are_floats_in_the_unit_range_or_uint8(pipe):
    clip = random_clip(2, seed=5)
    as_uint8 = (clip * 255).round().to(torch.uint8)
    expect = pipe.generate("fp", as_uint8.float() / 255, seed=2)
    assert torch.equal(pipe.generate("fp", as_uint8, seed=2).tokens, expect.tokens)  # uint8 is read as 0-255
    assert torch.equal(pipe.roundtrip(as_uint8), pipe.roundtrip(as_uint8.float() / 255))
    # within one 8-bit level of the range: clamped, as a resampled clip's overshoot
    nudged = clip.clone()
    nudged[0, 0, 0, 0, 0], nudged[1, 0, 0, 0, 0] = 1.003, -0.003
    clamped = nudged.clamp(0, 1)
    assert torch.equal(pipe.generate("fp", nudged, seed=2).tokens, pipe.generate("fp", clamped, seed=2).tokens)
    span = lambda x: f"got values from {float(x.min()):.4g} to {float(x.max()):.4g}"  # noqa: E731
    for bad, words in (
        (clip * 255, f"expected pixels in [0, 1], {span(clip * 255)}; 0-255 values: divide by 255"),
        (clip * 1.5 - 0.25, f"expected pixels in [0, 1], {span(clip * 1.5 - 0.25)}"),
        (clip.long(), "expected float pixels in [0, 1] (or uint8 in 0-255), got a torch.int64 tensor"),
        (clip.bool(), "got a torch.bool tensor"),
        (clip.tolist(), "expected a video file or a tensor of pixels, got list"),
    ):
        with pytest.raises(MagvitError, match=re.escape(words)):
            pipe.generate("fp", bad)
    with pytest.raises(MagvitError, match=re.escape(span(clip * 1.5 - 0.25)) + "$"):  # no 0-255 hint below 2
        pipe.generate("fp", clip * 1.5 - 0.25)
    broken = clip.clone()
    broken[0, 1, 2, 3, 4], broken[1, 0, 0, 0, 0] = float("nan"), float("-inf")
    for call in (lambda: pipe.generate("fp", broken), lambda: pipe.roundtrip(broken)):
        with pytest.raises(MagvitError, match=re.escape("the clips hold 2 NaN or infinite pixel value(s); give "
                                                        "finite pixels in [0, 1]")):
            call()
    only_inf = clip.clone()
    only_inf[1, 2, 3, 4, 5] = float("inf")
    with pytest.raises(MagvitError, match=re.escape("the clips hold 1 NaN or infinite pixel value(s)")):
        pixels_in_unit_range(only_inf)
    # the checked pixels are a new tensor on the asked device, the caller's untouched
    checked = pixels_in_unit_range(clip, "cpu")
    assert torch.equal(checked, clip) and checked.data_ptr() != clip.data_ptr()
    assert torch.equal(pixels_in_unit_range(as_uint8, "cpu"), as_uint8.float() / 255)


def test_pasted_puts_back_the_condition_pixels_and_nothing_else(pipe):
    result = pipe.generate("opv", random_clip(2, seed=4), seed=0)
    pasted, given = result.pasted(), result.pixel_mask
    assert torch.equal(pasted.video[:, :, given], result.condition[:, :, given])
    assert torch.equal(pasted.video[:, :, ~given], result.video[:, :, ~given])
    assert not torch.equal(pasted.video, result.video)  # random weights change the given pixels
    assert pasted.tokens is result.tokens and pasted.condition is result.condition
    cg = pipe.generate("cg", label=0)  # no condition pixels: nothing to paste
    assert torch.equal(cg.pasted().video, cg.video)
