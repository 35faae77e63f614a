"""Batch sizes from free memory: the meta-device peak tracer, the per-clip memory, the choice."""

from __future__ import annotations

import attrs
import pytest
import torch

from magvit.core.live_memory import PeakLiveBytes, module_peak_bytes, peak_live_bytes
from magvit.errors import MagvitError
from magvit.workflows.generation_batch import (
    CPU_BATCH,
    FALLBACK_BATCH,
    FREE_FRACTION,
    ClipMemory,
    auto_batch_size,
    free_memory_bytes,
)
from magvit.workflows.pipeline import Pipeline

MB = 1_000_000


def test_the_peak_counts_what_is_alive_at_once_and_views_share_their_storage():
    def work():
        x = torch.empty(MB // 4, device="meta")  # 1 MB
        y = x * 2  # 2 MB alive
        z = y + 1  # 3 MB: the peak
        del x, y
        view = z.view(-1)  # no new storage
        z.add_(1)  # in place: nothing new
        del z
        w = view.relu()  # view's storage (1 MB) + w (1 MB)
        return w

    assert peak_live_bytes(work) == 3 * MB


def test_a_modules_peak_is_its_intermediates_and_grows_with_the_batch():
    mlp = torch.nn.Sequential(torch.nn.Linear(100, 400), torch.nn.GELU(), torch.nn.Linear(400, 100))
    weight = mlp[0].weight.detach().clone()
    for batch in (1, 2, 4):
        x = torch.zeros(batch, 10, 100)
        # hidden (b*10*400 floats) and its GELU are alive together; weights and input excluded
        assert module_peak_bytes(mlp, "forward", x) == 2 * batch * 10 * 400 * 4
    assert mlp[0].weight.device.type == "cpu"  # the real weights were neither moved nor changed
    assert torch.equal(mlp[0].weight, weight)


def test_a_value_check_on_meta_reads_zero_and_passes():
    def checked():
        x = torch.zeros(3, device="meta")
        if bool(x.min() < 0) or int(x.max()) > 5:
            raise AssertionError("a meta value check should pass")
        return x + 1

    assert peak_live_bytes(checked) == 12 + 12  # x and x + 1 alive together; the checks ran

    def real_values():
        return torch.tensor([3.0]).item(), bool(torch.tensor([0.0]) < 0)  # real tensors read their values

    assert peak_live_bytes(real_values) > 0
    with PeakLiveBytes():
        assert real_values() == (3.0, False)


@pytest.fixture(scope="module")
def pipe():
    return Pipeline.from_checkpoint("default", device="cpu", precision="fp32")


def test_the_bundled_models_clip_memory_matches_a_count_on_real_tensors(pipe):
    memory = pipe.clip_memory()
    assert isinstance(memory, ClipMemory)
    latent, codebook = 4 * 8 * 8, pipe.vocab.codebook_size
    assert memory.decode_logits == 4 * latent * codebook * 4
    # the same tracer on real CPU tensors (not meta) counts the same bytes
    real = peak_live_bytes(lambda: pipe.tokenizer.decode(torch.zeros(2, 4, 8, 8, dtype=torch.long))) \
        - peak_live_bytes(lambda: pipe.tokenizer.decode(torch.zeros(1, 4, 8, 8, dtype=torch.long)))
    assert real > 0 and memory.decode == pytest.approx(real, rel=0.01)  # CPU kernels differ a little
    clips = torch.rand(2, 3, 8, 32, 32)
    real = peak_live_bytes(lambda: pipe.tokenizer.encode(clips)) - peak_live_bytes(lambda: pipe.tokenizer.encode(clips[:1]))
    assert real > 0 and memory.encode == pytest.approx(real, rel=0.01)
    assert memory.per_clip() == max(memory.encode, memory.transformer + memory.decode_logits, memory.decode)
    assert memory.per_clip(guided=True) >= memory.per_clip()



def test_the_condition_fits_memory_covers_a_real_backward_pass(pipe):
    """The fit holds the decoder's activations for autograd and then runs the backward pass:
    the estimate (twice the recorded forward) covers what that costs on real tensors."""
    memory = pipe.clip_memory()
    dim = pipe.tokenizer.quantizer.dim

    def forward_backward(batch: int):
        vectors = torch.zeros(batch, dim, 4, 8, 8, requires_grad=True)
        return lambda: torch.autograd.grad(pipe.tokenizer.decode_latent(vectors).sum(), [vectors])

    real = peak_live_bytes(forward_backward(2)) - peak_live_bytes(forward_backward(1))
    assert memory.decode < real <= memory.refine < 3 * real
    assert memory.per_clip(refine=True) == max(memory.per_clip(), memory.refine)


def test_auto_fills_free_memory_and_stays_within_the_clips_and_the_cpu_cap():
    memory = ClipMemory(encode=10 * MB, transformer=30 * MB, decode_logits=10 * MB, decode=20 * MB)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert memory.per_clip() == 40 * MB and memory.per_clip(guided=True) == 70 * MB
    free = 4000 * MB
    assert auto_batch_size(memory, 1000, cuda, free=free) == int(free * FREE_FRACTION) // (40 * MB) == 70
    assert auto_batch_size(memory, 1000, cuda, free=free, guided=True) == 40
    fitting = attrs.evolve(memory, refine=100 * MB)
    assert fitting.per_clip() == 40 * MB and fitting.per_clip(refine=True) == 100 * MB
    assert auto_batch_size(fitting, 1000, cuda, free=free, refine=True) == 28
    assert auto_batch_size(memory, 12, cuda, free=free) == 12  # never more than the clips
    assert auto_batch_size(memory, 1000, cpu, free=free) == CPU_BATCH
    assert auto_batch_size(memory, 1000, cuda, free=10 * MB) == 1  # at least one, even if tight
    assert auto_batch_size(None, 1000, cuda, free=free) == FALLBACK_BATCH
    assert auto_batch_size(lambda: memory, 1000, cuda, free=free) == 70  # measured when it matters

    def not_needed():
        raise AssertionError("one clip needs no measurement")

    assert auto_batch_size(not_needed, 1, cuda, free=free) == 1
    assert free_memory_bytes(cpu) is None or free_memory_bytes(cpu) > 0


def test_generate_with_auto_runs_the_batches_it_chose(pipe, monkeypatch):
    monkeypatch.setattr("magvit.workflows.generation_batch.free_memory_bytes",
                        lambda device: int(3 * pipe.clip_memory().per_clip() / FREE_FRACTION) + 1)
    calls = []
    original = pipe._generate_batch
    monkeypatch.setattr(pipe, "_generate_batch", lambda *a: calls.append(a[2].shape[0]) or original(*a))
    auto = pipe.generate("cg", label=[0, 1, 2, 3, 0, 1, 2], seed=0, batch_size="auto", class_guidance=0)
    assert calls == [3, 3, 1] and auto.batch_size == 3   # recorded: the seed's draws depend on it
    calls.clear()
    three = pipe.generate("cg", label=[0, 1, 2, 3, 0, 1, 2], seed=0, batch_size=3, class_guidance=0)
    assert torch.equal(auto.tokens, three.tokens) and three.batch_size == 3
    other = pipe.generate("cg", label=[0, 1, 2, 3, 0, 1, 2], seed=0, batch_size=2, class_guidance=0)
    assert other.batch_size == 2 and not torch.equal(auto.tokens, other.tokens)
    calls.clear()
    guided = pipe.generate("cg", label=[0, 1, 2, 3, 0, 1, 2], seed=0, batch_size="auto")  # the class guidance
    assert guided.guidance_scale > 0 and sum(calls) == 7 and max(calls) < 3   # two forwards a clip: fewer fit
    assert guided.batch_size == max(calls)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "many", True])
def test_a_bad_batch_size_is_named(pipe, bad):
    with pytest.raises(MagvitError, match=r"batch_size must be a whole number of at least 1 or \"auto\""):
        pipe.generate("cg", label=0, batch_size=bad)


def test_the_cli_takes_auto_or_a_number(tmp_path, capsys):
    from magvit.cli.main import main

    args = ["generate", "--checkpoint", "default", "--task", "cg", "--class", "0", "--samples", "2"]
    assert main([*args, "--output", str(tmp_path / "x.mp4"), "--batch-size", "zero"]) == 2
    assert "--batch-size: expected an integer, got 'zero'; or give auto" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()
    assert main([*args, "--output", str(tmp_path / "y.mp4"), "--batch-size", "auto"]) == 0
    assert (tmp_path / "y-1.mp4").stat().st_size > 0 and (tmp_path / "y-2.mp4").stat().st_size > 0
