"""`magvit demo` on a tiny random-weight bundle: every output is written and well-formed."""

from __future__ import annotations

import json

import av
import pytest
import torch
from generation_fixtures import CLIP, TASKS, save_tiny_bundle

from magvit.cli.main import main
from magvit.core.montage import comparison_video, even_size, frame_strip
from magvit.core.video_io import read_video, write_video
from magvit.workflows.demo import SOLID_STD, run_demo

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
        if row.task == "cg":
            assert row.psnr is None and row.baseline_psnr is None
        else:
            assert 0 < row.psnr < 60 and 0 < row.baseline_psnr < 60 and -1 <= row.ssim <= 1
        assert row.seconds > 0 and row.min_std > SOLID_STD  # random weights: noise, not a flat image
    table = demo.table()
    assert table.splitlines()[0].split()[:3] == ["task", "PSNR", "SSIM"]
    cg_line = next(line for line in table.splitlines() if line.startswith("cg "))
    assert cg_line.split()[1:5] == ["n/a"] * 4


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
    assert "task     PSNR" in out and "contact_sheet.png" in out
    assert (tmp_path / "contact_sheet.png").is_file()


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
