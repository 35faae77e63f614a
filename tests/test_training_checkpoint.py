"""Checkpoints: atomic under crashes, tied tensors, pruning, path resolution, clear errors."""

from __future__ import annotations

import multiprocessing
import os

import pytest
import torch
from torch import nn

from magvit.core.training.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_weights,
    resolve_checkpoint,
    save_checkpoint,
)
from magvit.errors import MagvitError


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.head = nn.Linear(3, 5)
        self.head.weight = self.embed.weight  # tied, as the BERT head is
        self.register_buffer("count", torch.tensor(7))


def _save(run, step, value=1.0, **kw):
    weights = {"model": {"w": torch.full((2, 2), value)}}
    return save_checkpoint(run, step, weights=weights, state={"step": step, "lr": [0.1]}, **kw)


def test_round_trip_with_tied_tensor_state_and_files(tmp_path):
    torch.manual_seed(0)
    model = Tied()
    state = {"optimizer": {"lr": 1e-4, "exp_avg": torch.arange(3.0)}, "counter": 12, "name": "x"}
    path = save_checkpoint(tmp_path, 12, weights={"model": model.state_dict()}, state=state,
                           files={"config.resolved.toml": "[run]\nseed = 3\n"}, meta={"note": "hi"})
    assert path == tmp_path / "checkpoints" / "step-00000012"
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.step == 12 and ckpt.path == path and ckpt.meta == {"note": "hi"}
    assert ckpt.files == {"config.resolved.toml": "[run]\nseed = 3\n"}
    sd = ckpt.weights["model"]
    assert set(sd) == set(model.state_dict())
    assert sd["head.weight"] is sd["embed.weight"]  # stored once, restored as one tensor
    restored = Tied()
    restored.load_state_dict(sd)
    for name, value in model.state_dict().items():
        assert torch.equal(restored.state_dict()[name], value), name
    assert ckpt.state["counter"] == 12 and ckpt.state["name"] == "x"
    assert torch.equal(ckpt.state["optimizer"]["exp_avg"], torch.arange(3.0))


def test_views_of_one_storage_are_stored_separately(tmp_path):
    qkv = torch.arange(12.0).reshape(3, 4)
    save_checkpoint(tmp_path, 1, weights={"m": {"q": qkv[0], "k": qkv[1], "t": qkv.t()}}, state={})
    sd = load_weights(tmp_path, "m")
    assert sd["q"].tolist() == [0, 1, 2, 3] and sd["k"].tolist() == [4, 5, 6, 7]
    assert torch.equal(sd["t"], qkv.t())


def test_last_pointer_prune_and_resolution(tmp_path):
    for step in (10, 20, 30, 40):
        _save(tmp_path, step, value=step, keep=2)
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["step-00000030", "step-00000040"]
    assert (tmp_path / "checkpoints" / "last").read_text().strip() == "step-00000040"
    step40 = tmp_path / "checkpoints" / "step-00000040"
    for spelling in (tmp_path, tmp_path / "checkpoints", tmp_path / "checkpoints" / "last",
                     tmp_path / "last", step40):
        assert resolve_checkpoint(spelling) == step40, spelling
    assert resolve_checkpoint(tmp_path / "checkpoints" / "step-00000030").name == "step-00000030"
    assert load_weights(tmp_path / "last", "ema")["w"][0, 0].item() == 40.0  # falls back to model


def test_saving_a_step_again_replaces_it(tmp_path):
    _save(tmp_path, 5, value=1.0)
    _save(tmp_path, 5, value=2.0)
    assert load_weights(tmp_path, "model")["w"][0, 0].item() == 2.0
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000005"]


def _crashing_save(run_dir, point):
    """Save step 2 in a forked child that dies (os._exit: no cleanup) at `point`."""
    import magvit.core.training.checkpoint as ck

    def die(*args, **kwargs):
        os._exit(9)

    def half_written(tensors, path, metadata=None):
        open(path, "wb").write(b"half a file")
        die()

    if point == "weights":  # killed while a safetensors file is being written
        ck.safetensors.torch.save_file = half_written
    elif point == "state":
        ck.torch.save = die
    elif point == "pointer":  # killed after the step dir is in place, before `last` moves
        ck._point_last = die
    ck.save_checkpoint(run_dir, 2, weights={"model": {"w": torch.full((2,), 2.0)}}, state={})


