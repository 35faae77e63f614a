"""`magvit generate` end to end on a tiny random-weight checkpoint."""

from __future__ import annotations

import pytest
import torch
from generation_fixtures import CLIP, random_clip, save_tiny_bundle

import magvit
from magvit.cli.main import main
from magvit.core.video_io import read_video, write_video
from magvit.pipeline import Pipeline


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    save_tiny_bundle(run, {"decoder": {"kind": "commit", "steps": 3}})
    return run


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("in") / "clip.mp4", random_clip(), fps=8)


def generate(checkpoint, *args) -> int:
    return main(["generate", "--checkpoint", str(checkpoint), "--device", "cpu", *args])


def test_frame_prediction_writes_the_result_and_reports_the_decoder(checkpoint, clip_file, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert generate(checkpoint, "--task", "fp", "--input", str(clip_file), "--output", str(out)) == 0
    assert read_video(out).shape == (3, 8, 16, 16)
    printed = capsys.readouterr().out
    assert "decoder Commit: " in printed and "steps=3" in printed and "schedule=cosine" in printed
    assert "mask_id=516" in printed and f"wrote {out}" in printed
    assert "condition fit 10 step(s)" in printed


def test_refine_steps_set_the_condition_fit(checkpoint, clip_file, tmp_path, capsys):
    outs = [tmp_path / f"{n}.mp4" for n in ("plain", "fitted")]
    for out, steps in zip(outs, ("0", "6")):
        assert generate(checkpoint, "--task", "opv", "--input", str(clip_file), "--output", str(out),
                        "--refine-steps", steps) == 0
        assert f"condition fit {steps} step(s)" in capsys.readouterr().out
    plain, fitted = (read_video(out) for out in outs)
    assert plain.shape == fitted.shape == (3, 8, 16, 16)


def test_the_batch_size_it_ran_is_printed_and_repeats_the_draws(checkpoint, clip_file, tmp_path, capsys):
    args = ["--task", "opv", "--input", str(clip_file), "--samples", "3", "--refine-steps", "0"]
    assert generate(checkpoint, *args, "--output", str(tmp_path / "auto.mp4")) == 0
    assert ("; batch size 3 (the seed's draws depend on it: --batch-size 3 repeats them)"
            in capsys.readouterr().out)                        # "auto" on a CPU: the 3 samples at once
    assert generate(checkpoint, *args, "--output", str(tmp_path / "three.mp4"), "--batch-size", "3") == 0
    assert generate(checkpoint, *args, "--output", str(tmp_path / "one.mp4"), "--batch-size", "1") == 0
    assert "; batch size 1 (" in capsys.readouterr().out
    auto, three, one = ([read_video(tmp_path / f"{name}-{i}.mp4") for i in (1, 2, 3)]
                        for name in ("auto", "three", "one"))
    assert all(torch.equal(a, b) for a, b in zip(auto, three))
    assert not all(torch.equal(a, b) for a, b in zip(auto, one))


def test_fp_runs_by_the_class_search_unless_it_is_turned_off(checkpoint, clip_file, tmp_path, capsys):
    out = tmp_path / "fp.mp4"
    assert generate(checkpoint, "--task", "fp", "--input", str(clip_file), "--output", str(out)) == 0
    assert "; class search: the best of 2 cfp sample(s) a class" in capsys.readouterr().out
    assert generate(checkpoint, "--task", "fp", "--input", str(clip_file), "--output", str(out),
                    "--class-search", "0") == 0
    assert "class search" not in capsys.readouterr().out
    assert read_video(out).shape == (3, 8, 16, 16)


def test_cg_is_guided_toward_its_class_unless_it_is_turned_off(checkpoint, tmp_path, capsys):
    out = tmp_path / "cg.mp4"
    printed = []
    for extra in ([], ["--class-guidance", "0"], ["--class-guidance", "5"], ["--guidance-scale", "1.5"]):
        assert generate(checkpoint, "--task", "cg", "--class", "1", "--output", str(out), *extra) == 0
        printed.append(capsys.readouterr().out.splitlines()[0])
    assert printed[0].endswith("; class guidance 3") and printed[2].endswith("; class guidance 5")
    assert "class guidance" not in printed[1] and "class guidance" not in printed[3]
    assert "guidance_scale=1.5" in printed[3]                           # the decoder's own guidance instead
    assert read_video(out).shape == (3, 8, 16, 16)


def test_class_minus_one_generates_cg_unconditionally(checkpoint, tmp_path, capsys):
    # -1 is the unconditional class the API takes (and its label errors name): the CLI passes it on
    outs = {label: tmp_path / f"cg{label}.mp4" for label in ("-1", "0")}
    printed = {}
    for label, out in outs.items():
        assert generate(checkpoint, "--task", "cg", "--class", label, "--output", str(out)) == 0
        printed[label] = capsys.readouterr().out.splitlines()[0]
    assert printed["0"].endswith("; class guidance 3")
    assert "class guidance" not in printed["-1"]  # no class to guide toward
    api = Pipeline.from_checkpoint(checkpoint, device="cpu").generate("cg", None, label=-1, seed=0)
    expected = read_video(write_video(tmp_path / "api.mp4", api.video[0], pixel_format="yuv420p"))  # as the CLI writes
    unconditional, class_zero = read_video(outs["-1"]), read_video(outs["0"])
    assert unconditional.shape == (3, 8, 16, 16)
    assert torch.equal(unconditional, expected)
    assert not torch.equal(unconditional, class_zero)  # not clamped to a class


def test_overrides_side_by_side_and_samples(checkpoint, clip_file, tmp_path, capsys):
    out = tmp_path / "pair.mp4"
    code = generate(checkpoint, "--task", "opv", "--input", str(clip_file), "--output", str(out),
                    "--decoder", "maskgit", "--steps", "2", "--schedule", "exp",
                    "--temperature", "1.5", "--samples", "2", "--side-by-side")
    assert code == 0
    printed = capsys.readouterr().out
    assert "decoder MaskGIT: " in printed
    assert "steps=2" in printed and "schedule=exp" in printed and "temperature=1.5" in printed
    for name in ("pair-1.mp4", "pair-2.mp4"):
        assert read_video(tmp_path / name).shape == (3, 8, 16, 32)


def test_paste_condition_writes_the_given_pixels_and_the_models_others(checkpoint, clip_file, tmp_path, capsys):
    given = magvit.registries().tasks.create("fp").pixel_mask(CLIP)  # frame 0
    written = {}
    for paste in (False, True):
        out = tmp_path / f"fp-{paste}.mp4"
        args = ["--task", "fp", "--input", str(clip_file), "--output", str(out), "--pixel-format", "yuv444p"]
        assert generate(checkpoint, *args, *(["--paste-condition"] if paste else [])) == 0
        pasted_note = "pasted the condition pixels into the output (--paste-condition)"
        assert (pasted_note in capsys.readouterr().out) == paste
        written[paste] = read_video(out)
    clip = read_video(clip_file)
    error = {paste: (video - clip).abs()[:, given].mean() for paste, video in written.items()}
    assert error[True] < 0.02 < 0.1 < error[False]  # H.264 at crf 8 moves noise by about 0.01
    assert (written[True] - written[False]).abs()[:, ~given].mean() < 0.02  # the model's pixels


def test_paste_condition_refuses_tasks_without_a_condition(checkpoint, tmp_path, capsys):
    out = tmp_path / "cg.mp4"
    assert generate(checkpoint, "--task", "cg", "--class", "1", "--paste-condition", "--output", str(out)) == 2
    assert ("task 'cg' has no condition video, so there are no pixels to paste; drop --paste-condition"
            in capsys.readouterr().err)
    assert not out.exists()


def test_class_generation_needs_no_input(checkpoint, tmp_path):
    out = tmp_path / "cg.gif"
    assert generate(checkpoint, "--task", "cg", "--class", "1", "--output", str(out)) == 0
    assert read_video(out).shape == (3, 8, 16, 16)


def test_ultrawide_widens_a_strip(checkpoint, tmp_path):
    strip = write_video(tmp_path / "strip.mp4", random_clip()[..., 4:12], fps=8)
    out = tmp_path / "wide.mp4"
    assert generate(checkpoint, "--task", "opv", "--input", str(strip), "--ultrawide", "1",
                    "--steps", "1", "--output", str(out)) == 0
    assert read_video(out).shape == (3, 8, 16, 8 + 2 * 4)


@pytest.mark.parametrize("args,message", [
    (["--task", "fp", "--steps", "0"], "argument --steps: must be at least 1, got 0"),
    (["--task", "fp", "--schedule", "cosine", "--temperature", "-1"], "argument --temperature: must be >= 0"),
    (["--task", "fp", "--schedule", "cosin"], "unknown schedule 'cosin'"),
    (["--task", "fp", "--no-kv-cache"], "decoders.commit.kv_cache: unknown key"),
    (["--task", "fp", "--refine-steps", "-1"], "argument --refine-steps: must be at least 0, got -1"),
    (["--task", "fp", "--class-search", "-1"], "argument --class-search: must be at least 0, got -1"),
    (["--task", "fp"], "task 'fp' needs a condition video; pass one (--input)"),
    (["--task", "cfp", "--input", "missing.mp4"], "video missing.mp4 does not exist"),
    (["--task", "cg"], "task 'cg' needs a class label; pass one (--class N)"),
    (["--task", "ipc"], "not trained for task 'ipc'"),
    (["--task", "opv", "--ultrawide", "1", "--paste-condition"],
     "--paste-condition does not apply to --ultrawide, which keeps the input strip's pixels already"),
])
def test_bad_input_exits_2_with_the_fix(checkpoint, tmp_path, capsys, args, message):
    assert generate(checkpoint, *args, "--output", str(tmp_path / "o.mp4")) == 2
    assert message in capsys.readouterr().err


def test_a_missing_checkpoint_exits_2(tmp_path, capsys):
    assert generate(tmp_path / "nope", "--task", "fp", "--output", str(tmp_path / "o.mp4")) == 2
    assert "does not exist" in capsys.readouterr().err


def test_output_plays_everywhere_and_keeps_the_users_umask(checkpoint, clip_file, tmp_path):
    import av

    from magvit.core.files import current_umask

    out = tmp_path / "new" / "fp.mp4"
    assert generate(checkpoint, "--task", "fp", "--input", str(clip_file), "--output", str(out)) == 0
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"  # not 4:4:4
    assert out.stat().st_mode & 0o777 == 0o666 & ~current_umask()
    assert [p.name for p in out.parent.iterdir()] == ["fp.mp4"]  # no temporary file left
    wide = tmp_path / "full.mp4"
    assert generate(checkpoint, "--task", "fp", "--input", str(clip_file), "--output", str(wide),
                    "--pixel-format", "yuv444p") == 0
    with av.open(str(wide)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv444p"


def test_a_failed_command_leaves_no_output_and_no_folder(checkpoint, tmp_path, capsys):
    out = tmp_path / "a" / "b" / "cg.mp4"
    assert generate(checkpoint, "--task", "cg", "--class", "99", "--output", str(out)) == 2
    assert "class label(s) [99] are not classes of this model: give whole numbers from 0 to 2" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("command", ["generate", "demo", "eval"])
def test_help_states_the_pipelines_search_defaults(command, capsys):
    from magvit.workflows.pipeline import CLASS_SEARCH, READ_SEARCH

    assert main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help at the terminal width
    assert f"{READ_SEARCH} for a model with a class reader, {CLASS_SEARCH} for one with classes and none" in text
