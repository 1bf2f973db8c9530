"""Imports only go downward: charter -> agent -> store -> principles (DESIGN.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["principles", "store", "agent", "charter"]
THIRD_PARTY_BANNED = {
    "principles": {"sqlalchemy", "alembic", "torch", "transformers", "httpx", "typer", "rich"},
    "store": {"torch", "transformers", "typer", "rich", "agent", "charter"},
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_only_go_downward(layer: str) -> None:
    above = set(LAYERS[LAYERS.index(layer) + 1 :])
    banned = above | THIRD_PARTY_BANNED.get(layer, set())
    files = list((ROOT / layer).rglob("*.py"))
    assert files
    offenders = {
        f"{f.relative_to(ROOT)} imports {name}" for f in files for name in _imports(f) & banned
    }
    assert not offenders


def test_importing_the_packages_never_loads_heavy_libraries() -> None:
    """torch/transformers/xgrammar load only when a backend that needs them is used."""
    probe = (
        "import sys, agent, agent.models, store, principles, charter.cli\n"
        "print([m for m in ('torch', 'transformers', 'xgrammar') if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
