"""`magvit eval`: a row per task with PSNR/SSIM of the bundled model on its held-out clips, and
FVD with an I3D file (random weights here, marked unverified), real statistics cached."""

from __future__ import annotations

import json
import math

import pytest
import torch

from magvit.cli.main import main
from magvit.core.features import InceptionI3d
from magvit.errors import MagvitError
from magvit.workflows.eval_protocols import protocol


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
    assert report["refine_steps"] == 10  # the pipeline's condition fit, recorded
    assert report["class_search"] == 4  # and its class search (FP through CFP)
    assert report["read_classes"] == 1  # of the class its class reader reads from the given frame
    assert report["class_guidance"] == 3.0  # and its guidance of CG
    assert report["sample_search"] == 1  # one sample per clip for the other tasks
    assert main(["eval", "default", "--metrics", "psnr", "--samples", "2", "--tasks", "ipc,fp", "--refine-steps", "0",
                 "--class-search", "0", "--sample-search", "2", "--output", str(tmp_path / "plain")]) == 0
    plain = json.loads((tmp_path / "plain" / "eval.json").read_text())
    assert plain["refine_steps"] == 0 and plain["rows"]["ipc"]["psnr"] != report["rows"]["ipc"]["psnr"]
    assert plain["class_search"] == 0 and plain["rows"]["fp"]["psnr"] != report["rows"]["fp"]["psnr"]
    assert plain["read_classes"] == 0  # no search, nothing read
    assert plain["sample_search"] == 2  # ipc and fp (its class search off): the best of 2 samples


def test_fvd_with_an_unverified_random_i3d_and_cached_real_statistics(tmp_path, monkeypatch, capsys):
    torch.manual_seed(0)
    weights = tmp_path / "i3d_random.pt"
    torch.save(InceptionI3d().state_dict(), weights)
    monkeypatch.setenv("MAGVIT_CACHE", str(tmp_path / "cache"))
    args = ["eval", "default", "--metrics", "fvd", "--tasks", "fp", "--samples", "2", "--class-search", "0",
            "--i3d-weights", str(weights), "--output", str(tmp_path / "out")]
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
    (["--metrics", "fid"], "unknown metric(s) fid; available: psnr, ssim, lpips, fvd, is, class, ce"),
    (["--metrics", "lpips"], "LPIPS needs its weights: --lpips-vgg PATH --lpips-heads PATH"),
    (["--tasks", "zz"], "not trained for task(s) zz"),
    (["--samples", "0"], "argument --samples: must be at least 1"),
    (["--data", "no/such/folder"], "--data no/such/folder is not a folder of videos"),
    (["--metrics", "class", "--shape-classifier", "no/such.safetensors"],
     "--shape-classifier no/such.safetensors is not a file"),
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


def _eval_in_process_group(argv):
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    assert main(argv) == 0


def _rows(path):
    return json.loads((path / "eval.json").read_text())["rows"]


@pytest.mark.slow
def test_two_ranks_under_torchrun_give_the_scores_of_one_process(tmp_path, monkeypatch):
    from magvit.core.training.testing import run_ddp

    torch.manual_seed(0)
    weights = tmp_path / "i3d.pt"
    torch.save(InceptionI3d().state_dict(), weights)
    monkeypatch.setenv("MAGVIT_CACHE", str(tmp_path / "cache"))
    common = ["eval", "default", "--tasks", "fp,cg", "--samples", "4", "--batch-size", "1", "--metrics",
              "psnr,ssim,fvd", "--i3d-weights", str(weights), "--allow-unverified", "--device", "cpu",
              "--class-search", "0"]
    assert main([*common, "--output", str(tmp_path / "one")]) == 0
    run_ddp(_eval_in_process_group, 2, args=([*common, "--output", str(tmp_path / "two")],), timeout_s=300)
    one, two = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert list(one) == list(two) == ["fp", "cg"]
    assert two["fp"]["psnr"] == pytest.approx(one["fp"]["psnr"], rel=1e-6)
    assert two["fp"]["ssim"] == pytest.approx(one["fp"]["ssim"], rel=1e-6)
    for task in ("fp", "cg"):
        assert two[task]["fvd"] == pytest.approx(one[task]["fvd"], rel=1e-3, abs=1e-9)
    assert not (tmp_path / "two" / ".partial").exists()


