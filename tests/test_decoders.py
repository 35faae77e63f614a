"""Decoders as pure functions of a logits_fn: COMMIT, MaskGIT, autoregressive (SPEC §3, §4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from decoder_stubs import GridStub, MarkovStub, WithoutCache

import magvit
from magvit.core.decoding.sampling import inverse_cdf, num_to_remask, sample_tokens, top_k_filter
from magvit.errors import ConfigError, MagvitError

DATA = Path(__file__).parent / "data"
C = 32  # codebook size of the small cases
DECODERS = ["commit", "maskgit", "autoregressive"]


def make(name: str, **config):
    return magvit.registries().decoders.create(name, codebook_size=config.pop("codebook_size", C),
                                               **config)


def random_case(batch=2, n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, C, (batch, n), generator=g)
    cond_tokens = torch.randint(0, C, (batch, n), generator=g)
    cond_mask = torch.rand(batch, n, generator=g) < 0.3
    return target, cond_tokens, cond_mask


def masked_counts(stub: GridStub, mask_id: int) -> list[int]:
    return [int((x == mask_id).sum()) for x in stub.inputs]


# -- every decoder ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DECODERS)
def test_recovers_the_grid_a_stub_prefers(name):
    target, _, cond_mask = random_case()
    cond_tokens = target.clone()  # a condition that agrees with the model
    out = make(name).decode(GridStub(target, C), cond_tokens, cond_mask,
                            generator=torch.Generator().manual_seed(0))
    assert out.dtype == torch.int64
    assert torch.equal(out, target)


@pytest.mark.parametrize("name", DECODERS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_returns_only_codebook_ids_for_any_logits(name, seed):
    _, cond_tokens, cond_mask = random_case(seed=seed)
    g = torch.Generator().manual_seed(seed)

    def noisy(tokens):
        return 5 * torch.randn(*tokens.shape, C, generator=g)

    out = make(name, top_k=seed).decode(noisy, cond_tokens, cond_mask,
                                        generator=torch.Generator().manual_seed(seed))
    assert out.shape == cond_tokens.shape and out.dtype == torch.int64
    assert int(out.min()) >= 0 and int(out.max()) < C


@pytest.mark.parametrize("name", DECODERS)
def test_a_seed_reproduces_a_decode(name):
    _, cond_tokens, cond_mask = random_case()
    model = MarkovStub(C)
    runs = [make(name).decode(model, cond_tokens, cond_mask,
                              generator=torch.Generator().manual_seed(s)) for s in (7, 7, 8)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


@pytest.mark.parametrize("name", DECODERS)
def test_nan_logits_stop_the_decode_with_the_step(name):
    _, cond_tokens, cond_mask = random_case()
    with pytest.raises(MagvitError, match=r"step 1/.*NaN logits"):
        decoder = make(name, **({"kv_cache": False} if name == "autoregressive" else {}))
        decoder.decode(lambda t: torch.full((*t.shape, C), float("nan")), cond_tokens, cond_mask)


@pytest.mark.parametrize("name", DECODERS)
@pytest.mark.parametrize("where", [(0, 0, 0), (1, 47, 31), (0, 20, 7), (1, 3, 16)])
def test_a_single_nan_logit_among_finite_ones_stops_the_decode(name, where):
    _, cond_tokens, cond_mask = random_case()

    def one_nan(tokens):
        logits = torch.randn(*tokens.shape, C, generator=torch.Generator().manual_seed(0))
        logits[where] = float("nan")                    # the rest finite, some very large
        logits[0, 1] = 1e30
        return logits

    decoder = make(name, **({"kv_cache": False} if name == "autoregressive" else {}))
    with pytest.raises(MagvitError, match=r"step 1/.*NaN logits"):
        decoder.decode(one_nan, cond_tokens, cond_mask)


@pytest.mark.parametrize("name", DECODERS)
def test_wrong_logits_width_names_codebook_size(name):
    _, cond_tokens, cond_mask = random_case()
    with pytest.raises(MagvitError, match=r"expected \(2, 48, 32\).*set the decoder's codebook_size"):
        make(name, **({"kv_cache": False} if name == "autoregressive" else {})).decode(
            lambda t: torch.zeros(*t.shape, C + 4), cond_tokens, cond_mask)


@pytest.mark.parametrize("name", DECODERS)
def test_condition_tokens_outside_the_codebook_are_refused(name):
    _, cond_tokens, cond_mask = random_case()
    cond_tokens[cond_mask] = C + 3
    with pytest.raises(MagvitError, match=r"condition tokens must be codebook ids in \[0, 32\)"):
        make(name).decode(GridStub(cond_tokens.clamp(max=C - 1), C), cond_tokens, cond_mask)


@pytest.mark.parametrize("name", DECODERS)
def test_guidance_without_an_unconditional_model_is_refused(name):
    target, cond_tokens, cond_mask = random_case()
    with pytest.raises(MagvitError, match="guidance_scale = 2.0 needs uncond_logits_fn"):
        make(name, guidance_scale=2.0).decode(GridStub(target, C), cond_tokens, cond_mask)


@pytest.mark.parametrize("name", DECODERS)
def test_guidance_pushes_away_from_the_unconditional_model(name):
    """Cond logits tie tokens 3 and 5; the unconditional model prefers 5; guidance picks 3."""
    cond_tokens = torch.zeros(1, 8, dtype=torch.long)
    cond_mask = torch.zeros(1, 8, dtype=torch.bool)
    tie = torch.zeros(C)
    tie[[3, 5]] = 10.0
    uncond = torch.zeros(C)
    uncond[5] = 12.0
    uncond_inputs = []

    def uncond_fn(t):
        uncond_inputs.append(t.clone())
        return uncond.expand(*t.shape, C)

    extra = {"kv_cache": False} if name == "autoregressive" else {}
    decoder = make(name, guidance_scale=1.0, top_k=1, **extra)
    tokens = decoder.decode(lambda t: tie.expand(*t.shape, C), cond_tokens, cond_mask,
                        uncond_logits_fn=uncond_fn)
    assert tokens.tolist() == [[3] * 8]
    assert uncond_inputs, "the unconditional model was never called"


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"decoders.commit.steps: must be >= 1, got 0"):
        magvit.registries().decoders.create("commit", steps=0)
    with pytest.raises(ConfigError, match=r"mask_id 5 collides with the codebook ids \[0, 1024\)"):
        magvit.registries().decoders.create("maskgit", mask_id=5)
    with pytest.raises(ConfigError, match=r"decoders.autoregressive.steps: unknown key"):
        magvit.registries().decoders.create("autoregressive", steps=12)
    with pytest.raises(ConfigError, match=r"schedule.kind: unknown schedule 'cosin'.*'cosine'"):
        magvit.registries().decoders.create("commit", schedule="cosin")


# -- COMMIT and MaskGIT -------------------------------------------------------------------------
@pytest.mark.parametrize("method,schedule", [("cosine", "cosine"), ("exp", "exp"),
                                             ("uniform", "linear")])
def test_masked_counts_per_step_follow_the_reference(method, schedule):
    ref = np.load(DATA / "schedules.npz")
    target = torch.randint(0, 8, (1, 1024), generator=torch.Generator().manual_seed(0))
    stub = GridStub(target, 8, strength=1.0)
    decoder = make("commit", codebook_size=8, schedule=schedule, steps=12)
    decoder.decode(stub, torch.zeros_like(target), torch.zeros_like(target, dtype=torch.bool),
                   generator=torch.Generator().manual_seed(0))
    expected = ref[f"decode_K12_N1024_{method}_num_masked_before_step"].tolist()
    assert masked_counts(stub, 8) == expected
    if method == "cosine":
        assert expected[1:] == [1015, 989, 946, 886, 812, 724, 623, 511, 391, 265, 133]


def test_commit_shows_condition_tokens_where_it_remasks_the_condition_region():
    """Masked condition positions hold z̃, other masked positions [MASK]; counts stay SPEC's."""
    target = torch.randint(0, 16, (1, 1024), generator=torch.Generator().manual_seed(1))
    cond_tokens = target + 16  # z̃ never equals a sample, so it can be counted
    cond_mask = torch.zeros(1, 1024, dtype=torch.bool)
    cond_mask[:, :256] = True  # the first latent frame, as in frame prediction
    stub = GridStub(target, C)
    make("commit").decode(stub, cond_tokens, cond_mask, generator=torch.Generator().manual_seed(0))
    first = stub.inputs[0]
    assert torch.equal(first[:, :256], cond_tokens[:, :256])
    assert bool((first[:, 256:] == C).all())
    counts = [int(((x == C) | (cond_mask & (x == cond_tokens))).sum()) for x in stub.inputs]
    assert counts == [1024, 1015, 989, 946, 886, 812, 724, 623, 511, 391, 265, 133]
    for x in stub.inputs:  # a condition position is z̃ or a sample, never [MASK]
        assert not bool((x[:, :256] == C).any())


