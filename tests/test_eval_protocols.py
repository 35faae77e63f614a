"""The paper's evaluation protocols as `magvit eval --protocol` settings: their numbers, their
clips (folds run on through the data; a small evaluation set is cycled and extracted once),
scoring at a lower resolution, resuming inside a fold, and experiment names as the model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from magvit.cli.main import main
from magvit.core.frechet import FeatureStats
from magvit.core.video_io import write_video
from magvit.workflows.eval_protocols import PROTOCOLS, Protocol
from magvit.workflows.eval_sources import ProtocolClips, centre_resize
from magvit.workflows.evaluate import _real_stats, evaluate


def test_protocols_carry_the_papers_numbers():
    ucf, bair, k600 = PROTOCOLS["ucf101"], PROTOCOLS["bair"], PROTOCOLS["k600"]
    assert (ucf.samples, ucf.folds, ucf.resolution, ucf.real_split) == (10_000, 4, 128, "train")
    assert (bair.samples, bair.folds, bair.resolution, bair.windows) == (25_600, 4, 64, 1)
    assert bair.decoder == {"schedule": "exp", "temperature": 400.0}
    assert (k600.samples, k600.resolution, k600.eval_resolution, k600.windows, k600.crops) == (50_000, 128, 64, 2, 3)
    assert k600.decoder == {"schedule": "linear", "temperature": 7.5}
    debiased = PROTOCOLS["bair-debiased"]
    assert (debiased.samples, debiased.windows, debiased.decoder) == (256 * 15, 15, {})
    ssv2 = PROTOCOLS["ssv2"]
    assert ssv2.split_for(has_condition=False) == "train" and ssv2.split_for(has_condition=True) == "eval"
    assert all(p.frames == 16 for p in PROTOCOLS.values())


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two classes, three 12-frame videos of 40x48, each a different constant-ish colour."""
    root = tmp_path_factory.mktemp("protocol") / "videos"
    gen = torch.Generator().manual_seed(0)
    for i, name in enumerate(("a/a0.mp4", "a/a1.mp4", "b/b0.mp4")):
        clip = torch.rand(3, 12, 40, 48, generator=gen) * 0.3 + 0.2 * i
        write_video(root / name, clip.clamp(0, 1))
    return root


TINY = Protocol(name="tiny-test", summary="", samples=5, folds=2, frames=8, resolution=32,
                real_split="eval", windows=2)


class MeanColour(torch.nn.Module):
    """A stand-in extractor: per-channel mean and standard deviation of a clip (6 features)."""

    width, verified, sha256 = 6, False, "mean-colour"

    def forward(self, video):
        return torch.cat([video.mean(dim=(2, 3, 4)), video.std(dim=(2, 3, 4))], dim=1)


def test_folds_run_on_through_the_clips_and_cycle_the_evaluation_set(videos):
    source = ProtocolClips(TINY, str(videos), "cpu", seed=0)
    assert [source.index(f, j) for f in (0, 1) for j in (0, 4)] == [0, 4, 5, 9]
    assert len(source._dataset("eval")) == 6  # 3 videos x 2 windows
    # fold 1 covers clips 5..9 = evaluation clips 5, 0, 1, 2, 3
    assert source.real_parts(1) == [([0, 1, 2, 3, 5], 1)]
    a, _ = source.clips([0])
    b, _ = source.clips([6])  # the same evaluation clip, one cycle later
    assert torch.equal(a, b) and a.shape == (1, 3, 8, 32, 32)
    big = ProtocolClips(attrs_evolve(TINY, samples=14), str(videos), "cpu", seed=0)
    parts = big.real_parts(1)  # clips 14..27: two whole cycles and two more
    assert parts == [(list(range(6)), 2), ([2, 3], 1)]
    assert sum(len(i) * t for i, t in parts) == 14
    train = ProtocolClips(attrs_evolve(TINY, real_split="train"), str(videos), "cpu", seed=0)
    first, _ = train.clips([0])
    again, _ = train.clips([3])  # the same video in the next pass: a new random window or crop
    assert train.real_parts(1) == [(list(range(5, 10)), 1)]
    assert first.shape == again.shape and not torch.equal(first, again)


def attrs_evolve(protocol, **changes):
    import attrs

    return attrs.evolve(protocol, **changes)


def test_cycled_real_statistics_equal_those_of_every_clip(videos, tmp_path, monkeypatch):
    monkeypatch.setenv("MAGVIT_CACHE", str(tmp_path / "cache"))
    source = ProtocolClips(attrs_evolve(TINY, samples=14), str(videos), "cpu", seed=0)
    from magvit.core.training.distributed import DistContext

    got = _real_stats(source, 1, True, MeanColour(), 4, DistContext())
    clips, _ = source.clips([source.index(1, j) for j in range(14)])
    direct = FeatureStats().update(MeanColour()(clips))
    assert got.count == 14
    np.testing.assert_allclose(got.mean, direct.mean, rtol=1e-12)
    np.testing.assert_allclose(got.cov, direct.cov, rtol=1e-9, atol=1e-15)
    assert len(list((tmp_path / "cache" / "real-stats").glob("*.npz"))) == 2  # the cycle and the rest


def test_centre_resize_crops_the_centre_square_and_resizes_bilinearly():
    video = torch.zeros(1, 3, 2, 8, 12)
    video[..., :, 2:10] = 1.0  # the centre 8x8 square is white, the sides black
    out = centre_resize(video, 4)
    assert out.shape == (1, 3, 2, 4, 4) and torch.allclose(out, torch.ones_like(out))
    ramp = torch.linspace(0, 1, 8).expand(1, 3, 1, 8, 8)
    half = centre_resize(ramp, 4)
    assert torch.allclose(half[0, 0, 0, 0], torch.nn.functional.interpolate(
        ramp[0, :, 0][None], size=(4, 4), mode="bilinear", antialias=True, align_corners=False)[0, 0, 0])


