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
    last = conn.execute(select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1))
    row = last.first()
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
    conn.execute(insert(audit).values(**values))
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
    prev_seq, prev_hash, count = 0, GENESIS, 0
    anchor_seen = expected is None or expected.seq == 0
    last_seq = 0
    while True:
        rows = conn.execute(
            select(*_RAW).where(audit.c.seq > last_seq).order_by(audit.c.seq).limit(_BATCH)
        ).all()
        if not rows:
            break
        for r in rows:
            last_seq = r.seq
            if r.seq != prev_seq + 1:
                return VerifyReport(
                    ok=False,
                    events=count,
                    first_bad=r.seq,
                    reason=f"event {prev_seq + 1} is missing (next is {r.seq})",
                )
            if r.prev_hash != prev_hash:
                return VerifyReport(
                    ok=False,
                    events=count,
                    first_bad=r.seq,
                    reason=f"event {r.seq} does not link to event {prev_seq}",
                )
            try:
                payload = json.loads(r.payload)
            except ValueError:
                payload = None
            if not isinstance(payload, dict):
                return VerifyReport(
                    ok=False, events=count, first_bad=r.seq, reason=f"event {r.seq} is unreadable"
                )
            digest = event_hash(
                seq=r.seq,
                at=r.at,
                actor=r.actor,
                action=r.action,
                subject=r.subject,
                payload=payload,
                prev_hash=r.prev_hash,
            )
            if digest != r.hash:
                return VerifyReport(
                    ok=False,
                    events=count,
                    first_bad=r.seq,
                    reason=f"event {r.seq} was altered: its content does not match its hash",
                )
            if expected is not None and r.seq == expected.seq:
                if r.hash != expected.hash:
                    return VerifyReport(
                        ok=False,
                        events=count,
                        first_bad=r.seq,
                        reason=(
                            f"event {r.seq} differs from the anchor: the log was rewritten "
                            "from here or before"
                        ),
                    )
                anchor_seen = True
            prev_seq, prev_hash, count = r.seq, r.hash, count + 1
    if not anchor_seen:
        assert expected is not None
        return VerifyReport(
            ok=False,
            events=count,
            first_bad=count + 1,
            reason=(
                f"the log ends at event {count} but the anchor names event {expected.seq}: "
                "events were removed from the end"
            ),
        )
    return VerifyReport(ok=True, events=count)
