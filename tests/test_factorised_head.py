"""The transformer's factorised codebook head (MAGVIT-v2, for 2^18 codes): digits, embeddings,
logits equal to the product of the digit softmaxes, the loss without the full vocabulary, the
parameter count, errors, and a stage-2 run from TOML that generates the ten tasks."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
import torch.nn.functional as F

import magvit
from magvit.cli.main import main
from magvit.core.commit_loss import per_example_commit_loss
from magvit.core.transformer.bert import code_digits, full_logits, parameter_count
from magvit.errors import MagvitError
from magvit.pipeline import Pipeline
from magvit.testing import check_transformer


def bert(codes, factors=(), **sizes):
    torch.manual_seed(0)
    sizes = {"num_layers": 1, "hidden": 16, "mlp": 32, "heads": 2, **sizes}
    return magvit.registries().transformers.create(
        "bert", preset="tiny", vocab_size=codes + 3, num_positions=10, codebook_size=codes,
        codebook_factors=list(factors), **sizes).eval()


def test_digits_are_mixed_radix_with_the_last_fastest():
    codes = torch.arange(60)
    a, b, c = code_digits(codes, (3, 4, 5))
    assert torch.equal(a * 20 + b * 5 + c, codes)
    assert (a.max(), b.max(), c.max()) == (2, 3, 4) and c[:6].tolist() == [0, 1, 2, 3, 4, 0]


def test_full_logits_are_the_product_of_the_digit_softmaxes():
    torch.manual_seed(0)
    parts = (torch.randn(2, 3, 4), torch.randn(2, 3, 5), torch.randn(2, 3, 6))
    full = full_logits(parts)
    assert full.shape == (2, 3, 120) and full.dtype == torch.float32
    probs = [p.softmax(-1) for p in parts]
    for code, (a, b, c) in zip(range(120), itertools.product(range(4), range(5), range(6))):
        expected = probs[0][..., a] * probs[1][..., b] * probs[2][..., c]
        assert torch.allclose(full[..., code].exp(), expected, rtol=1e-5)
    assert torch.allclose(full.logsumexp(-1), torch.zeros(2, 3), atol=1e-5)  # normalised


def test_factorised_model_embeds_a_code_as_the_sum_of_its_digit_rows():
    model = bert(12, (3, 4))
    rows = model.token_embedding.weight
    assert rows.shape == (3 + 4 + 3, 16) and model.head_bias.shape == (7,)
    ids = torch.tensor([[0, 5, 11, 12, 14]])  # codes 0, 5 = (1, 1), 11 = (2, 3); then two other ids
    x = model._embed(ids)
    assert torch.equal(x[0, 0], rows[0] + rows[3 + 0])
    assert torch.equal(x[0, 1], rows[1] + rows[3 + 1])
    assert torch.equal(x[0, 2], rows[2] + rows[3 + 3])
    assert torch.equal(x[0, 3], rows[7]) and torch.equal(x[0, 4], rows[9])


def test_factorised_logits_the_loss_and_the_cache_agree_with_the_full_vocabulary():
    model = bert(12, (3, 4))
    ids = torch.randint(0, 15, (2, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        digits = model(ids, factored=True)
        full = model(ids)
        assert [tuple(d.shape) for d in digits] == [(2, 10, 3), (2, 10, 4)] and full.shape == (2, 10, 12)
        assert torch.allclose(full, full_logits(digits))
        # the loss from the digits equals the CE of the full logits (no smoothing)
        targets = torch.randint(0, 12, (2, 10), generator=torch.Generator().manual_seed(2))
        weights = torch.rand(2, 10, generator=torch.Generator().manual_seed(3)) + 0.1
        by_digit = per_example_commit_loss(digits, targets, weights, label_smoothing=0.0)
        direct = (F.cross_entropy(full.flatten(0, 1), targets.flatten(), reduction="none").view(2, 10)
                  * weights).sum(1) / weights.sum(1)
        assert torch.allclose(by_digit, direct, rtol=1e-5)
        # cached causal decoding gives the causal logits
        cache = model.new_kv_cache(2, 10)
        stepwise = torch.cat([model.forward_cached(ids[:, i:i + 1], cache) for i in range(10)], dim=1)
        assert torch.allclose(stepwise, model(ids, causal=True), atol=1e-5)
    plain = bert(12)
    with torch.no_grad():
        (only,) = plain(ids, factored=True)
        assert torch.equal(only, plain(ids))


def test_factorised_model_passes_the_transformer_check_and_counts_its_parameters():
    model = bert(12, (3, 4))
    check_transformer(model, vocab_size=15, num_positions=10, codebook_size=12)
    assert parameter_count(model.config) == sum(p.numel() for p in model.parameters())
    # at 2^18 codes the factorised head saves the 2^18-row embedding and bias
    big, small = bert(2**18, hidden=32, heads=2).config, bert(2**18, (512, 512), hidden=32, heads=2).config
    assert parameter_count(big) - parameter_count(small) == (2**18 - 1024) * 33


def test_bad_factors_name_the_field_and_the_fix():
    with pytest.raises(MagvitError, match=r"codebook_factors = \[3, 5\] must be ints >= 2 whose product is the "
                                          r"codebook size 12 \(e\.g\. \[512, 512\] for 2\^18 codes\)"):
        bert(12, (3, 5))
    with pytest.raises(MagvitError, match=r"codebook_factors = \[1, 12\]"):
        bert(12, (1, 12))


def test_a_factorised_stage2_trains_from_toml_and_generates_the_ten_tasks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    steps = ["--set", "train.steps=2", "--set", "train.warmup_steps=0", "--set", "train.eval_every=2",
             "--set", "train.batch_size=2", "--set", "train.eval_batches=1", "--set", "train.checkpoint_every=2"]
    assert main(["train", "tokenizer", "tiny-tokenizer-lfq", *steps]) == 0
    assert main(["train", "transformer", "tiny-lfq", *steps, "--set", "data.train_clips=8",
                 "--set", "data.eval_clips=4", "--set", "transformer.codebook_factors=[128, 128]",
                 "--set", "run.media_every=2"]) == 0
    evals = [json.loads(line) for line in (tmp_path / "runs/tiny-lfq/metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in evals if r["split"] == "train"]
    assert losses and all(0 < loss < 2 * 9.71 for loss in losses)  # two digits of 7 bits: 2 log 128
    pipe = Pipeline.from_checkpoint("runs/tiny-lfq", steps=2)
    assert pipe.transformer.codebook_factors == (128, 128) and pipe.transformer.head_bias.shape == (256,)
    video = pipe.bundle.experiment.data.build().make("eval", seed=0)[0]["video"]
    for task in pipe.task_names:
        out = pipe.generate(task, video, seed=0, label=0 if task in ("cg", "cfp") else None)
        assert out.video.shape == (1, *video.shape) and torch.isfinite(out.video).all()
        assert out.tokens.max() < 2**14
