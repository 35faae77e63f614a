"""The class reader: a frame classifier in the bundle that reads a clip's likely classes from the
given pixels, so the class search tries those classes only (`magvit.core.class_reader`)."""

from __future__ import annotations

import json

import attrs
import pytest
import torch
from generation_fixtures import CLIP, random_clip, save_tiny_bundle, tiny_bundle
from torch import nn

from magvit.cli.main import main
from magvit.core.class_reader import given_frames, likely_classes
from magvit.core.condition_search import given_pixel_error
from magvit.core.shape_classifier import ShapeClassifier, ShapeClassifierConfig
from magvit.errors import MagvitError
from magvit.pipeline import Pipeline
from magvit.registry.experiment import validate_experiment
from magvit.workflows import pipeline as pipeline_module
from magvit.workflows.bundle import load_bundle
from magvit.workflows.export import with_class_reader
from magvit.workflows.shape_classifier import save_shape_classifier

FAST = {"decoder": {"kind": "commit", "steps": 4}}
DATA = {"data": {"kind": "synthetic", "frames": CLIP[0], "resolution": CLIP[1], "num_classes": 3}}


class BrightestChannel(nn.Module):
    """A reader whose class is the colour channel with the most light in the frames it is shown
    (ties: the lower channel), and which records what it was shown."""

    num_classes = 3

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor] = []
        self.dtypes: list[torch.dtype] = []

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        self.seen.append(video.clone())
        self.dtypes.append(torch.ones(1, 1).matmul(torch.ones(1, 1)).dtype)  # the autocast in force
        return video.float().mean(dim=(2, 3, 4))                               # (B, 3) logits


def tinted(clips: torch.Tensor, channels: list[int]) -> torch.Tensor:
    """`clips` with the first frame of clip i lit in channel `channels[i]`."""
    out = clips.clone() * 0.2
    for i, c in enumerate(channels):
        out[i, c, 0] += 0.7
    return out


# -- reading ---------------------------------------------------------------------------------------
def test_it_reads_the_wholly_given_frames_else_the_whole_padded_clip():
    padded = torch.rand(2, 3, 4, 5, 5)
    first = torch.zeros(4, 5, 5, dtype=torch.bool)
    first[0] = True                                                # FP: frame 0 given
    assert torch.equal(given_frames(padded, first), padded[:, :, :1])
    two = first.clone()
    two[2] = True
    two[1, :2] = True                                              # frame 1 only in part
    assert torch.equal(given_frames(padded, two), padded[:, :, [0, 2]])
    box = torch.zeros(4, 5, 5, dtype=torch.bool)
    box[:, 1:4, 1:4] = True                                        # no frame whole: the padded clip
    assert given_frames(padded, box) is padded


def test_the_most_likely_classes_come_first_ties_go_low_and_eval_mode_is_restored():
    reader = BrightestChannel().train()
    padded = torch.zeros(3, 3, 4, 2, 2)
    padded[0, 2], padded[1, 0], padded[1, 1] = 0.9, 0.5, 0.5       # clip 0: blue; clip 1: red = green
    padded[2, 1, 0] = 1.0                                          # clip 2: green in frame 0 only
    mask = torch.zeros(4, 2, 2, dtype=torch.bool)
    mask[0] = True
    with torch.autocast("cpu", dtype=torch.bfloat16):
        top = likely_classes(reader, padded, mask, 3)
    assert top.dtype == torch.int64 and top.tolist() == [[2, 0, 1], [0, 1, 2], [1, 0, 2]]
    assert reader.seen[0].shape == (3, 3, 1, 2, 2) and reader.seen[0].dtype == torch.float32
    assert reader.dtypes == [torch.float32]                        # read in fp32 under autocast
    assert reader.training                                         # put back as it was
    assert likely_classes(reader, padded, mask, 1).tolist() == [[2], [0], [1]]
    for count in (0, 4):
        with pytest.raises(MagvitError, match=rf"the class reader has 3 classes; cannot read the {count} most likely"):
            likely_classes(reader, padded, mask, count)
    with pytest.raises(MagvitError, match="the class reader's scores are not finite"):
        likely_classes(reader, torch.full_like(padded, float("nan")), mask, 1)


def test_a_real_reader_ranks_every_class_once_led_by_its_own_prediction():
    torch.manual_seed(0)
    reader = ShapeClassifier(ShapeClassifierConfig(num_classes=4, frames=8, resolution=16)).eval()
    gen = torch.Generator().manual_seed(3)
    mask = torch.zeros(8, 16, 16, dtype=torch.bool)
    mask[0] = True
    for _ in range(10):
        padded = torch.rand(5, 3, 8, 16, 16, generator=gen)
        ranked = likely_classes(reader, padded, mask, 4)
        assert ranked.shape == (5, 4)
        assert torch.equal(ranked.sort(dim=1).values, torch.arange(4).expand(5, 4))
        with torch.no_grad():
            assert torch.equal(ranked[:, 0], reader(padded[:, :, :1]).argmax(dim=1))


