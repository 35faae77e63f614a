"""Real distributions installed with pip are discovered through the `magvit` entry-point group."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DISTS = Path(__file__).parent / "plugin_dists"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The toy and the broken plugin, pip-installed into a private site directory."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target),
         str(DISTS / "magvit-toy-plugin"), str(DISTS / "magvit-broken-plugin")],
        check=True, capture_output=True,
    )
    return target


def magvit_cli(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAGVIT_")}
    environ.update(env, PYTHONPATH=os.pathsep.join([str(site), environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "magvit", *args], env=environ,
                          capture_output=True, text=True, timeout=120)


def test_installed_plugin_shows_up_and_broken_one_is_reported(site):
    out = magvit_cli(site, "plugins", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    toy = next(p for p in report["plugins"] if p["name"] == "toy")
    assert toy == {"name": "toy", "distribution": "magvit-toy-plugin", "version": "1.2.3",
                   "builtin": False, "registered": {"schedules": ["toy_sqrt"]}}
    (failure,) = [f for f in report["failures"] if f["name"] == "broken"]
    assert failure["distribution"] == "magvit-broken-plugin" and failure["stage"] == "import"
    assert "No module named 'magvit_dependency_that_does_not_exist'" in failure["error"]


def test_plugin_components_are_usable_by_name(site):
    out = magvit_cli(site, "registry", "list", "schedules")
    assert out.returncode == 0, out.stderr
    assert "toy_sqrt" in out.stdout and "magvit-toy-plugin 1.2.3" in out.stdout


def test_human_listing_names_the_failure(site):
    out = magvit_cli(site, "plugins")
    assert out.returncode == 0
    assert "toy  [magvit-toy-plugin 1.2.3, third-party]" in out.stdout
    assert "schedules: toy_sqrt" in out.stdout
    assert "broken (magvit-broken-plugin) failed to import: ModuleNotFoundError" in out.stdout


def test_strict_mode_turns_the_broken_plugin_into_exit_2(site):
    out = magvit_cli(site, "plugins", MAGVIT_STRICT_PLUGINS="1")
    assert out.returncode == 2
    assert "magvit: error: broken (magvit-broken-plugin) failed to import" in out.stderr
    assert "Traceback" not in out.stderr


def test_blocking_the_broken_plugin(site):
    out = magvit_cli(site, "plugins", "--json", MAGVIT_BLOCK_PLUGINS="broken")
    report = json.loads(out.stdout)
    assert report["failures"] == [] and report["blocked"] == ["broken"]
