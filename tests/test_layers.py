"""The layers CONTRIBUTING states, enforced on the source: each imports only from below it.

core (pure torch) < registry < api < plugins < workflows < pipeline facade < cli. `errors` and
`weights` are leaves anyone above core may use.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "magvit"

# layer -> the magvit sub-packages/modules it must not import (third-party bans in THIRD_PARTY)
FORBIDDEN = {
    "core": {"registry", "api", "plugins", "workflows", "pipeline", "cli", "weights", "testing"},
    "registry": {"api", "plugins", "workflows", "pipeline", "cli", "weights", "testing"},
    "api": {"plugins", "workflows", "pipeline", "cli", "testing"},
    "plugins": {"workflows", "pipeline", "cli", "testing"},
    "weights": {"core", "registry", "api", "plugins", "workflows", "pipeline", "cli", "testing"},
    "testing": {"plugins", "workflows", "pipeline", "cli"},
    "workflows": {"pipeline", "cli"},
    "pipeline": {"cli"},
}
THIRD_PARTY = {"core": {"pluggy", "cattrs"}}


def layer_of(path: Path, root: Path = PACKAGE) -> str:
    return path.relative_to(root).parts[0].removesuffix(".py")


def magvit_imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in the file, at any depth (function-level too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            if node.module == "magvit":  # `from magvit import api` names a sub-module
                found += [(node.lineno, f"magvit.{alias.name}") for alias in node.names]
    return found


def violations(path: Path, root: Path = PACKAGE) -> list[str]:
    layer = layer_of(path, root)
    banned = FORBIDDEN.get(layer, set())
    out = []
    for line, module in magvit_imports(path):
        parts = module.split(".")
        if parts[0] == "magvit" and len(parts) > 1 and parts[1] in banned:
            out.append(f"{path.relative_to(root.parent)}:{line} ({layer}) imports {module}")
        if parts[0] in THIRD_PARTY.get(layer, ()):
            out.append(f"{path.relative_to(root.parent)}:{line} ({layer}) imports {module}")
        if layer == "core" and module == "magvit":
            out.append(f"{path.relative_to(root.parent)}:{line} (core) imports the magvit package")
    return out


def test_every_module_imports_only_from_the_layers_below_it():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 80 and any(layer_of(f) == "core" for f in files)
    problems = [v for f in files for v in violations(f)]
    assert not problems, "layer violations:\n" + "\n".join(problems)


def test_the_checker_sees_a_violation(tmp_path):
    """The rule above can fail: imports hidden in a function are found and reported by layer."""
    root = tmp_path / "magvit"
    probe = root / "core" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("import torch\n\ndef f():\n    from magvit.registry import registries\n    import pluggy\n")
    assert [v.split(" imports ")[1] for v in violations(probe, root)] == ["magvit.registry", "pluggy"]
    assert violations(probe, root)[0].startswith("magvit/core/probe.py:4 (core)")
    fine = root / "workflows" / "ok.py"
    fine.parent.mkdir()
    fine.write_text("from magvit.registry import registries\nfrom magvit import pipeline\n")
    assert violations(fine, root) == ["magvit/workflows/ok.py:2 (workflows) imports magvit.pipeline"]


@pytest.mark.parametrize("module", ["magvit.core.transformer.bert", "magvit.core.tokenizer.vq3d",
                                    "magvit.core.decoding", "magvit.core.training"])
def test_importing_the_core_loads_no_plugin_machinery(module):
    code = (f"import sys, {module}\n"
            "print(sorted(m for m in ('pluggy', 'cattrs', 'magvit.registry', 'magvit.plugins') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
