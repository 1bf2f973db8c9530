"""Migrations build exactly the schema the ORM declares, and survive a round trip with data.

Runs on both databases through `db_url`. The schema comparison is Alembic's own autogenerate
diff (the same check as `alembic check`); triggers are invisible to it, so the append-only
guarantee is checked by trying the forbidden statements.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from principles import AmendmentDraft, default_seed
from store import Store, _engine
from store._schema import APPEND_ONLY, Base
from tests.conftest import AGENT, ALICE, CAROL

CACHE_KEY = "c" * 64


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    e = _engine.create(db_url)
    yield e
    e.dispose()


def schema_diff(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def current(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return _engine.current_revision(conn)


def forbidden(engine: sa.Engine, statement: str) -> None:
    """`statement` must be refused by an append-only trigger (the table must have rows)."""
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.text(statement))


def test_upgrade_to_head_matches_the_models(engine: sa.Engine) -> None:
    _engine.migrate(engine)
    assert current(engine) == _engine.head_revision()
    assert schema_diff(engine) == []


def test_step_by_step_upgrade_matches_the_models(engine: sa.Engine) -> None:
    _engine.migrate(engine, "0001")
    assert current(engine) == "0001"
    assert "lm_cache" not in sa.inspect(engine).get_table_names()
    _engine.migrate(engine)
    assert schema_diff(engine) == []


def test_migrate_is_idempotent(engine: sa.Engine) -> None:
    _engine.migrate(engine)
    _engine.migrate(engine)
    assert current(engine) == _engine.head_revision()


def test_downgrade_and_upgrade_keep_the_data(db_url: str) -> None:
    with Store(db_url) as store:
        store.init(default_seed())
        applied = store.propose(
            AmendmentDraft(
                op="revise",
                principle_id="helpfulness",
                text="Work out what the user needs and meet it fully.",
                rationale="sharper",
            ),
            AGENT,
        )
        store.decide(applied.id, ALICE, "approve", "fine")
        store.apply(applied.id, CAROL)
        pending = store.propose(
            AmendmentDraft(op="add", principle_id="brevity", title="Be brief", text="Be brief."),
            AGENT,
        )
        store.cache_put(CACHE_KEY, "a cached reply")

        before = (
            store.constitution(),
            store.constitution(at=1),
            store.revisions(),
            store.history("helpfulness"),
            store.amendments(),
            store.audit_log(),
            store.labels(),
        )
        assert store.verify().ok
        with store.engine.connect() as conn:  # row triggers fire only on existing rows
            for table in APPEND_ONLY:
                assert conn.scalar(sa.select(sa.func.count()).select_from(sa.table(table)))

        _engine.downgrade(store.engine, "0001")
        assert current(store.engine) == "0001"
        assert "lm_cache" not in sa.inspect(store.engine).get_table_names()
        forbidden(store.engine, "UPDATE audit_events SET actor = 'human:mallory'")
        for table in APPEND_ONLY:
            forbidden(store.engine, f"DELETE FROM {table}")
        if store.dialect == "postgresql":
            forbidden(store.engine, "TRUNCATE audit_events CASCADE")
        assert store.verify().ok  # the chain is readable without the newer tables

        _engine.migrate(store.engine)
        assert current(store.engine) == _engine.head_revision()
        assert schema_diff(store.engine) == []

        after = (
            store.constitution(),
            store.constitution(at=1),
            store.revisions(),
            store.history("helpfulness"),
            store.amendments(),
            store.audit_log(),
            store.labels(),
        )
        assert after == before
        assert [a.id for a in after[4]] == [applied.id, pending.id]
        assert [a.status for a in after[4]] == ["applied", "proposed"]
        report = store.verify()
        assert report.ok, report.reason
        assert report.events == len(before[5])
        # The cache is disposable: the downgrade dropped it, the upgrade made it empty.
        assert store.cache_get(CACHE_KEY) is None
        store.cache_put(CACHE_KEY, "again")
        assert store.cache_get(CACHE_KEY) == "again"
        for table in APPEND_ONLY:  # the triggers survived the round trip
            forbidden(store.engine, f"DELETE FROM {table}")
        forbidden(store.engine, "UPDATE audit_events SET actor = 'human:mallory'")


def test_reopening_a_downgraded_database_upgrades_it(db_url: str) -> None:
    with Store(db_url) as store:
        store.init(default_seed())
        _engine.downgrade(store.engine, "0001")
    with Store(db_url) as store:
        assert current(store.engine) == _engine.head_revision()
        assert store.constitution().revision == 1
        assert store.verify().ok


def test_downgrade_to_base_removes_everything(engine: sa.Engine) -> None:
    """A full downgrade leaves no Charter table, trigger or function behind."""
    _engine.migrate(engine)
    _engine.downgrade(engine, "base")
    assert current(engine) is None
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            leftovers = conn.scalars(
                sa.text(
                    "SELECT p.proname FROM pg_proc p JOIN pg_namespace n "
                    "ON n.oid = p.pronamespace WHERE n.nspname = current_schema()"
                )
            ).all()
        else:
            leftovers = conn.scalars(
                sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            ).all()
    assert leftovers == []
    _engine.migrate(engine)
    assert schema_diff(engine) == []