def test_commit_refines_condition_tokens_and_maskgit_keeps_them():
    target, _, cond_mask = random_case()
    cond_tokens = (target + 1) % C  # the model disagrees with every condition token
    commit = make("commit").decode(GridStub(target, C), cond_tokens, cond_mask)
    maskgit = make("maskgit").decode(GridStub(target, C), cond_tokens, cond_mask)
    assert torch.equal(commit, target)
    assert torch.equal(maskgit[cond_mask], cond_tokens[cond_mask])
    assert torch.equal(maskgit[~cond_mask], target[~cond_mask])


def test_maskgit_counts_only_the_tokens_it_generates():
    """768 free tokens: the count after each step is clip(floor(768 * gamma), 1, unknown - 1)."""
    target = torch.randint(0, 8, (1, 1024), generator=torch.Generator().manual_seed(2))
    cond_mask = torch.zeros(1, 1024, dtype=torch.bool)
    cond_mask[:, :256] = True
    stub = GridStub(target, 8, strength=1.0)
    make("maskgit", codebook_size=8).decode(stub, target, cond_mask,
                                            generator=torch.Generator().manual_seed(0))
    ratios = np.load(DATA / "schedules.npz")["decode_K12_N1024_cosine_mask_ratio"][:11]
    expected, unknown = [768], 768
    for r in ratios:
        unknown = min(max(int(np.floor(np.float32(768) * r)), 1), unknown - 1)
        expected.append(unknown)
    assert masked_counts(stub, 8) == expected
    assert all(bool((x[:, :256] == target[:, :256]).all()) for x in stub.inputs)


