"""Quantizers `vq`, `lfq`, `fsq` and the causal 3D CNN: exact values, TOML, errors, conformance."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import magvit
from magvit.core.masking import latent_mask_from_pixels
from magvit.core.tokenizer.blocks import Downsample
from magvit.core.tokenizer.fsq import FiniteScalarQuantizer
from magvit.core.tokenizer.lfq import LookupFreeQuantizer, group_sizes
from magvit.errors import MagvitError
from magvit.registry.experiment import validate_experiment
from magvit.testing import check_quantizer, check_registered, check_tokenizer

LFQ = {"kind": "lfq", "bits": 14}
FSQ = {"kind": "fsq", "levels": [8, 8, 8, 5, 5, 5]}


def tokenizer(**config):
    torch.manual_seed(0)
    return magvit.registries().tokenizers.create("vq3d", preset="tiny", **config).eval()


def test_a_vq_section_is_the_default_quantizer_exactly():
    default, named = tokenizer(), tokenizer(quantizer="vq")
    assert default.state_dict().keys() == named.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(), named.state_dict().values()))
    video = torch.rand(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(1))
    ids = default.encode(video)
    assert torch.equal(ids, named.encode(video))
    _, aux = default(video)  # the lean ids-only path gives the training path's codes
    assert torch.equal(ids, aux["codes"])
    wide = tokenizer(quantizer={"kind": "vq", "codebook_size": 1024})
    assert wide.codebook_size == 1024 and wide.quantizer.dim == 16  # the preset's embedding_dim


@pytest.mark.parametrize("quantizer, size, dim", [(LFQ, 2**14, 14), (FSQ, 64000, 6)])
def test_codebook_free_quantizers_set_the_tokenizer_codebook_and_latent_width(quantizer, size, dim):
    model = tokenizer(quantizer=quantizer)
    assert model.codebook_size == size and model.arch.codebook_size == size
    assert model.encoder.conv_out.out_channels == dim and model.quantizer.dim == dim
    assert not [n for n, _ in model.named_parameters() if n.startswith("quantizer.")]


def test_lfq_ids_spell_the_signs_and_lookup_inverts_them():
    q = LookupFreeQuantizer(5)
    z = torch.tensor([0.3, -1.0, 2.0, -0.1, 0.5]).reshape(1, 5, 1, 1, 1)
    assert q.codes(z).item() == 0b10101  # channels 0, 2 and 4 are positive
    assert torch.equal(q.lookup(q.codes(z)).flatten(), torch.tensor([1.0, -1, 1, -1, 1]))
    every = torch.arange(32).reshape(1, 2, 4, 4)
    assert torch.equal(q.codes(q.lookup(every)), every)


def test_lfq_entropies_equal_the_softmax_over_every_code():
    """Per-position entropy and batch-code entropy of softmax(-|z - c|^2 / T) over all 2^K codes,
    computed directly, equal the factorised computation (one group: exact)."""
    bits, temperature = 6, 0.7
    q = LookupFreeQuantizer(bits, entropy_temperature=temperature, entropy_group_bits=8)
    rows = torch.randn(50, bits, generator=torch.Generator().manual_seed(0), dtype=torch.float64).float()
    codebook = q.lookup(torch.arange(2**bits).reshape(1, 1, 1, -1)).reshape(bits, -1).t()  # (64, K)
    logits = -torch.cdist(rows.double(), codebook.double()).pow(2) / temperature
    p = logits.softmax(-1)
    sample = -(p * logits.log_softmax(-1)).sum(-1).mean()
    mean_p = p.mean(0)
    batch = -(mean_p * torch.log(mean_p + 1e-5)).sum()
    got_sample, got_batch = q.entropies(rows)
    assert got_sample.item() == pytest.approx(sample.item(), rel=1e-5)
    assert got_batch.item() == pytest.approx(batch.item(), rel=1e-4)
    # in groups the batch term is the sum of each group's exact entropy
    grouped = LookupFreeQuantizer(bits, entropy_temperature=temperature, entropy_group_bits=3)
    assert grouped.groups == [3, 3]
    _, got = grouped.entropies(rows)
    parts = []
    for cols in (slice(0, 3), slice(3, 6)):
        sub = LookupFreeQuantizer(3, entropy_temperature=temperature)
        parts.append(sub.entropies(rows[:, cols])[1])
    assert got.item() == pytest.approx(sum(parts).item(), rel=1e-6)


def test_lfq_loss_is_commitment_plus_weighted_entropy_in_fp32_under_autocast():
    q = LookupFreeQuantizer(4, commitment_cost=0.25, entropy_weight=0.1, diversity=1.0)
    z = torch.randn(2, 4, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, aux = q(z.bfloat16())
    assert out.dtype == torch.bfloat16 and aux["quantizer_loss"].dtype == torch.float32
    rows = z.bfloat16().float().movedim(1, -1).reshape(-1, 4)
    commitment = 0.25 * (rows - rows.sign()).pow(2).mean()
    sample, batch = q.entropies(rows)
    assert aux["quantizer_loss"].item() == pytest.approx((commitment + 0.1 * (sample - batch)).item(), rel=1e-5)


@pytest.mark.parametrize("bits, group_bits, sizes", [(14, 8, [7, 7]), (18, 8, [6, 6, 6]), (5, 8, [5]), (9, 4, [3, 3, 3])])
def test_lfq_entropy_groups_are_near_equal(bits, group_bits, sizes):
    assert group_sizes(bits, group_bits) == sizes


def test_fsq_is_a_bijection_between_ids_and_level_grids():
    q = FiniteScalarQuantizer((3, 4, 5))
    assert q.codebook_size == 60 and q.dim == 3
    ids = torch.arange(60).reshape(1, 3, 4, 5)
    vectors = q.lookup(ids)
    assert vectors.shape == (1, 3, 3, 4, 5)
    assert vectors.min() >= -1 and vectors.max() <= 1
    # every channel takes exactly its number of distinct values
    assert [len(vectors[0, i].unique()) for i in range(3)] == [3, 4, 5]
    # quantizing a code vector's pre-image gives the code back: atanh undoes the bounding tanh
    half = (q.count - 1) * (1 + 1e-3) / 2
    offset = torch.where(q.count % 2 == 0, 0.5, 0.0)
    grid = vectors.movedim(1, -1) * q.half_width
    pre = torch.atanh((grid + offset) / half) - torch.atanh(offset / half)
    assert torch.equal(q.codes(pre.movedim(-1, 1)), ids)


def test_fsq_forward_rounds_straight_through_without_loss():
    q = FiniteScalarQuantizer((8, 5))
    z = torch.randn(1, 2, 1, 4, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    out, aux = q(z)
    assert torch.equal(out, q.lookup(aux["codes"])) and aux["quantizer_loss"].item() == 0.0
    out.sum().backward()
    assert z.grad.abs().min() > 0  # the tanh's gradient passes the rounding


@pytest.mark.parametrize("name", ["vq", "lfq", "fsq"])
def test_registered_quantizers_conform(name):
    check_registered("quantizers", name)


def test_the_quantizer_check_catches_ids_that_disagree_with_forward():
    class Shifted(LookupFreeQuantizer):
        def codes(self, z):
            return (super().codes(z) + 1) % self.codebook_size

    with pytest.raises(AssertionError, match="aux\\['codes'\\] must equal codes"):
        check_quantizer(Shifted(4))


@pytest.mark.parametrize("config", [
    {"quantizer": LFQ}, {"quantizer": FSQ}, {"causal": True}, {"causal": True, "quantizer": LFQ},
    {"norm": "channel"}, {"norm": "frame", "quantizer": FSQ}, {"local": True, "quantizer": FSQ},
    {"local": True, "causal": True}, {"local": True, "causal": True, "downsample": "conv", "quantizer": FSQ},
], ids=["lfq", "fsq", "causal", "causal-lfq", "norm-channel", "norm-frame-fsq", "local-fsq", "local-causal",
        "local-causal-conv-downsample"])
def test_tokenizer_variants_pass_the_tokenizer_check(config):
    check_tokenizer(tokenizer(**config))


def test_causal_first_latent_frame_depends_on_the_first_frame_alone():
    model = tokenizer(causal=True, quantizer=LFQ)
    assert model.causal and model.arch.norm == "frame"  # clip statistics would leak the future
    assert model.latent_shape(9, 32, 32) == (5, 8, 8) and model.latent_shape(7, 32, 32) == (4, 8, 8)
    video = torch.rand(2, 3, 9, 32, 32, generator=torch.Generator().manual_seed(0))
    changed = video.clone()
    changed[:, :, 1:] = torch.rand(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(1))
    ids, other = model.encode(video), model.encode(changed)
    assert torch.equal(ids[:, 0], other[:, 0])
    assert not torch.equal(ids[:, 1:], other[:, 1:])
    # and the decoded first frame depends on the first latent frame alone
    mixed = ids.clone()
    mixed[:, 1:] = other[:, 1:]
    assert torch.equal(model.decode(mixed)[:, :, 0], model.decode(ids)[:, :, 0])
    # a non-causal tokenizer mixes every frame into every latent frame
    plain = tokenizer(norm="frame", quantizer=LFQ)
    assert not torch.equal(plain.encode(video[:, :, :8])[:, 0], plain.encode(changed[:, :, :8])[:, 0])


@pytest.mark.parametrize("downsample", ["pool", "conv"])
@pytest.mark.parametrize("causal", [False, True])
def test_a_local_encoders_token_sees_its_patch_and_the_halo_alone(causal, downsample):
    model = tokenizer(local=True, causal=causal, quantizer=FSQ, downsample=downsample)
    halo, (_, fh, fw) = model.encoder_halo, model.factors
    assert halo == 3 and tokenizer().encoder_halo is None
    assert model.encoder.norm_out.mode == "channel" and model.decoder.norm_out.mode == model.arch.norm
    frames = 7 if causal else 8
    video = torch.rand(1, 3, frames, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        latent = model.encode_latent(video)  # (1, C, t, 8, 8): one vector per 4x4 patch
        for row, col in itertools.product(range(8), repeat=2):
            # every pixel outside patch (row, col) grown by the halo is redrawn
            seen = torch.zeros(32, 32, dtype=torch.bool)
            seen[max(row * fh - halo, 0):(row + 1) * fh + halo, max(col * fw - halo, 0):(col + 1) * fw + halo] = True
            changed = torch.where(seen, video, torch.rand(video.shape, generator=torch.Generator().manual_seed(row * 8 + col)))
            assert torch.equal(model.encode_latent(changed)[..., row, col], latent[..., row, col])
        # the halo is tight: one more pixel of the patch's surroundings changes its latent
        closer = video.clone()
        closer[..., fw + halo - 1] += 0.5
        assert not torch.allclose(model.encode_latent(closer)[..., 0, 0], latent[..., 0, 0], atol=1e-4)
    # the plain encoder sees the whole frame: the far corner moves the first patch's latent
    plain = tokenizer(quantizer=FSQ, norm="channel")
    far = video.clone()
    far[..., 24:, 24:] = 1 - far[..., 24:, 24:]
    with torch.no_grad():
        assert not torch.allclose(plain.encode_latent(far[:, :, :8])[..., 0, 0],
                                  plain.encode_latent(video[:, :, :8])[..., 0, 0], atol=1e-4)


def test_a_conv_downsample_starts_as_the_average_and_learns_where_in_the_block():
    pooled, learned = tokenizer(local=True, quantizer=FSQ), tokenizer(local=True, quantizer=FSQ, downsample="conv")
    convs = [m.conv for m in learned.encoder.modules() if isinstance(m, Downsample)]
    assert [c.weight.shape for c in convs] == [(16, 16, 2, 2, 2), (32, 32, 1, 2, 2)]  # (out, in, t, h, w)
    assert not any(m.conv for m in pooled.encoder.modules() if isinstance(m, Downsample))
    # the same other weights: the untrained conv computes the average exactly
    assert learned.load_state_dict(pooled.state_dict(), strict=False).missing_keys == [
        "encoder.blocks.1.conv.weight", "encoder.blocks.3.conv.weight"]
    video = torch.rand(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(learned.encode_latent(video), pooled.encode_latent(video), rtol=1e-5, atol=1e-6)
    # an average cannot tell which half of a block holds a value; a weighted conv can
    down = convs[1]
    x = torch.zeros(1, 32, 1, 2, 2)
    left, right = x.clone(), x.clone()
    left[..., 0, 0], right[..., 0, 1] = 1.0, 1.0
    with torch.no_grad():
        assert torch.equal(down(left), down(right))
        down.weight[..., 0, 0] *= 2
        assert not torch.equal(down(left), down(right))
    with pytest.raises(MagvitError, match="downsample 'stride' must be one of pool, conv"):
        tokenizer(downsample="stride")


def test_a_time_local_encoders_latent_frame_sees_its_two_frames_and_one_either_side():
    """local_time: latent frame t of 8 frames -> 4 sees frames 2t-1 .. 2t+2 and no other."""
    model = tokenizer(local=True, local_time=True, quantizer=FSQ)
    video = torch.rand(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        latent = model.encode_latent(video)
        assert latent.shape[2:] == (4, 8, 8)
        for frame in range(8):
            changed = video.clone()
            changed[:, :, frame] = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(frame))
            moved = model.encode_latent(changed)
            differs = [not torch.allclose(moved[:, :, t], latent[:, :, t], atol=1e-6) for t in range(4)]
            assert differs == [2 * t - 1 <= frame <= 2 * t + 2 for t in range(4)], (frame, differs)
        # the time-mixing encoder of `local` alone reaches every latent frame from frame 0
        mixing = tokenizer(local=True, quantizer=FSQ)
        changed = video.clone()
        changed[:, :, 0] = 1 - changed[:, :, 0]
        assert not torch.allclose(mixing.encode_latent(changed)[:, :, 3], mixing.encode_latent(video)[:, :, 3], atol=1e-6)
    with pytest.raises(MagvitError, match="local_time = true needs local = true"):
        tokenizer(local_time=True, quantizer=FSQ)


def test_a_local_encoder_from_toml_keeps_the_decoders_norm():
    model = validate_experiment(_experiment({"local": True, "quantizer": FSQ, "norm": "frame"})).tokenizer.build()
    assert model.encoder_halo == 3 and model.decoder.norm_out.mode == "frame"
    assert {m.mode for m in model.encoder.modules() if hasattr(m, "mode")} == {"channel"}
    assert {m.kernel_size[1:] for m in model.encoder.blocks[2:].modules() if isinstance(m, torch.nn.Conv3d)} == {(1, 1)}


def test_the_tokenizer_check_catches_a_halo_the_encoder_does_not_keep():
    model = tokenizer(quantizer=FSQ)  # sees the whole frame, but claims to be local

    class ClaimsLocal(type(model)):
        encoder_halo = 3

    model.__class__ = ClaimsLocal
    with pytest.raises(AssertionError, match="encoder_halo = 3: changing pixels more than 3 columns right"):
        check_tokenizer(model)


def test_causal_clip_sizes_are_checked_with_the_fix():
    model = tokenizer(causal=True)
    with pytest.raises(MagvitError, match=r"causal tokenizer takes clips of 1 \+ k·2 frames.*8x32x32"):
        model.latent_shape(8, 32, 32)
    with pytest.raises(MagvitError, match="tokenizes every frame alone; causal does not apply"):
        magvit.registries().tokenizers.create("vq2d", preset="tiny", causal=True)


def test_causal_latent_mask_puts_the_first_frame_in_its_own_latent_frame():
    mask = torch.zeros(9, 4, 4, dtype=torch.bool)
    mask[0] = True  # FP with one given frame
    assert latent_mask_from_pixels(mask, (2, 2, 2), causal=True)[:, 0, 0].tolist() == [True, False, False, False, False]
    assert latent_mask_from_pixels(mask[:8], (2, 2, 2))[:, 0, 0].tolist() == [True, False, False, False]
    mask[1:3] = True  # frames 1-2 are latent frame 1
    assert latent_mask_from_pixels(mask, (2, 2, 2), causal=True)[:, 0, 0].tolist() == [True, True, False, False, False]
    task = magvit.registries().tasks.create("fp")
    assert task.latent_mask((5, 8, 8), (2, 4, 4), causal=True)[:, 0, 0].tolist() == [True] + [False] * 4


def _experiment(tokenizer_section, frames=8):
    return {
        "run": {"name": "q"},
        "data": {"kind": "synthetic", "frames": frames, "resolution": 32},
        "tokenizer": {"kind": "vq3d", "preset": "tiny", **tokenizer_section},
        "train": {"steps": 2, "batch_size": 2, "warmup_steps": 0},
        "losses": {"gan": 0.0, "perceptual": 0.0},
    }


def test_quantizer_sections_validate_with_dotted_paths():
    exp = validate_experiment(_experiment({"quantizer": LFQ}))
    assert exp.tokenizer.config.quantizer.kind == "lfq" and exp.tokenizer.config.quantizer.config.bits == 14
    assert exp.tokenizer.build().codebook_size == 2**14
    with pytest.raises(MagvitError, match=r"tokenizer\.quantizer\.bits: must be in \[1, 24\], got 30"):
        validate_experiment(_experiment({"quantizer": {"kind": "lfq", "bits": 30}}))
    with pytest.raises(MagvitError, match=r"tokenizer\.quantizer\.levels: must be one or more ints >= 2"):
        validate_experiment(_experiment({"quantizer": {"kind": "fsq", "levels": [8, 1]}}))
    with pytest.raises(MagvitError, match=r"tokenizer\.quantizer\.kind: .*'lqf'.*lfq"):
        validate_experiment(_experiment({"quantizer": {"kind": "lqf"}}))
    with pytest.raises(MagvitError, match="embedding_dim = 8 but the quantizer takes 14 channels"):
        validate_experiment(_experiment({"quantizer": LFQ, "embedding_dim": 8})).tokenizer.build()


def test_preflight_names_the_causal_clip_length():
    from magvit.workflows.preflight import check_experiment

    exp = validate_experiment(_experiment({"causal": True}, frames=8))
    with pytest.raises(MagvitError, match=r"data\.frames: a causal tokenizer takes 1 \+ k·2 frames, got 8; use 7 \(or 9\)"):
        check_experiment(exp, "tokenizer")


def test_entropy_temperatures_and_ids_stay_exact_at_2_to_the_18():
    q = LookupFreeQuantizer(18)
    z = torch.randn(1, 18, 2, 2, 2, generator=torch.Generator().manual_seed(0))
    ids = q.codes(z)
    assert ids.max() < 2**18 and torch.equal(q.codes(q.lookup(ids)), ids)
    _, aux = q(z)
    assert math.isfinite(aux["quantizer_loss"].item())
    assert q.hits.shape == (2**18,)


def test_every_code_of_a_small_lfq_is_reachable():
    q = LookupFreeQuantizer(3)
    corners = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=3))).t().reshape(1, 3, 1, 1, 8)
    assert sorted(q.codes(corners).flatten().tolist()) == list(range(8))
    assert F.one_hot(q.codes(corners).flatten(), 8).sum(0).tolist() == [1] * 8


@pytest.mark.parametrize("codes, dtype", [(512, torch.int16), (2**15, torch.int16), (64000, torch.uint16),
                                          (2**16, torch.uint16), (2**18, torch.int32)])
def test_token_stores_use_the_narrowest_type_that_holds_every_id(codes, dtype):
    from magvit.core.tokens import token_dtype
    from magvit.workflows.token_memo import TokenMemo

    assert token_dtype(codes) == dtype
    memo = TokenMemo(codes)
    top = torch.tensor([[codes - 1, 0, codes // 2]])
    got = memo.tokens("fp", torch.tensor([7]), lambda rows: top)
    assert torch.equal(got, top) and got.dtype == torch.int64
    assert memo._store[("fp", 7)].dtype == dtype


def test_transformer_and_decoders_take_a_2_to_the_18_vocabulary():
    from magvit.core.decoding.model_logits import PrefixedLogits
    from magvit.core.tokens import Vocabulary, build_sequence

    codes = 2**18
    vocab = Vocabulary(codes, num_classes=0, task_names=())
    torch.manual_seed(0)
    model = magvit.registries().transformers.create(
        "bert", preset="tiny", num_layers=1, hidden=16, mlp=32, heads=2, vocab_size=vocab.size,
        num_positions=vocab.prefix_length + 12, codebook_size=codes).eval()
    latent = torch.full((1, 12), vocab.mask_id)
    with torch.inference_mode():
        logits = PrefixedLogits(model, build_sequence(vocab, latent[:, :0], None, None))(latent)
        assert logits.shape == (1, 12, codes) and logits.dtype == torch.float32
        for name in ("commit", "maskgit"):
            decoder = magvit.registries().decoders.create(name, codebook_size=codes, mask_id=vocab.mask_id, steps=4)
            fn = PrefixedLogits(model, build_sequence(vocab, latent[:, :0], None, None))
            out = decoder.decode(fn, torch.zeros(1, 12, dtype=torch.long), torch.zeros(1, 12, dtype=torch.bool),
                                 generator=torch.Generator().manual_seed(0))
            assert out.shape == (1, 12) and 0 <= int(out.min()) and int(out.max()) < codes
