"""Sending webhook deliveries: the dispatcher that drains the outbox over HTTP.

Guarantees: a delivery is sent only after the store has claimed it (so two dispatchers,
in one process or many, never send one row at the same time), with a short timeout, and
its outcome is recorded on the row: delivered on a 2xx answer, otherwise retried with
exponential backoff and jitter until `max_attempts`, then failed. A round sends each
hook's claimed rows in order, and different hooks' rows at the same time (at most
`hooks_at_once` hooks at once), so an endpoint that hangs delays only its own deliveries
within a round. Delivery is at least once: a dispatcher killed between the receiver's
answer and the record sends the row again, under the same `Charter-Delivery` id. Writers
never wait on a receiver: they only write outbox rows, and the dispatcher holds the write
lock only to claim and to record, never while a request is in flight. A background
dispatcher never raises: a database or network error is logged and retried on its next
round.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

import httpx

from principles import MAX_ATTEMPTS, Delivery, envelope, retry_delay, sign, utcnow
from store import ClaimedDelivery, Store

log = logging.getLogger("charter.hooks")
USER_AGENT = "charter-webhooks/1"
FINAL_WAIT_S = 2.0  # how long a command waits at its end for its last deliveries


@dataclass(frozen=True)
class HookSettings:
    """How deliveries are sent: per-request timeout, backoff, attempts, polling, and how
    many hooks a round sends to at once."""

    timeout_s: float = 5.0
    backoff_s: float = 1.0
    backoff_cap_s: float = 600.0
    max_attempts: int = MAX_ATTEMPTS
    poll_s: float = 1.0
    batch: int = 20
    hooks_at_once: int = 8

    @property
    def claim_s(self) -> float:
        """How long a claim keeps other dispatchers off a row: past the request's timeout."""
        return 2 * self.timeout_s + 5


def request_parts(
    claimed: ClaimedDelivery, now: float | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery, signed at `now` (default: the clock)."""
    body = envelope(
        claimed.id,
        claimed.event,
        claimed.created_at,
        claimed.audit_seq,
        claimed.subject,
        claimed.data,
    )
    timestamp = int(time.time() if now is None else now)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Charter-Event": claimed.event,
        "Charter-Delivery": str(claimed.id),
        "Charter-Timestamp": str(timestamp),
        "Charter-Signature": sign(claimed.secret, timestamp, body),
    }
    return body, headers


def send(client: httpx.Client, claimed: ClaimedDelivery) -> tuple[int | None, str]:
    """POST one delivery: (HTTP status or None, error or "" when it was accepted)."""
    body, headers = request_parts(claimed)
    try:
        answer = client.post(claimed.url, content=body, headers=headers)
    except httpx.TimeoutException:
        return None, "timed out"
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if 200 <= answer.status_code < 300:
        return answer.status_code, ""
    return answer.status_code, f"HTTP {answer.status_code}"


def _record(
    store: Store,
    claimed: ClaimedDelivery,
    outcome: tuple[int | None, str],
    settings: HookSettings,
    retry: bool,
) -> bool:
    status, error = outcome
    retry_at = None
    if error and retry and claimed.attempt < settings.max_attempts:
        delay = retry_delay(
            claimed.attempt, settings.backoff_s, settings.backoff_cap_s, random.random()
        )
        retry_at = utcnow() + timedelta(seconds=delay)
    store.finish_delivery(claimed, status=status, error=error, retry_at=retry_at)
    return not error


def client_for(settings: HookSettings) -> httpx.Client:
    return httpx.Client(timeout=settings.timeout_s, follow_redirects=False)


def by_hook(claimed: list[ClaimedDelivery]) -> list[list[ClaimedDelivery]]:
    """Claimed rows grouped by hook, each group in claim (oldest first) order."""
    groups: dict[int, list[ClaimedDelivery]] = {}
    for item in claimed:
        groups.setdefault(item.hook_id, []).append(item)
    return list(groups.values())


def _send_in_order(
    store: Store, client: httpx.Client, rows: list[ClaimedDelivery], settings: HookSettings
) -> None:
    for item in rows:
        _record(store, item, send(client, item), settings, retry=True)


def deliver_due(store: Store, client: httpx.Client, settings: HookSettings) -> int:
    """Claim one batch of due deliveries, send them (one hook's in order, several hooks'
    at once) and record each outcome as it comes; how many were claimed (0: nothing is
    due). Returns once every claimed row is recorded; a recording error is raised after
    the other hooks' rows are done."""
    claimed = store.claim_deliveries(limit=settings.batch, claim_s=settings.claim_s)
    groups = by_hook(claimed)
    if len(groups) <= 1:
        for rows in groups:
            _send_in_order(store, client, rows, settings)
        return len(claimed)
    workers = max(1, min(settings.hooks_at_once, len(groups)))
    with ThreadPoolExecutor(workers, thread_name_prefix="charter-hook") as pool:
        sent = [pool.submit(_send_in_order, store, client, rows, settings) for rows in groups]
        for done in sent:
            done.result()
    return len(claimed)


def drain(store: Store, settings: HookSettings | None = None) -> int:
    """Send every delivery due now (and retries that fall due meanwhile within a round);
    how many tries were made. What `charter hooks deliver --once` runs."""
    settings = settings or HookSettings()
    total = 0
    with client_for(settings) as client:
        while done := deliver_due(store, client, settings):
            total += done
    return total


def ping(store: Store, hook_id: int, settings: HookSettings | None = None) -> Delivery:
    """Send a `ping` to a hook now, once (no retry), and return the recorded delivery."""
    settings = settings or HookSettings()
    delivery_id = store.ping_hook(hook_id)
    with client_for(settings) as client:
        for item in store.claim_deliveries(only=delivery_id, claim_s=settings.claim_s):
            _record(store, item, send(client, item), settings, retry=False)
    return next(d for d in store.deliveries(hook_id=hook_id, limit=10) if d.id == delivery_id)


@dataclass
class Dispatcher:
    """A daemon thread that drains the outbox until stopped: `charter serve` and
    `charter run` start one beside their work; `charter hooks deliver` runs one in front."""

    store: Store
    settings: HookSettings = field(default_factory=HookSettings)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def start(self) -> Dispatcher:
        self._thread = threading.Thread(target=self.run, name="charter-hooks", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        """Deliver until stopped: a full batch goes straight on, anything less waits a poll;
        once stopped, one last round sends what the process wrote at its end."""
        with client_for(self.settings) as client:
            while True:
                final = self._stop.is_set()  # one last round after `stop`, then out
                try:
                    busy = deliver_due(self.store, client, self.settings) >= self.settings.batch
                except Exception:  # a database or network hiccup: try again next round
                    log.exception("webhook delivery round failed")
                    busy = False
                if final:
                    return
                if not busy:
                    self._stop.wait(self.settings.poll_s)

    def stop(self, wait_s: float = 0.0) -> None:
        """Stop after one more round; wait at most `wait_s` for it (a daemon thread never
        holds the process up: what it has not sent stays pending for the next dispatcher)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(wait_s)

    def __enter__(self) -> Dispatcher:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop(FINAL_WAIT_S)
