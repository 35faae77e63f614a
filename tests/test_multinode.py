"""Two nodes under torchrun (`--nnodes 2 --nproc_per_node 1`, c10d rendezvous on localhost)
train the same weights as one process at the same global batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

from magvit.core.training.checkpoint import load_checkpoint

EXPERIMENT = """
extends = ["tiny-tokenizer"]
[run]
name = "two-nodes"
device = "cpu"
[data]
train_clips = 8
eval_clips = 2
[tokenizer]
base_channels = 8
channel_multipliers = [1, 2]
temporal_downsample = [true]
codebook_size = 32
entropy_weight = 0.0  # the batch-entropy term sees each rank's batch: off, so the runs can agree
[losses]
restart_dead_codes = false
[train]
steps = 3
batch_size = 4
warmup_steps = 0
checkpoint_every = 3
log_every = 1
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_node_rendezvous_trains_like_one_process(tmp_path):
    exp = tmp_path / "exp.toml"
    exp.write_text(EXPERIMENT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAGVIT_", "RANK", "WORLD_SIZE", "MASTER_"))}
    env["OMP_NUM_THREADS"] = "1"
    single = subprocess.run([sys.executable, "-m", "magvit", "train", "tokenizer", str(exp), "--output-dir",
                             str(tmp_path / "one")], env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]

    port = free_port()
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
         "--node_rank", str(rank), "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}",
         "--rdzv_id", "magvit-test", "--max_restarts", "0", "-m", "magvit", "train", "tokenizer", str(exp),
         "--output-dir", str(tmp_path / "two")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    outputs = []
    try:
        for node in nodes:
            outputs.append(node.communicate(timeout=300))
    finally:
        for node in nodes:
            node.kill()
    for node, (_, err) in zip(nodes, outputs):
        assert node.returncode == 0, err[-3000:]

    one, two = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    assert one.step == two.step == 3 and two.meta["world_size"] == 2
    for name, tensor in one.weights["model"].items():
        torch.testing.assert_close(two.weights["model"][name], tensor, atol=2e-5, rtol=1e-4, msg=name)