@pytest.mark.parametrize("point", ["weights", "state", "pointer"])
def test_crash_mid_save_keeps_previous_checkpoint(tmp_path, point):
    _save(tmp_path, 1, value=1.0)
    child = multiprocessing.get_context("fork").Process(target=_crashing_save, args=(tmp_path, point))
    child.start()
    child.join(60)
    assert child.exitcode == 9
    leftovers = [p.name for p in (tmp_path / "checkpoints").iterdir()]
    if point == "pointer":
        assert "step-00000002" in leftovers  # complete, but `last` was never moved to it
    else:
        assert any(name.startswith(".tmp-step-00000002-") for name in leftovers)
    assert (tmp_path / "checkpoints" / "last").read_text().strip() == "step-00000001"
    assert latest_checkpoint(tmp_path).name == "step-00000001"
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.step == 1 and ckpt.weights["model"]["w"][0, 0].item() == 1.0
    # The next save clears the crashed save's leftovers and moves on.
    _save(tmp_path, 3, value=3.0)
    assert load_checkpoint(tmp_path).step == 3
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]


def test_stale_last_pointer_falls_back_to_newest_complete(tmp_path):
    _save(tmp_path, 1)
    _save(tmp_path, 2)
    (tmp_path / "checkpoints" / "last").write_text("step-00000099\n")
    assert latest_checkpoint(tmp_path).name == "step-00000002"


def test_missing_and_corrupt_checkpoints_name_the_path(tmp_path):
    with pytest.raises(MagvitError, match=r"checkpoint .*nowhere does not exist"):
        load_checkpoint(tmp_path / "nowhere")
    with pytest.raises(MagvitError, match=r"checkpoint .*nowhere/last does not exist"):
        load_weights(tmp_path / "nowhere" / "last")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MagvitError, match=r"no checkpoint found at .*empty"):
        resolve_checkpoint(tmp_path / "empty")
    assert latest_checkpoint(tmp_path / "empty") is None
    path = _save(tmp_path / "run", 4)
    (path / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(MagvitError, match=r"model\.safetensors cannot be read .*corrupt"):
        load_checkpoint(path)
    other = _save(tmp_path / "run", 5)
    (other / "state.pt").write_bytes(b"nope")
    with pytest.raises(MagvitError, match=r"step-00000005/state\.pt is damaged"):
        load_checkpoint(tmp_path / "run")
    with pytest.raises(MagvitError, match=r"has no weights 'disc'; it has: model"):
        load_weights(path, "disc", fallback=None)


def test_unsafe_state_and_names_are_refused_before_writing(tmp_path):
    import numpy as np

    with pytest.raises(TypeError, match=r"state\['rng'\] is a numpy.ndarray"):
        save_checkpoint(tmp_path, 1, weights={}, state={"rng": np.zeros(2)})
    with pytest.raises(ValueError, match="'state.pt' is not allowed"):
        save_checkpoint(tmp_path, 1, weights={}, state={}, files={"state.pt": "x"})
    with pytest.raises(ValueError, match="keep must be at least 1"):
        save_checkpoint(tmp_path, 1, weights={}, state={}, keep=0)
    assert list_checkpoints(tmp_path) == []


def test_checkpoint_files_get_the_users_umask_not_private_modes(tmp_path):
    from magvit.core.files import current_umask

    step_dir = save_checkpoint(tmp_path, 3, weights={"model": {"w": torch.ones(2)}}, state={"n": 1})
    mask = current_umask()
    assert step_dir.stat().st_mode & 0o777 == 0o777 & ~mask  # mkdtemp made it 0700
    for item in step_dir.iterdir():
        assert item.stat().st_mode & 0o777 == 0o666 & ~mask, item.name  # safetensors wrote 0600
