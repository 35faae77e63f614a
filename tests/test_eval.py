"""`magvit eval`: a row per task with PSNR/SSIM of the bundled model on its held-out clips, and
FVD with an I3D file (random weights here, marked unverified), real statistics cached."""

from __future__ import annotations

import json
import math

import pytest
import torch

from magvit.cli.main import main
from magvit.core.features import InceptionI3d


def test_psnr_and_ssim_for_every_task_asked(tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", "default", "--metrics", "psnr,ssim", "--samples", "2", "--tasks", "fp,cg,ipc",
                 "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == ["task", "PSNR", "SSIM", "samples", "seconds"]
    report = json.loads((out / "eval.json").read_text())
    assert list(report["rows"]) == ["fp", "cg", "ipc"] and report["source"] == "default"
    fp, cg = report["rows"]["fp"], report["rows"]["cg"]
    assert fp["samples"] == 2 and 5 < fp["psnr"] < 60 and 0 < fp["ssim"] <= 1
    assert cg["psnr"] is None and cg["ssim"] is None  # nothing given, nothing to compare pixel by pixel
    assert fp["fvd"] is None and report["extractor"] is None


def test_fvd_with_an_unverified_random_i3d_and_cached_real_statistics(tmp_path, monkeypatch, capsys):
    torch.manual_seed(0)
    weights = tmp_path / "i3d_random.pt"
    torch.save(InceptionI3d().state_dict(), weights)
    monkeypatch.setenv("MAGVIT_CACHE", str(tmp_path / "cache"))
    args = ["eval", "default", "--metrics", "fvd", "--tasks", "fp", "--samples", "2", "--i3d-weights",
            str(weights), "--output", str(tmp_path / "out")]
    assert main(args) == 2
    assert "is not a known i3d weights file" in capsys.readouterr().err
    assert main([*args, "--allow-unverified"]) == 0
    assert "FVD with UNVERIFIED I3D weights" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert report["extractor"]["verified"] is False and len(report["extractor"]["sha256"]) == 64
    fvd = report["rows"]["fp"]["fvd"]
    assert fvd is not None and math.isfinite(fvd) and fvd >= 0
    cached = list((tmp_path / "cache" / "real-stats").glob("*.npz"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    assert main([*args, "--allow-unverified"]) == 0  # the real statistics are read, not recomputed
    assert cached[0].stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "out" / "eval.json").read_text())["rows"]["fp"]["fvd"] == pytest.approx(fvd)


@pytest.mark.parametrize("args, words", [
    (["--metrics", "fvd"], "FVD needs the I3D network's weights: --i3d-weights PATH"),
    (["--metrics", "is"], "unknown metric(s) is; available: psnr, ssim, fvd"),
    (["--tasks", "zz"], "not trained for task(s) zz"),
    (["--samples", "0"], "argument --samples: must be at least 1"),
    (["--data", "no/such/folder"], "--data no/such/folder is not a folder of videos"),
])
def test_eval_errors(args, words, capsys):
    assert main(["eval", "default", *args]) == 2
    assert words in capsys.readouterr().err


def test_a_tokenizer_run_is_scored_on_its_reconstructions(tmp_path, capsys):
    run = tmp_path / "tok"
    assert main(["train", "tokenizer", "tiny-tokenizer", "--output-dir", str(run), "--set", "train.steps=2",
                 "--set", "train.warmup_steps=0", "--set", "data.train_clips=4", "--set", "data.eval_clips=4"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--samples", "3", "--output", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("reconstruction ")
    row = json.loads((tmp_path / "out" / "eval.json").read_text())["rows"]["reconstruction"]
    assert row["samples"] == 3 and 3 < row["psnr"] < 40 and 0 < row["ssim"] < 1
    assert main(["eval", str(run), "--tasks", "fp"]) == 2
    assert "is a tokenizer (stage 1) run: it has no tasks" in capsys.readouterr().err