def test_an_interrupted_evaluation_resumes_from_its_partial_results(tmp_path, monkeypatch, capsys):
    import magvit.workflows.evaluate as evaluation

    args = ["eval", "default", "--tasks", "fp,opc", "--samples", "2", "--class-search", "0",
            "--output", str(tmp_path / "out")]
    assert main([*args[:-2], "--output", str(tmp_path / "straight")]) == 0
    original = evaluation._Run.run_fold
    calls = []

    def interrupted(self, task, task_name, fold):
        calls.append(task_name)
        if task_name == "opc":
            raise KeyboardInterrupt
        return original(self, task, task_name, fold)

    monkeypatch.setattr(evaluation._Run, "run_fold", interrupted)
    assert main(args) == 130
    monkeypatch.setattr(evaluation._Run, "run_fold", original)
    assert sorted(p.name for p in (tmp_path / "out" / ".partial").iterdir()) == ["fp-fold0.json", "settings.json"]
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert "resuming: 1 task/fold result(s) kept" in capsys.readouterr().out
    assert _rows(tmp_path / "out")["fp"]["psnr"] == _rows(tmp_path / "straight")["fp"]["psnr"]
    assert _rows(tmp_path / "out")["opc"]["psnr"] == pytest.approx(_rows(tmp_path / "straight")["opc"]["psnr"])
    assert main([*args, "--samples", "3", "--resume"]) == 0  # other settings: nothing left to reuse
    assert main(["eval", "default", "--resume"]) == 2
    assert "--resume continues from the partial results in --output" in capsys.readouterr().err


class ColourClassifier(torch.nn.Module):
    """A stand-in for C3D (whose clips are 16 frames; the bundled model makes 8): the class is
    the dominant colour channel of the clip."""

    width, verified, sha256 = 3, False, ""

    def forward(self, video):
        return (video.mean(dim=(2, 3, 4)) * 20).softmax(dim=-1)


def test_inception_score_over_ten_splits_of_the_generated_clips(capsys):
    from magvit.workflows.evaluate import evaluate

    report = evaluate("default", tasks=["cg", "fp"], metrics=("is",), samples=10, classifier=ColourClassifier(),
                      progress=False, class_search=0)
    for row in report.rows:
        assert 1.0 <= row.inception <= 3.0 and row.inception_std >= 0
    assert "IS" in report.table().splitlines()[0]
    assert main(["eval", "default", "--metrics", "is", "--samples", "10"]) == 2
    assert "IS needs the C3D network's weights" in capsys.readouterr().err
    assert main(["eval", "default", "--metrics", "is", "--samples", "4", "--c3d-weights", "x.pt"]) == 2


def lpips_files(tmp_path):
    from safetensors.torch import save_file

    from magvit.core.features.lpips import CHANNELS
    from magvit.core.losses.perceptual import VGG16_LAYERS

    torch.manual_seed(0)
    vgg = {}
    for index, (c_in, c_out) in VGG16_LAYERS.items():
        conv = torch.nn.Conv2d(c_in, c_out, 3, padding=1)
        vgg[f"features.{index}.weight"], vgg[f"features.{index}.bias"] = conv.weight.data, conv.bias.data
    save_file(vgg, tmp_path / "vgg16.safetensors")
    heads = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(CHANNELS)}  # >= 0
    torch.save(heads, tmp_path / "lpips_vgg.pth")
    return tmp_path / "vgg16.safetensors", tmp_path / "lpips_vgg.pth"


