"""scripts/train_default_on_gpu.py (run on lent GPUs only): what it reads off a run's metrics,
and that every variant it launches is a valid override of its shipped experiment."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from magvit.registry.experiment import load_experiment

SCRIPT = Path(__file__).parents[1] / "scripts" / "train_default_on_gpu.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_default_on_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_metrics(run: Path, rows: list[dict]) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_the_step_rate_leaves_out_the_start_up_and_the_last_eval_is_the_score(script, tmp_path):
    write_metrics(tmp_path, [
        {"step": 50, "split": "train", "elapsed_s": 20.0},   # 20 s: imports, CUDA, first batches
        {"step": 100, "split": "train", "elapsed_s": 25.0},
        {"step": 100, "split": "eval", "psnr": 21.5},
        {"step": 300, "split": "train", "elapsed_s": 45.0},
        {"step": 300, "split": "eval", "psnr": 24.25},
    ])
    assert script.seconds_per_step(tmp_path) == pytest.approx(0.1)  # (45 - 20) / (300 - 50)
    assert script.last_eval(tmp_path) == {"step": 300, "split": "eval", "psnr": 24.25}


def test_a_run_with_fewer_than_two_log_lines_has_no_rate(script, tmp_path):
    write_metrics(tmp_path / "short", [{"step": 50, "split": "train", "elapsed_s": 20.0}])
    assert script.seconds_per_step(tmp_path / "short") is None
    assert script.seconds_per_step(tmp_path / "missing") is None
    assert script.last_eval(tmp_path / "missing") == {}


@pytest.mark.parametrize("stage", ["tokenizer", "transformer"])
def test_every_variant_is_a_valid_override_of_its_experiment(script, stage):
    experiment = script.TOKENIZER_EXPERIMENT if stage == "tokenizer" else script.TRANSFORMER_EXPERIMENT
    variants = script.TOKENIZERS if stage == "tokenizer" else script.TRANSFORMERS
    for name, sets in variants.items():
        exp = load_experiment(experiment, [*sets, "train.steps=500", "train.warmup_steps=50"])
        assert exp.run.name == experiment and exp.train.steps == 500, name
    widths = {n: load_experiment(script.TOKENIZER_EXPERIMENT, s).tokenizer.config.base_channels
              for n, s in script.TOKENIZERS.items()}
    assert widths == {"t32": 32, "t24d2": 24, "t16": 16}
    # the shape overrides that stage 2 receives are exactly the tokenizer's architecture ones
    assert [s for s in script.TOKENIZERS["t24d2"] if s.startswith(script.SHAPE_KEYS)] == [
        "tokenizer.base_channels=24", "tokenizer.decoder_res_blocks=2"]


def test_every_fine_tune_starts_from_the_bundled_default(script, tmp_path):
    """`--init-from default`: each variant is a valid `tiny-flat-gpu` override that loads the
    default's tokenizer and transformer (same tokens, same layers) and only changes the rate."""
    import torch

    from magvit.core.training import DistContext
    from magvit.workflows.transformer_stage import TransformerStage

    source = ['tokenizer.checkpoint="default"', 'train.init_from="default"']
    for name, sets in script.FINETUNES.items():
        exp = load_experiment(script.TRANSFORMER_EXPERIMENT, [*source, *sets, "train.steps=500",
                                                              "train.warmup_steps=50", 'run.device="cpu"'])
        assert exp.train.init_from == "default" and exp.train.lr < 1e-3, name
        # FP is generated as CFP with the class reader's class, so CFP trains three times as often
        weights = {task: spec.weight for task, spec in exp.tasks.items()}
        assert (weights["fp"], weights["cfp"]) == (1.0, 3.0), name
        assert weights == {**{t: w.weight for t, w in load_experiment(script.TRANSFORMER_EXPERIMENT).tasks.items()},
                           "fp": 1.0, "cfp": 3.0}, name
    assert {n: load_experiment(script.TRANSFORMER_EXPERIMENT, s).train.batch_size
            for n, s in script.FINETUNES.items()} == {"f128": 128, "f256": 256}
    stage = TransformerStage(exp, tmp_path / "ft", DistContext(torch.device("cpu")))
    assert stage.record["init_from"]["source"] == "default" and stage.record["init_from"]["step"] > 0


def test_a_given_tokenizer_is_stage_twos_checkpoint_with_its_shape(script):
    """`--tokenizer RUN`: the transformer variants load that tokenizer, at 16 base channels, the
    shape of stage 1's `t16` and of `tiny-flat-cond-tokenizer`."""
    sets = script.tokenizer_source("runs/cond")
    assert sets == ['tokenizer.checkpoint="runs/cond"', "tokenizer.base_channels=16"]
    for name, variant in script.TRANSFORMERS.items():
        exp = load_experiment(script.TRANSFORMER_EXPERIMENT, [*sets, *variant, 'run.device="cpu"'])
        assert exp.tokenizer.config.checkpoint == "runs/cond" and exp.tokenizer.config.base_channels == 16, name
    cond = load_experiment("tiny-flat-cond-tokenizer")
    assert cond.tokenizer.config.base_channels == 16 and cond.losses["condition_clips"] == 0.5