# -- in the pipeline ----------------------------------------------------------------------------------
def reader_pipe(reader=None, **kwargs) -> Pipeline:
    bundle = tiny_bundle(validate_experiment(FAST))
    bundle.class_reader = reader
    return Pipeline(bundle, **kwargs)


def test_fp_tries_only_the_class_read_from_the_given_frame():
    reader = BrightestChannel()
    pipe = reader_pipe(reader)
    assert (pipe.read_classes, pipe.class_search) == (pipeline_module.READ_CLASSES, pipeline_module.READ_SEARCH) == (1, 4)
    assert reader_pipe(None).class_search == pipeline_module.CLASS_SEARCH == 2
    clips = tinted(random_clip(3, seed=2), [2, 0, 1])
    found = pipe.generate("fp", clips, seed=5, refine_steps=0, batch_size=3)
    assert found.classes.tolist() == [2, 0, 1] and (found.read_classes, found.class_search) == (1, 4)
    assert reader.seen[-1].shape == (3, 3, 1, *CLIP[1:])          # FP's given frame, nothing else
    # the same draws by hand: each clip as CFP under its read class, 4 times, in one batch
    labels = torch.tensor([2, 0, 1]).repeat_interleave(4)
    tried = pipe.generate("cfp", clips.repeat_interleave(4, dim=0), label=labels, seed=5, refine_steps=0,
                          batch_size=12)
    errors = given_pixel_error(tried.video, tried.condition, tried.pixel_mask).view(3, 4)
    rows = torch.arange(3) * 4 + errors.argmin(1)
    assert torch.equal(found.tokens, tried.tokens[rows]) and torch.equal(found.video, tried.video[rows])


def test_two_read_classes_and_zero_which_is_every_class():
    pipe = reader_pipe(BrightestChannel())
    clips = tinted(random_clip(2, seed=4), [1, 2])
    two = pipe.generate("fp", clips, seed=1, refine_steps=0, class_search=1, read_classes=2)
    assert two.read_classes == 2 and set(two.classes.tolist()) <= {0, 1, 2}
    top = likely_classes(BrightestChannel(), *pipe.task("cfp").condition(clips), 2)   # each clip's two brightest
    assert top[:, 0].tolist() == [1, 2]
    assert all(int(kept) in pair for kept, pair in zip(two.classes, top.tolist()))
    every = pipe.generate("fp", clips, seed=1, refine_steps=0, read_classes=0, class_search=2)
    plain = reader_pipe(None).generate("fp", clips, seed=1, refine_steps=0)
    assert every.read_classes == plain.read_classes == 0
    assert torch.equal(every.tokens, plain.tokens) and torch.equal(every.classes, plain.classes)
    off = pipe.generate("fp", clips, seed=1, refine_steps=0, class_search=0)
    assert (off.read_classes, off.classes) == (0, None)           # no search, nothing read
    assert pipe.generate("opv", clips, seed=1, refine_steps=0).read_classes == 0


def test_without_a_reader_every_class_is_tried_and_bad_counts_name_the_fix():
    assert reader_pipe(None).read_classes == 0
    assert reader_pipe(BrightestChannel(), read_classes=0).read_classes == 0
    with pytest.raises(MagvitError, match=r"read_classes=1: this model has no class reader \(export one into it "
                                          r"with `magvit export \.\.\. --class-reader FILE`\); use read_classes=0"):
        reader_pipe(None, read_classes=1)
    pipe = reader_pipe(BrightestChannel())
    with pytest.raises(MagvitError, match=r"read_classes=4: the model has 3 classes; give at most 3 \(0 = every class\)"):
        pipe.generate("fp", random_clip(1), read_classes=4)
    for bad in (-1, True, 1.5):
        with pytest.raises(MagvitError, match=r"read_classes must be a whole number of at least 0 \(the class "
                                              r"reader's most likely classes the class search tries; 0 = every "
                                              r"class\), got "):
            pipe.generate("fp", random_clip(1), read_classes=bad)


