"""The tamper-evident audit chain.

Each event's hash covers its sequence number, time, actor, action, subject, payload and the
previous event's hash. Events are appended inside the transaction of the change they
record, under the write lock, so the chain has no gaps or forks; an event that is a
webhook event gets its outbox rows in that transaction too (store/_outbox.py). `walk`
checks the chain and names the first event that does not fit; checked against an exported
anchor it also catches a truncated tail or a chain re-hashed from an edit onwards.
(`store/_integrity.py` runs it as the first part of `verify`.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import DBAPIError

from principles import GENESIS, Anchor, AuditEvent, event_hash, utcnow
from store import _outbox
from store._schema import audit

_BATCH = 5000
# Built once: appends are on every write path (see store/_queries.py).
_LAST_EVENT = select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)
_INSERT_EVENT = insert(audit)


def append(
    conn: Connection, actor: str, action: str, subject: str, payload: dict[str, Any]
) -> AuditEvent:
    row = conn.execute(_LAST_EVENT).first()
    seq, prev = (row.seq + 1, row.hash) if row else (1, GENESIS)
    at = utcnow()
    digest = event_hash(
        seq=seq, at=at, actor=actor, action=action, subject=subject, payload=payload, prev_hash=prev
    )
    values = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "payload": payload,
        "prev_hash": prev,
        "hash": digest,
    }
    conn.execute(_INSERT_EVENT, values)
    _outbox.enqueue(conn, action, seq, at, subject, payload)  # webhooks: same transaction
    return AuditEvent.model_validate(values)


def events(
    conn: Connection, *, limit: int | None = None, after: int = 0, subject: str | None = None
) -> list[AuditEvent]:
    """Events in order, from `after` on; the newest `limit` when given."""
    query = select(audit).where(audit.c.seq > after)
    if subject is not None:
        query = query.where(audit.c.subject == subject)
    if limit is not None:
        rows = conn.execute(query.order_by(audit.c.seq.desc()).limit(limit)).all()[::-1]
    else:
        rows = conn.execute(query.order_by(audit.c.seq)).all()
    return [AuditEvent.model_validate(r._asdict()) for r in rows]


def anchor(conn: Connection) -> Anchor:
    row = conn.execute(
        select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)
    ).first()
    if row is None:
        return Anchor(seq=0, hash=GENESIS, at=utcnow())
    return Anchor(seq=row.seq, hash=row.hash, at=utcnow())


class Broken(Exception):
    """The first row that does not fit: its table, primary key and what is wrong with it."""

    def __init__(self, table: str, row: int, reason: str, checked: int | None = None) -> None:
        super().__init__(reason)
        self.table, self.row, self.reason, self.checked = table, row, reason, checked


class RevisionEvent(NamedTuple):
    """What a `revision.create` event says about the revision it records."""

    seq: int
    hash: object
    parent: object
    amendment: object


# Plain driver SQL: per-value type processing would cost a third of a 100,000-event walk.
_WALK = (
    "SELECT seq, at, actor, action, subject, CAST(payload AS TEXT), prev_hash, hash "
    "FROM audit_events WHERE seq > {p} ORDER BY seq LIMIT {n}"
)


_SQLITE_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")


def hashed_time(value: str | datetime) -> str | datetime:
    """A stored time as `event_hash` takes it. SQLite's naive UTC text, which SQLAlchemy
    always writes as `YYYY-MM-DD HH:MM:SS.ffffff`, goes straight to its canonical text
    (parsing and re-formatting would cost a third of a walk); anything else is parsed."""
    if isinstance(value, str) and len(value) == 26 and _SQLITE_TIME.fullmatch(value):
        return f"{value[:10]}T{value[11:]}+00:00"
    return aware(value)


def aware(value: str | datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite keeps naive UTC text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def fetch(conn: Connection, sql: str, params: tuple[Any, ...]) -> Sequence[Any]:
    """Every row of a driver statement as the driver's tuples: on a 100,000-row walk,
    SQLAlchemy's row objects cost as much as the database's own fetch."""
    result = conn.exec_driver_sql(sql, params)
    try:
        rows: Sequence[Any] = result.cursor.fetchall()
    except conn.dialect.loaded_dbapi.Error as exc:  # as SQLAlchemy would wrap it
        raise DBAPIError.instance(sql, params, exc, conn.dialect.loaded_dbapi.Error) from exc
    finally:
        result.close()
    return rows


def walk(
    conn: Connection, expected: Anchor | None, revisions: dict[tuple[str, int], RevisionEvent]
) -> int:
    """Walk the whole chain in batches and return how many events it holds; raise `Broken`
    at the first event that does not fit. Fills `revisions` with what each `revision.create`
    event says, keyed by (subject, revision number), for the revision check."""
    prev_seq, prev_hash = 0, GENESIS
    anchor_seen = expected is None or expected.seq == 0
    query = _WALK.format(p="?" if conn.dialect.paramstyle == "qmark" else "%s", n=_BATCH)

    def bad(seq: int, reason: str) -> Broken:
        return Broken("audit_events", seq, reason, checked=prev_seq)

    while rows := fetch(conn, query, (prev_seq,)):
        for seq, at, actor, action, subject, raw, link, stored in rows:
            if seq != prev_seq + 1:
                raise bad(seq, f"event {prev_seq + 1} is missing (next is {seq})")
            if link != prev_hash:
                raise bad(seq, f"event {seq} does not link to event {prev_seq}")
            try:
                payload, when = json.loads(raw), hashed_time(at)
            except (TypeError, ValueError):
                payload = None
            if not isinstance(payload, dict):
                raise bad(seq, f"event {seq} is unreadable")
            digest = event_hash(
                seq=seq,
                at=when,
                actor=actor,
                action=action,
                subject=subject,
                payload=payload,
                prev_hash=link,
            )
            if digest != stored:
                raise bad(seq, f"event {seq} was altered: its content does not match its hash")
            if expected is not None and seq == expected.seq:
                if stored != expected.hash:
                    raise bad(
                        seq,
                        f"event {seq} differs from the anchor: the log was rewritten from "
                        "here or before",
                    )
                anchor_seen = True
            if action == "revision.create" and isinstance(number := payload.get("revision"), int):
                revisions[subject, number] = RevisionEvent(
                    seq, payload.get("hash"), payload.get("parent"), payload.get("amendment")
                )
            prev_seq, prev_hash = seq, stored
    if not anchor_seen:
        assert expected is not None
        raise bad(
            prev_seq + 1,
            f"the log ends at event {prev_seq} but the anchor names event {expected.seq}: "
            "events were removed from the end",
        )
    return prev_seq
