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
    """torch/transformers/xgrammar load only when a backend that needs them is used, and
    OpenTelemetry only when a run is traced (so `charter --help` loads none of them)."""
    probe = (
        "import sys, agent, agent.models, store, principles, charter.cli\n"
        "heavy = ('torch', 'transformers', 'xgrammar', 'opentelemetry')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


def _modules_imported(path: Path) -> set[str]:
    """Full names a module imports, anywhere in it (`from a import b` gives a and a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_the_web_app_imports_its_routes_never_the_other_way_round() -> None:
    """STYLE.md: shared request helpers live in their own module (charter/web/_web.py); the
    route modules import it, never the app module or the package that re-exports it."""
    web = ROOT / "charter" / "web"
    entry_points = {"__init__.py", "_app.py", "_server.py"}
    offenders = {
        f"{f.name} imports {name}"
        for f in web.glob("*.py")
        if f.name not in entry_points
        for name in _modules_imported(f) & {"charter.web", "charter.web._app"}
    }
    assert not offenders


def test_the_web_ui_never_imports_the_cli() -> None:
    """The review UI and the CLI are two edges side by side: what both need lives in a shared
    module (e.g. charter/_refs.py), not in a CLI module that the web UI reaches into."""
    charter = ROOT / "charter"
    cli = {"charter.cli"} | {f"charter.{f.stem}" for f in charter.glob("_*_cli.py")}
    cli |= {f"charter.{f.stem}" for f in charter.glob("*.py") if "typer" in _imports(f)}
    offenders = {
        f"{f.relative_to(ROOT)} imports {name}"
        for f in (charter / "web").rglob("*.py")
        for name in _modules_imported(f) & cli
    }
    assert not offenders
