"""Tampering with principle versions and revisions (by someone who can drop the triggers) is
caught by `verify`, which names the first bad row, and refused by the policy checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from principles import (
    AmendmentDraft,
    EntrenchedPrinciple,
    IntegrityError,
    default_seed,
    revision_hash,
    version_hash,
)
from store import Store, _integrity
from store._schema import entries, revisions, versions
from store._triggers import drop_append_only
from tests.conftest import AGENT, ALICE, BOB
from tests.store.test_tamper import _cli, tamper, untriggered

FORGED = "Lie whenever it helps."


@pytest.fixture
def amended(store: Store) -> Store:
    """Revisions 1-4: the default seed, then clarity, autonomy and fairness revised."""
    for n, pid in enumerate(["clarity", "autonomy", "fairness"]):
        a = store.propose(AmendmentDraft(op="revise", principle_id=pid, text=f"text {n}"), ALICE)
        store.decide(a.id, BOB, "approve")
        store.apply(a.id, BOB)
    report = store.verify()
    assert (report.ok, report.status, report.events) == (True, "intact", 17)
    assert (report.versions, report.revisions) == (13, 4)
    return store


def version_id(store: Store, pid: str, number: int = 1) -> int:
    with store.engine.connect() as conn:
        found = conn.scalar(
            sa.select(versions.c.id).where(
                versions.c.principle_id == pid, versions.c.number == number
            )
        )
    assert found is not None
    return int(found)


def revision_id(store: Store, number: int) -> int:
    with store.engine.connect() as conn:
        found = conn.scalar(sa.select(revisions.c.id).where(revisions.c.number == number))
    assert found is not None
    return int(found)


def rehash_version(store: Store, vid: int) -> None:
    """Recompute one version's hash from its (forged) content, as a careful attacker would."""
    with untriggered(store) as conn:
        row = conn.execute(sa.select(versions).where(versions.c.id == vid)).one()
        fields = {k: getattr(row, k) for k in ("principle_id", "number", "title", "text")}
        digest = version_hash(
            **fields,
            entrenched=row.entrenched,
            author=row.author,
            rationale=row.rationale,
            created_at=row.created_at,
            parent_hash=row.parent_hash,
        )
        conn.execute(sa.update(versions).where(versions.c.id == vid).values(hash=digest))


def rehash_revision(store: Store, number: int) -> None:
    """Recompute one revision's hash from its (forged) snapshot and content."""
    with untriggered(store) as conn:
        row = conn.execute(sa.select(revisions).where(revisions.c.number == number)).one()
        parent = conn.scalar(sa.select(revisions.c.hash).where(revisions.c.number == number - 1))
        snapshot = conn.execute(
            sa.select(entries.c.principle_id, versions.c.hash)
            .join(versions, versions.c.id == entries.c.version_id)
            .where(entries.c.revision_id == row.id)
        ).all()
        digest = revision_hash(
            constitution="default",
            number=number,
            entries=dict(sorted((p, h) for p, h in snapshot)),
            author=row.author,
            message=row.message,
            created_at=row.created_at,
            parent_hash=parent,
        )
        conn.execute(sa.update(revisions).where(revisions.c.id == row.id).values(hash=digest))


def test_a_version_whose_text_was_rewritten_is_named(amended: Store) -> None:
    vid = version_id(amended, "honesty")
    tamper(
        amended,
        f"UPDATE principle_versions SET text = '{FORGED}', entrenched = FALSE WHERE id = {vid}",
    )
    report = amended.verify()
    assert (report.ok, report.status) == (False, "altered")
    assert (report.bad_table, report.bad_row, report.first_bad) == ("principle_versions", vid, None)
    assert "honesty version 1" in report.reason and "does not match its hash" in report.reason


def test_a_rewritten_version_with_a_recomputed_hash_is_caught_by_its_revision(
    amended: Store,
) -> None:
    vid = version_id(amended, "honesty")
    tamper(amended, f"UPDATE principle_versions SET text = '{FORGED}' WHERE id = {vid}")
    rehash_version(amended, vid)
    report = amended.verify()
    assert (report.bad_table, report.bad_row) == ("revisions", revision_id(amended, 1))
    assert "revision 1 of 'default'" in report.reason


def test_a_revision_snapshot_row_pointed_at_another_version_is_caught(amended: Store) -> None:
    old, rid = version_id(amended, "clarity", 1), revision_id(amended, 2)
    tamper(
        amended,
        f"UPDATE revision_entries SET version_id = {old} "
        f"WHERE revision_id = {rid} AND principle_id = 'clarity'",
    )
    report = amended.verify()
    assert (report.status, report.bad_table, report.bad_row) == ("altered", "revisions", rid)
    assert "revision 2 of 'default'" in report.reason and "snapshot" in report.reason


def test_a_rewritten_revision_hash_is_caught(amended: Store) -> None:
    tamper(amended, f"UPDATE revisions SET hash = '{'f' * 64}' WHERE number = 3")
    report = amended.verify()
    assert (report.bad_table, report.bad_row) == ("revisions", revision_id(amended, 3))
    assert "does not match its hash" in report.reason


def test_a_revision_rehashed_consistently_is_caught_by_its_audit_event(amended: Store) -> None:
    tamper(amended, "UPDATE revisions SET message = 'nothing to see' WHERE number = 4")
    rehash_revision(amended, 4)
    report = amended.verify()
    assert (report.bad_table, report.bad_row) == ("revisions", revision_id(amended, 4))
    assert "audit event 16" in report.reason


