"""Loggers chosen in TOML: TensorBoard event files read back with the scalars of metrics.jsonl,
images every `run.media_every` steps, W&B offline with no network, only what was asked for."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from magvit.cli.main import main

tensorboard = pytest.importorskip("tensorboard")  # extra magvit[tensorboard]; in magvit[test]

SMALL = ["--set", "train.warmup_steps=0", "--set", "data.train_clips=8", "--set", "data.eval_clips=2",
         "--set", "train.log_every=1", "--set", "train.batch_size=4"]


def event_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def jsonl_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        step, split = record.pop("step"), record.pop("split")
        for name, value in record.items():
            out.setdefault(f"{split}/{name}", []).append((step, value))
    return out


@pytest.fixture(scope="module")
def tokenizer_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("loggers") / "tok"
    assert main(["train", "tokenizer", "tiny-tokenizer", "--output-dir", str(run), "--set", "train.steps=4",
                 "--set", 'run.loggers=["jsonl", "tensorboard"]', "--set", "run.media_every=2", *SMALL]) == 0
    return run


def test_tensorboard_reads_back_the_scalars_of_metrics_jsonl(tokenizer_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logged, expected = event_scalars(tokenizer_run), jsonl_scalars(tokenizer_run)
    assert {"train/l2", "train/lr", "train/grad_norm", "train/psnr", "train/perplexity",
            "train/clips_per_s", "train/tokens_per_s"} <= set(logged)
    assert set(logged) == set(expected)
    for tag, points in expected.items():
        assert [s for s, _ in logged[tag]] == [s for s, _ in points] == [1, 2, 3, 4], tag
        assert [v for _, v in logged[tag]] == pytest.approx([v for _, v in points], rel=1e-6), tag
    images = EventAccumulator(str(tokenizer_run / "tensorboard"), size_guidance={"images": 0})
    images.Reload()
    assert [e.step for e in images.Images("reconstruction")] == [2, 4]


def test_a_resumed_run_replaces_the_events_past_its_checkpoint(tokenizer_run):
    assert main(["train", "tokenizer", "tiny-tokenizer", "--output-dir", str(tokenizer_run), "--resume",
                 "--set", "train.steps=6", "--set", 'run.loggers=["jsonl", "tensorboard"]', *SMALL]) == 0
    logged = event_scalars(tokenizer_run)
    assert [s for s, _ in logged["train/l2"]] == [1, 2, 3, 4, 5, 6]
    assert [v for _, v in logged["train/l2"]] == pytest.approx(
        [v for _, v in jsonl_scalars(tokenizer_run)["train/l2"]], rel=1e-6)


def test_transformer_run_logs_task_losses_and_throughput(tokenizer_run, tmp_path):
    run = tmp_path / "tiny"
    assert main(["train", "transformer", "tiny", "--output-dir", str(run), "--set", "train.steps=3",
                 "--set", f'tokenizer.checkpoint="{tokenizer_run}"', "--set", "run.media_every=3",
                 "--set", 'run.loggers=["jsonl","tensorboard"]', *SMALL]) == 0
    logged, expected = event_scalars(run), jsonl_scalars(run)
    assert set(logged) == set(expected)
    assert {"train/loss", "train/loss_fp", "train/grad_norm", "train/tokens_per_s"} <= set(logged)
    assert [s for s, _ in logged["train/loss"]] == [s for s, _ in expected["train/loss"]] == [1, 2, 3]
    assert [v for _, v in logged["train/loss"]] == pytest.approx([v for _, v in expected["train/loss"]], rel=1e-6)
    assert (logged["train/tokens_per_s"][0][1] / logged["train/clips_per_s"][0][1]) == pytest.approx(4 * 8 * 8)


def test_only_the_chosen_loggers_write(tmp_path):
    run = tmp_path / "tok"
    assert main(["train", "tokenizer", "tiny-tokenizer", "--output-dir", str(run), "--set", "train.steps=1",
                 "--set", 'run.loggers=["tensorboard"]', *SMALL]) == 0
    assert (run / "tensorboard").is_dir() and not (run / "metrics.jsonl").exists()


def test_wandb_offline_needs_no_network_and_a_resume_continues_the_same_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "tok"
    ids = []
    for steps, resume in ((2, []), (3, ["--resume"])):
        assert main(["train", "tokenizer", "tiny-tokenizer", "--output-dir", str(run), "--set", f"train.steps={steps}",
                     "--set", 'run.loggers=["jsonl", {kind="wandb", project="test"}]', *SMALL, *resume]) == 0
        ids.append((run / "wandb-id.txt").read_text().strip())
    run_id = ids[0]
    assert ids == [run_id, run_id] and len(run_id) > 4
    # wandb names a run's folder by the second it started and the id (and a "-1" suffix when a
    # second start lands in the same second): every folder carries this run's id, none another's
    offline = sorted((run / "wandb").glob("offline-run-*"))
    name = re.compile(rf"offline-run-\d{{8}}_\d{{6}}-{re.escape(run_id)}(-\d+)?")
    assert 1 <= len(offline) <= 2 and all(name.fullmatch(d.name) for d in offline), [d.name for d in offline]
    assert all(any(d.glob("*.wandb")) for d in offline)
