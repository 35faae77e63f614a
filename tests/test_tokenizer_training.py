"""Stage-1 training: exact resume, DDP = one process, overfitting one clip, config errors."""

from __future__ import annotations

import copy

import attrs
import pytest
import torch

import magvit
from magvit.core.metrics import psnr
from magvit.core.training.checkpoint import load_checkpoint
from magvit.errors import MagvitError
from magvit.registry.experiment import validate_experiment
from magvit.workflows.tokenizer_stage import TokenizerStage
from magvit.workflows.train_tokenizer import build_tokenizer, load_tokenizer, train

# A micro tokenizer (factors (2, 2, 2), 32 codes) with every loss on: the whole stage is exercised.
MICRO = {
    "run": {"name": "micro", "seed": 0, "device": "cpu"},
    "data": {"kind": "synthetic", "frames": 4, "resolution": 16, "train_clips": 16, "eval_clips": 4},
    "tokenizer": {
        "kind": "vq3d", "preset": "tiny", "base_channels": 8, "channel_multipliers": [1, 2],
        "temporal_downsample": [True], "embedding_dim": 8, "codebook_size": 32,
        "disc_channels": 4, "disc_multipliers": [1, 2],
    },
    "train": {"steps": 6, "batch_size": 4, "lr": 1e-3, "warmup_steps": 2, "betas": [0.0, 0.99],
              "ema_decay": 0.9, "log_every": 1, "checkpoint_every": 3},
    "losses": {"gan": 0.1, "lecam": 0.001, "usage_window": 2, "restart_dead_codes": True,
               "perceptual": 0.0},
}


def micro_tokenizer(**changes):
    config = {k: v for k, v in MICRO["tokenizer"].items() if k != "kind"}
    return magvit.registries().tokenizers.create("vq3d", **{**config, **changes})


def experiment(**sections):
    raw = copy.deepcopy(MICRO)
    for name, changes in sections.items():
        raw[name].update(changes)
    return validate_experiment(raw)


def all_weights(run_dir):
    ckpt = load_checkpoint(run_dir)
    return ckpt.step, ckpt.weights, ckpt.state["stage"]


def assert_same(a, b, exact=True):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key], exact)
    elif isinstance(a, (list, tuple)):
        for x, y in zip(a, b, strict=True):
            assert_same(x, y, exact)
    elif isinstance(a, torch.Tensor):
        if exact:
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    else:
        assert a == b


def kill_then_resume(exp, run_dir, monkeypatch, at_step: int) -> None:
    """Train `exp` into `run_dir`, killed at `at_step`, then resumed from its last checkpoint."""
    honest_step = TokenizerStage.train_step

    def dies(self, step):
        if step == at_step:
            raise RuntimeError("killed")
        return honest_step(self, step)

    monkeypatch.setattr(TokenizerStage, "train_step", dies)
    with pytest.raises(RuntimeError, match="killed"):
        train(exp, run_dir)
    monkeypatch.undo()
    train(exp, run_dir, resume=True)


def test_killed_run_resumed_ends_with_the_same_weights(tmp_path, monkeypatch):
    exp = experiment()
    train(exp, tmp_path / "straight")
    step, weights, state = all_weights(tmp_path / "straight")
    assert step == 6 and set(weights) == {"model", "ema", "disc"}
    assert weights["disc"]["lecam.ema_real"].item() != 0.0  # LeCam state travels with the disc

    honest_step = TokenizerStage.train_step

    def dies_at_step_4(self, step):
        if step == 4:
            raise RuntimeError("killed")
        return honest_step(self, step)

    monkeypatch.setattr(TokenizerStage, "train_step", dies_at_step_4)
    with pytest.raises(RuntimeError, match="killed"):
        train(exp, tmp_path / "resumed")
    assert load_checkpoint(tmp_path / "resumed").step == 3
    monkeypatch.undo()
    with pytest.raises(MagvitError, match="already has a checkpoint .* pass --resume"):
        train(exp, tmp_path / "resumed")
    train(exp, tmp_path / "resumed", resume=True)
    assert_same(all_weights(tmp_path / "resumed"), (step, weights, state))


def _train_in_process_group(raw, run_dir):
    from magvit.registry.experiment import validate_experiment
    from magvit.workflows.train_tokenizer import train

    train(validate_experiment(raw), run_dir)


@pytest.mark.slow
def test_two_ddp_processes_match_one_process_at_the_same_global_batch(tmp_path):
    from magvit.core.training.testing import run_ddp

    # Terms that depend on the whole batch non-linearly are off: the entropy penalty (batch
    # code distribution), LeCam (square of the batch mean) and dead-code restarts (which
    # encoder outputs a rank sees).
    changes = dict(tokenizer={"entropy_weight": 0.0}, train={"steps": 3},
                   losses={"lecam": 0.0, "restart_dead_codes": False})
    raw = copy.deepcopy(MICRO)
    for name, values in changes.items():
        raw[name].update(values)
    train(validate_experiment(raw), tmp_path / "one")
    run_ddp(_train_in_process_group, 2, args=(raw, tmp_path / "two"))
    one, two = all_weights(tmp_path / "one"), all_weights(tmp_path / "two")
    assert load_checkpoint(tmp_path / "two").meta["world_size"] == 2
    assert_same(one[1], two[1], exact=False)
    first = torch.nn.utils.parameters_to_vector(micro_tokenizer().parameters())
    assert not torch.allclose(first, torch.cat([v.flatten() for k, v in one[1]["model"].items()
                                                if k != "quantizer.hits"]))


