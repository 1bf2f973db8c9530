"""Tampering through raw SQL (by someone who can drop the triggers) is always detected."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from principles import AmendmentDraft, event_hash
from store import Store
from store._schema import APPEND_ONLY, audit
from store._triggers import create_append_only, drop_append_only
from tests.conftest import ALICE, BOB


@pytest.fixture
def busy(store: Store) -> Store:
    """A store with a dozen audit events and an exported anchor check that passes."""
    for n, pid in enumerate(["clarity", "autonomy", "fairness"]):
        a = store.propose(AmendmentDraft(op="revise", principle_id=pid, text=f"text {n}"), ALICE)
        store.decide(a.id, BOB, "approve")
        store.apply(a.id, BOB)
    assert store.verify().ok and store.verify().events == 17
    return store


@contextmanager
def untriggered(store: Store) -> Iterator[sa.Connection]:
    """A transaction with the append-only triggers dropped, restored at the end as a careful
    attacker would restore them (so that `verify` judges the content, not the triggers)."""
    with store.engine.begin() as conn:
        drop_append_only(conn, APPEND_ONLY)
        yield conn
        create_append_only(conn, APPEND_ONLY)


def tamper(store: Store, *statements: str) -> None:
    with untriggered(store) as conn:
        for s in statements:
            conn.execute(sa.text(s))


def rehash_from(store: Store, seq: int) -> None:
    """Recompute every hash from `seq` on, as a careful attacker would."""
    with untriggered(store) as conn:
        rows = conn.execute(sa.select(audit).order_by(audit.c.seq)).all()
        prev = rows[seq - 2].hash if seq > 1 else rows[0].prev_hash
        for r in rows[seq - 1 :]:
            digest = event_hash(
                seq=r.seq,
                at=r.at,
                actor=r.actor,
                action=r.action,
                subject=r.subject,
                payload=r.payload,
                prev_hash=prev,
            )
            conn.execute(
                sa.update(audit).where(audit.c.seq == r.seq).values(prev_hash=prev, hash=digest)
            )
            prev = digest


def edit_payload(dialect: str, seq: int) -> str:
    """Change one character inside an event's JSON payload."""
    new = "REPLACE(CAST(payload AS TEXT), 'text 1', 'text X')"
    if dialect == "postgresql":
        new = f"CAST({new} AS JSON)"
    return f"UPDATE audit_events SET payload = {new} WHERE seq = {seq}"


@pytest.mark.parametrize(
    ("statements", "first_bad", "reason"),
    [
        (["PAYLOAD 8"], 8, "altered"),
        (["UPDATE audit_events SET actor = 'human:eve' WHERE seq = 5"], 5, "altered"),
        (["DELETE FROM audit_events WHERE seq = 4"], 5, "missing"),
        # reorder: swap the contents of events 7 and 8
        (
            [
                "UPDATE audit_events SET seq = 1000 WHERE seq = 7",
                "UPDATE audit_events SET seq = 7 WHERE seq = 8",
                "UPDATE audit_events SET seq = 8 WHERE seq = 1000",
            ],
            7,
            "link",
        ),
        # insert: shift the tail up and slip a forged event in at 9
        (
            [
                "UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 9",
                "UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1009",
                "INSERT INTO audit_events (seq, at, actor, action, subject, payload, prev_hash, "
                "hash) SELECT 9, at, 'human:eve', 'review.approve', subject, payload, hash, hash "
                "FROM audit_events WHERE seq = 8",
            ],
            9,
            "altered",
        ),
    ],
    ids=["edit-byte", "edit-actor", "delete", "reorder", "insert"],
)
def test_verify_names_the_first_bad_event(
    busy: Store, statements: list[str], first_bad: int, reason: str
) -> None:
    tamper(busy, *(edit_payload(busy.dialect, 8) if x == "PAYLOAD 8" else x for x in statements))
    report = busy.verify()
    assert not report.ok
    assert report.first_bad == first_bad
    assert reason in report.reason


def test_a_corrupted_payload_is_reported_not_raised(busy: Store) -> None:
    if busy.dialect == "postgresql":
        stmt = "ALTER TABLE audit_events ALTER COLUMN payload TYPE TEXT"
        tamper(busy, stmt, "UPDATE audit_events SET payload = '{oops' WHERE seq = 3")
    else:
        tamper(busy, "UPDATE audit_events SET payload = '{oops' WHERE seq = 3")
    report = busy.verify()
    assert (report.ok, report.first_bad) == (False, 3)


def test_truncated_tail_is_caught_by_the_anchor(busy: Store) -> None:
    anchor = busy.anchor()
    tamper(busy, "DELETE FROM audit_events WHERE seq > 16")
    assert busy.verify().ok  # a shorter chain is self-consistent ...
    report = busy.verify(anchor)  # ... but not against the exported head
    assert not report.ok and "removed from the end" in report.reason


def test_a_truncated_tail_that_held_a_revision_is_caught_without_an_anchor(busy: Store) -> None:
    tamper(busy, "DELETE FROM audit_events WHERE seq > 14")
    report = busy.verify()
    assert (report.status, report.bad_table) == ("altered", "revisions")
    assert "revision 4 of 'default' has no revision.create audit event" in report.reason


def test_consistent_rehash_is_caught_by_the_anchor(busy: Store) -> None:
    anchor = busy.anchor()
    tamper(busy, "UPDATE audit_events SET actor = 'human:eve' WHERE seq = 6")
    rehash_from(busy, 6)
    assert busy.verify().ok  # the chain was re-hashed consistently ...
    report = busy.verify(anchor)
    assert not report.ok and report.first_bad == anchor.seq and "anchor" in report.reason


def test_later_events_do_not_break_an_old_anchor(busy: Store) -> None:
    anchor = busy.anchor()
    a = busy.propose(AmendmentDraft(op="revise", principle_id="privacy", text="new"), ALICE)
    busy.decide(a.id, BOB, "comment", "looks fine")
    assert busy.verify(anchor).ok


def _cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "charter.cli", "--db", db, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("attack", "expect"),
    [
        (
            lambda s: tamper(s, "UPDATE audit_events SET actor = 'human:eve' WHERE seq = 5"),
            "event 5",
        ),
        (lambda s: tamper(s, "DELETE FROM audit_events WHERE seq > 12"), "anchor names event 17"),
        (
            lambda s: (
                tamper(s, "UPDATE audit_events SET action = 'x' WHERE seq = 2"),
                rehash_from(s, 2),
            ),
            "differs from the anchor",
        ),
    ],
    ids=["edit", "truncate", "rehash"],
)
def test_cli_verify_exits_non_zero_with_one_line(
    busy: Store, tmp_path: Path, attack: Callable[[Store], object], expect: str
) -> None:
    db = busy.url
    anchor_file = tmp_path / "anchor.json"
    ok = _cli(db, "audit", "anchor", "--out", str(anchor_file))
    assert ok.returncode == 0, ok.stderr
    assert json.loads(anchor_file.read_text())["seq"] == 17
    assert _cli(db, "audit", "verify", "--anchor", str(anchor_file)).returncode == 0
    attack(busy)
    bad = _cli(db, "audit", "verify", "--anchor", str(anchor_file))
    assert bad.returncode == 7
    assert expect in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad.stderr
