"""`magvit model summary`: the paper's experiments have the paper's parameter counts."""

from __future__ import annotations

import json

import pytest

from magvit.cli.main import main
from magvit.registry.experiment import load_experiment
from magvit.workflows.summary import parameter_counts


@pytest.mark.parametrize("name, transformer", [
    ("ucf101-cg", 87.2e6), ("bair-mt8", 87.2e6), ("k600-fp", 87.2e6),
])
def test_b_transformer_matches_the_paper_within_one_percent(name, transformer):
    counts = parameter_counts(load_experiment(name))
    assert counts["transformer"] == pytest.approx(transformer, rel=0.01)


def test_ucf101_counts_the_declared_classes_without_the_data():
    counts = parameter_counts(load_experiment("ucf101-cg"))
    assert counts["tokenizer"] == 40_579_843  # SPEC §5: generator B 40.58M
    # one single-task vocabulary: 1024 codes + 101 classes + unconditional + [MASK] = 1127 rows
    fewer = parameter_counts(load_experiment("ucf101-cg", ["data.classes=1"]))
    assert counts["transformer"] - fewer["transformer"] == 100 * 768


def test_cli_json(capsys):
    assert main(["model", "summary", "tiny", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert set(counts) >= {"tokenizer.encoder", "tokenizer.decoder", "tokenizer", "transformer"}
    assert counts["tokenizer"] == counts["tokenizer.encoder"] + counts["tokenizer.quantizer"] + counts["tokenizer.decoder"]
