"""`magvit demo` on a tiny random-weight bundle: every output is written and well-formed."""

from __future__ import annotations

import json

import av
import pytest
import torch
from generation_fixtures import CLIP, TASKS, save_tiny_bundle

from magvit.cli.main import main
from magvit.core.metrics import masked_psnr
from magvit.core.montage import comparison_video, even_size, frame_strip
from magvit.core.video_io import read_video, write_video
from magvit.pipeline import Pipeline
from magvit.workflows.demo import SOLID_STD, run_demo
from magvit.workflows.eval_clips import held_out_clips

EXPERIMENT = {"data": {"kind": "synthetic", "frames": CLIP[0], "resolution": CLIP[1]}}


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return save_tiny_bundle(tmp_path_factory.mktemp("bundle"), EXPERIMENT)


@pytest.fixture(scope="module")
def demo(bundle_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return run_demo(bundle_dir, out, clips=2, progress=False)


def test_one_row_per_task_with_scores(demo):
    assert [r.task for r in demo.rows] == list(TASKS)
    for row in demo.rows:
        scores = (row.psnr, row.condition_psnr, row.baseline_psnr, row.roundtrip_psnr,
                  row.roundtrip_condition_psnr)
        if row.task == "cg":
            assert scores == (None,) * 5 and row.ssim is None
        else:
            assert all(0 < v < 60 for v in scores) and -1 <= row.ssim <= 1, row
        assert row.seconds > 0 and row.min_std > SOLID_STD  # random weights: noise, not a flat image
    table = demo.table()
    assert table.splitlines()[0].split() == ["task", "PSNR", "cond", "PSNR", "SSIM", "baseline", "PSNR",
                                             "SSIM", "round", "trip:", "PSNR", "cond", "PSNR", "seconds",
                                             "output"]
    assert max(len(line) for line in table.splitlines()) <= 110
    fp_line = next(line for line in table.splitlines() if line.startswith("fp "))
    fp = demo.rows[0]
    assert fp_line.split()[1:3] == [f"{fp.psnr:.2f}", f"{fp.condition_psnr:.2f}"]
    assert fp_line.split()[6:8] == [f"{fp.roundtrip_psnr:.2f}", f"{fp.roundtrip_condition_psnr:.2f}"]
    cg_line = next(line for line in table.splitlines() if line.startswith("cg "))
    assert cg_line.split()[1:8] == ["n/a"] * 7
    assert "cond PSNR: over the condition pixels the task was given" in table
    assert "Round trip = the tokenizer's encode + decode of the ground truth" in table
    assert "paste" not in table


def test_condition_and_round_trip_scores_match_an_independent_computation(bundle_dir, demo):
    """cond PSNR is `masked_psnr` over `pixel_mask` of the generated clips; the round-trip
    columns score the tokenizer's decode(encode(truth)) over both regions."""
    pipe = Pipeline.from_checkpoint(bundle_dir, device="cpu")
    videos, labels = held_out_clips(pipe, 2, seed=0)
    with torch.inference_mode():
        roundtrip = pipe.tokenizer.decode(pipe.tokenizer.encode(videos)).clamp(0, 1)
    assert torch.allclose(pipe.roundtrip(videos), roundtrip, atol=1e-6)
    rows = {r.task: r for r in demo.rows}
    for task in ("fp", "opv", "cfp"):
        result = pipe.generate(task, videos, label=labels if pipe.task(task).needs_class else None, seed=0)
        given = result.pixel_mask
        assert given.shape == CLIP and 0 < int(given.sum()) < given.numel()
        expect = {
            "psnr": masked_psnr(result.video, videos, ~given),
            "condition_psnr": masked_psnr(result.video, videos, given),
            "roundtrip_psnr": masked_psnr(roundtrip, videos, ~given),
            "roundtrip_condition_psnr": masked_psnr(roundtrip, videos, given),
        }
        for key, value in expect.items():
            assert getattr(rows[task], key) == pytest.approx(float(value.mean()), abs=1e-4), (task, key)
        assert rows[task].batch_size == result.batch_size >= 1   # what the scores' draws depend on
    saved = {t["task"]: t for t in json.loads((demo.out_dir / "results.json").read_text())["tasks"]}
    assert saved["opv"]["batch_size"] == rows["opv"].batch_size == 2   # "auto" on a CPU: both clips at once
    assert saved["fp"]["condition_psnr"] == pytest.approx(rows["fp"].condition_psnr)
    assert saved["fp"]["roundtrip_psnr"] == pytest.approx(rows["fp"].roundtrip_psnr)
    assert saved["fp"]["roundtrip_condition_psnr"] == pytest.approx(rows["fp"].roundtrip_condition_psnr)
    assert (saved["cg"]["condition_psnr"], saved["cg"]["roundtrip_psnr"],
            saved["cg"]["roundtrip_condition_psnr"]) == (None, None, None)



def test_psnr_by_frame_scores_each_frames_generated_pixels(bundle_dir, demo):
    """`psnr_per_frame` is `masked_psnr` over one frame's generated pixels at a time, None for a
    frame given whole; tasks given whole frames print the curve with the baseline's."""
    pipe = Pipeline.from_checkpoint(bundle_dir, device="cpu")
    videos, labels = held_out_clips(pipe, 2, seed=0)
    rows = {r.task: r for r in demo.rows}
    fp = pipe.generate("fp", videos, seed=0)
    given = fp.pixel_mask
    assert given[0].all() and not given[1:].any()  # FP: the first frame given, the rest generated
    assert len(rows["fp"].psnr_per_frame) == CLIP[0] and rows["fp"].psnr_per_frame[0] is None
    for t in range(1, CLIP[0]):
        only = torch.zeros_like(given)
        only[t] = True
        assert rows["fp"].psnr_per_frame[t] == pytest.approx(float(masked_psnr(fp.video, videos, only).mean()),
                                                             abs=1e-4)
        assert rows["fp"].baseline_psnr_per_frame[t] == pytest.approx(
            float(masked_psnr(fp.condition, videos, only).mean()), abs=1e-4)
    # OPV generates a strip of every frame: a value for each, no line in the table
    assert None not in rows["opv"].psnr_per_frame and len(rows["opv"].roundtrip_psnr_per_frame) == CLIP[0]
    assert rows["cg"].psnr_per_frame is None
    table = demo.table()
    lines = table.splitlines()
    start = lines.index("PSNR by frame over the generated pixels (blank: a frame given whole):")
    assert lines[start + 1].split() == ["frame", *map(str, range(CLIP[0]))]
    # FP and CFP are given a whole frame; OPV (a strip of every frame) and CG get no row
    assert [line[:14].strip() for line in lines[start + 2:start + 6]] == ["fp", "baseline", "cfp", "baseline"]
    assert not any(line.startswith("opv") for line in lines[start:])
    fp_row, fp_base = lines[start + 2][14:], lines[start + 3][14:]
    assert fp_row[:6] == " " * 6  # frame 0 is given
    assert fp_row.split() == [f"{v:.1f}" for v in rows["fp"].psnr_per_frame[1:]]
    assert fp_base.split() == [f"{v:.1f}" for v in rows["fp"].baseline_psnr_per_frame[1:]]
    saved = {t["task"]: t for t in json.loads((demo.out_dir / "results.json").read_text())["tasks"]}
    assert saved["fp"]["psnr_per_frame"][0] is None
    assert saved["fp"]["psnr_per_frame"][1:] == pytest.approx(rows["fp"].psnr_per_frame[1:])
    assert saved["cg"]["psnr_per_frame"] is None


def test_paste_condition_changes_the_outputs_but_not_the_scores(bundle_dir, demo, tmp_path):
    pasted = run_demo(bundle_dir, tmp_path, clips=2, progress=False, paste_condition=True)
    keys = ("psnr", "condition_psnr", "ssim", "baseline_psnr", "baseline_ssim", "roundtrip_psnr",
            "roundtrip_condition_psnr", "min_std")
    for plain, row in zip(demo.rows, pasted.rows):
        assert [getattr(row, k) for k in keys] == [getattr(plain, k) for k in keys], row.task
    assert json.loads((demo.out_dir / "results.json").read_text())["paste_condition"] is False
    assert json.loads((tmp_path / "results.json").read_text())["paste_condition"] is True
    text = (tmp_path / "results.txt").read_text()
    assert "--paste-condition: the condition pixels were pasted into the videos and the contact sheet" in text
    assert "the scores above are of the model's own (unpasted) output." in text

    # FP gives frame 0: in the first clip's row of fp.mp4, the generated column's frame 0 is
    # the condition's when pasted and the model's own otherwise; the frames it made are equal
    scale = 128 // CLIP[1]
    height, width = CLIP[1] * scale, CLIP[2] * scale
    columns = {}
    for name, out in (("plain", demo.out_dir), ("pasted", tmp_path)):
        video = read_video(out / "fp.mp4")[:, :, :height]
        columns[name] = (video[..., :width], video[..., width + 2: 2 * width + 2])
    condition, generated = columns["pasted"]
    plain_condition, plain_generated = columns["plain"]
    assert (generated[:, 0] - condition[:, 0]).abs().mean() < 0.03
    assert (plain_generated[:, 0] - plain_condition[:, 0]).abs().mean() > 0.1
    assert (generated[:, 1:] - plain_generated[:, 1:]).abs().mean() < 0.03

    sheets = [read_video(out / "contact_sheet.png") for out in (demo.out_dir, tmp_path)]
    assert sheets[0].shape == sheets[1].shape
    assert not torch.equal(sheets[0][..., :16, :], sheets[1][..., :16, :])  # "generated+pasted"


def test_cg_is_scored_by_a_shape_classifier_that_fits_the_data(bundle_dir, demo, tmp_path):
    """CG's class_accuracy is `cg_accuracy` of the given classifier on the CG samples; without a
    fitting classifier (the bundled one was trained on other clips) there is none."""
    from magvit.core.data.synthetic import SyntheticShapes
    from magvit.core.shape_classifier import ShapeClassifier, ShapeClassifierConfig
    from magvit.workflows.shape_classifier import (
        cg_accuracy,
        classifier_for,
        load_shape_classifier,
        save_shape_classifier,
    )

    data = SyntheticShapes(frames=CLIP[0], resolution=CLIP[1])
    assert classifier_for(data) is None  # the bundled classifier is for the default model's clips
    assert all(r.class_accuracy is None for r in demo.rows)
    torch.manual_seed(0)
    path = save_shape_classifier(ShapeClassifier(ShapeClassifierConfig(num_classes=4, frames=CLIP[0], resolution=CLIP[1])), tmp_path / "c.st")
    scored = run_demo(bundle_dir, tmp_path / "out", clips=4, progress=False, shape_classifier=path)
    pipe = Pipeline.from_checkpoint(bundle_dir, device="cpu")
    _, labels = held_out_clips(pipe, 4, seed=0)
    samples = pipe.generate("cg", None, label=labels.tolist(), seed=0).video
    expected = cg_accuracy(load_shape_classifier(path), samples, labels)
    ceiling = cg_accuracy(load_shape_classifier(path), pipe.roundtrip(held_out_clips(pipe, 4, seed=0)[0]), labels)
    rows = {r.task: r for r in scored.rows}
    assert rows["cg"].class_accuracy == pytest.approx(expected) and 0 <= expected <= 1
    assert rows["cg"].roundtrip_class_accuracy == pytest.approx(ceiling) and 0 <= ceiling <= 1
    assert [t for t, r in rows.items() if r.class_accuracy is not None] == ["cg"]
    assert [t for t, r in rows.items() if r.roundtrip_class_accuracy is not None] == ["cg"]
    assert (f"cg: {expected:.1%} of the samples show their class's shape kind (shape classifier; "
            f"{ceiling:.1%} of the held-out clips' round trips)") in scored.table()
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [t["class_accuracy"] for t in saved["tasks"] if t["task"] == "cg"] == [pytest.approx(expected)]


def test_cli_demo_refuses_a_missing_or_unfitting_shape_classifier(bundle_dir, tmp_path, capsys):
    assert main(["demo", "--checkpoint", str(bundle_dir), "--output", str(tmp_path / "a"), "--clips", "1",
                 "--shape-classifier", str(tmp_path / "none.safetensors")]) == 2
    assert "no shape classifier at" in capsys.readouterr().err
    from magvit.workflows.shape_classifier import BUNDLED

    assert main(["demo", "--checkpoint", str(bundle_dir), "--output", str(tmp_path / "b"), "--clips", "1",
                 "--shape-classifier", str(BUNDLED)]) == 2
    err = capsys.readouterr().err
    assert "was trained on other clips: resolution=32 but the data has resolution=16" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_files(demo):
    out = demo.out_dir
    saved = json.loads((out / "results.json").read_text())
    assert [t["task"] for t in saved["tasks"]] == list(TASKS) and saved["clips"] == 2
    assert (out / "results.txt").read_text().strip() == demo.table()
    scale = 128 // CLIP[1]
    for task in TASKS:
        with av.open(str(out / f"{task}.mp4")) as container:
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
            # 3 columns (condition, generated, truth) and 2 rows of clips, 2-pixel gaps
            assert (stream.width, stream.height) == (3 * CLIP[2] * scale + 4, 2 * CLIP[1] * scale + 2)
        assert frames == CLIP[0]
    with av.open(str(out / "contact_sheet.png")) as container:
        image = next(container.decode(video=0))
        assert image.height == 16 + len(TASKS) * (CLIP[1] * (scale // 2) + 4)


def test_held_out_truth_is_in_the_right_column(demo):
    """The right-hand column of the FP video is the ground truth clip, scaled up."""
    video = read_video(demo.out_dir / "fp.mp4")
    scale = 128 // CLIP[1]
    truth_col = video[:, :, : CLIP[1] * scale, -CLIP[2] * scale:]
    assert truth_col.std() > 0.05  # the synthetic clip, not an empty panel


def test_cli_demo_prints_the_table(bundle_dir, tmp_path, capsys):
    assert main(["demo", "--checkpoint", str(bundle_dir), "--output", str(tmp_path), "--clips", "1"]) == 0
    out = capsys.readouterr().out
    assert "task     PSNR  cond PSNR" in out and "contact_sheet.png" in out
    assert "paste" not in out
    assert (tmp_path / "contact_sheet.png").is_file()


def test_cli_demo_paste_condition_says_so(bundle_dir, tmp_path, capsys):
    args = ["demo", "--checkpoint", str(bundle_dir), "--output", str(tmp_path), "--clips", "1"]
    assert main([*args, "--paste-condition"]) == 0
    assert "the condition pixels were pasted into the videos" in capsys.readouterr().out
    assert json.loads((tmp_path / "results.json").read_text())["paste_condition"] is True


def test_cli_demo_takes_the_decoder_options_of_generate_and_records_them(bundle_dir, demo, tmp_path, capsys):
    assert demo.decoder.startswith("Commit: ") and "temperature=4.5" in demo.decoder
    assert "Decoder Commit: " in demo.table()
    args = ["demo", "--checkpoint", str(bundle_dir), "--output", str(tmp_path), "--clips", "1"]
    assert main([*args, "--decoder", "maskgit", "--steps", "3", "--top-k", "1"]) == 0
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["decoder"].startswith("MaskGIT: ") and "steps=3" in record["decoder"]
    assert "top_k=1" in record["decoder"] and "Decoder MaskGIT: " in out
    assert main([*args, "--steps", "0"]) == 2
    assert "--steps: must be at least 1, got 0" in capsys.readouterr().err


def test_the_condition_fit_is_on_by_default_and_recorded(bundle_dir, demo, tmp_path, capsys):
    saved = json.loads((demo.out_dir / "results.json").read_text())
    assert saved["refine_steps"] == demo.refine_steps == 10
    assert "Generated tokens fitted to the given pixels for 10 step(s)" in demo.table()
    args = ["demo", "--checkpoint", str(bundle_dir), "--output", str(tmp_path), "--clips", "1"]
    assert main([*args, "--refine-steps", "0"]) == 0
    assert "Tokens decoded as generated (no condition fit: --refine-steps 0)." in capsys.readouterr().out
    assert json.loads((tmp_path / "results.json").read_text())["refine_steps"] == 0


def test_the_class_search_runs_fp_through_cfp_by_default_and_is_recorded(bundle_dir, demo, tmp_path, capsys):
    saved = json.loads((demo.out_dir / "results.json").read_text())
    assert saved["class_search"] == demo.class_search == 2
    assert saved["class_search_twins"] == demo.class_search_twins == {"fp": "cfp"}
    table = " ".join(demo.table().split())
    fp = next(r for r in demo.rows if r.task == "fp")
    assert ("fp: the best of 2 cfp sample(s) per class, by how well they redraw the given pixels (--class-search; "
            f"0 = off); the kept sample has the clip's own class in {fp.class_match:.1%} of the clips.") in table
    assert saved["read_classes"] == demo.read_classes == 0      # the tiny bundle has no class reader
    assert fp.class_match in (0.0, 0.5, 1.0)                   # 2 held-out clips
    assert [r.task for r in demo.rows if r.class_match is not None] == ["fp"]
    args = ["demo", "--checkpoint", str(bundle_dir), "--output", str(tmp_path), "--clips", "1"]
    assert main([*args, "--class-search", "0"]) == 0
    assert "--class-search" not in capsys.readouterr().out
    record = json.loads((tmp_path / "results.json").read_text())
    assert (record["class_search"], record["class_search_twins"]) == (0, {})
    assert main([*args, "--class-search", "-1"]) == 2
    assert "argument --class-search: must be at least 0, got -1" in capsys.readouterr().err


def test_cg_gets_the_class_guidance_by_default_and_it_is_recorded(bundle_dir, demo, tmp_path, capsys):
    saved = json.loads((demo.out_dir / "results.json").read_text())
    assert saved["class_guidance"] == demo.class_guidance == 3.0
    assert saved["class_guided"] == demo.class_guided == ["cg"]
    assert "cg: classifier-free guidance 3 toward its class (--class-guidance; 0 = off)." in demo.table()
    args = ["demo", "--checkpoint", str(bundle_dir), "--output", str(tmp_path), "--clips", "1", "--class-search", "0"]
    assert main([*args, "--class-guidance", "0"]) == 0
    assert "--class-guidance" not in capsys.readouterr().out
    record = json.loads((tmp_path / "results.json").read_text())
    assert (record["class_guidance"], record["class_guided"]) == (0.0, [])
    assert main([*args, "--guidance-scale", "1.5"]) == 0                  # the decoder's own guidance wins
    assert json.loads((tmp_path / "results.json").read_text())["class_guided"] == []
    assert main([*args, "--class-guidance", "-1"]) == 2
    assert "argument --class-guidance: must be >= 0, got -1" in capsys.readouterr().err


def test_cli_demo_on_a_missing_checkpoint_exits_2(tmp_path, capsys):
    assert main(["demo", "--checkpoint", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_montage_layout():
    a = torch.zeros(2, 3, 4, 5, 6)
    b = torch.ones(2, 3, 4, 5, 6)
    grid = comparison_video([a, b], scale=2, gap=1)
    assert grid.shape == (3, 4, 2 * 10 + 1, 2 * 12 + 1)
    assert grid[:, :, :10, :12].eq(0).all() and grid[:, :, :10, 13:].eq(1).all()
    assert grid[:, :, 10].eq(1).all()  # the white gap row
    strip = frame_strip(torch.rand(3, 4, 5, 6), scale=1, gap=1)
    assert strip.shape == (3, 5, 4 * 6 + 3)
    assert even_size(torch.rand(3, 2, 5, 7)).shape == (3, 2, 6, 8)


def test_write_video_accepts_montages(tmp_path):
    grid = even_size(comparison_video([torch.rand(1, 3, 4, 8, 8)] * 3, scale=2))
    write_video(tmp_path / "g.mp4", grid, fps=4, pixel_format="yuv420p")
    assert read_video(tmp_path / "g.mp4").shape == grid.shape


def test_bitmap_font_draws_known_glyphs():
    from magvit.core.bitmap_font import label, text_mask

    assert text_mask("i").int().tolist() == [[1, 1, 1], [0, 1, 0], [0, 1, 0], [0, 1, 0], [1, 1, 1]]
    assert text_mask("+").int().tolist() == [[0, 0, 0], [0, 1, 0], [1, 1, 1], [0, 1, 0], [0, 0, 0]]
    assert text_mask("fp", scale=2).shape == (10, 14)
    image = label("fp", 12, 20, scale=1)
    assert image.shape == (3, 12, 20) and image.min() == 0 and image.max() == 1
    assert (image == 0).sum() == 3 * text_mask("fp").sum()  # every ink pixel drawn, none clipped


def test_masked_psnr_scores_only_the_selected_pixels():
    from magvit.core.metrics import masked_psnr

    target = torch.zeros(1, 3, 2, 4, 4)
    video = target.clone()
    video[:, :, 1] = 0.1  # error only in frame 1
    frame1 = torch.zeros(2, 4, 4, dtype=torch.bool)
    frame1[1] = True
    assert masked_psnr(video, target, frame1).item() == pytest.approx(20.0, abs=1e-4)
    assert masked_psnr(video, target, ~frame1).item() == pytest.approx(100.0)  # error-free: clamped


def test_more_clips_than_the_eval_split_holds_widen_it_and_keep_the_first_ones(tmp_path):
    """The synthetic eval split is drawn per index, so asking for more clips than the model's
    experiment sizes it (`eval_clips`) widens it: the first clips stay the same, and none of the
    new ones is a training clip."""
    run = save_tiny_bundle(tmp_path / "bundle", {"data": {**EXPERIMENT["data"], "eval_clips": 3}})
    pipe = Pipeline.from_checkpoint(run, device="cpu")
    assert pipe.bundle.experiment.data.config.eval_clips == 3
    few, few_labels = held_out_clips(pipe, 3, seed=0)
    many, many_labels = held_out_clips(pipe, 5, seed=0)
    assert few.shape == (3, 3, *CLIP) and many.shape == (5, 3, *CLIP) and many_labels.shape == (5,)
    assert torch.equal(many[:3], few) and torch.equal(many_labels[:3], few_labels)
    train = pipe.bundle.experiment.data.build().make("train", seed=0)
    assert not any(torch.equal(clip.cpu(), train[i]["video"]) for clip in many for i in range(8))
    assert pipe.bundle.experiment.data.config.eval_clips == 3              # the bundle is left alone
