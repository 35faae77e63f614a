"""TrainLoop: exact resume after Ctrl-C or a crash, NaN stop, metrics log, run-dir safety."""

from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch

from magvit.core import allocator
from magvit.core.training.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from magvit.core.training.loop import TrainLoop
from magvit.core.training.lr import warmup_cosine
from magvit.core.training.precision import NonFiniteLossError
from magvit.core.training.testing import ToyStage
from magvit.errors import MagvitError

TOTAL = 20


class Faulty(ToyStage):
    """A ToyStage that, after finishing step `at`, gets Ctrl-C, crashes, or reports a NaN."""

    def __init__(self, fault=None, at=-1):
        super().__init__(total_steps=TOTAL)
        self.fault, self.at = fault, at

    def train_step(self, step):
        metrics = super().train_step(step)
        if step == self.at:
            if self.fault == "sigint":
                signal.raise_signal(signal.SIGINT)
            elif self.fault == "crash":
                raise RuntimeError("machine went away")
            elif self.fault == "nan":
                metrics["loss"] = math.nan
        return metrics


def loop(run_dir, **kw):
    return TrainLoop(run_dir, total_steps=TOTAL, checkpoint_every=kw.pop("every", 5), log_every=2,
                     desc="toy", **kw)


def assert_same(a, b, where="state"):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def metric_lines(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("elapsed_s", None)
    return lines


@pytest.fixture
def reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("uninterrupted")
    last = loop(run).run(Faulty())
    return run, load_checkpoint(last)


@pytest.mark.parametrize("fault, at, every, resumed_from", [
    ("sigint", 9, 7, 10),   # Ctrl-C after step 9: saved at 10 although 10 is no checkpoint step
    ("crash", 12, 5, 10),   # a crash at step 12 loses the work since the checkpoint at 10
])
def test_interrupted_run_resumes_bitwise_equal(tmp_path, reference, fault, at, every, resumed_from):
    ref_run, ref = reference
    error = KeyboardInterrupt if fault == "sigint" else RuntimeError
    before = signal.getsignal(signal.SIGINT)  # Python's default_int_handler, or SIG_IGN in a background job
    with pytest.raises(error):
        loop(tmp_path, every=every).run(Faulty(fault, at))
    assert load_checkpoint(tmp_path).step == resumed_from
    assert signal.getsignal(signal.SIGINT) is before  # handler restored

    last = loop(tmp_path, every=every).run(Faulty(), resume=True)
    got = load_checkpoint(last)
    assert got.step == ref.step == TOTAL
    assert_same(got.weights, ref.weights, "weights")  # model and EMA, bitwise
    assert_same(got.state["stage"], ref.state["stage"], "stage state")  # optimiser and scheduler
    assert metric_lines(tmp_path) == metric_lines(ref_run)  # lines past the resume point redone once


def test_reference_run_logs_and_keeps_three_checkpoints(reference):
    run, ckpt = reference
    lines = metric_lines(run)
    assert [line["step"] for line in lines] == list(range(2, TOTAL + 1, 2))
    # Each line averages its window: the lr used after steps 19 and 20 of warm-up + cosine.
    lr = [0.05 * warmup_cosine(s, warmup_steps=3, total_steps=TOTAL, min_ratio=0.1) for s in (19, 20)]
    assert lines[-1]["split"] == "train" and lines[-1]["lr"] == pytest.approx(sum(lr) / 2)
    assert lines[-1]["loss"] < lines[0]["loss"] / 3  # it learns
    assert [p.name for p in list_checkpoints(run)] == [f"step-000000{s}" for s in (10, 15, 20)]
    runtime = ckpt.meta.pop("runtime")  # what shaped speed and sums, beside the config
    assert ckpt.meta == {"total_steps": TOTAL, "world_size": 1, "desc": "toy"}
    assert runtime == {"threads": torch.get_num_threads(), "malloc": allocator.malloc_setting(),
                       "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    chosen = os.environ.get("ATEN_CPU_CAPABILITY")  # CI's avx2 and default passes set it
    if chosen:
        assert runtime["cpu_capability"] == chosen.upper()
    assert set(ckpt.weights) == {"model", "ema"}


def test_nan_stops_with_step_and_saves_nothing_after_it(tmp_path):
    with pytest.raises(NonFiniteLossError, match="loss 'loss' is nan at step 6; try a lower lr or fp32"):
        loop(tmp_path).run(Faulty("nan", 6))
    assert load_checkpoint(tmp_path).step == 5


def test_fresh_run_refuses_a_run_dir_with_checkpoints(tmp_path):
    loop(tmp_path, every=5).run(Faulty())
    with pytest.raises(MagvitError, match="already has a checkpoint \\(step-00000020\\); pass --resume"):
        loop(tmp_path).run(Faulty())


def test_resume_without_checkpoint_starts_fresh_and_finished_run_does_nothing(tmp_path):
    last = loop(tmp_path).run(Faulty(), resume=True)
    assert last.name == "step-00000020"

    class Untouchable(Faulty):
        def train_step(self, step):
            raise AssertionError("a finished run must not train again")

    assert loop(tmp_path).run(Untouchable(), resume=True) == last


def test_resume_refuses_a_checkpoint_without_loop_state(tmp_path):
    save_checkpoint(tmp_path, 4, weights={"model": {}}, state={"note": "exported weights"})
    with pytest.raises(MagvitError, match="step-00000004 was not written by a training loop"):
        loop(tmp_path).run(Faulty(), resume=True)


def test_loop_settings_are_checked(tmp_path):
    with pytest.raises(MagvitError, match="train.checkpoint_every must be at least 1, got 0"):
        TrainLoop(tmp_path, total_steps=5, checkpoint_every=0)


def test_metric_window_averages_each_metric_over_the_steps_it_appeared():
    from magvit.core.training.distributed import DistContext
    from magvit.core.training.loop import _MetricWindow

    window = _MetricWindow()
    window.add({"loss": 1.0})
    window.add({"loss": 3.0, "disc": 10.0})  # the discriminator starts later
    assert window.mean(DistContext()) == {"disc": 10.0, "loss": 2.0}
    assert window.mean(DistContext()) == {}  # emptied after a log line


def test_a_log_line_spanning_the_resume_point_equals_the_uninterrupted_runs(tmp_path):
    """log_every 4, checkpoint every 5: the checkpoint at step 10 falls inside the window of the
    line at step 12, whose steps 9 and 10 ran before the crash; the window is saved with it."""
    reference = tmp_path / "reference"
    TrainLoop(reference, total_steps=TOTAL, checkpoint_every=5, log_every=4, desc="toy").run(Faulty())
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="machine went away"):
        TrainLoop(run, total_steps=TOTAL, checkpoint_every=5, log_every=4, desc="toy").run(Faulty("crash", 12))
    assert load_checkpoint(run).step == 10
    TrainLoop(run, total_steps=TOTAL, checkpoint_every=5, log_every=4, desc="toy").run(Faulty(), resume=True)
    got, want = metric_lines(run), metric_lines(reference)
    assert [line["step"] for line in got] == [4, 8, 12, 16, 20]
    assert got == want


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, reference, capsys):
    ref_run, ref = reference
    with pytest.raises(RuntimeError):
        loop(tmp_path, every=5).run(Faulty("crash", 16))
    (tmp_path / "checkpoints" / "step-00000015" / "state.pt").write_bytes(b"not a pickle")
    last = loop(tmp_path, every=5).run(Faulty(), resume=True)
    err = capsys.readouterr().err
    assert "step-00000015/state.pt is damaged" in err
    assert "skipped damaged checkpoint(s) step-00000015; resuming from step-00000010" in err
    assert f"resuming {tmp_path} from step-00000010 (step 10 of {TOTAL})" in err
    assert_same(load_checkpoint(last).weights, ref.weights, "weights")  # still bit-exact


def test_resume_says_what_it_does_and_refuses_steps_below_the_checkpoint(tmp_path, capsys):
    loop(tmp_path).run(Faulty(), resume=True)
    assert f"nothing to resume in {tmp_path}: starting at step 0" in capsys.readouterr().err
    loop(tmp_path).run(Faulty(), resume=True)
    assert f"is already at step {TOTAL} = train.steps: nothing left to do" in capsys.readouterr().err
    short = TrainLoop(tmp_path, total_steps=TOTAL - 5, checkpoint_every=5, log_every=2, desc="toy")
    with pytest.raises(MagvitError, match=f"is at step {TOTAL}, past train.steps = {TOTAL - 5}: nothing to do"):
        short.run(Faulty(), resume=True)


def test_every_checkpoint_unreadable_is_an_error_not_a_fresh_start(tmp_path):
    loop(tmp_path, every=10).run(Faulty())
    for step_dir in list_checkpoints(tmp_path):
        (step_dir / "state.pt").write_bytes(b"")
    with pytest.raises(MagvitError, match="no checkpoint in .* can be read \\(2 damaged\\)"):
        loop(tmp_path).run(Faulty(), resume=True)
