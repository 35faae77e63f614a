"""The README's and CONTRIBUTING's examples run as printed, and every plugin they define passes
the conformance check of its kind (what a plugin author copies must work)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest
import torch

from magvit.core.video_io import write_video
from magvit.registry import KINDS, Registry
from magvit.registry.experiment import load_experiment
from magvit.testing import CHECKS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "CONTRIBUTING.md")


def blocks(language: str) -> list[tuple[str, int, str]]:
    """(file, index, code) of every fenced block in `language`."""
    found = []
    for doc in DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        for i, code in enumerate(re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)):
            found.append((doc, i, code))
    return found


PYTHON = blocks("python")
EXPERIMENTS = [b for b in blocks("toml") if "[run]" in b[2]]


def test_the_docs_have_examples():
    assert {doc for doc, _, _ in PYTHON} == set(DOCS) and len(EXPERIMENTS) >= 1


@pytest.mark.parametrize("doc,index,code", PYTHON, ids=[f"{d}-{i}" for d, i, _ in PYTHON])
def test_python_example_runs_and_its_plugins_conform(doc, index, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    t = torch.linspace(0, 1, 8)[:, None, None]
    write_video(tmp_path / "clip.mp4", (t * torch.ones(3, 8, 32, 32)).clamp(0, 1))  # for "clip.mp4"
    module = types.ModuleType(f"docs_example_{index}")  # imported like a plugin module would be
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, f"{doc}[python block {index}]", "exec"), module.__dict__)
    namespace = module.__dict__
    hooks = {k: v for k, v in namespace.items() if k.startswith("magvit_register_")}
    for hook_name, hook in hooks.items():
        kind = hook_name.removeprefix("magvit_register_")
        assert kind in KINDS, f"{doc}: {hook_name} is not a hook"
        assert hasattr(hook, "magvit_impl"), f"{doc}: {hook_name} is not marked @hookimpl"
        registry = Registry(kind)
        hook(registry=registry)
        assert registry.names(), f"{doc}: {hook_name} registered nothing"
        for name in registry.names():
            CHECKS[kind](registry.create(name), who=f"{doc} {kind}.{name}")
    if "result" in namespace:  # the generation example ran: its result has the documented shape
        assert namespace["result"].video.shape == (1, 3, 8, 32, 32)
    if "pipe" in namespace:
        assert len(namespace["pipe"].task_names) == 10


@pytest.mark.parametrize("doc,index,text", EXPERIMENTS, ids=[f"{d}-{i}" for d, i, _ in EXPERIMENTS])
def test_experiment_example_validates(doc, index, text, tmp_path):
    path = tmp_path / "example.toml"
    path.write_text(text)
    experiment = load_experiment(path)
    assert experiment.run.name


def test_ci_runs_the_readmes_test_command():
    """The README's first screen promises the command CI runs; both must name the same pytest call
    (`-n auto`: one worker per core, each with one torch thread, see conftest.py)."""
    bash = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    line = next(ln for ln in bash.group(1).splitlines() if ln.endswith("# the tests"))
    command = line.removesuffix("# the tests").split("&&")[-1].strip()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command == "python3 -m pytest -q -n auto" and command in ci
    assert all("pytest -q -n auto" in ln for ln in ci if "pytest" in ln and not ln.startswith("#"))