@pytest.mark.slow
def test_overfits_one_clip():
    """The whole tokenizer (encoder, VQ, decoder) can memorise one clip.

    300 steps: at 150 the PSNR still depended on the CPU's kernels (25.9 to 29.1 dB across
    AVX-512, AVX2 and the scalar path); by 300 every path measured is above 33 dB, so the 28 dB
    line has a margin of 5 dB, and the clip's mean colour (18.2 dB) is far below it.
    """
    torch.manual_seed(0)
    clip = magvit.registries().datasets.create("synthetic", frames=4, resolution=16).make("train", 0)[0]
    video = clip["video"][None]
    model = micro_tokenizer(codebook_size=64)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(300):
        recon, aux = model(video)
        loss = (2 * (recon - video)).pow(2).mean() + aux["quantizer_loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    score = psnr(model.decode(model.encode(video)), video).item()
    flat = psnr(video.mean(dim=(2, 3, 4), keepdim=True).expand_as(video), video).item()
    assert score > 28.0 and score > flat + 9.0, f"PSNR {score:.1f} dB after overfitting one clip (mean colour: {flat:.1f} dB)"


def test_load_tokenizer_reads_the_config_saved_with_the_checkpoint(tmp_path):
    exp = experiment(train={"steps": 2, "checkpoint_every": 2}, losses={"gan": 0.0})
    train(exp, tmp_path / "run")
    model = load_tokenizer(checkpoint=tmp_path / "run")
    ema = load_checkpoint(tmp_path / "run").weights["ema"]
    assert torch.equal(model.state_dict()["quantizer.codebook"], ema["quantizer.codebook"])
    assert model.codebook_size == 32 and model.factors == (2, 2, 2) and not model.training


def test_missing_sections_and_bad_losses_are_reported():
    raw = copy.deepcopy(MICRO)
    del raw["tokenizer"]
    with pytest.raises(MagvitError, match=r"no \[tokenizer\] section"):
        train(validate_experiment(raw), "unused")
    with pytest.raises(MagvitError, match=r"losses.gann: unknown key; did you mean 'gan'\?"):
        train(experiment(losses={"gann": 1.0}), "unused")
    with pytest.raises(MagvitError, match="losses.gan: must be >= 0.0, got -1.0"):
        train(experiment(losses={"gan": -1.0}), "unused")


@pytest.mark.parametrize("kind", ["central", "average"])
def test_init_inflates_a_vq2d_checkpoint(tmp_path, kind):
    two_d = experiment(train={"steps": 1, "checkpoint_every": 1, "warmup_steps": 0}, losses={"gan": 0.0})
    two_d.tokenizer = attrs.evolve(two_d.tokenizer, kind="vq2d")
    train(two_d, tmp_path / "vq2d")
    source = load_checkpoint(tmp_path / "vq2d").weights["ema"]
    three_d = experiment(tokenizer={"init": {"kind": kind, "checkpoint": str(tmp_path / "vq2d")}})
    model = build_tokenizer(three_d.tokenizer)
    kernel_2d = source["encoder.conv_in.weight"]  # (O, I, 1, 3, 3)
    kernel_3d = model.state_dict()["encoder.conv_in.weight"]  # (O, I, 3, 3, 3)
    if kind == "central":
        assert torch.equal(kernel_3d[:, :, 1], kernel_2d[:, :, 0])
        assert not kernel_3d[:, :, [0, 2]].any()
    else:
        for t in range(3):
            torch.testing.assert_close(kernel_3d[:, :, t], kernel_2d[:, :, 0] / 3)
    # Everything else is copied as it is.
    assert torch.equal(model.state_dict()["quantizer.codebook"], source["quantizer.codebook"])
    assert torch.equal(model.state_dict()["encoder.norm_out.weight"], source["encoder.norm_out.weight"])


def test_a_resume_neither_reads_nor_checks_tokenizer_init(tmp_path, capsys):
    """A resume takes the inflated weights from its checkpoint, so a source removed since stops a
    new run but not the resume (CLI and workflow alike); `--resume` in an empty folder is a new
    run and inflates from the source like one without the flag."""
    import shutil

    import tomli_w

    from magvit.cli.main import main
    from magvit.workflows.preflight import experiment_problems

    train(experiment(tokenizer={"kind": "vq2d"}, train={"steps": 1, "checkpoint_every": 1, "warmup_steps": 0},
                     losses={"gan": 0.0}), tmp_path / "vq2d")
    raw = copy.deepcopy(MICRO)
    raw["tokenizer"]["init"] = {"kind": "central", "checkpoint": str(tmp_path / "vq2d")}
    raw["train"].update(steps=2, checkpoint_every=1, warmup_steps=0)
    raw["losses"]["gan"] = 0.0
    three_d = validate_experiment(raw)
    train(three_d, tmp_path / "new")
    train(three_d, tmp_path / "empty", resume=True)
    assert_same(all_weights(tmp_path / "empty"), all_weights(tmp_path / "new"))
    kernel = "encoder.conv_in.weight"  # (O, I, 3, 3, 3): inflated `central` has zero outer taps
    assert not build_tokenizer(three_d.tokenizer).state_dict()[kernel][:, :, [0, 2]].any()
    assert build_tokenizer(three_d.tokenizer, resume=True).state_dict()[kernel][:, :, [0, 2]].any()

    shutil.rmtree(tmp_path / "vq2d")
    missing = f"tokenizer.init.checkpoint: {str(tmp_path / 'vq2d')!r} does not exist; give a `vq2d` run directory"
    assert experiment_problems(three_d) == [missing]
    assert experiment_problems(three_d, resuming=True) == []
    bogus = copy.deepcopy(raw)
    bogus["tokenizer"]["init"]["kind"] = "bogus"  # a config mistake, reported whether or not the run reads the source
    problems = experiment_problems(validate_experiment(bogus), resuming=True)
    assert len(problems) == 1 and problems[0].startswith("tokenizer.init.kind: unknown inflation 'bogus'")
    (tmp_path / "micro.toml").write_text(tomli_w.dumps(raw))
    args = ["train", "tokenizer", str(tmp_path / "micro.toml"), "--set", "train.steps=3", "--resume", "--output-dir"]
    assert main([*args, str(tmp_path / "new")]) == 0
    assert load_checkpoint(tmp_path / "new").step == 3
    capsys.readouterr()
    assert main([*args, str(tmp_path / "other")]) == 2  # nothing to resume there: a new run needs the source
    assert missing in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_init_from_a_mismatched_checkpoint_is_refused(tmp_path):
    train(experiment(train={"steps": 1, "checkpoint_every": 1, "warmup_steps": 0}, losses={"gan": 0.0}), tmp_path / "run")
    wider = experiment(tokenizer={"base_channels": 16,
                                  "init": {"kind": "central", "checkpoint": str(tmp_path / "run")}})
    with pytest.raises(MagvitError, match=r"cannot inflate \S+ from .*: its kernel \(16, 16, 3, 3, 3\) is not the 2D "
                       r"form \(O, I, 1, k, k\) of \(32, 32, 3, 3, 3\)"):
        build_tokenizer(wider.tokenizer)


def _linear_in_the_batch(batch_size, accumulate=1):
    """Every loss a mean over the batch: no GAN, no batch-entropy term, no dead-code restarts
    (those see each micro-batch on its own, by design)."""
    return experiment(
        tokenizer={"entropy_weight": 0.0},
        train={"steps": 3, "batch_size": batch_size, "accumulate": accumulate, "checkpoint_every": 3},
        losses={"gan": 0.0, "lecam": 0.0, "restart_dead_codes": False},
    )


def test_four_accumulated_batches_of_two_give_the_update_of_one_batch_of_eight(tmp_path):
    runs = {}
    for name, (batch, parts) in {"b8": (8, 1), "b2x4": (2, 4), "b2": (2, 1)}.items():
        train(_linear_in_the_batch(batch, parts), tmp_path / name)
        runs[name] = load_checkpoint(tmp_path / name).weights["model"]
    worst = max((runs["b8"][n] - runs["b2x4"][n]).abs().max().item() for n in runs["b8"])
    assert worst < 1e-6, f"weights differ by {worst:.2e} after 3 steps"
    assert max((runs["b8"][n] - runs["b2"][n]).abs().max().item() for n in runs["b8"]) > 1e-4


def test_a_runs_resolved_config_trained_again_repeats_the_run(tmp_path):
    """`config.resolved.toml` is an experiment: training it again (same seed) gives the same weights."""
    from magvit.cli.main import main

    first, again = tmp_path / "first", tmp_path / "again"
    assert main(["--threads", "1", "train", "tokenizer", "tiny-tokenizer", "--output-dir", str(first),
                 "--set", "train.steps=2", "--set", "train.warmup_steps=0", "--set", "data.train_clips=4",
                 "--set", "data.eval_clips=4"]) == 0
    assert main(["--threads", "1", "train", "tokenizer", str(first / "config.resolved.toml"),
                 "--output-dir", str(again)]) == 0
    weights = load_checkpoint(first).weights["model"]
    repeated = load_checkpoint(again).weights["model"]
    assert weights.keys() == repeated.keys() and len(weights) > 10
    assert all(torch.equal(weights[k], repeated[k]) for k in weights)