def test_ties_remask_exactly_n_tokens_lowest_index_first():
    """Flat logits and no noise: every score ties, and exactly n tokens go back, in order."""
    stub_inputs = []

    def flat(tokens):
        stub_inputs.append(tokens.clone())
        return torch.zeros(*tokens.shape, 8)

    tokens = torch.zeros(1, 1024, dtype=torch.long)
    make("commit", codebook_size=8, temperature=0.0, top_k=1).decode(
        flat, tokens, torch.zeros_like(tokens, dtype=torch.bool))
    second = stub_inputs[1][0]
    assert int((second == 8).sum()) == 1015
    assert bool((second[:1015] == 8).all()) and bool((second[1015:] == 0).all())


def test_least_confident_samples_are_remasked_without_noise():
    """Confidence rises with the position; with temperature 0 the first n positions go back."""
    n = 64
    peak = torch.linspace(0.0, 8.0, n)  # how much the model prefers token 0, per position
    logits = torch.zeros(1, n, 4)
    logits[0, :, 0] = peak
    seen = []

    def fn(tokens):
        seen.append(tokens.clone())
        return logits

    make("commit", codebook_size=4, steps=4, top_k=1, temperature=0.0).decode(
        fn, torch.zeros(1, n, dtype=torch.long), torch.zeros(1, n, dtype=torch.bool))
    remasked = (seen[1][0] == 4).nonzero().flatten().tolist()
    assert remasked == list(range(len(remasked))) and len(remasked) == int(n * np.cos(np.pi / 8))


