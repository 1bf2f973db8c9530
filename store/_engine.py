"""Engines and transactions for SQLite (embedded default) and PostgreSQL (shared).

SQLite: WAL, `synchronous=NORMAL`, a busy timeout, foreign keys on, and `BEGIN IMMEDIATE`
for every write transaction, so writers queue on the lock instead of failing on upgrade.
PostgreSQL: writes take a transaction-scoped advisory lock, which serialises the audit
chain's appends across processes and machines. Either way a write is one transaction; a
transient lock error is retried a bounded number of times and never reaches the user.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import NullPool

from principles import CharterError, InvalidInput

T = TypeVar("T")
BUSY_TIMEOUT_MS = 30_000
WRITE_LOCK_KEY = 0x43484152  # "CHAR"
_MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseError(CharterError):
    code = "database"


def normalise_url(target: str) -> str:
    """A bare path means a SQLite file; `postgresql://` uses the psycopg 3 driver."""
    if "://" not in target:
        return f"sqlite:///{Path(target).expanduser().resolve()}"
    if target.startswith("postgresql://") or target.startswith("postgres://"):
        return "postgresql+psycopg://" + target.split("://", 1)[1]
    return target


def create(url: str) -> Engine:
    try:
        parsed = make_url(normalise_url(url))
    except ArgumentError as exc:
        raise InvalidInput(f"not a database URL or path: {url!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        return _sqlite(parsed.render_as_string(hide_password=False))
    if parsed.get_backend_name() == "postgresql":
        return create_engine(parsed, pool_pre_ping=True, pool_size=2, max_overflow=4)
    raise InvalidInput(
        f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL"
    )


def _sqlite(url: str) -> Engine:
    engine = create_engine(
        url, poolclass=NullPool if ":memory:" in url else None, connect_args={"timeout": 30}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("charter_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _transient(exc: OperationalError) -> bool:
    msg = str(exc.orig).lower()
    return any(
        s in msg
        for s in (
            "database is locked",
            "database is busy",
            "deadlock detected",
            "could not serialize",
        )
    )


def write(engine: Engine, fn: Callable[[Connection], T], *, attempts: int = 8) -> T:
    """Run `fn` in one write transaction; retry transient lock errors with backoff."""
    write_engine = engine.execution_options(charter_write=True)
    for attempt in range(attempts):
        try:
            with write_engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_KEY})
                return fn(conn)
        except OperationalError as exc:
            if not _transient(exc) or attempt == attempts - 1:
                raise DatabaseError(f"database error: {exc.orig}") from exc
            time.sleep(min(2.0, 0.05 * 2**attempt))
    raise AssertionError("unreachable")


def read(engine: Engine, fn: Callable[[Connection], T]) -> T:
    try:
        with engine.connect() as conn:
            return fn(conn)
    except OperationalError as exc:
        raise DatabaseError(f"database error: {exc.orig}") from exc


def alembic_config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    script = ScriptDirectory(str(_MIGRATIONS))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine, target: str = "head") -> None:
    """Bring the schema to `target` (default: head). Cheap when already there.

    The check runs first without a write lock; the upgrade itself runs in one write
    transaction (SQLite and PostgreSQL both have transactional DDL), so concurrent openers
    of a new database take turns and never see half a schema.
    """
    wanted = head_revision() if target == "head" else target
    if read(engine, current_revision) == wanted:
        return

    def upgrade(conn: Connection) -> None:
        if current_revision(conn) != wanted:
            command.upgrade(alembic_config(conn), target)

    write(engine, upgrade)


def downgrade(engine: Engine, target: str) -> None:
    write(engine, lambda conn: command.downgrade(alembic_config(conn), target))


def sqlite_path(engine: Engine) -> str | None:
    if engine.dialect.name != "sqlite":
        return None
    return os.fspath(engine.url.database or "")
