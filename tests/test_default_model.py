"""The model bundled with the package: it loads by name and does all ten tasks."""

from __future__ import annotations

import json

import pytest
import torch

from magvit.cli.main import main
from magvit.core.metrics import masked_psnr
from magvit.pipeline import Pipeline
from magvit.weights import DEFAULT_CHECKPOINT, resolve_model_path
from magvit.workflows.demo import run_demo

TEN_TASKS = ["fp", "fi", "opc", "opv", "oph", "opd", "ipc", "ipd", "cg", "cfp"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return run_demo("default", tmp_path_factory.mktemp("demo"), clips=16, progress=False)


def test_default_resolves_to_the_packaged_weights():
    assert resolve_model_path("default") == DEFAULT_CHECKPOINT
    assert resolve_model_path("runs/x") == "runs/x"
    size = sum(f.stat().st_size for f in DEFAULT_CHECKPOINT.iterdir())
    assert size < 25 * 2**20, f"bundled weights are {size / 2**20:.1f} MiB; the budget is 25"
    pipe = Pipeline.from_checkpoint("default")
    assert list(pipe.task_names) == TEN_TASKS
    assert pipe.clip_shape == (8, 32, 32)


def test_every_task_runs_and_no_output_is_a_solid_colour(demo):
    assert [r.task for r in demo.rows] == TEN_TASKS
    flat = [r.task for r in demo.rows if r.solid]
    assert not flat, f"solid-colour outputs: {flat}"


def test_the_table_reports_model_and_baseline_for_every_conditional_task(demo):
    for row in demo.rows:
        if row.task == "cg":
            continue
        assert 10 < row.psnr < 40 and 5 < row.baseline_psnr < 40, row


def test_it_fills_moving_and_inner_regions_better_than_the_zero_padding(demo):
    """The model's generated pixels beat the black fill of OPD, IPC and IPD by a wide margin
    (measured at 16 clips: 23.42 vs 12.92, 18.15 vs 10.52, 17.60 vs 10.45 dB)."""
    rows = {r.task: r for r in demo.rows}
    for task in ("opd", "ipc", "ipd"):
        assert rows[task].psnr > rows[task].baseline_psnr + 4, rows[task]


@pytest.mark.parametrize("task,margin", [("fp", 3.0), ("fi", 3.0)])
def test_it_beats_the_temporal_baselines_on_16_held_out_clips(demo, task, margin):
    """FP beats the repeated last frame and FI the linear blend over the generated pixels by more
    than the issue's 3 dB (measured at 16 clips: FP 20.13 vs 15.08 dB with the class reader; FI 22.34 vs
    17.45 dB)."""
    row = next(r for r in demo.rows if r.task == task)
    assert row.psnr > row.baseline_psnr + margin, row


def test_the_class_reader_gives_fp_the_class_of_the_given_frame(demo):
    """The bundle's class reader reads the class from FP's given frame (right on 4,096 of 4,096
    held-out clips), so the class search runs FP as CFP with that class only, 4 samples, keeping
    the one that best redraws the frame: the kept class is the clip's own in all 16 clips."""
    pipe = Pipeline.from_checkpoint("default")
    assert pipe.class_reader is not None and pipe.class_reader.held_out_accuracy == 1.0
    assert (pipe.read_classes, pipe.class_search) == (1, 4)
    row = next(r for r in demo.rows if r.task == "fp")
    assert row.class_match >= 15 / 16, row
    assert " ".join(demo.table().split()).count(
        "fp: the best of 4 cfp sample(s) of the class that the class reader reads from the given pixels") == 1


@pytest.mark.parametrize("task", ["opc", "opv", "oph", "ipc", "ipd"])
def test_it_keeps_the_given_pixels_within_1_db_of_the_tokenizer_round_trip(demo, task):
    """The condition pixels it regenerates are within 1 dB of the tokenizer's own round trip of
    them, as the issue asks (measured at 16 clips, round trip 27.76, 28.40, 28.78, 30.18, 30.13
    dB: 28.34, 29.29, 29.50, 30.08, 30.11; 64 clips: +0.93, +1.01, +1.04, +0.19, -0.05 dB from
    the round trip). The generated tokens are fitted to the given pixels (`refine_steps`, 10 by
    default) before they are decoded; without that the gaps were 1.2 to 2.8 dB (the next test)."""
    row = next(r for r in demo.rows if r.task == task)
    assert row.condition_psnr > row.roundtrip_condition_psnr - 1.0, row
    assert row.condition_psnr > 26.0, row


def test_the_condition_fit_is_what_keeps_the_given_pixels():
    """The same tokens decoded without the fit lose 2-3 dB of the given pixels (16 clips, OPC:
    24.95 dB without, 28.22 with)."""
    pipe = Pipeline.from_checkpoint("default", device="cpu")
    clips = torch.stack([pipe.bundle.experiment.data.build().make("eval", seed=0)[i]["video"] for i in range(4)])
    scores = {}
    for steps in (0, 10):
        result = pipe.generate("opc", clips, seed=0, refine_steps=steps)
        given = result.pixel_mask
        scores[steps] = float(masked_psnr(result.video, clips, given).mean())
    assert scores[10] > scores[0] + 1.5, scores


def test_the_bundled_shape_classifier_scores_its_cg_samples(demo):
    """The bundled classifier was trained on the bundled model's clips and on its tokenizer's
    round trips of them, so the demo reports CG's class accuracy out of the box, and the
    classifier knows the shapes in decoded clips (measured on 64 clips: 87.5% in bf16, chance 25%;
    100% of the round trips; it was retrained when the decoder changed); no other task has
    one."""
    from magvit.workflows.shape_classifier import BUNDLED, read_metadata

    meta = read_metadata(BUNDLED)
    assert meta["held_out_accuracy"] == 1.0 and meta["round_trip"] == "default"
    assert meta["held_out_roundtrip_accuracy"] >= 0.85
    rows = {r.task: r for r in demo.rows}
    assert 0.0 <= rows["cg"].class_accuracy <= 1.0
    assert rows["cg"].roundtrip_class_accuracy >= 0.75, rows["cg"]
    assert [t for t, r in rows.items() if r.class_accuracy is not None] == ["cg"]


def test_cli_demo_runs_with_no_arguments_but_an_output(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--clips", "1"]) == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [t["task"] for t in saved["tasks"]] == TEN_TASKS
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == sorted(f"{t}.mp4" for t in TEN_TASKS)
    assert "contact_sheet.png" in capsys.readouterr().out
