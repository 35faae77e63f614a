"""What only a CUDA device can show (skipped without one; `benchmarks/gpu_checklist.sh` runs
them first): generation on the GPU in bf16 and compiled with CUDA graphs, and the decoders'
tokens under bf16 autocast there."""

from __future__ import annotations

import pytest
import torch
from decoder_stubs import MarkovStub

import magvit
from magvit.core.training.precision import inference_autocast, resolve_inference_precision
from magvit.pipeline import Pipeline

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_auto_precision_is_half_on_cuda():
    assert resolve_inference_precision("cuda", "auto") in ("bf16", "fp16")


@pytest.mark.parametrize("name", ["commit", "maskgit", "autoregressive"])
def test_decoders_give_the_same_tokens_under_autocast_on_cuda(name):
    g = torch.Generator().manual_seed(0)
    cond_tokens = torch.randint(0, 32, (2, 40), generator=g).cuda()
    cond_mask = (torch.rand(2, 40, generator=g) < 0.3).cuda()
    stub = MarkovStub(32)
    stub.table = stub.table.cuda()
    decoder = magvit.registries().decoders.create(name, codebook_size=32)
    plain = decoder.decode(stub, cond_tokens, cond_mask, generator=torch.Generator("cuda").manual_seed(0))
    with inference_autocast("cuda", "bf16"):
        half = decoder.decode(stub, cond_tokens, cond_mask, generator=torch.Generator("cuda").manual_seed(0))
    assert torch.equal(plain, half)


@pytest.mark.parametrize("compile", [False, True])
def test_the_bundled_model_generates_on_cuda(compile):
    pipe = Pipeline.from_checkpoint("default", device="cuda", precision="bf16", compile=compile)
    clips = torch.stack([pipe.bundle.experiment.data.build().make("eval", seed=0)[i]["video"] for i in range(4)])
    reference = Pipeline.from_checkpoint("default", device="cuda", precision="fp32")
    for task in ("fp", "cg"):
        video = clips if task == "fp" else None
        label = [0, 1, 2, 3] if task == "cg" else None
        out = pipe.generate(task, video, label=label, seed=0)
        base = reference.generate(task, video, label=label, seed=0)
        assert out.video.is_cuda and out.video.dtype == torch.float32 and torch.isfinite(out.video).all()
        assert (out.tokens == base.tokens).float().mean() > 0.5  # bf16 moves some samples, not most


def test_the_meta_estimate_of_a_clips_memory_holds_on_cuda():
    """What one more clip costs, measured by the CUDA allocator, against the meta-device count."""
    pipe = Pipeline.from_checkpoint("default", device="cuda", precision="fp32")
    estimate = pipe.clip_memory()
    latent = (4, 8, 8)

    def allocated_peak(fn) -> int:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - start

    with torch.inference_mode():
        tokens = {b: torch.zeros(b, *latent, dtype=torch.long, device="cuda") for b in (8, 16)}
        per_clip = (allocated_peak(lambda: pipe.tokenizer.decode(tokens[16]))
                    - allocated_peak(lambda: pipe.tokenizer.decode(tokens[8]))) / 8
    # cuDNN picks workspaces and fuses some intermediates: the count is an estimate, not exact
    assert 0.5 * estimate.decode <= per_clip <= 2.0 * estimate.decode
    batch = pipe.batch_size_for("auto", 1000)
    assert batch >= 1 and batch * estimate.per_clip() <= torch.cuda.mem_get_info()[0]
