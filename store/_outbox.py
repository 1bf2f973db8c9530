"""The webhook outbox on a connection: writing rows with the event, claiming, recording tries.

Guarantees: `enqueue` runs in the caller's transaction (the audit append's), so a delivery
exists if and only if its event committed. An action that is no webhook event costs one
dictionary look-up; one that is costs one query over the (small) webhooks table. `claim`
runs under the write lock and moves each claimed row's `next_attempt_at` past the sender's
timeout, counting the attempt, so two dispatchers never send one row at the same time and a
dispatcher killed mid-send leaves the row due again once its claim lapses. `finish` only
records the try that the caller claimed (the attempt number is the claim's token).
No network I/O here: sending is the shell's job (charter/_hooks.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from principles import event_data, event_for, utcnow
from store._schema import webhook_outbox, webhooks

_ACTIVE = select(webhooks.c.id, webhooks.c.events).where(webhooks.c.removed_at.is_(None))
_INSERT = insert(webhook_outbox)
MAX_ERROR = 500


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for one try: what to send, where, and the secret that signs it."""

    id: int
    attempt: int
    hook_id: int
    url: str
    secret: str
    event: str
    audit_seq: int | None
    subject: str
    data: dict[str, Any]
    created_at: datetime


def subscribers(conn: Connection, event: str) -> list[int]:
    """Ids of the live hooks subscribed to `event`."""
    return [r.id for r in conn.execute(_ACTIVE) if event in r.events.split(",")]


def enqueue(
    conn: Connection,
    action: str,
    seq: int | None,
    at: datetime,
    subject: str,
    payload: dict[str, Any],
) -> int:
    """Outbox rows for the audit event (`action`, `subject`, `payload`) just appended, one
    per subscribed hook; how many."""
    event = event_for(action)
    if event is None:
        return 0
    hooks = subscribers(conn, event)
    if hooks:
        add(conn, hooks, event, seq, at, subject, event_data(action, subject, payload))
    return len(hooks)


def add(
    conn: Connection,
    hook_ids: list[int],
    event: str,
    seq: int | None,
    at: datetime,
    subject: str,
    data: dict[str, Any],
) -> list[int]:
    """Pending rows, due now, for each hook; their ids (the deliveries' stable ids)."""
    ids = []
    for hook_id in hook_ids:
        key = conn.execute(
            _INSERT,
            {
                "hook_id": hook_id,
                "event": event,
                "audit_seq": seq,
                "subject": subject,
                "payload": data,
                "created_at": at,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": at,
                "last_error": "",
            },
        ).inserted_primary_key
        assert key is not None
        ids.append(int(key[0]))
    return ids


def any_due(conn: Connection) -> bool:
    """Whether a claim would find anything: a read, so an idle dispatcher never takes the
    write lock."""
    due = (
        select(webhook_outbox.c.id)
        .where(webhook_outbox.c.status == "pending", webhook_outbox.c.next_attempt_at <= utcnow())
        .limit(1)
    )
    return conn.execute(due).first() is not None


def claim(
    conn: Connection, *, limit: int, claim_s: float, only: int | None = None
) -> list[Claimed]:
    """Claim up to `limit` due rows (oldest first), or row `only` whatever its time."""
    now = utcnow()
    query = (
        select(webhook_outbox, webhooks.c.url, webhooks.c.secret)
        .join(webhooks, webhooks.c.id == webhook_outbox.c.hook_id)
        .where(webhook_outbox.c.status == "pending")
    )
    if only is not None:
        query = query.where(webhook_outbox.c.id == only)
    else:
        query = query.where(webhook_outbox.c.next_attempt_at <= now)
    rows = conn.execute(query.order_by(webhook_outbox.c.id).limit(limit)).all()
    until = now + timedelta(seconds=claim_s)
    claimed = []
    for r in rows:
        conn.execute(
            update(webhook_outbox)
            .where(webhook_outbox.c.id == r.id)
            .values(attempts=r.attempts + 1, next_attempt_at=until)
        )
        claimed.append(
            Claimed(
                id=r.id,
                attempt=r.attempts + 1,
                hook_id=r.hook_id,
                url=r.url,
                secret=r.secret,
                event=r.event,
                audit_seq=r.audit_seq,
                subject=r.subject,
                data=r.payload,
                created_at=r.created_at,
            )
        )
    return claimed


def finish(
    conn: Connection,
    claimed: Claimed,
    *,
    status: int | None,
    error: str,
    retry_at: datetime | None,
) -> bool:
    """Record the claimed try: delivered when `error` is empty, else pending again at
    `retry_at`, or failed for good when that is None. False when the claim was lost."""
    now = utcnow()
    if not error:
        values: dict[str, Any] = {"status": "delivered", "delivered_at": now}
        values["next_attempt_at"] = None
    elif retry_at is None:
        values = {"status": "failed", "next_attempt_at": None}
    else:
        values = {"status": "pending", "next_attempt_at": retry_at}
    done = conn.execute(
        update(webhook_outbox)
        .where(
            webhook_outbox.c.id == claimed.id,
            webhook_outbox.c.status == "pending",
            webhook_outbox.c.attempts == claimed.attempt,
        )
        .values(last_status=status, last_error=error[:MAX_ERROR], **values)
    )
    return bool(done.rowcount == 1)