# -- in a bundle -------------------------------------------------------------------------------------
def saved_reader(path, num_classes: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    reader = ShapeClassifier(ShapeClassifierConfig(num_classes=num_classes, frames=CLIP[0], resolution=CLIP[1]))
    reader.trained_on, reader.held_out_accuracy = {"num_classes": num_classes}, 0.75
    with torch.no_grad():  # batch-norm statistics other than the defaults, so they must travel too
        reader.norms[0].running_mean.uniform_(-0.1, 0.1)
    save_shape_classifier(reader, path)
    return reader


def test_export_puts_the_reader_into_the_bundle_and_keeps_it_on_a_second_export(tmp_path, capsys):
    source = save_tiny_bundle(tmp_path / "run", {**DATA, **FAST})
    reader = saved_reader(tmp_path / "reader.safetensors")
    assert load_bundle(source).class_reader is None
    assert main(["export", str(source), str(tmp_path / "out"), "--class-reader", str(tmp_path / "reader.safetensors")]) == 0
    bundle = load_bundle(tmp_path / "out")
    state = bundle.class_reader.state_dict()
    assert state.keys() == reader.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in reader.state_dict().items())
    assert not bundle.class_reader.training and bundle.class_reader.held_out_accuracy == 0.75
    record = json.loads((tmp_path / "out" / "bundle.json").read_text())["class_reader"]
    assert record == {"config": reader.config.to_dict(), "data": {"num_classes": 3}, "held_out_accuracy": 0.75}
    assert "| class reader | a 0.02M-parameter frame classifier, 75.0% right on held-out clips" in \
        (tmp_path / "out" / "README.md").read_text()
    assert json.loads((tmp_path / "out" / "config.json").read_text())["parameters"]["class_reader"] == \
        sum(p.numel() for p in reader.parameters())
    assert Pipeline.from_checkpoint(tmp_path / "out").read_classes == 1
    capsys.readouterr()
    assert main(["export", str(tmp_path / "out"), str(tmp_path / "again")]) == 0      # kept when re-exported
    again = load_bundle(tmp_path / "again").class_reader
    assert all(torch.equal(again.state_dict()[k], v) for k, v in state.items())


def test_export_refuses_a_reader_of_other_clips_or_for_a_model_without_classes(tmp_path, capsys):
    source = save_tiny_bundle(tmp_path / "run", {**DATA, **FAST})
    saved_reader(tmp_path / "four.safetensors", num_classes=4)
    assert main(["export", str(source), str(tmp_path / "out"), "--class-reader", str(tmp_path / "four.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "class reader " in err and "was trained on other clips: num_classes=4 but the data has num_classes=3" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    assert main(["export", str(source), str(tmp_path / "out"), "--class-reader", str(tmp_path / "none.safetensors")]) == 2
    assert "no shape classifier at" in capsys.readouterr().err
    bundle = load_bundle(source)
    bare = attrs.evolve(bundle, vocab=type(bundle.vocab)(512, num_classes=0, task_names=bundle.task_names))
    with pytest.raises(MagvitError, match=r"this model has 0 class\(es\), so there is no class to read; a class "
                                          r"reader serves models trained with classes"):
        with_class_reader(bare, tmp_path / "four.safetensors")


def test_the_cli_records_and_prints_what_the_search_read(tmp_path, capsys):
    source = save_tiny_bundle(tmp_path / "run", {**DATA, **FAST})
    saved_reader(tmp_path / "reader.safetensors")
    assert main(["export", str(source), str(tmp_path / "model"), "--class-reader", str(tmp_path / "reader.safetensors")]) == 0
    clip = tmp_path / "in.mp4"
    from magvit.core.video_io import write_video

    write_video(clip, random_clip(), fps=4)
    capsys.readouterr()
    args = ["generate", "--task", "fp", "--checkpoint", str(tmp_path / "model"), "--input", str(clip)]
    assert main([*args, "--output", str(tmp_path / "a.mp4"), "--refine-steps", "0"]) == 0
    assert ("class search: the best of 4 cfp sample(s) per class, of the class reader's 1 likeliest class(es)"
            in capsys.readouterr().out)
    assert main([*args, "--output", str(tmp_path / "b.mp4"), "--read-classes", "-1"]) == 2
    assert "argument --read-classes: must be at least 0, got -1" in capsys.readouterr().err
    plain = ["generate", "--task", "fp", "--checkpoint", str(source), "--input", str(clip), "--output", str(tmp_path / "c.mp4")]
    assert main([*plain, "--read-classes", "1"]) == 2
    assert "read_classes=1: this model has no class reader" in capsys.readouterr().err
    out = tmp_path / "demo"
    assert main(["demo", "--checkpoint", str(tmp_path / "model"), "--output", str(out), "--clips", "1",
                 "--refine-steps", "0"]) == 0
    table = " ".join(capsys.readouterr().out.split())
    assert ("fp: the best of 4 cfp sample(s) of the class that the class reader reads from the given pixels "
            "(--read-classes 1; 0 = every class), by how well they redraw the given pixels (--class-search; "
            "0 = off)") in table
    assert json.loads((out / "results.json").read_text())["read_classes"] == 1
