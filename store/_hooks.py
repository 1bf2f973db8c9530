"""Webhook subscriptions and their deliveries (mixed into Store).

Guarantees: only a human admin, the system, or the one person of a database with no people
registered may add or remove a hook; both are audited (`hook.add`, `hook.remove`) with the
URL's origin only, never its path or the secret. A hook's secret is generated when not
given, returned once by `add_hook`, and never listed. Removing a hook fails its pending
deliveries in the same transaction. Claiming and recording deliveries are single write
transactions (see store/_outbox.py); sending them is the shell's job.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, func, insert, select, update

from principles import (
    DELIVERY_STATUSES,
    PING,
    SYSTEM,
    Actor,
    Delivery,
    HookEvent,
    InvalidInput,
    NotFound,
    PolicyViolation,
    VerifyReport,
    Webhook,
    check_hook_url,
    parse_events,
    url_origin,
    utcnow,
)
from store import _audit, _outbox
from store._base import StoreBase
from store._outbox import Claimed
from store._schema import users, webhook_outbox, webhooks

MIN_SECRET = 16
MAX_SECRET = 512


@dataclass(frozen=True)
class NewHook:
    """A hook just added and its signing secret: the only time the secret is handed out."""

    hook: Webhook
    secret: str


def _to_hook(row: Row[Any]) -> Webhook:
    return Webhook(
        id=row.id,
        url=row.url,
        events=cast("tuple[HookEvent, ...]", tuple(e for e in row.events.split(",") if e)),
        created_by=row.created_by,
        created_at=row.created_at,
        removed_at=row.removed_at,
    )


def _to_delivery(row: Row[Any]) -> Delivery:
    return Delivery.model_validate({k: v for k, v in row._asdict().items() if k != "payload"})


def _hook_row(conn: Connection, hook_id: int) -> Row[Any]:
    row = conn.execute(select(webhooks).where(webhooks.c.id == hook_id)).first()
    if row is None:
        raise NotFound("webhook", hook_id)
    return row


def _check_manager(conn: Connection, actor: Actor) -> None:
    """Hooks send the database's events elsewhere: an admin's decision."""
    if actor.administers:
        return
    if actor.kind == "human":
        people = conn.scalar(select(func.count()).select_from(users).where(users.c.kind == "human"))
        if not people:  # single-user: the one person is the admin
            return
    raise PolicyViolation("only an admin may add or remove webhooks")


def check_secret(secret: str) -> str:
    if not MIN_SECRET <= len(secret) <= MAX_SECRET or not secret.isprintable():
        raise InvalidInput(f"a webhook secret is {MIN_SECRET} to {MAX_SECRET} printable characters")
    return secret


class HooksAPI(StoreBase):
    """The webhooks part of `Store` (a `Store` mixin)."""

    def add_hook(
        self,
        url: str,
        events: list[str] | tuple[str, ...],
        actor: Actor = SYSTEM,
        *,
        secret: str | None = None,
    ) -> NewHook:
        """Subscribe `url` to `events`; audited as `hook.add`."""
        url = check_hook_url(url)
        wanted = parse_events(events)
        key = check_secret(secret) if secret is not None else secrets.token_urlsafe(32)

        def run(conn: Connection) -> Webhook:
            _check_manager(conn, actor)
            hid = conn.execute(
                insert(webhooks).values(
                    url=url,
                    events=",".join(wanted),
                    secret=key,
                    created_by=actor.ref,
                    created_at=utcnow(),
                )
            ).inserted_primary_key
            assert hid is not None
            _audit.append(
                conn,
                actor.ref,
                "hook.add",
                f"hook:{hid[0]}",
                {"origin": url_origin(url), "events": list(wanted)},
            )
            return _to_hook(_hook_row(conn, int(hid[0])))

        return NewHook(hook=self._write(run), secret=key)

    def hooks(self, *, removed: bool = False) -> list[Webhook]:
        """Live hooks (and removed ones too with `removed`), oldest first."""
        query = select(webhooks).order_by(webhooks.c.id)
        if not removed:
            query = query.where(webhooks.c.removed_at.is_(None))
        return [_to_hook(r) for r in self._read(lambda c: c.execute(query).all())]

    def hook(self, hook_id: int) -> Webhook:
        return self._read(lambda c: _to_hook(_hook_row(c, hook_id)))

    def remove_hook(self, hook_id: int, actor: Actor = SYSTEM) -> Webhook:
        """Stop a hook; its pending deliveries fail ("hook removed"). Audited `hook.remove`."""

        def run(conn: Connection) -> Webhook:
            _check_manager(conn, actor)
            row = _hook_row(conn, hook_id)
            if row.removed_at is not None:
                raise InvalidInput(f"webhook {hook_id} is already removed")
            conn.execute(
                update(webhooks).where(webhooks.c.id == hook_id).values(removed_at=utcnow())
            )
            dropped = conn.execute(
                update(webhook_outbox)
                .where(webhook_outbox.c.hook_id == hook_id, webhook_outbox.c.status == "pending")
                .values(status="failed", next_attempt_at=None, last_error="hook removed")
            ).rowcount
            _audit.append(
                conn,
                actor.ref,
                "hook.remove",
                f"hook:{hook_id}",
                {"origin": url_origin(row.url), "dropped": int(dropped)},
            )
            return _to_hook(_hook_row(conn, hook_id))

        return self._write(run)

    def deliveries(
        self, *, hook_id: int | None = None, status: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        """The newest `limit` deliveries, newest first, of one hook or all, in one status."""
        if status is not None and status not in DELIVERY_STATUSES:
            raise InvalidInput(f"unknown status {status!r}: use {', '.join(DELIVERY_STATUSES)}")
        query = select(webhook_outbox).order_by(webhook_outbox.c.id.desc()).limit(limit)
        if hook_id is not None:
            query = query.where(webhook_outbox.c.hook_id == hook_id)
        if status is not None:
            query = query.where(webhook_outbox.c.status == status)
        return [_to_delivery(r) for r in self._read(lambda c: c.execute(query).all())]

    def ping_hook(self, hook_id: int) -> int:
        """A `ping` delivery for a live hook, due now; its id."""

        def run(conn: Connection) -> int:
            row = _hook_row(conn, hook_id)
            if row.removed_at is not None:
                raise InvalidInput(f"webhook {hook_id} is removed")
            data = {"hook": hook_id}
            return _outbox.add(conn, [hook_id], PING, None, utcnow(), f"hook:{hook_id}", data)[0]

        return self._write(run)

    def claim_deliveries(
        self, *, limit: int = 20, claim_s: float = 30.0, only: int | None = None
    ) -> list[Claimed]:
        """Claim due deliveries for one try each (see store/_outbox.py); when none is due,
        only a read is made."""
        if only is None and not self._read(_outbox.any_due):
            return []
        return self._write(lambda c: _outbox.claim(c, limit=limit, claim_s=claim_s, only=only))

    def finish_delivery(
        self,
        claimed: Claimed,
        *,
        status: int | None = None,
        error: str = "",
        retry_at: datetime | None = None,
    ) -> bool:
        """Record how a claimed try went (see `store._outbox.finish`)."""
        return self._write(
            lambda c: _outbox.finish(c, claimed, status=status, error=error, retry_at=retry_at)
        )

    def notify_verify_failed(self, report: VerifyReport) -> int:
        """Outbox rows for hooks subscribed to `audit.verify_failed`; how many. A hook that
        was already told of this same finding is not told again. The audit chain itself is
        left as verified: verifying never appends to what it checks."""
        data = {
            "status": report.status,
            "first_bad": report.first_bad,
            "bad_table": report.bad_table,
            "bad_row": report.bad_row,
            "reason": report.reason,
        }

        def run(conn: Connection) -> int:
            fresh = [
                h
                for h in _outbox.subscribers(conn, "audit.verify_failed")
                if conn.scalar(
                    select(webhook_outbox.c.payload)
                    .where(
                        webhook_outbox.c.hook_id == h,
                        webhook_outbox.c.event == "audit.verify_failed",
                    )
                    .order_by(webhook_outbox.c.id.desc())
                    .limit(1)
                )
                != data
            ]
            _outbox.add(conn, fresh, "audit.verify_failed", None, utcnow(), "audit", data)
            return len(fresh)

        return self._write(run)
