"""Webhooks: which audit actions become which events, what a delivery says, how it is signed.

Pure functions only. A delivery's body is JSON (`envelope`); its signature is the hex
HMAC-SHA256, under the hook's secret, of `f"{timestamp}.{body}"`, sent as
`Charter-Signature: sha256=<hex>` beside `Charter-Timestamp: <unix seconds>`. A receiver
checks both with `verify_signature`: a changed body, a changed timestamp, another secret or
an old replay fails. Deliveries are at least once; `Charter-Delivery` (the envelope's `id`)
is stable across retries, so a receiver that keeps the ids it has seen acts once per event.
Payloads never carry a secret, a text under review or run outputs: ids, titles and figures.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from principles._errors import InvalidInput
from principles._models import UTCDateTime

HookEvent = Literal[
    "amendment.proposed", "amendment.applied", "label.moved", "run.finished", "audit.verify_failed"
]
HOOK_EVENTS: tuple[HookEvent, ...] = (
    "amendment.proposed",
    "amendment.applied",
    "label.moved",
    "run.finished",
    "audit.verify_failed",
)
PING = "ping"
DeliveryStatus = Literal["pending", "delivered", "failed"]
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = ("pending", "delivered", "failed")
MAX_ATTEMPTS = 8
SIGNATURE_TOLERANCE_S = 300

# The audit actions (see store/) that are webhook events. Every other action is not.
_ACTIONS: dict[str, HookEvent] = {
    "amendment.propose": "amendment.proposed",
    "amendment.applied": "amendment.applied",
    "label.set": "label.moved",
    "label.delete": "label.moved",  # moved to nowhere: `to` is null
    "run.completed": "run.finished",
    "run.stopped": "run.finished",
    "run.failed": "run.finished",
    "audit.verify_failed": "audit.verify_failed",
}
_DRAFT_FIELDS = ("op", "principle_id", "title", "merge_from", "base", "run_id")


class Webhook(BaseModel):
    """A subscription: where to POST which events. Its secret is never part of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: int
    url: str
    events: tuple[HookEvent, ...]
    created_by: str
    created_at: UTCDateTime
    removed_at: UTCDateTime | None = None


class Delivery(BaseModel):
    """One event for one hook in the outbox, and how sending it went so far."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: int
    hook_id: int
    event: str
    audit_seq: int | None
    subject: str
    status: DeliveryStatus
    attempts: int
    created_at: UTCDateTime
    next_attempt_at: UTCDateTime | None
    last_status: int | None
    last_error: str
    delivered_at: UTCDateTime | None


def event_for(action: str) -> HookEvent | None:
    """The webhook event an audit action is, if any (a dictionary look-up: appends call it)."""
    return _ACTIONS.get(action)


def event_data(action: str, subject: str, payload: dict[str, Any]) -> dict[str, Any]:
    """What a delivery says about an audit event: ids, titles and figures only."""
    kind, _, key = subject.partition(":")
    if action == "amendment.propose":
        return {
            "amendment": int(key),
            **{k: payload[k] for k in _DRAFT_FIELDS if payload.get(k) not in (None, [])},
        }
    if action == "amendment.applied":
        return {"amendment": int(key), "revision": payload.get("applied_revision")}
    if action in ("label.set", "label.delete"):
        constitution, _, label = key.partition("/")
        return {
            "constitution": constitution,
            "label": label,
            "from": payload.get("from"),
            "to": payload.get("to"),
        }
    if kind == "run":
        return {
            "run": int(key),
            "status": action.removeprefix("run."),
            "reason": payload.get("reason", ""),
        }
    return dict(payload)


def parse_events(names: Iterable[str]) -> tuple[HookEvent, ...]:
    """Event names (split on commas) checked against `HOOK_EVENTS`, in that order, no repeats."""
    wanted = {n.strip() for name in names for n in name.split(",") if n.strip()}
    unknown = sorted(wanted.difference(HOOK_EVENTS))
    if unknown:
        raise InvalidInput(f"unknown event {unknown[0]!r}: use {', '.join(HOOK_EVENTS)}")
    if not wanted:
        raise InvalidInput(f"give at least one event: {', '.join(HOOK_EVENTS)}")
    return tuple(e for e in HOOK_EVENTS if e in wanted)


def check_hook_url(url: str) -> str:
    """An http(s) URL with a host and no credentials in it, or InvalidInput."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidInput(f"not a URL: {url!r}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"a webhook URL must be http:// or https:// with a host: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("put no credentials in a webhook URL: deliveries are signed instead")
    if len(url.strip()) > 2000:
        raise InvalidInput("the webhook URL is too long: at most 2000 characters")
    return url.strip()


def url_origin(url: str) -> str:
    """`scheme://host[:port]`: how audit events name a hook's URL (its path may be a secret,
    as in chat services' incoming-webhook URLs)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def envelope(
    delivery_id: int,
    event: str,
    occurred_at: datetime,
    audit_seq: int | None,
    subject: str,
    data: dict[str, Any],
) -> bytes:
    """The body of a delivery: the same bytes on every attempt."""
    body = {
        "id": delivery_id,
        "event": event,
        "occurred_at": occurred_at.isoformat(),
        "audit_seq": audit_seq,
        "subject": subject,
        "data": data,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `Charter-Signature` header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str | int,
    signature: str,
    tolerance_s: int = SIGNATURE_TOLERANCE_S,
    *,
    now: float | None = None,
) -> bool:
    """Whether `signature` (the `Charter-Signature` header) signs `body` at `timestamp` (the
    `Charter-Timestamp` header) under `secret`, and that timestamp is within `tolerance_s`
    seconds of `now` (default: the clock). Compared in constant time; never raises."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature.strip())


def retry_delay(attempts: int, base_s: float, cap_s: float, jitter: float) -> float:
    """Seconds to wait after the `attempts`-th failed try: `base_s` doubled each time, at
    most `cap_s`, stretched by `jitter` in [0, 1) (up to a quarter more) so that failed
    deliveries do not all retry in the same second."""
    return min(base_s * 2 ** max(attempts - 1, 0), cap_s) * (1 + jitter / 4)
