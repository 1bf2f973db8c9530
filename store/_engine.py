"""Engines and transactions for SQLite (embedded default) and PostgreSQL (shared).

SQLite: WAL, `synchronous=NORMAL`, a busy timeout, foreign keys on, and `BEGIN IMMEDIATE`
for every write transaction, so writers queue on the lock instead of failing on upgrade.
PostgreSQL: writes take a transaction-scoped advisory lock, which serialises the audit
chain's appends across processes and machines. Either way a write is one transaction; a
transient lock error is retried a bounded number of times and never reaches the user; any
other driver error (a file that is not a database, a refused value) leaves as one
`DatabaseError` line.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import threading
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
from sqlalchemy.exc import DatabaseError as DriverError
from sqlalchemy.pool import NullPool

from principles import CharterError, InvalidInput

T = TypeVar("T")
BUSY_TIMEOUT_MS = 30_000
WRITE_LOCK_KEY = 0x43484152  # "CHAR"
_MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseError(CharterError):
    code = "database"


# `scheme://user:password@host`: the password ends at the last `@` before the host part, so
# a password with a raw `@` in it is hidden whole.
_CREDENTIALS = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):\S*?@(?=[^@\s/]*(?:[/?#\s'\"),]|$))"
)


def redact_credentials(text: str) -> str:
    """`text` with the password of every URL in it replaced by `***`: for any message that
    might name a database (a `--db` value, a driver's error)."""
    return _CREDENTIALS.sub(r"\g<head>:***@", text)


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
    except (ArgumentError, ValueError) as exc:
        raise InvalidInput(f"not a database URL or path: {redact_credentials(url)!r}") from exc
    if "@" in (parsed.host or ""):
        raise InvalidInput(
            f"not a database URL: {redact_credentials(url)!r} (write an @ in a password as %40)"
        )
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


class WriterLock:
    """Writers to one SQLite file take turns through a blocking file lock.

    SQLite's busy handler polls with growing sleeps, so one process can keep the write lock
    for hundreds of transactions while others wait for seconds; a kernel file lock wakes
    waiters in turn instead. Threads of one process queue on a mutex first.
    """

    def __init__(self, database_path: str | None) -> None:
        self.path = f"{database_path}.lock" if database_path else None
        self._fd: int | None = None
        self._mutex = threading.Lock()

    def __enter__(self) -> WriterLock:
        self._mutex.acquire()
        if self.path is not None:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *_: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._mutex.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def writer_lock(engine: Engine) -> WriterLock | None:
    """A writer lock for a SQLite file; None for PostgreSQL (its advisory lock serves)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    return WriterLock(None if not database or database == ":memory:" else database)


def write(
    engine: Engine,
    fn: Callable[[Connection], T],
    *,
    attempts: int = 8,
    lock: WriterLock | None = None,
) -> T:
    """Run `fn` in one write transaction; retry transient lock errors with backoff."""
    write_engine = engine.execution_options(charter_write=True)
    for attempt in range(attempts):
        try:
            with lock or contextlib.nullcontext(), write_engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_KEY})
                return fn(conn)
        except OperationalError as exc:
            if not _transient(exc) or attempt == attempts - 1:
                raise failed(exc) from exc
            time.sleep(min(2.0, 0.05 * 2**attempt))
        except DriverError as exc:  # not a database at all, a constraint, a value it refused
            raise failed(exc) from exc
    raise AssertionError("unreachable")


def read(engine: Engine, fn: Callable[[Connection], T]) -> T:
    try:
        with engine.connect() as conn:
            return fn(conn)
    except DriverError as exc:
        raise failed(exc) from exc


def failed(exc: DriverError) -> DatabaseError:
    """The driver's error as one line (its first: PostgreSQL adds DETAIL and HINT lines),
    with any password hidden."""
    lines = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
    return DatabaseError(redact_credentials(f"database error: {lines[0]}"))


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