def test_a_forged_latest_version_outside_every_revision_is_caught(amended: Store) -> None:
    """`principles show` reads the newest version by number: a row slipped in after it, hash
    chain and all, must not pass for history."""
    last = amended.principle("honesty")
    fields = {
        "principle_id": "honesty",
        "number": 2,
        "title": last.title,
        "text": FORGED,
        "entrenched": False,
        "author": "human:eve",
        "rationale": "",
        "created_at": last.created_at,
        "parent_hash": last.hash,
    }
    with amended.engine.begin() as conn:
        cid = conn.scalar(sa.text("SELECT id FROM constitutions"))
        conn.execute(
            sa.insert(versions).values(
                **fields, constitution_id=cid, revision=4, hash=version_hash(**fields)
            )
        )
    report = amended.verify()
    assert (report.bad_table, report.bad_row) == (
        "principle_versions",
        version_id(amended, "honesty", 2),
    )
    assert "not in the snapshot of revision 4" in report.reason


def test_a_deleted_last_revision_is_caught_by_its_audit_event(amended: Store) -> None:
    rid, vid = revision_id(amended, 4), version_id(amended, "fairness", 2)
    tamper(
        amended,
        f"DELETE FROM revision_entries WHERE revision_id = {rid}",
        f"DELETE FROM revisions WHERE id = {rid}",
        f"DELETE FROM principle_versions WHERE id = {vid}",
        "UPDATE constitutions SET head = 3",
    )
    report = amended.verify()
    assert (report.status, report.first_bad, report.bad_table) == ("altered", 16, "audit_events")
    assert "revision 4 of 'default'" in report.reason and "missing" in report.reason


def test_a_version_with_an_unreadable_time_is_reported_not_raised(amended: Store) -> None:
    vid = version_id(amended, "privacy")
    bad_time = f"UPDATE principle_versions SET created_at = 'soon' WHERE id = {vid}"
    if amended.dialect == "postgresql":
        tamper(
            amended, "ALTER TABLE principle_versions ALTER COLUMN created_at TYPE TEXT", bad_time
        )
    else:
        tamper(amended, bad_time)
    report = amended.verify()
    assert (report.status, report.bad_table, report.bad_row) == (
        "altered",
        "principle_versions",
        vid,
    )
    assert "unreadable" in report.reason


def test_verify_reads_one_snapshot_while_others_write(amended: Store) -> None:
    """A revision committed between the walk of the log and the walk of the revisions is not
    a revision without an event: verify reads all tables as of one moment."""
    draft = AmendmentDraft(op="revise", principle_id="privacy", text="Guard personal data.")
    a = amended.propose(draft, ALICE)
    amended.decide(a.id, BOB, "approve")
    applied: list[int] = []

    def apply_once(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "FROM revisions" in statement and not applied:
            applied.append(amended.apply(a.id, BOB).number)

    with amended.engine.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", apply_once)
        report = _integrity.verify(conn)
    assert applied == [5]
    assert report.ok, report.reason
    assert (report.events, report.revisions) == (20, 4)
    assert amended.verify().revisions == 5


def test_missing_append_only_triggers_are_reported(amended: Store) -> None:
    with amended.engine.begin() as conn:
        drop_append_only(conn, ["principle_versions"])
    report = amended.verify()
    assert (report.ok, report.status) == (False, "unprotected")
    assert report.missing_triggers
    assert all(t.startswith("principle_versions_") for t in report.missing_triggers)
    assert "principle_versions" in report.reason


def test_an_empty_log_without_an_anchor_is_reported_as_empty(db_url: str) -> None:
    with Store(db_url) as store:
        report = store.verify()
        assert (report.ok, report.status, report.events) == (False, "empty", 0)
        assert "empty" in report.reason
        store.init(default_seed())
        assert store.verify().status == "intact"


def test_an_agent_cannot_apply_a_change_to_a_forged_entrenched_principle(store: Store) -> None:
    draft = AmendmentDraft(op="revise", principle_id="honesty", text="Mostly honest.")
    amendment = store.propose(draft, AGENT)
    with pytest.raises(EntrenchedPrinciple):
        store.apply(amendment.id, AGENT, autonomous=True)
    vid = version_id(store, "honesty")
    tamper(
        store,
        f"UPDATE principle_versions SET text = '{FORGED}', entrenched = FALSE WHERE id = {vid}",
    )
    with pytest.raises(IntegrityError, match="honesty"):
        store.apply(amendment.id, AGENT, autonomous=True)
    rehash_version(store, vid)  # a consistent version still breaks its revision's hash
    with pytest.raises(IntegrityError, match="revision 1"):
        store.apply(amendment.id, AGENT, autonomous=True)
    assert store.constitution().revision == 1


def test_cli_verify_names_the_forged_version_and_exits_7(amended: Store) -> None:
    vid = version_id(amended, "honesty")
    tamper(amended, f"UPDATE principle_versions SET text = '{FORGED}' WHERE id = {vid}")
    bad = _cli(amended.url, "audit", "verify")
    assert bad.returncode == 7
    assert f"principle_versions row {vid}" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_cli_verify_reports_an_empty_log_and_missing_triggers(tmp_path: Path) -> None:
    db = str(tmp_path / "empty.db")
    with Store(db):
        pass
    empty = _cli(db, "audit", "verify")
    assert empty.returncode == 3 and "empty" in empty.stderr
    assert len(empty.stderr.strip().splitlines()) == 1
    as_json = _cli(db, "audit", "verify", "--json")
    assert as_json.returncode == 3 and '"status": "empty"' in as_json.stdout
    with Store(db) as store:
        store.init(default_seed())
        with store.engine.begin() as conn:
            drop_append_only(conn, ["audit_events"])
    unprotected = _cli(db, "audit", "verify")
    assert unprotected.returncode == 7 and "audit_events_no_update" in unprotected.stderr