def test_a_protocol_scores_the_default_model_with_fvd_per_fold(videos, tmp_path, monkeypatch):
    monkeypatch.setenv("MAGVIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("magvit.workflows.pipeline.SAMPLE_SEARCH", 3)  # were the pipeline's default a search
    report = evaluate("default", tasks=["fp", "cg"], metrics=("psnr", "fvd"), protocol=TINY, data=videos,
                      extractor=MeanColour(), batch_size=2, progress=False)
    assert report.folds == 2 and report.protocol["name"] == "tiny-test"
    assert report.refine_steps == 0  # a protocol scores the paper's decoding, without the condition fit
    assert report.class_search == 0 and report.class_guidance == 0.0  # or the class search and CG guidance
    assert report.sample_search == 1  # or the sample search
    for row in report.rows:
        assert row.samples == 5 and row.fvd is not None and row.fvd >= 0 and row.fvd_std >= 0
    assert report.rows[0].psnr is not None and report.rows[1].psnr is None
    # a protocol that scores at a lower resolution changes the features, not the generation
    low = evaluate("default", tasks=["fp"], metrics=("psnr", "fvd"), protocol=attrs_evolve(TINY, eval_resolution=16),
                   data=videos, extractor=MeanColour(), batch_size=2, progress=False)
    assert low.rows[0].psnr == pytest.approx(report.rows[0].psnr)
    assert low.rows[0].fvd != pytest.approx(report.rows[0].fvd)


def test_best_of_generations_keeps_each_clips_best_psnr(videos, tmp_path, monkeypatch):
    from magvit.workflows import evaluate as evaluation

    monkeypatch.setenv("MAGVIT_CACHE", str(tmp_path / "cache"))
    cycled = attrs_evolve(TINY, samples=12, folds=1, windows=1)  # 3 evaluation clips, 4 generations each
    kwargs = dict(tasks=["fp"], metrics=("psnr", "ssim"), data=videos, batch_size=3, progress=False)
    mean = evaluate("default", protocol=cycled, **kwargs).rows[0]
    best = evaluate("default", protocol=attrs_evolve(cycled, best_of_generations=True), **kwargs).rows[0]
    assert best.psnr > mean.psnr and best.ssim >= mean.ssim
    assert evaluation._best_per_clip([2, 0, 2, 1, 0], [1.0, 5.0, 3.0, 2.0, 4.0]) == [5.0, 2.0, 3.0]
    assert PROTOCOLS["bair"].best_of_generations and not PROTOCOLS["bair-debiased"].best_of_generations


def test_resume_continues_inside_an_interrupted_fold(videos, tmp_path, monkeypatch):
    from magvit.workflows.pipeline import Pipeline

    monkeypatch.setenv("MAGVIT_CACHE", str(tmp_path / "cache"))
    kwargs = dict(tasks=["fp"], metrics=("psnr", "ssim", "fvd"), protocol=TINY, data=videos,
                  extractor=MeanColour(), batch_size=1, progress=False)
    straight = evaluate("default", **kwargs)
    original, calls = Pipeline.generate, []

    def crash_on_fourth(self, *args, **kw):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return original(self, *args, **kw)

    monkeypatch.setattr(Pipeline, "generate", crash_on_fourth)
    partial = tmp_path / "partial"
    with pytest.raises(KeyboardInterrupt):
        evaluate("default", partial_dir=partial, save_every=0.0, **kwargs)
    saved = json.loads((partial / "fp-fold0-rank0.progress.json").read_text())
    assert saved["batches"] == [0, 1, 2]
    calls.clear()
    monkeypatch.setattr(Pipeline, "generate", lambda self, *a, **kw: (calls.append(1), original(self, *a, **kw))[1])
    resumed = evaluate("default", partial_dir=partial, save_every=0.0, **kwargs)
    assert len(calls) == 2 + 5  # the rest of fold 0, then fold 1
    assert resumed.rows[0].psnr == pytest.approx(straight.rows[0].psnr, rel=1e-9)
    assert resumed.rows[0].ssim == pytest.approx(straight.rows[0].ssim, rel=1e-9)
    assert resumed.rows[0].fvd == pytest.approx(straight.rows[0].fvd, rel=1e-9)
    assert not list(partial.glob("*-rank0.*"))


def test_cli_protocol_and_experiment_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "default", "--protocol", "bair"]) == 2
    assert "--protocol bair runs on a folder of videos: give --data DIR" in capsys.readouterr().err
    assert main(["eval", "default", "--protocol", "bair", "--data", str(tmp_path)]) == 2
    assert "protocol bair scores 16x64x64 clips; this model makes 8x32x32" in capsys.readouterr().err
    assert main(["eval", "tiny", "--samples", "2"]) == 2
    err = capsys.readouterr().err
    assert "experiment tiny trains runs/tiny, which does not exist yet" in err
    assert "magvit train transformer tiny" in err
    assert main(["eval", "default", "--protocol", "nope", "--data", str(tmp_path)]) == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_an_experiment_name_evaluates_the_run_it_trained(tmp_path, monkeypatch, capsys):
    import shutil

    from magvit.weights import resolve_model_path

    monkeypatch.chdir(tmp_path)
    shutil.copytree(resolve_model_path("default"), tmp_path / "runs" / "tiny")
    assert main(["eval", "tiny", "--tasks", "fp", "--samples", "2", "--class-search", "0", "--output", "out"]) == 0
    report = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert report["source"] == "runs/tiny" and report["rows"]["fp"]["samples"] == 2
