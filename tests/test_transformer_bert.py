"""The `bert` transformer: sizes of the paper's presets, the logits layout, masks and the KV cache."""

import pytest
import torch

import magvit
from magvit.core.transformer import parameter_count
from magvit.errors import ConfigError, MagvitError

UCF_VOCAB = dict(vocab_size=1024 + 101 + 1 + 1 + 10, num_positions=2 + 1024, codebook_size=1024)
SMALL = dict(preset="tiny", num_layers=2, hidden=32, mlp=64, heads=4,
             vocab_size=40, num_positions=12, codebook_size=32)


def make(**overrides):
    return magvit.registries().transformers.create("bert", **{**SMALL, **overrides})


def ids(batch=2, length=12, high=40, seed=0):
    return torch.randint(0, high, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("preset", "paper_millions"), [("B", 87.2), ("L", 305.5), ("H", 634.0)])
def test_presets_match_the_papers_parameter_counts_within_one_percent(preset, paper_millions):
    with torch.device("meta"):
        model = magvit.registries().transformers.create("bert", preset=preset, **UCF_VOCAB)
    count = sum(p.numel() for p in model.parameters())
    assert count == parameter_count(model.config)
    assert abs(count / 1e6 - paper_millions) / paper_millions < 0.01


def test_parameter_count_formula_matches_the_built_model():
    for overrides in [{}, dict(hidden=48, heads=6, mlp=80), dict(num_layers=3, vocab_size=100)]:
        model = make(**overrides)
        assert sum(p.numel() for p in model.parameters()) == parameter_count(model.config)


def test_logits_cover_the_codebook_only_through_the_tied_embedding():
    model = make().eval()
    x = torch.full((2, 12), 3)  # inputs that use neither id 7 nor id 35
    assert model(x).shape == (2, 12, 32)
    with torch.no_grad():
        before = model(x)
        model.token_embedding.weight[35] += torch.randn(32)  # a special id: never predicted
        assert torch.equal(model(x), before)
        model.token_embedding.weight[7] += torch.randn(32)  # code 7: only its logit moves
        changed = (model(x) - before).abs().amax(dim=(0, 1))
    assert changed[7] > 1e-2
    assert torch.all(changed[:7] == 0) and torch.all(changed[8:] == 0)


def test_bidirectional_by_default_and_causal_on_request():
    model = make().eval()
    x = ids()
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % 40
    with torch.no_grad():
        assert (model(x)[:, 0] - model(y)[:, 0]).abs().max() > 1e-4
        assert torch.allclose(model(x, causal=True)[:, :-1], model(y, causal=True)[:, :-1], atol=1e-6)


def test_kv_cache_reproduces_the_causal_forward_in_chunks():
    model = make().eval()
    x = ids()
    with torch.no_grad():
        full = model(x, causal=True)
        cache = model.new_kv_cache(batch_size=2, max_length=12)
        pieces = [model.forward_cached(x[:, a:b], cache) for a, b in [(0, 1), (1, 4), (4, 5), (5, 12)]]
    assert cache.length == 12
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="KV cache holds 12 positions; 12 are used and 1 more"):
        model.forward_cached(x[:, :1], cache)


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_backend_equals_the_written_out_math_backend(causal):
    sdpa, math = make().eval(), make(attention="math").eval()
    math.load_state_dict(sdpa.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(sdpa(ids(), causal=causal), math(ids(), causal=causal),
                                   atol=1e-5, rtol=1e-5)


def test_dropout_only_in_training_mode():
    model = make()
    x = ids()
    torch.manual_seed(0)
    assert not torch.equal(model.train()(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_init_is_truncated_normal_and_post_layernorm_output_is_normalised():
    model = make(hidden=64, heads=4, mlp=128, vocab_size=200, codebook_size=180)
    w = model.token_embedding.weight
    assert w.abs().max() <= 0.04 + 1e-6 and 0.014 < w.std() < 0.02
    assert torch.all(model.head_bias == 0)
    hidden = model.embedding_norm(model.token_embedding(ids(high=200)))
    torch.testing.assert_close(hidden.mean(-1), torch.zeros(2, 12), atol=1e-5, rtol=0)


def test_bad_sizes_are_reported_with_their_fix():
    with pytest.raises(MagvitError, match=r"hidden = 30 is not divisible by transformer.heads = 4"):
        make(hidden=30)
    with pytest.raises(MagvitError, match=r"codebook_size = 50 is larger than vocab_size = 40"):
        make(codebook_size=50)
    with pytest.raises(ConfigError, match=r"preset"):
        make(preset="XL")
    with pytest.raises(ConfigError, match=r"hidden"):
        make(hidden=32.5)
    with pytest.raises(ValueError, match="longer than the model's 12 position embeddings"):
        make()(ids(length=13))
