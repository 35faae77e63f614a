"""Generation precision: "auto" picks bf16 where the device runs it fast, the decoders compute
in fp32 whatever the network's dtype (the same tokens under bf16 autocast), and the bundled
model's scores barely move in bf16."""

from __future__ import annotations

import pytest
import torch
from decoder_stubs import GridStub, MarkovStub

import magvit
from magvit.cli.main import main
from magvit.core.decoding.model_logits import PrefixedLogits
from magvit.core.metrics import masked_psnr
from magvit.core.training import precision as prec
from magvit.errors import MagvitError
from magvit.pipeline import Pipeline

C = 32


def _decode(name, model, cond_tokens, cond_mask, seed=0):
    decoder = magvit.registries().decoders.create(name, codebook_size=C)
    return decoder.decode(model, cond_tokens, cond_mask, generator=torch.Generator().manual_seed(seed))


class HalfLogits:
    """A stub whose logits arrive in bf16, as a bf16 transformer's do."""

    def __init__(self, stub):
        self.stub = stub

    def __call__(self, tokens):
        return self.stub(tokens).bfloat16()


@pytest.mark.parametrize("name", ["commit", "maskgit", "autoregressive"])
def test_decoders_give_the_same_tokens_under_bf16_autocast(name):
    g = torch.Generator().manual_seed(0)
    cond_tokens = torch.randint(0, C, (2, 40), generator=g)
    cond_mask = torch.rand(2, 40, generator=g) < 0.3
    plain = _decode(name, MarkovStub(C), cond_tokens, cond_mask)
    with prec.inference_autocast("cpu", "bf16"):
        autocast = _decode(name, MarkovStub(C), cond_tokens, cond_mask)
    assert torch.equal(plain, autocast)
    target = torch.randint(0, C, (2, 40), generator=g)
    with prec.inference_autocast("cpu", "bf16"):  # strong bf16 logits: still exactly the grid
        assert torch.equal(_decode(name, HalfLogits(GridStub(target, C)), target.clone(), cond_mask), target)


def test_prefixed_logits_leave_in_fp32():
    class Half(torch.nn.Module):
        def forward(self, ids, causal=False):
            return torch.ones(*ids.shape, C, dtype=torch.bfloat16)

    logits = PrefixedLogits(Half(), torch.zeros(1, 2, dtype=torch.long))(torch.zeros(1, 5, dtype=torch.long))
    assert logits.dtype == torch.float32 and logits.shape == (1, 5, C)


def test_auto_precision_follows_the_device(monkeypatch):
    monkeypatch.delenv("MAGVIT_PRECISION", raising=False)
    monkeypatch.setattr(prec, "cpu_has_fast_bf16", lambda: True)
    assert prec.resolve_inference_precision("cpu") == "bf16"
    monkeypatch.setattr(prec, "cpu_has_fast_bf16", lambda: False)
    assert prec.resolve_inference_precision("cpu", "auto") == "fp32"
    assert prec.resolve_inference_precision("cpu", "bf16") == "bf16"
    monkeypatch.setenv("MAGVIT_PRECISION", "bf16")
    assert prec.resolve_inference_precision("cpu") == "bf16"
    assert prec.resolve_inference_precision("cpu", "fp32") == "fp32"  # an explicit choice wins
    with pytest.raises(MagvitError, match="fp16 runs on CUDA only; on a CPU use bf16 or fp32"):
        prec.resolve_inference_precision("cpu", "fp16")
    with pytest.raises(MagvitError, match="unknown precision 'fp8'; choose one of auto, fp32, bf16, fp16"):
        prec.resolve_inference_precision("cpu", "fp8")


def test_the_bundled_model_in_bf16_scores_like_fp32():
    """bf16 moves the logits a little, and sampling amplifies any move: one token drawn
    differently changes every later step, so a clip's two samples differ by up to 3 dB whatever
    the precision (measured on these 4 clips, seed 0: bf16 1.1 dB below fp32 on average with the
    default sampling, 0.6 dB with seed 1; with `top_k=1`, 0.4 and 0.2 dB). So the precisions are
    compared on greedy tokens, where only the commit order is random and is drawn alike, and a
    difference is the precision's own (0.2-0.4 dB measured, plain, AVX2 and scalar kernels); the
    default sampling must beat the padding in both."""
    bundle = Pipeline.from_checkpoint("default").bundle  # loaded once: a half pipeline copies it
    data = bundle.experiment.data.build().make("eval", seed=0)
    clips = torch.stack([data[i]["video"] for i in range(4)])
    scores, gains = {}, {}
    for precision in ("fp32", "bf16"):
        for top_k in (1, 0):
            pipe = Pipeline(bundle, precision=precision, top_k=top_k)
            assert pipe.precision == precision
            result = pipe.generate("fi", clips, seed=0)
            assert result.video.dtype == torch.float32 and torch.isfinite(result.video).all()
            assert result.tokens.dtype == torch.int64 and result.tokens.shape == (4, 4, 8, 8)
            generated = ~result.pixel_mask
            psnr = masked_psnr(result.video, clips, generated).mean().item()
            if top_k == 1:
                scores[precision] = psnr
            else:  # the padded condition is FI's baseline, the linear blend (17.0 dB on 64 clips)
                gains[precision] = psnr - masked_psnr(result.condition, clips, generated).mean().item()
    assert abs(scores["bf16"] - scores["fp32"]) < 1.0, scores
    # +4.9 dB in either precision on the demo's 64 clips; on these 4, 5.4 dB in fp32 and 3.7-4.6
    # in bf16 (plain, AVX2 and scalar kernels: a sample's noise, as above)
    assert min(gains.values()) > 2.0, gains


