"""The examples in examples/ run as written: they are documentation that cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from store import Store

ROOT = Path(__file__).resolve().parents[1]


def test_the_library_example_runs_reviews_and_leaves_an_intact_history(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "library.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "approved amendment 1: revision 2" in done.stdout
    assert "audit: intact" in done.stdout
    with Store(str(tmp_path / "charter.db")) as store:
        assert store.constitution().revision == 2
        assert store.amendment(1).status == "applied"
        assert store.verify().ok
