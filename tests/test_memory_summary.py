"""`magvit model summary --memory`: activation memory measured from what autograd saves, and
the largest micro-batch per GPU that follows."""

from __future__ import annotations

import json

import pytest
import torch

from magvit.cli.main import main
from magvit.registry.experiment import load_experiment
from magvit.workflows.memory import (
    ADAM_BYTES_PER_PARAM,
    RESERVE,
    Footprint,
    memory_footprints,
    saved_activation_bytes,
)


def test_saved_bytes_of_a_known_network():
    with torch.device("meta"):
        net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8))
    x = torch.zeros(8, 64, device="meta")
    # Linear saves its input (8x64), ReLU its output (8x32), the last Linear its input (the
    # same 8x32 tensor: counted once); weights are parameters and not counted.
    assert saved_activation_bytes(lambda: net(x), net) == 4 * (8 * 64 + 8 * 32)
    assert saved_activation_bytes(lambda: net(x), net, skip=lambda t: t.shape[-1] == 32) == 4 * 8 * 64


def test_micro_batch_formula():
    f = Footprint("m", 10, 10 * ADAM_BYTES_PER_PARAM, {"fp32": 2**30})
    assert f.max_micro_batch(80 * 2**30, "fp32") == int((80 * 2**30 * (1 - RESERVE) - 160) // 2**30) == 71


def test_paper_sizes_are_ordered_as_they_must_be():
    (b,) = memory_footprints(load_experiment("ucf101-cg"))
    (big,) = memory_footprints(load_experiment("ucf101-cg", ['transformer.preset="L"']))
    assert b.parameters == 87_301_888 and big.parameters > 3 * b.parameters
    act = b.activation_bytes
    assert act["bf16-flash"] < act["fp32-flash"] < act["fp32"] and act["bf16-flash"] < act["bf16"]
    assert all(big.activation_bytes[p] > act[p] for p in act)
    # B's scores: 12 layers x 12 heads x 1026^2 fp32 values at least once each
    assert act["fp32"] - act["fp32-flash"] >= 12 * 12 * 1026**2 * 4
    assert b.max_micro_batch(80 * 2**30, "bf16-flash") > b.max_micro_batch(80 * 2**30, "fp32")
    (tok,) = memory_footprints(load_experiment("ucf101-b-tokenizer"))
    assert tok.activation_bytes["bf16"] == pytest.approx(tok.activation_bytes["fp32"] / 2, rel=0.05)


def test_cli_prints_and_writes_json(capsys):
    assert main(["model", "summary", "ucf101-cg", "--memory", "--gpu-gib", "80"]) == 0
    out = capsys.readouterr().out
    assert "transformer training memory per GPU of 80 GiB" in out and "bf16-flash" in out
    assert main(["model", "summary", "tiny", "--memory", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (row,) = report["memory"]
    assert report["parameters"]["transformer"] == row["parameters"] == 911_232
    assert set(row["max_micro_batch"]) == {"fp32", "fp32-flash", "bf16", "bf16-flash"}
    assert main(["model", "summary", "tiny", "--memory", "--gpu-gib", "0"]) == 2
