"""Stored bias probe runs on SQLite and PostgreSQL: append-only, audited, listed by
revision."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from principles import InvalidInput, NewProbeRun, NotFound
from store import Store
from tests.conftest import ALICE


def run(revision: int = 1, flagged: int = 0, gap: float = 0.5) -> NewProbeRun:
    report = {"alpha": 0.05, "gaps": [{"attribute": "age", "metric": "refusal", "gap": gap}]}
    return NewProbeRun(
        constitution="default",
        revision=revision,
        model="scripted:",
        suite="builtin",
        templates=2,
        variants=80,
        flagged=flagged,
        report=report,
    )


def test_probe_runs_are_stored_audited_and_listed_by_revision(store: Store) -> None:
    first = store.record_probe_run(run(), ALICE)
    second = store.record_probe_run(run(revision=2, flagged=1, gap=0.75), ALICE)
    assert [r.id for r in store.probe_runs("default")] == [first.id, second.id]
    assert [r.id for r in store.probe_runs("default", 2)] == [second.id]
    again = store.probe_run(second.id)
    assert again.report["gaps"][0]["gap"] == 0.75 and again.created_by == ALICE
    events = [e for e in store.audit_log() if e.action == "probe.run"]
    assert [e.payload["probe_run"] for e in events] == [first.id, second.id]
    assert events[1].payload["flagged"] == 1
    with pytest.raises(NotFound, match="probe run"):
        store.probe_run(999)
    with pytest.raises(NotFound, match="probe run"):
        store.probe_run(2**40)
    assert store.verify().ok


@pytest.mark.parametrize(
    "statement", ["UPDATE probe_runs SET flagged = 0", "DELETE FROM probe_runs"]
)
def test_probe_runs_are_append_only(store: Store, statement: str) -> None:
    store.record_probe_run(run(flagged=3), ALICE)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sa.text(statement))
    assert store.probe_runs("default")[0].flagged == 3
    assert store.verify().ok


def test_a_report_with_nan_is_refused(store: Store) -> None:
    bad = run().model_copy(update={"report": {"gaps": [{"gap": float("nan")}]}})
    with pytest.raises(InvalidInput, match="finite JSON"):
        store.record_probe_run(bad, ALICE)
    assert store.probe_runs("default") == []