def test_lpips_is_zero_for_the_same_clip_and_reported_per_task(tmp_path):
    from magvit.core.features.lpips import load_lpips

    vgg, heads = lpips_files(tmp_path)
    model = load_lpips(str(vgg), str(heads), allow_unverified=True)
    clip = torch.rand(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    assert model(clip, clip).tolist() == [0.0, 0.0]
    other = model(clip, clip.flip(-1))
    assert other.shape == (2,) and (other > 0).all()
    assert torch.allclose(other, model(clip.flip(-1), clip))  # symmetric
    assert model.verified is False and model.sha256.count(",") == 1
    assert main(["eval", "default", "--tasks", "fp,cg", "--samples", "2", "--class-search", "0", "--metrics", "psnr,lpips",
                 "--lpips-vgg", str(vgg), "--lpips-heads", str(heads), "--allow-unverified",
                 "--output", str(tmp_path / "out")]) == 0
    rows = _rows(tmp_path / "out")
    assert rows["fp"]["lpips"] > 0 and rows["cg"]["lpips"] is None


class FirstClassOnly(torch.nn.Module):
    """A shape classifier that puts every clip in class 0."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, video):
        return torch.nn.functional.one_hot(torch.zeros(len(video), dtype=torch.int64), 4).float() * self.scale


def test_class_accuracy_scores_the_class_conditional_tasks_against_their_labels(tmp_path, capsys):
    from magvit.pipeline import Pipeline
    from magvit.workflows.eval_clips import held_out_clips
    from magvit.workflows.evaluate import evaluate
    from magvit.workflows.shape_classifier import cg_accuracy, classifier_for

    samples = 6
    report = evaluate("default", tasks=["cg", "cfp", "ipc"], metrics=("class",), samples=samples, batch_size=4,
                      shape_classifier=FirstClassOnly(), progress=False)
    pipe = Pipeline.from_checkpoint("default")
    _, labels = held_out_clips(pipe, samples, seed=0)
    share_of_class_0 = float((labels == 0).double().mean())
    assert 0 < share_of_class_0 < 1  # the stand-in scores neither every clip nor none
    rows = {row.task: row for row in report.rows}
    assert rows["cg"].class_accuracy == pytest.approx(share_of_class_0)
    assert rows["cfp"].class_accuracy == pytest.approx(share_of_class_0)
    assert rows["ipc"].class_accuracy is None  # not asked for a class
    assert report.table().splitlines()[0].split() == ["task", "CLASS", "samples", "seconds"]
    assert report.table().splitlines()[3].split()[:2] == ["ipc", "-"]

    # Through the CLI, with the bundled classifier: the demo's CG accuracy of the same samples.
    assert main(["eval", "default", "--tasks", "cg", "--metrics", "class", "--samples", "4", "--batch-size", "4",
                 "--output", str(tmp_path / "out")]) == 0
    scored = _rows(tmp_path / "out")["cg"]["class_accuracy"]
    videos, labels = held_out_clips(pipe, 4, seed=0)
    cg = pipe.generate("cg", None, label=labels.tolist(), seed=0, batch_size=4).video.cpu()
    classifier = classifier_for(pipe.bundle.experiment.data.build())
    assert scored == pytest.approx(cg_accuracy(classifier, cg, labels.cpu()))


def test_class_accuracy_needs_a_classifier_that_fits_and_labelled_generation(tmp_path, capsys):
    from magvit.workflows.evaluate import evaluate

    with pytest.raises(MagvitError, match="protocol ucf101 has no shape classes to score: drop class"):
        evaluate("default", metrics=("class",), data=tmp_path, protocol=protocol("ucf101"), progress=False)
    with pytest.raises(MagvitError, match=r"class accuracy needs a shape classifier for these clips.*"
                                          r"--shape-classifier FILE"):
        evaluate("default", tasks=["cg"], metrics=("class",), data=tmp_path, samples=2, progress=False)
    # Asked of tasks none of which has a class, before any classifier is looked for (there is none here)
    with pytest.raises(MagvitError) as err:
        evaluate("default", tasks=["fp", "ipc"], metrics=("class",), data=tmp_path, samples=2, progress=False)
    assert str(err.value) == ("class scores the class-conditional tasks (cg, cfp), and none of fp, ipc is one: "
                              "add one to --tasks, or drop class from --metrics")


def test_a_folds_progress_keeps_its_class_hits_for_resume(tmp_path):
    from magvit.workflows.evaluate import _FoldProgress

    progress = _FoldProgress(batches={0, 2}, classes=[[0, 0, 1], [0, 1, 0], [2, 0, 1]])
    progress.save(tmp_path, "cg", 0, rank=1)
    loaded = _FoldProgress.load(tmp_path, "cg", 0, rank=1)
    assert loaded.batches == {0, 2} and loaded.classes == [[0, 0, 1], [0, 1, 0], [2, 0, 1]]
    assert _FoldProgress.load(tmp_path, "cg", 0, rank=0).classes == []  # another rank's: nothing saved
