"""kill -9 a real `charter run` process at random points; resume; compare with a run that
was never interrupted. Nothing may be lost or written twice (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from principles import default_seed
from store import Store
from tests.conftest import reset_pg

RUN_ARGS = [
    "run",
    "--model",
    "scripted:loop",
    "--mode",
    "autonomous",
    "--iterations",
    "3",
    "--tasks-limit",
    "24",
    "--train-per-iteration",
    "4",
    "--heldout",
    "6",
    "--seed",
    "7",
    "--override-judge-floor",
]


def charter(db: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "charter.cli", "--db", db, *args]


def fresh(db: str) -> None:
    if db.startswith("postgresql"):
        reset_pg(db)
    with Store(db) as s:
        s.init(default_seed())


def state(db: str) -> list[Any]:
    """Everything a run wrote, with database ids replaced by their order of creation."""
    with Store(db) as s:
        runs = s.runs()
        assert len(runs) == 1
        run = runs[0]
        outputs = s.outputs(run.id)
        critiques = s.critiques(run.id)
        amendments = s.amendments(run_id=run.id)
        o_ix = {o.id: n for n, o in enumerate(outputs)}
        c_ix = {c.id: n for n, c in enumerate(critiques)}
        a_ix = {a.id: n for n, a in enumerate(amendments)}

        def evidence(ref: str) -> str:
            kind, _, n = ref.partition(":")
            return f"{kind}:{(o_ix if kind == 'output' else c_ix)[int(n)]}"

        return [
            run.status,
            run.steps_done,
            [
                (
                    o.iteration,
                    o.task_id,
                    o.purpose,
                    o.revision,
                    o.text,
                    a_ix.get(o.amendment_id) if o.amendment_id else None,
                    o_ix.get(o.parent_id) if o.parent_id else None,
                )
                for o in outputs
            ],
            [
                (
                    o_ix[c.output_id],
                    c.principle_id,
                    c.version,
                    round(c.score, 9),
                    c.verdict,
                    c.rationale,
                )
                for c in critiques
            ],
            [
                (
                    a.draft.op,
                    a.draft.principle_id,
                    a.draft.text,
                    a.status,
                    a.applied_revision,
                    a.evaluation.model_dump() if a.evaluation else None,
                    [evidence(e) for e in a.draft.evidence],
                )
                for a in amendments
            ],
            [(r.number, r.entries, r.author) for r in s.revisions()],
            [e.action for e in s.audit_log(limit=None)],
            s.verify().ok,
        ]


def kill_and_resume(db: str, delay: float) -> bool:
    """Start a run, SIGKILL it after `delay` s, then finish it; True if it was cut short."""
    fresh(db)
    proc = subprocess.Popen(
        charter(db, *RUN_ARGS), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(delay)
    interrupted = proc.poll() is None
    if interrupted:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    with Store(db) as s:
        runs = s.runs()
    args = RUN_ARGS if not runs else ["run", "--resume", str(runs[0].id)]
    if runs and runs[0].status == "completed":
        return interrupted
    done = subprocess.run(
        charter(db, *args), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return interrupted


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "points"),
    [("sqlite", 14), pytest.param("postgresql", 8, marks=pytest.mark.postgres)],
)
def test_killed_runs_resume_to_the_same_state(
    backend: str, points: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        make = lambda n: f"sqlite:///{tmp_path}/run{n}.db"  # noqa: E731
    else:
        url: str = request.getfixturevalue("pg_database")
        make = lambda n: url  # noqa: E731
    # A fresh checkout's first run also compiles bytecode and would be timed long, so that
    # kills timed from it land after later (faster) runs ended: warm up, then time.
    warm = make("warm")
    fresh(warm)
    subprocess.run(charter(warm, *RUN_ARGS), check=True, capture_output=True, timeout=120)
    reference = make("ref")
    fresh(reference)
    started = time.monotonic()
    subprocess.run(charter(reference, *RUN_ARGS), check=True, capture_output=True, timeout=120)
    duration = time.monotonic() - started
    expected = state(reference)
    assert expected[0] == "completed" and expected[-1] is True

    rng = random.Random(20261126)
    cut = 0
    for n in range(points):
        delay = rng.uniform(0.15 * duration, 0.95 * duration)
        cut += kill_and_resume(make(n), delay)
        assert state(make(n)) == expected, f"kill point {n} at {delay:.2f}s"
    assert cut >= points * 0.7, f"only {cut} of {points} kills landed inside the run"