def test_remask_count_limits():
    total = torch.tensor([1024, 1024, 1024, 10])
    ratio = torch.tensor(0.5)
    unknown = torch.tensor([1024, 300, 1, 0])
    assert num_to_remask(total, ratio, unknown).tolist() == [512, 299, 0, 0]
    assert num_to_remask(total[:1], torch.tensor(1e-6), unknown[:1]).tolist() == [1]


# -- autoregressive -----------------------------------------------------------------------------
def test_autoregressive_cache_and_full_sequence_sample_the_same_tokens():
    _, cond_tokens, cond_mask = random_case(n=40)
    cond_mask[1] = False  # no position is condition in both rows: every step samples
    cached_model, full_model = MarkovStub(C), MarkovStub(C)
    decoder = make("autoregressive", temperature=1.0)
    cached = decoder.decode(cached_model, cond_tokens, cond_mask,
                            generator=torch.Generator().manual_seed(3))
    full = decoder.decode(WithoutCache(full_model), cond_tokens, cond_mask,
                          generator=torch.Generator().manual_seed(3))
    assert torch.equal(cached, full)
    assert cached_model.full_calls == 0 and cached_model.steps == 39
    assert full_model.full_calls == 40  # one full forward per position


def test_autoregressive_feeds_condition_tokens_and_skips_their_steps():
    target = torch.randint(0, C, (2, 24), generator=torch.Generator().manual_seed(4))
    cond_tokens = (target + 1) % C
    cond_mask = torch.zeros(2, 24, dtype=torch.bool)
    cond_mask[:, :8] = True  # shared prefix: fed in one step
    cond_mask[0, 12] = True  # one row only: fed in that row, sampled in the other
    for stub in (GridStub(target, C), WithoutCache(GridStub(target, C))):
        out = make("autoregressive").decode(stub, cond_tokens, cond_mask)
        assert torch.equal(out[cond_mask], cond_tokens[cond_mask])
        assert torch.equal(out[~cond_mask], target[~cond_mask])
    calls = GridStub(target, C)
    make("autoregressive").decode(calls, cond_tokens, cond_mask)
    assert [x.shape[1] for x in calls.inputs] == [8] + [1] * 15  # the last token needs no step
    full = GridStub(target, C)
    make("autoregressive", kv_cache=False).decode(full, cond_tokens, cond_mask)
    assert len(full.inputs) == 16  # one full forward per position that is sampled somewhere
    assert torch.equal(full.inputs[0][:, :8], cond_tokens[:, :8])
    assert bool((full.inputs[0][:, 8:] == C).all())  # undecided positions are [MASK]


def test_autoregressive_temperature_zero_is_argmax():
    model = MarkovStub(C)
    cond = torch.zeros(1, 10, dtype=torch.long)
    out = make("autoregressive", temperature=0.0).decode(model, cond, cond.bool())
    expected, prev = [], C
    for _ in range(10):
        prev = int(model.table[prev].argmax())
        expected.append(prev)
    assert out.tolist() == [expected]


# -- sampling helpers ---------------------------------------------------------------------------
def test_sampling_follows_the_softmax_and_top_k():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05])).expand(20000, 4)
    g = torch.Generator().manual_seed(0)
    freq = torch.bincount(sample_tokens(logits, g), minlength=4).float() / 20000
    assert torch.allclose(freq, torch.tensor([0.5, 0.3, 0.15, 0.05]), atol=0.015)
    top2 = torch.bincount(sample_tokens(logits, g, top_k=2), minlength=4).float() / 20000
    assert top2[2:].sum() == 0 and abs(float(top2[0]) - 0.625) < 0.015
    hot = torch.bincount(sample_tokens(logits, g, temperature=0.25), minlength=4).float() / 20000
    assert float(hot[0]) > 0.8
    assert top_k_filter(torch.tensor([1.0, 3.0, 2.0]), 2).tolist() == [float("-inf"), 3.0, 2.0]


