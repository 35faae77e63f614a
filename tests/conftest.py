"""Shared fixtures: toy plugins and registries isolated from the installed ones."""

from __future__ import annotations

import os

# One torch thread per test process: the tests use tiny tensors, for which extra threads only
# wait on each other (measured: the decoder tests take 77 s with 2 threads, 8 s with 1).
# Subprocesses the tests start inherit this through the environment.
# OMP_NUM_THREADS=2 runs them with two (the suite must pass with 1 or 2).
THREADS = int(os.environ.setdefault("OMP_NUM_THREADS", "1"))
# Generation in fp32 on every CI machine: "auto" picks bf16 where the CPU has bf16 instructions
# (AMX, AVX-512 BF16) and fp32 elsewhere, which would make generated numbers machine-dependent.
# tests/test_precision.py runs the bf16 path on purpose.
os.environ.setdefault("MAGVIT_PRECISION", "fp32")

import types  # noqa: E402

import attrs  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import magvit  # noqa: E402
from magvit.registry import load_registries, manager  # noqa: E402
from magvit.registry.components import Component, using_registries  # noqa: E402

torch.set_num_threads(THREADS)


@attrs.define
class ToyEdge:
    def __call__(self, video, pixel_mask):
        return video


@attrs.define
class ToyTask:
    cond_frames: int = 1
    padding: Component.of("paddings") = attrs.field(factory=lambda: None)


@attrs.define
class ToyDecoder:
    steps: int = 12
    temperature: float = 4.5
    schedule: str = "cosine"


def toy_plugin() -> types.SimpleNamespace:
    """A plugin object with three hook implementations, as a third party would write them."""
    return types.SimpleNamespace(
        magvit_register_paddings=magvit.hookimpl(lambda registry: registry.add("edge", ToyEdge)),
        magvit_register_tasks=magvit.hookimpl(lambda registry: registry.add("fp", ToyTask)),
        magvit_register_decoders=magvit.hookimpl(lambda registry: registry.add("commit", ToyDecoder)),
    )


@pytest.fixture
def toy_registries(monkeypatch):
    """Registries holding only the toy plugin, installed as the process-wide registries."""
    regs = load_registries(builtins=False, entry_points=False, extra_plugins=[("toy", toy_plugin())])
    monkeypatch.setattr(manager, "_CACHE", regs)
    with using_registries(regs):
        yield regs


# Modules whose assertions depend on floating-point kernels: they train and check a number, compare
# two computation paths (DDP vs one process, resume vs uninterrupted, cached vs full), or pin values
# from the authors' release. `.ci/run` runs them again under ATEN_CPU_CAPABILITY=default (the
# scalar kernels); the whole suite also runs under ATEN_CPU_CAPABILITY=avx2.
NUMERICS_MODULES = {
    "test_commit_loss", "test_decoders", "test_default_model", "test_demo", "test_inflation",
    "test_masking", "test_multinode", "test_precision", "test_quantizers", "test_schedules",
    "test_shape_classifier", "test_smoothed_cross_entropy", "test_tokenizer_losses", "test_tokenizer_model",
    "test_tokenizer_training", "test_train_transformer", "test_training_ddp", "test_training_loop",
    "test_transformer_attention", "test_transformer_bert",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__.rpartition(".")[2] in NUMERICS_MODULES:
            item.add_marker(pytest.mark.numerics)
