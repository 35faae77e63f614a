"""`[losses] condition_clips`: some training clips replaced by a conditional task's padded video of
themselves (what stage 2 encodes), reconstructed as padded."""

from __future__ import annotations

import pytest
import torch
from test_tokenizer_training import assert_same, experiment, kill_then_resume

from magvit.core.training import DistContext
from magvit.core.training.condition_clips import condition_clips
from magvit.errors import ConfigError
from magvit.workflows.condition_agreement import condition_tasks
from magvit.workflows.tokenizer_losses import tokenizer_losses
from magvit.workflows.tokenizer_stage import TokenizerStage
from magvit.workflows.train_tokenizer import build_tokenizer

TASKS = list(condition_tasks().values())


def _video(batch=16, seed=0):
    return torch.rand(batch, 3, 8, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_each_replaced_clip_is_its_tasks_padded_video_and_the_rest_are_untouched():
    video = _video(64)
    out, task_of = condition_clips(video, 1.0, TASKS, torch.Generator().manual_seed(0))
    assert out.shape == video.shape and out.dtype == video.dtype
    assert task_of.shape == (64,) and task_of.dtype == torch.long
    assert bool((task_of >= 0).all()) and bool((task_of < len(TASKS)).all())
    assert len(set(task_of.tolist())) >= 6  # 64 draws over the nine tasks
    for b in range(64):
        padded, _ = TASKS[int(task_of[b])].condition(video[b:b + 1])
        assert torch.equal(out[b], padded[0])
        assert not torch.equal(out[b], video[b])  # every task pads something
    names = [TASKS[int(t)].name for t in task_of]
    fp = out[names.index("fp")]  # FP: the first frame, repeated
    assert torch.equal(fp, video[names.index("fp"), :, :1].expand(-1, 8, -1, -1))


def test_the_fraction_and_the_seed_decide_which_clips_are_replaced():
    video = _video(64)
    same, none = condition_clips(video, 0.0, TASKS, torch.Generator().manual_seed(0))
    assert torch.equal(same, video) and bool((none == -1).all())
    assert torch.equal(condition_clips(video, 1.0, [], torch.Generator())[0], video)
    a = condition_clips(video, 0.25, TASKS, torch.Generator().manual_seed(3))
    b = condition_clips(video, 0.25, TASKS, torch.Generator().manual_seed(3))
    c = condition_clips(video, 0.25, TASKS, torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1])
    replaced = a[1] >= 0
    assert 6 <= int(replaced.sum()) <= 28  # about a quarter of 64
    assert torch.equal(a[0][~replaced], video[~replaced])
    assert not (a[0][replaced] == video[replaced]).all()


def _stage(fraction, **losses):
    exp = experiment(losses={"gan": 0.0, "condition_clips": fraction, **losses})
    torch.manual_seed(0)
    data = exp.data.build().make("train", 0)
    return TokenizerStage(build_tokenizer(exp.tokenizer), data, tokenizer_losses(exp.losses), exp.train,
                          ctx=DistContext(), seed=3)


def test_the_stage_trains_on_the_replaced_clips_as_its_targets(monkeypatch):
    stage = _stage(1.0)
    assert [t.name for t in stage.padding_tasks] == ["fp", "fi", "opc", "opv", "oph", "opd", "ipc", "ipd", "cfp"]
    assert _stage(0.0).padding_tasks == []
    seen = []
    real = stage._generator_loss
    monkeypatch.setattr(stage, "_generator_loss", lambda video, *a: seen.append(video) or real(video, *a))
    stage.begin(0)
    batch = next(iter(stage.batches))["video"]  # the batch of step 0, as train_step draws it
    stage.begin(0)
    stage.train_step(0)
    want, task_of = condition_clips(batch, 1.0, stage.padding_tasks, torch.Generator().manual_seed(
        ((3 * 1_000_003 + 0) * 997 + 0) * 131 + 0 + 7))
    assert bool((task_of >= 0).all())
    assert len(seen) == 1 and torch.equal(seen[0], want)
    again = stage._condition_clips(batch, (0, 0))
    other = stage._condition_clips(batch, (1, 0))
    assert torch.equal(again, want) and not torch.equal(other, want)


def test_condition_clips_is_checked():
    with pytest.raises(ConfigError, match=r"losses.condition_clips: must be in \[0.0, 1.0\], got -0.5"):
        tokenizer_losses({"condition_clips": -0.5})
    assert tokenizer_losses({}).condition_clips == 0.0


def test_a_resumed_run_draws_the_same_clips_and_ends_bit_equal(tmp_path, monkeypatch):
    from magvit.core.training.checkpoint import load_checkpoint
    from magvit.workflows.train_tokenizer import train

    steps = {"steps": 4, "checkpoint_every": 2, "warmup_steps": 0}
    exp = experiment(losses={"gan": 0.0, "condition_clips": 0.5}, train=steps)
    train(exp, tmp_path / "straight")
    kill_then_resume(exp, tmp_path / "cut", monkeypatch, at_step=3)
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "cut")
    assert a.step == b.step == 4
    for group in ("model", "ema"):
        assert_same(a.weights[group], b.weights[group])  # the same keys, bit-equal tensors
    train(experiment(losses={"gan": 0.0}, train=steps), tmp_path / "plain")  # the option changes what is learned
    c = load_checkpoint(tmp_path / "plain")
    assert not torch.equal(c.weights["model"]["decoder.conv_out.weight"], a.weights["model"]["decoder.conv_out.weight"])
