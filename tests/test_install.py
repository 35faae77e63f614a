"""A plain (not editable) install carries the shipped experiments: they resolve by name from any
folder, and a README training command runs from an empty one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".git", "runs", "build", "dist", "*.egg-info", "__pycache__",
                              "tests", "plugins_contrib", "docs", "benchmarks", ".ci")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`pip install --target` of a copy of the source tree (pip would leave build/ in ours)."""
    root = tmp_path_factory.mktemp("install")
    source, site = root / "source", root / "site"
    shutil.copytree(REPO, source, ignore=SKIP)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(site), str(source)],
        check=True, capture_output=True,
    )
    shutil.rmtree(source)  # nothing may be read from the source tree
    empty = root / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAGVIT_")}
    env["PYTHONPATH"] = str(site)
    return site, empty, env


def run(installed, *code_or_args: str) -> subprocess.CompletedProcess:
    _site, empty, env = installed
    return subprocess.run([sys.executable, *code_or_args], cwd=empty, env=env, capture_output=True,
                          text=True, timeout=300)


def test_every_shipped_experiment_resolves_by_name_from_an_empty_folder(installed):
    site = installed[0]
    out = run(installed, "-c", """
import magvit
from magvit.registry.experiment import load_experiment
from magvit.registry.toml_files import shipped_experiments
print(magvit.__file__)
names = shipped_experiments()
for name in names:
    assert load_experiment(name).run.name == name, name
print(len(names), " ".join(names))
""")
    assert out.returncode == 0, out.stderr[-3000:]
    where, listing = out.stdout.splitlines()[:2]
    assert Path(where).is_relative_to(site), f"imported magvit from {where}, not the install"
    count, *names = listing.split()
    assert int(count) == len(names) >= 10
    assert {"tiny", "tiny-tokenizer", "tiny-tokenizer-fine", "bair-mt8", "ucf101-cg"} <= set(names)


def test_cli_lists_shows_and_trains_from_the_install(installed):
    listed = run(installed, "-m", "magvit", "experiments", "list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "tiny-tokenizer " in listed.stdout and "Stage 1, CPU" in listed.stdout

    shown = run(installed, "-m", "magvit", "config", "show", "tiny")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert 'name = "tiny"' in shown.stdout and "[transformer]" in shown.stdout

    trained = run(installed, "-m", "magvit", "train", "tokenizer", "tiny-tokenizer",
                  "--set", "train.steps=2", "--set", "train.warmup_steps=0",
                  "--set", "data.train_clips=4", "--set", "data.eval_clips=2")
    assert trained.returncode == 0, trained.stderr[-3000:]
    run_dir = installed[1] / "runs" / "tiny-tokenizer"
    assert (run_dir / "config.resolved.toml").is_file()
    assert any((run_dir / "checkpoints").glob("*/checkpoint.json"))
