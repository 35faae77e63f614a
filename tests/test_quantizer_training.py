"""The lfq (2^14) and fsq tokenizers train from their shipped TOML alone, a ten-task transformer
trains on their tokens, and the pipeline generates every task; a causal one and a local one too. The tokenizer's
training eval and `magvit reconstruct` report condition agreement."""

from __future__ import annotations

import json

import pytest
import torch

from magvit.cli.main import main
from magvit.core.video_io import write_video
from magvit.pipeline import Pipeline

TINY_STEPS = ["--set", "train.steps=2", "--set", "train.warmup_steps=0", "--set", "train.eval_every=2",
              "--set", "train.batch_size=2",
              "--set", "train.eval_batches=1", "--set", "train.checkpoint_every=2"]
SMALL_DATA = ["--set", "data.train_clips=8", "--set", "data.eval_clips=4"]


@pytest.mark.parametrize("quantizer, codes, causal", [
    ("lfq", 2**14, False), ("fsq", 64000, False), ("lfq", 2**14, True), ("fsq-local", 64000, False),
], ids=["lfq", "fsq", "lfq-causal", "fsq-local"])
def test_trains_from_toml_and_generates_all_ten_tasks(quantizer, codes, causal, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    extra = ["--set", "tokenizer.causal=true", "--set", "data.frames=7"] if causal else []
    assert main(["train", "tokenizer", f"tiny-tokenizer-{quantizer}", *TINY_STEPS, *extra]) == 0
    evals = [json.loads(line) for line in (tmp_path / f"runs/tiny-tokenizer-{quantizer}/metrics.jsonl").read_text().splitlines()]
    report = [r for r in evals if r["split"] == "eval"][-1]
    assert {f"agree_{t}" for t in ("fp", "fi", "opc", "opv", "oph", "opd", "ipc", "ipd", "cfp")} <= set(report)
    assert all(0 <= report[f"agree_{t}"] <= 1 for t in ("fp", "fi", "ipc"))
    if causal:  # the given first frame is the first latent frame, tokenized alone
        assert report["agree_fp"] == 1.0
    if quantizer.endswith("local"):  # IPC's outer ring of tokens (28 of 48) never sees the centre
        assert report["agree_ipc"] >= 28 / 48

    assert main(["train", "transformer", f"tiny-{quantizer}", *TINY_STEPS, *SMALL_DATA, *extra]) == 0
    pipe = Pipeline.from_checkpoint(f"runs/tiny-{quantizer}", steps=2)  # 2 COMMIT steps: the path, not quality
    assert pipe.tokenizer.codebook_size == codes and pipe.vocab.codebook_size == codes
    assert getattr(pipe.tokenizer, "causal", False) == causal
    assert pipe.tokenizer.encoder_halo == (3 if quantizer.endswith("local") else None)
    data = pipe.bundle.experiment.data.build().make("eval", seed=0)
    video = data[0]["video"]
    assert video.shape[1] == (7 if causal else 8)
    for task in pipe.task_names:
        label = 0 if task in ("cg", "cfp") else None
        out = pipe.generate(task, video, seed=0, label=label)
        assert out.video.shape == (1, *video.shape) and torch.isfinite(out.video).all()
        assert out.pixel_mask.shape == video.shape[1:]


def test_reconstruct_prints_condition_agreement_per_task(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_video(tmp_path / "in.mp4", torch.rand(3, 16, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert main(["reconstruct", "in.mp4", "out.mp4", "--checkpoint", "default"]) == 0
    out = capsys.readouterr().out
    assert "condition agreement" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line[:3] in ("fp ", "fi ", "ipc")}
    assert set(rows) == {"fp", "fi", "ipc"}
    for row in rows.values():
        kept, cond = float(row[1].rstrip("%")), float(row[2])
        assert 0 <= kept <= 100 and 5 < cond < 60