def test_a_half_pipeline_runs_a_half_copy_and_leaves_the_bundle_in_fp32():
    bf16 = Pipeline.from_checkpoint("default", precision="bf16")
    bundle_weights = {p.dtype for p in bf16.bundle.transformer.parameters()}
    assert bundle_weights == {torch.float32}
    for name, part in bf16.transformer.named_modules():  # matmul weights half; norms, free biases fp32
        half = isinstance(part, (torch.nn.Linear, torch.nn.Embedding))
        for param in part.parameters(recurse=False):
            assert param.dtype == (torch.bfloat16 if half else torch.float32), name
    assert bf16.transformer.head_bias.dtype == torch.float32
    fp32 = Pipeline(bf16.bundle, precision="fp32")  # the same bundle, afterwards: untouched weights
    assert fp32.transformer is bf16.bundle.transformer
    ids = torch.randint(0, fp32.vocab.codebook_size, (8, fp32.bundle.transformer.config.num_positions),
                        generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        full = fp32.transformer(ids)
        with prec.inference_autocast("cpu", "bf16"):
            half, autocast_only = bf16.transformer(ids), fp32.transformer(ids)
    # the head is one autocast matmul with its bias: half logits (decoding upcasts them itself)
    assert half.dtype == autocast_only.dtype == torch.bfloat16 and full.dtype == torch.float32
    # stored bf16 weights = what autocast rounds them to at each matmul; the bf16 embeddings and
    # their bf16 sum add more rounding: of the order of autocast's own error against fp32 (1.4-1.55x
    # it on an AVX-512 BF16 CPU, whatever ATEN_CPU_CAPABILITY; less with AMX), and a few percent of
    # the logits at most (1.8% measured)
    err_half, err_autocast = (half.float() - full).abs().mean(), (autocast_only.float() - full).abs().mean()
    assert 0 < err_autocast and err_half < 2 * err_autocast
    assert err_half < 0.03 * full.abs().mean()


def test_cli_names_a_precision_the_device_cannot_run(capsys):
    assert main(["demo", "--clips", "1", "--precision", "fp16", "--device", "cpu"]) == 2
    assert "fp16 runs on CUDA only; on a CPU use bf16 or fp32" in capsys.readouterr().err


def test_guidance_runs_both_prefixes_in_one_batched_forward():
    from magvit.core.decoding.model_logits import GuidedPair
    from magvit.core.tokens import build_sequence

    pipe = Pipeline.from_checkpoint("default", precision="fp32", guidance_scale=1.5)
    latent = torch.randint(0, pipe.vocab.codebook_size, (2, 256), generator=torch.Generator().manual_seed(0))
    empty, labels = latent[:, :0], torch.tensor([1, 2])
    cond_prefix = build_sequence(pipe.vocab, empty, "cfp", labels)
    uncond_prefix = build_sequence(pipe.vocab, empty, "cfp", None)
    pair = GuidedPair(pipe.transformer, cond_prefix, uncond_prefix)
    other = latent.flip(0)
    with torch.inference_mode():
        cond, uncond = pair.with_unconditional(latent, other)
        assert cond.shape == uncond.shape == (2, 256, pipe.vocab.codebook_size)
        assert torch.allclose(cond, PrefixedLogits(pipe.transformer, cond_prefix)(latent), atol=1e-4)
        assert torch.allclose(uncond, PrefixedLogits(pipe.transformer, uncond_prefix)(other), atol=1e-4)
        assert torch.equal(pair(latent), PrefixedLogits(pipe.transformer, cond_prefix)(latent))
        assert torch.equal(pair.uncond(other), PrefixedLogits(pipe.transformer, uncond_prefix)(other))
    calls = []
    hook = pipe.transformer.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    try:
        clips = torch.stack([pipe.bundle.experiment.data.build().make("eval", seed=0)[i]["video"] for i in range(2)])
        pipe.generate("cfp", clips, label=[1, 2], seed=0)
    finally:
        hook.remove()
    assert calls == [4] * 12  # 12 COMMIT steps, each one forward of 2 x batch 2


def test_compile_wraps_the_transformer_and_the_tokenizer_networks():
    from torch._dynamo.eval_frame import OptimizedModule

    pipe = Pipeline.from_checkpoint("default", compile=True)
    assert pipe.compiled and isinstance(pipe.transformer, OptimizedModule)
    assert isinstance(pipe.tokenizer.encoder, OptimizedModule) and isinstance(pipe.tokenizer.decoder, OptimizedModule)
    assert not Pipeline.from_checkpoint("default").compiled
