"""`pytest -m "not postgres"` runs everything but the PostgreSQL cases, with no PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none"
# A PostgreSQL case: the `postgresql` parameter of a database fixture, or a test named so.
ON_POSTGRESQL = re.compile(r"[\[-]postgresql[\]-]|_postgresql\b")


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHARTER_TEST_PG": UNREACHABLE}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _collected(*args: str) -> list[str]:
    done = _pytest("--collect-only", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_not_postgres_deselects_exactly_the_postgresql_cases() -> None:
    kept = _collected("-m", "not postgres", "tests/store", "tests/agent/test_loop_crash.py")
    marked = _collected("-m", "postgres", "tests/store", "tests/agent/test_loop_crash.py")
    assert kept and marked
    assert not [t for t in kept if ON_POSTGRESQL.search(t)]
    assert all(ON_POSTGRESQL.search(t) for t in marked)
    assert any("[sqlite" in t for t in kept)


def test_store_tests_pass_without_a_reachable_postgresql() -> None:
    done = _pytest("-m", "not postgres", "tests/store/test_append_only.py")
    assert done.returncode == 0, done.stdout[-2000:]
    assert "deselected" in done.stdout
