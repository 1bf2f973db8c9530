"""Shared fixtures: real SQLite files and the real PostgreSQL, same tests on both."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from principles import Actor, default_seed
from store import Store

PG_ADMIN_URL = os.environ.get(
    "CHARTER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

ALICE = Actor(kind="human", name="alice", roles=("reviewer",))
BOB = Actor(kind="human", name="bob", roles=("reviewer",))
CAROL = Actor(kind="human", name="carol", roles=("admin",))
AGENT = Actor(kind="agent", name="charter-agent")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; dropped at the end."""
    name = f"charter_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"PostgreSQL is required for the store tests and is not reachable: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def reset_pg(url: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that touches the PostgreSQL database carries the `postgres` mark, so that
    `pytest -m "not postgres"` runs everything else on a machine without PostgreSQL."""
    for item in items:
        if "pg_database" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """An empty database URL: a new SQLite file, or the session's PostgreSQL, emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/charter.db"
    url: str = request.getfixturevalue("pg_database")
    reset_pg(url)
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A store with the default constitution at revision 1."""
    s = Store(db_url)
    s.init(default_seed())
    yield s
    s.close()
