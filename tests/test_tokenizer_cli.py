"""`magvit model summary`, `magvit reconstruct`, and the PSNR / SSIM they report."""

from __future__ import annotations

import copy
import json
import re

import pytest
import torch

import magvit
from magvit.cli.main import main
from magvit.core.metrics import psnr, ssim
from magvit.core.video_io import read_video, write_video
from magvit.registry.experiment import validate_experiment
from magvit.workflows.reconstruct import round_trip
from magvit.workflows.train_tokenizer import load_tokenizer, train

MICRO = {
    "run": {"name": "micro", "seed": 0, "device": "cpu"},
    "data": {"kind": "synthetic", "frames": 4, "resolution": 16, "train_clips": 8, "eval_clips": 4},
    "tokenizer": {
        "kind": "vq3d", "preset": "tiny", "base_channels": 8, "channel_multipliers": [1, 2],
        "temporal_downsample": [True], "embedding_dim": 8, "codebook_size": 32,
    },
    "train": {"steps": 2, "batch_size": 4, "checkpoint_every": 2, "ema_decay": 0.9},
    "losses": {"gan": 0.0, "perceptual": 0.0},
}


def test_psnr_and_ssim_known_values():
    video = torch.rand(2, 3, 2, 16, 16) * 0.8
    assert psnr(video + 0.1, video).tolist() == pytest.approx([20.0, 20.0], abs=1e-4)
    assert ssim(video, video).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    noisy = (video + 0.2 * torch.randn_like(video)).clamp(0, 1)
    assert 0.0 < ssim(noisy, video).max().item() < 0.9
    # A constant offset hurts PSNR much more than SSIM (luminance term only).
    assert ssim(video + 0.05, video).min().item() > 0.95


@pytest.mark.parametrize(
    "preset, expected",
    [("B", {"tokenizer.encoder": 17149888, "tokenizer.decoder": 23167811,
            "tokenizer.quantizer": 262144, "tokenizer": 40579843, "discriminator": 15339457})],
)
def test_model_summary_json_counts_every_component(capsys, preset, expected):
    assert main(["model", "summary", "ucf101-b-tokenizer", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == expected


def test_model_summary_leaves_out_the_discriminator_without_gan(capsys):
    assert main(["model", "summary", "tiny-tokenizer"]) == 0
    out = capsys.readouterr().out
    assert "discriminator" not in out
    assert re.search(r"^tokenizer\s+1,172,979\s+\(1\.17M\)$", out, re.M)


def test_reconstruct_round_trips_a_video_file(tmp_path, capsys):
    train(validate_experiment(copy.deepcopy(MICRO)), tmp_path / "run")
    clip = magvit.registries().datasets.create("synthetic", frames=9, resolution=16).make("eval", 0)[0]
    write_video(tmp_path / "in.mp4", clip["video"], quality=100)
    code = main(["reconstruct", str(tmp_path / "in.mp4"), str(tmp_path / "out.mp4"),
                 "--checkpoint", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0
    assert "2 clip(s) of 2x8x8 tokens" in out  # 9 frames -> two 4-frame clips, one frame dropped
    # The printed numbers are those of the in-memory round trip of the decoded input file.
    expected = round_trip(read_video(tmp_path / "in.mp4"), load_tokenizer(checkpoint=tmp_path / "run"), 4)
    assert f"PSNR {expected.psnr:.2f} dB  SSIM {expected.ssim:.4f}" in out
    written = read_video(tmp_path / "out.mp4")
    assert written.shape == (3, 8, 16, 16)
    assert psnr(written[None], expected.reconstruction[None]).item() > 35  # only codec loss


def test_reconstruct_errors_name_the_problem(tmp_path, capsys):
    assert main(["reconstruct", "missing.mp4", "out.mp4", "--checkpoint", str(tmp_path / "none")]) == 2
    assert "argument source: video missing.mp4 does not exist" in capsys.readouterr().err
    write_video(tmp_path / "in.mp4", torch.rand(3, 4, 16, 16))
    assert main(["reconstruct", str(tmp_path / "in.mp4"), str(tmp_path / "out.mp4"),
                 "--checkpoint", str(tmp_path / "none")]) == 2
    assert f"checkpoint {tmp_path / 'none'} does not exist" in capsys.readouterr().err
