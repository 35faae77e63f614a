"""`magvit plot`: PNG curves of any logged metric, several runs on one figure."""

from __future__ import annotations

import json

import pytest

from magvit.cli.main import main
from magvit.workflows.plot import series, smooth

pytest.importorskip("matplotlib")  # extra magvit[plot]; in magvit[test]


def fake_run(path, slope):
    path.mkdir()
    lines = [{"step": s, "split": "train", "loss": 5.0 - slope * s, "lr": 1e-3, "elapsed_s": s}
             for s in range(1, 21)] + [{"step": 20, "split": "eval", "psnr": 21.0}]
    (path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_plot_draws_every_run_into_one_png(tmp_path, capsys):
    a, b = fake_run(tmp_path / "a", 0.1), fake_run(tmp_path / "b", 0.2)
    out = tmp_path / "curves.png"
    assert main(["plot", str(a), str(b), "--output", str(out)]) == 0
    from matplotlib.image import imread

    image = imread(out)  # (H, W, 4) floats
    assert image.shape[0] > 200 and image.shape[1] > 400 and image.shape[2] == 4
    assert image[..., :3].std() > 0.01  # not a blank canvas
    assert f"wrote {out}" in capsys.readouterr().out
    assert main(["plot", str(a), "--metric", "loss", "--split", "train", "--output", str(tmp_path / "loss.png")]) == 0


def test_series_and_smoothing():
    run_series = {"loss": ([1, 2, 3], [3.0, 2.0, 1.0])}
    assert smooth(run_series["loss"][1], 0.0) == [3.0, 2.0, 1.0]
    ema = smooth([2.0, 2.0, 2.0], 0.9)
    assert ema == pytest.approx([2.0, 2.0, 2.0])  # debiased: a constant stays constant


def test_series_reads_one_split(tmp_path):
    run = fake_run(tmp_path / "r", 0.1)
    train, evaluation = series(run, "train"), series(run, "eval")
    assert set(train) == {"loss", "lr"} and train["loss"][0] == list(range(1, 21))
    assert evaluation == {"psnr": ([20], [21.0])}


@pytest.mark.parametrize("args, words", [
    (["{run}", "--metric", "nope"], "no train metric nope in these runs; they log: loss, lr"),
    (["{missing}"], "has no metrics.jsonl"),
    (["{run}", "--smooth", "1.5"], "--smooth must be in [0, 1)"),
])
def test_plot_errors(tmp_path, capsys, args, words):
    run = fake_run(tmp_path / "r", 0.1)
    argv = [a.replace("{run}", str(run)).replace("{missing}", str(tmp_path / "none")) for a in args]
    assert main(["plot", *argv, "--output", str(tmp_path / "x.png")]) == 2
    assert words in capsys.readouterr().err and not (tmp_path / "x.png").exists()


def test_the_output_must_be_an_image_file_and_no_input_is_touched(tmp_path, capsys):
    run = fake_run(tmp_path / "r", 0.1)
    metrics = (run / "metrics.jsonl").read_bytes()
    for output, words in ((run / "metrics.jsonl", "cannot draw an image with suffix '.jsonl'; use one of .png, .svg, "
                                                  ".pdf"),
                          (tmp_path / "curves", "cannot draw an image with suffix '(none)'"),
                          (run, "cannot draw an image with suffix '(none)'")):
        assert main(["plot", str(run), "--output", str(output)]) == 2
        assert f"{output}: {words}" in capsys.readouterr().err
    (tmp_path / "d.png").mkdir()
    assert main(["plot", str(run), "--output", str(tmp_path / "d.png")]) == 2
    assert f"{tmp_path / 'd.png'} is a folder; give a file name such as" in capsys.readouterr().err
    assert (run / "metrics.jsonl").read_bytes() == metrics
    assert main(["plot", str(run), "--output", str(tmp_path / "c.SVG")]) == 0
    assert (tmp_path / "c.SVG").read_text().lstrip().startswith("<?xml")
