"""scripts/first_frame_kind.py: the direction it reads off a clip is its class's on true clips,
and another class's on a first frame moved in that class's direction."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from magvit.core.data.synthetic import SyntheticShapes

SCRIPT = Path(__file__).parents[1] / "scripts" / "first_frame_kind.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("first_frame_kind", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_class_steps_are_the_datasets_pixels_per_frame(script):
    flat = SyntheticShapes(background="flat", per_axis_speed=True)
    assert script.class_steps(flat) == [(2, 0), (0, 2), (2, 2), (2, -2)]
    assert script.class_steps(SyntheticShapes(num_classes=2, resolution=64, per_axis_speed=True)) == [(4, 0), (0, 4)]


def test_the_direction_of_true_clips_is_their_class_and_of_moved_frames_their_motion(script):
    config = SyntheticShapes(background="flat", per_axis_speed=True, eval_clips=64)
    clips = config.make("eval", seed=0)
    video = torch.stack([clips[i]["video"] for i in range(64)])
    labels = torch.tensor([clips[i]["label"] for i in range(64)])
    steps = script.class_steps(config)
    found = script.direction(video, steps)
    assert found.shape == (64,) and found.dtype == torch.long
    assert float((found == labels).float().mean()) >= 0.9  # a bounce inside the first frames is the rest
    other = (labels + 1) % 4
    moved = torch.stack([torch.stack([torch.roll(video[b, :, 0], (steps[o][1] * t, steps[o][0] * t), (1, 2))
                                      for t in range(3)], 1) for b, o in enumerate(other.tolist())])
    assert moved.shape == (64, 3, 3, 32, 32)
    # all but the clips whose shapes sit in the border the comparison leaves out
    assert int((script.direction(moved, steps) == other).sum()) >= 60


def test_a_tokenizer_alone_gets_the_kind_part_on_its_own_clips_or_changed_ones(script, tmp_path, capsys):
    """`--tokenizer RUN`: no transformer, so no direction part; the clips are the run's own, and
    `--data-json` changes them (here the radii, which a tokenizer run records)."""
    from test_tokenizer_data import tokenizer_run

    data = {"kind": "synthetic", "background": "flat", "per_axis_speed": True, "min_radius": 0.2,
            "max_radius": 0.3, "eval_clips": 8}
    run = tokenizer_run(tmp_path / "tok", data)
    small = ["--tokenizer", str(run), "--train-clips", "64", "--held-out", "32", "--steps", "3"]
    out = script.main(small)
    assert set(out) == {"kind_true_frame", "kind_moving_round_trip", "kind_first_latent_repeated",
                        "kind_fp_padded_round_trip", "kind_padded_first_true_later", "round_trip_psnr",
                        "kind_tokens_padded_latent0", "kind_tokens_moving_latent0"}
    assert all(0 <= v <= 1 for k, v in out.items() if k.startswith("kind_"))
    assert 0 < out["round_trip_psnr"] < 40  # a random tokenizer: a poor, finite round trip
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == ["kind_true_frame", f"{out['kind_true_frame']:.3f}"]
    # other clips: the same call on the dataset's own radii scores other frames
    other = script.main([*small, "--data-json", '{"min_radius": 0.1, "max_radius": 0.16}'])
    assert other["round_trip_psnr"] != out["round_trip_psnr"]
    with pytest.raises(SystemExit) as exit_info:
        script.main([*small, "--data-json", '{"radius": 0.2}'])
    assert exit_info.value.code == 2
    assert "--data-json: " in capsys.readouterr().err


def test_the_token_probe_reads_the_first_latent_frames_code_vectors(script, tmp_path):
    """Part 3's input is the quantizer's code vectors of latent frame 0, in the batch's order,
    whatever the batch size it encodes in."""
    from test_tokenizer_data import tokenizer_run

    from magvit.workflows.train_tokenizer import load_tokenizer

    run = tokenizer_run(tmp_path / "tok", {"kind": "synthetic", "background": "flat", "eval_clips": 8})
    tok = load_tokenizer(checkpoint=str(run)).float()
    clips = torch.stack([SyntheticShapes(background="flat").make("eval")[i]["video"] for i in range(5)])
    vectors = script.first_latent_vectors(tok, script.encode(tok, clips, batch=2))
    codes = tok.encode(clips)                                                  # (5, t, h, w)
    assert vectors.shape == (5, tok.quantizer.dim, *codes.shape[2:])
    assert torch.equal(vectors, tok.quantizer.lookup(codes[:, :1]).float()[:, :, 0])
    assert not torch.equal(vectors[0], vectors[1])  # other clips, other codes
