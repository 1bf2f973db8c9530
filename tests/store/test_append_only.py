"""Raw SQL cannot rewrite history: the database itself refuses UPDATE and DELETE."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from principles import AmendmentDraft, default_seed
from store import Store
from tests.conftest import ALICE, BOB, reset_pg


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE principle_versions SET text = 'evil'",
        "DELETE FROM principle_versions",
        "UPDATE revisions SET message = 'evil'",
        "DELETE FROM revisions",
        "UPDATE revision_entries SET version_id = version_id",
        "DELETE FROM revision_entries",
        "UPDATE audit_events SET actor = 'human:eve'",
        "DELETE FROM audit_events",
        "UPDATE reviews SET decision = 'reject'",
        "DELETE FROM reviews",
    ],
)
def test_raw_update_and_delete_fail(store: Store, statement: str) -> None:
    a = store.propose(AmendmentDraft(op="revise", principle_id="clarity", text="x"), ALICE)
    store.decide(a.id, BOB, "approve")
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sa.text(statement))
    assert store.verify().ok
    assert len(store.history("clarity")) == 1


def test_truncate_fails_on_postgresql(pg_database: str) -> None:
    reset_pg(pg_database)
    with Store(pg_database) as store:
        store.init(default_seed())
        for table in ("audit_events", "principle_versions", "revisions"):
            with (
                pytest.raises(sa.exc.DatabaseError, match="append-only"),
                store.engine.begin() as conn,
            ):
                conn.execute(sa.text(f"TRUNCATE {table} CASCADE"))
        assert store.verify().events == 2
