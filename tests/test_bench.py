"""`magvit bench`: the FLOP count it divides by, and the numbers it reports for a model."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import magvit
from magvit.cli.main import main
from magvit.workflows.bench import transformer_flops


@pytest.mark.parametrize("length", [258, 100])
def test_transformer_flops_equal_torch_flop_counter(length):
    model = magvit.registries().transformers.create(
        "bert", preset="tiny", vocab_size=600, num_positions=258, codebook_size=512, attention="math").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randint(0, 512, (1, length)))
    assert transformer_flops(model.config, length) == counter.get_total_flops()


def test_bench_reports_times_shares_and_gemm_fraction(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "default", "--repeats", "1", "--precision", "fp32", "--batches", "1,2",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "whole clip" in printed and "GEMM" in printed and "frames/s" in printed
    assert "bf16 peak" not in printed  # measured on CUDA only
    record = json.loads(out.read_text())
    assert record["precision"] == "fp32" and record["task"] == "fp" and record["tokens"] == 256
    assert record["clip"] == [8, 32, 32] and record["steps"] == 12
    for key in ("clip_s", "encode_s", "decode_s", "transformer_step_s", "transformer_clip_s", "gemm_gflops"):
        assert record[key] > 0
    assert 0 < record["tokenizer_share"] < 1 and record["transformer_gemm_fraction"] > 0
    assert record["clips_per_s"] == pytest.approx(1 / record["clip_s"])
    assert record["fps"] == pytest.approx(8 / record["clip_s"])  # frames per second at batch 1
    assert set(record["batch_clips_per_s"]) == {"1", "2"}
    best = max(record["batch_clips_per_s"], key=record["batch_clips_per_s"].get)
    assert record["best_batch"] == int(best)
    assert record["best_fps"] == pytest.approx(8 * record["batch_clips_per_s"][best])
    assert record["bf16_peak_gflops"] is None and record["bf16_peak_fraction"] is None
    assert record["tokenizer_share"] == pytest.approx(
        min(1.0, (record["encode_s"] + record["decode_s"]) / record["clip_s"]))


def test_bench_of_an_experiment_uses_its_sizes_and_compare_gives_ratios(tmp_path, capsys):
    out = tmp_path / "c.json"
    assert main(["bench", "tiny", "--repeats", "1", "--compare", "--precision", "bf16", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["precision"] == "bf16" and record["baseline"]["precision"] == "fp32"
    assert set(record["speedup"]) == {"clip", "transformer_forward", "tokenizer_decode"}
    assert record["speedup"]["clip"] == pytest.approx(record["baseline"]["clip_s"] / record["clip_s"])
    assert "speed-up over fp32" in capsys.readouterr().out


def test_bench_names_what_it_cannot_time(capsys):
    assert main(["bench", "no-such-thing"]) == 2
    assert "no-such-thing is neither a model folder nor an experiment" in capsys.readouterr().err
    assert main(["bench", "tiny-tokenizer"]) == 2
    assert "stage 2 needs the section(s) [transformer], [tasks]" in capsys.readouterr().err


def test_a_cuda_result_reports_its_share_of_the_bf16_peak_and_fps():
    from magvit.workflows.bench import BenchResult

    result = BenchResult(
        model="ucf101-cg", device="cuda:0", precision="bf16", compiled=True, threads=1, cores=16,
        task="cg", clip=(16, 128, 128), tokens=1024, steps=12, encode_s=0.0, transformer_step_s=0.01,
        transformer_clip_s=0.12, decode_s=0.05, clip_s=0.2, transformer_gflops=300.0, gemm_gflops=500.0,
        peak_memory_bytes=2**30, batch_clips_per_s={1: 5.0, 32: 40.0}, bf16_peak_gflops=600.0,
    )
    assert result.fps == pytest.approx(80.0) and result.best_fps == pytest.approx(640.0)
    assert result.best_batch == 32 and result.bf16_peak_fraction == pytest.approx(0.5)
    table = result.table()
    assert "80.0 at batch 1, 640.0 at batch 32" in table
    assert "600 GFLOP/s; the transformer reaches 50%" in table
    assert result.to_dict()["bf16_peak_fraction"] == pytest.approx(0.5)