def test_inverse_cdf_picks_the_interval_that_holds_u_and_never_an_id_of_probability_zero():
    probs = torch.tensor([[0.0, 0.25, 0.0, 0.5, 0.25, 0.0]])          # intervals [0, .25) [.25, .75) [.75, 1)
    u = torch.tensor([0.0, 0.2499, 0.25, 0.7, 0.75, 0.999, 1 - 2**-24])
    assert inverse_cdf(probs.expand(7, -1).cumsum(-1), u).tolist() == [1, 1, 3, 3, 4, 4, 4]
    # unnormalised rows, and u = 1 (a uniform draw stays below it) still lands on an id with mass
    weights = torch.tensor([[21.0, 0.0, 7.0, 0.0, 0.0]]).expand(3, -1)
    assert inverse_cdf(weights.cumsum(-1), torch.tensor([0.74, 0.76, 1.0])).tolist() == [0, 2, 2]
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):                                                # property: only positive ids, any u
        probs = torch.rand(16, 9, generator=gen) * (torch.rand(16, 9, generator=gen) < 0.4)
        probs[:, 0] += (probs.sum(-1) == 0).float()                   # every row has some mass
        u = torch.cat([torch.rand(14, generator=gen), torch.tensor([0.0, 1.0])])
        ids = inverse_cdf(probs.cumsum(-1), u)
        assert ids.shape == (16,) and ids.dtype == torch.long
        assert bool((probs.gather(1, ids[:, None]) > 0).all())
        cdf = probs.double().cumsum(-1)
        below = torch.cat([torch.zeros(16, 1, dtype=torch.double), cdf], 1).gather(1, ids[:, None])[:, 0]
        assert bool((below <= u.double() * cdf[:, -1] + 1e-6).all())   # u * sum lies in the picked interval


def test_sampling_draws_one_uniform_per_position_not_one_per_codebook_entry():
    logits = torch.randn(2, 5, 4096, generator=torch.Generator().manual_seed(0))
    used, plain = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    sample_tokens(logits, used)
    torch.rand(2, 5, generator=plain)
    assert torch.equal(used.get_state(), plain.get_state())


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("temperature, top_k", [(1.0, 0), (4.5, 0), (0.5, 3), (1.0, 1), (0.0, 0)])
def test_sampling_only_some_rows_draws_what_a_full_draw_gives_there(seed, temperature, top_k):
    """`rows` is a speed-up only: the ids at the selected positions and the generator's state
    afterwards equal those of sampling every position; elsewhere the ids are 0."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 7, 11, generator=g) * 3
    rows = torch.rand(3, 7, generator=g) < 0.5
    rows[0] = False  # a row of the batch with nothing to sample
    full_gen, part_gen = torch.Generator().manual_seed(100 + seed), torch.Generator().manual_seed(100 + seed)
    full = sample_tokens(logits, full_gen, temperature=temperature, top_k=top_k)
    part = sample_tokens(logits, part_gen, temperature=temperature, top_k=top_k, rows=rows)
    assert part.shape == full.shape == (3, 7) and part.dtype == torch.long
    assert torch.equal(part[rows], full[rows])
    if temperature == 0 or top_k == 1:  # argmax draws nothing and fills every position
        assert torch.equal(part, full)
    else:
        assert int(rows.sum()) > 0 and (part[~rows] == 0).all()
    assert torch.equal(full_gen.get_state(), part_gen.get_state())
    every = torch.ones_like(rows)
    again = sample_tokens(logits, torch.Generator().manual_seed(100 + seed), temperature=temperature,
                          top_k=top_k, rows=every)
    assert torch.equal(again, full)
