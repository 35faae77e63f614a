import json

import pytest
import torch

from magvit.cli.main import main
from magvit.core.video_io import write_video


@pytest.fixture
def folder(tmp_path):
    """Class `run` has two 16x24 videos of 6 frames, `jump` one 8x8 of 3 frames and a corrupt file."""
    root = tmp_path / "videos"
    write_video(root / "run/r0.mp4", torch.full((3, 6, 16, 24), 0.5), fps=10)
    write_video(root / "run/r1.mp4", torch.full((3, 6, 16, 24), 0.2), fps=10)
    write_video(root / "jump/j0.gif", torch.full((3, 3, 8, 8), 0.7), fps=5)
    (root / "jump/broken.avi").write_bytes(b"RIFF" + b"\x01" * 200)
    return root


def test_inspect_counts_videos_classes_frames_sizes(folder, capsys):
    assert main(["data", "inspect", str(folder)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{folder}: 4 videos, 3 readable, 2 classes"
    assert out[1] == "classes: jump (1), run (2)"
    assert out[2] == "frames: 3 to 6 per video (mean 5, total 15)"
    assert out[3] == "resolutions: 24x16 (2), 8x8 (1)"
    assert out[4] == "fps: 10 (2), 5 (1)"
    assert out[5] == "codecs: h264 (2), gif (1)"
    assert out[6] == "unreadable (1):"
    assert out[7].startswith(f"  cannot read video {folder / 'jump/broken.avi'}: ")


def test_inspect_json(folder, capsys):
    assert main(["data", "inspect", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["videos"] == 4 and report["readable"] == 3
    assert report["classes"] == {"jump": 1, "run": 2}
    assert report["frames"] == {"min": 3, "max": 6, "mean": 5.0, "total": 15}
    assert report["resolutions"] == {"24x16": 2, "8x8": 1}
    assert [u["path"] for u in report["unreadable"]] == [str(folder / "jump/broken.avi")]


def test_inspect_one_file(folder, capsys):
    assert main(["data", "inspect", str(folder / "run/r0.mp4"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["videos"], report["classes"], report["frames"]["total"]) == (1, {}, 6)


def test_inspect_missing_folder_exits_2(tmp_path, capsys):
    assert main(["data", "inspect", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err == f"magvit: error: dataset folder {tmp_path / 'nope'} does not exist or is not a folder\n"