def test_each_recipe_is_a_stage_pair_drawing_the_same_clips(script):
    """`--recipe`: stage 2 reads the run its stage-1 experiment writes, on clips drawn alike;
    `big` differs from `flat` in the shapes' radii alone, `mass` in the shape kinds alone."""
    import attrs

    drawn = {}
    for name, (stage1, stage2) in script.RECIPES.items():
        tok, trans = load_experiment(stage1), load_experiment(stage2)
        assert trans.tokenizer.config.checkpoint == f"runs/{stage1}", name
        assert tok.transformer is None and trans.transformer is not None, name
        sizes = ("train_clips", "eval_clips")
        drawn[name] = {k: v for k, v in attrs.asdict(trans.data.config).items() if k not in sizes}
        assert drawn[name] == {k: v for k, v in attrs.asdict(tok.data.config).items() if k not in sizes}, name
    assert script.RECIPES["flat"] == (script.TOKENIZER_EXPERIMENT, script.TRANSFORMER_EXPERIMENT)
    def changed(recipe):  # key -> (flat's value, the recipe's) where the two draw clips differently
        return {k: (v, drawn[recipe][k]) for k, v in drawn["flat"].items() if v != drawn[recipe][k]}

    assert changed("big") == {"min_radius": (0.10, 0.18), "max_radius": (0.16, 0.26)}
    assert changed("mass") == {"kinds": ("contour", "mass")}
    assert sorted(script.RECIPES) == ["big", "flat", "mass"]


def test_a_tokenizer_of_other_clips_than_the_recipes_is_refused_before_anything_runs(script, tmp_path,
                                                                                      monkeypatch, capsys):
    from test_tokenizer_data import tokenizer_run

    run = tokenizer_run(tmp_path / "flat-tok", {"kind": "synthetic", "frames": 8, "resolution": 32, "num_classes": 4,
                                                "background": "flat", "per_axis_speed": True, "train_clips": 65536})
    assert script.tokenizer_data_differences("tiny-flat-gpu", str(run)) == []
    assert script.tokenizer_data_differences("tiny-big-gpu", str(run)) == [
        "data.max_radius: 0.26 here, 0.16 in the tokenizer's run",
        "data.min_radius: 0.18 here, 0.1 in the tokenizer's run"]
    out = tmp_path / "out"
    monkeypatch.setattr("sys.argv", ["train_default_on_gpu.py", "--out", str(out), "--recipe", "big",
                                     "--tokenizer", str(run)])
    with pytest.raises(SystemExit) as exit_info:
        script.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"--tokenizer {run} was trained on other clips than tiny-big-gpu draws" in err
    assert "data.min_radius: 0.18 here, 0.1 in the tokenizer's run" in err and "give the --recipe" in err
    assert not out.exists()  # refused before the output folder is made


class _Finished:
    """A `magvit train` that exits at once without a metric: its calibration gives no rate."""
    returncode = 0

    def poll(self):
        return 0


def test_set_reaches_every_run_last_and_a_bad_one_stops_the_script_first(script, tmp_path, monkeypatch, capsys):
    """`--set KEY=VALUE` is appended to every run's overrides (so it wins over the script's own);
    one the recipe's experiments reject exits 2 before any run starts."""
    launched = []
    monkeypatch.setattr(script.subprocess, "Popen", lambda command, **_: launched.append(command) or _Finished())
    common = ["train_default_on_gpu.py", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"),
              "--calibration-steps", "6"]
    monkeypatch.setattr("sys.argv", [*common, "--set", "train.num_workers=3", "--set", "tasks.cfg.weight=2"])
    with pytest.raises(SystemExit) as exit_info:
        script.main()
    assert exit_info.value.code == 2 and launched == []
    err = capsys.readouterr().err
    assert "--set: tiny-flat-gpu-tokenizer: " in err and "tasks.cfg" in err

    monkeypatch.setattr("sys.argv", [*common, "--set", "train.num_workers=3", "--set", "train.lr=5e-4"])
    assert script.main() == 1  # no calibration rate, so no tokenizer variant runs
    assert len(launched) == len(script.TOKENIZERS)
    for command in launched:
        sets = [command[i + 1] for i, item in enumerate(command) if item == "--set"]
        assert sets[-2:] == ["train.num_workers=3", "train.lr=5e-4"], command
        assert any(item.startswith("train.lr=") for item in sets[:-2])  # the variant's own rate, overridden
    assert "no tokenizer variant runs; stopping" in capsys.readouterr().out
