"""The tamper-evident audit chain.

Each event's hash covers its sequence number, time, actor, action, subject, payload and the
previous event's hash. Events are appended inside the transaction of the change they
record, under the write lock, so the chain has no gaps or forks. `verify` walks the chain
and names the first event that does not fit; checked against an exported anchor it also
catches a truncated tail or a chain re-hashed from an edit onwards.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Text, cast, insert, select

from principles import GENESIS, Anchor, AuditEvent, VerifyReport, event_hash, utcnow
from store._schema import audit

_BATCH = 5000
# Built once: appends are on every write path (see store/_queries.py).
_LAST_EVENT = select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)
_INSERT_EVENT = insert(audit)
# The payload as stored text, so that a corrupted payload is reported, not raised.
_RAW = (
    audit.c.seq,
    audit.c.at,
    audit.c.actor,
    audit.c.action,
    audit.c.subject,
    cast(audit.c.payload, Text).label("payload"),
    audit.c.prev_hash,
    audit.c.hash,
)


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


def verify(conn: Connection, expected: Anchor | None = None) -> VerifyReport:
    """Walk the whole chain; stop at the first event that breaks it."""
    prev_seq, prev_hash = 0, GENESIS
    anchor_seen = expected is None or expected.seq == 0

    def bad(seq: int, reason: str) -> VerifyReport:
        return VerifyReport(ok=False, events=prev_seq, first_bad=seq, reason=reason)

    while True:
        rows = conn.execute(
            select(*_RAW).where(audit.c.seq > prev_seq).order_by(audit.c.seq).limit(_BATCH)
        ).all()
        if not rows:
            break
        for seq, at, actor, action, subject, raw, link, stored in rows:
            if seq != prev_seq + 1:
                return bad(seq, f"event {prev_seq + 1} is missing (next is {seq})")
            if link != prev_hash:
                return bad(seq, f"event {seq} does not link to event {prev_seq}")
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = None
            if not isinstance(payload, dict):
                return bad(seq, f"event {seq} is unreadable")
            digest = event_hash(
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                subject=subject,
                payload=payload,
                prev_hash=link,
            )
            if digest != stored:
                return bad(seq, f"event {seq} was altered: its content does not match its hash")
            if expected is not None and seq == expected.seq:
                if stored != expected.hash:
                    return bad(
                        seq,
                        f"event {seq} differs from the anchor: the log was rewritten from "
                        "here or before",
                    )
                anchor_seen = True
            prev_seq, prev_hash = seq, stored
    if not anchor_seen:
        assert expected is not None
        return bad(
            prev_seq + 1,
            f"the log ends at event {prev_seq} but the anchor names event {expected.seq}: "
            "events were removed from the end",
        )
    return VerifyReport(ok=True, events=prev_seq)
