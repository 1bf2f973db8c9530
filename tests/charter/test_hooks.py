"""Webhook deliveries to a real HTTP receiver on loopback: every event once, signed, after
500s, after the sender is killed, and never at the cost of a write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from charter._hooks import (
    Dispatcher,
    HookSettings,
    client_for,
    deliver_due,
    drain,
    ping,
    request_parts,
)
from principles import HOOK_EVENTS, AmendmentDraft, sign, verify_signature
from store import Store
from tests.conftest import AGENT, ALICE, CAROL
from tests.receiver import Receiver, receiver

ROOT = Path(__file__).resolve().parents[2]
FAST = HookSettings(timeout_s=1.0, backoff_s=0.05, poll_s=0.02)
DRAFT = AmendmentDraft(op="revise", principle_id="clarity", text="Use plain words.")


def bodies(got: Receiver) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in got.accepted()]


def test_a_receiver_gets_every_event_once_with_a_valid_signature(store: Store) -> None:
    with receiver() as got:
        added = store.add_hook(got.url, list(HOOK_EVENTS))
        a = store.propose(DRAFT, AGENT)
        store.decide(a.id, ALICE, "approve", apply=False)
        store.apply(a.id, CAROL)
        store.set_label("active", "head", CAROL)
        assert drain(store, FAST) == 3
        assert drain(store, FAST) == 0
        received = got.accepted()
    assert len(received) == len(got.requests) == 3
    assert all(r.valid(added.secret) for r in received)
    assert [r.headers["charter-event"] for r in received] == [
        "amendment.proposed",
        "amendment.applied",
        "label.moved",
    ]
    first = bodies(got)[0]
    assert first["id"] == int(received[0].delivery) and first["event"] == "amendment.proposed"
    assert first["data"] == {
        "amendment": a.id,
        "op": "revise",
        "principle_id": "clarity",
        "base": 1,
    }
    assert first["subject"] == f"amendment:{a.id}" and isinstance(first["audit_seq"], int)
    assert received[0].headers["content-type"] == "application/json"
    assert {d.status for d in store.deliveries()} == {"delivered"}


def test_a_delivery_answered_500_twice_arrives_once_on_the_third_try(store: Store) -> None:
    with receiver() as got:
        added = store.add_hook(got.url, ["amendment.proposed"])
        got.fail_next = 2
        with Dispatcher(store, FAST):
            store.propose(DRAFT, AGENT)
            [accepted] = got.wait_for(1)
        time.sleep(0.1)
        tries = list(got.requests)
    assert [r.answered for r in tries] == [500, 500, 204]
    assert {r.delivery for r in tries} == {accepted.delivery}  # one id: receivers dedupe
    assert accepted.valid(added.secret)
    [row] = store.deliveries()
    assert (row.status, row.attempts, row.last_status, row.last_error) == (
        "delivered",
        3,
        204,
        "",
    )


def test_a_delivery_that_keeps_failing_gives_up_after_its_attempts(store: Store) -> None:
    with receiver() as got:
        store.add_hook(got.url, ["amendment.proposed"])
        got.fail_next = 99
        store.propose(DRAFT, AGENT)
        settings = HookSettings(timeout_s=1.0, backoff_s=0.01, max_attempts=3)
        deadline = time.monotonic() + 10
        while store.deliveries(status="pending") and time.monotonic() < deadline:
            drain(store, settings)
            time.sleep(0.02)
    [row] = store.deliveries()
    assert (row.status, row.attempts, row.last_error) == ("failed", 3, "HTTP 500")
    assert len(got.requests) == 3


def test_a_wrong_signature_is_detected(store: Store) -> None:
    added = store.add_hook("http://127.0.0.1:9/", ["amendment.proposed"])
    store.propose(DRAFT, AGENT)
    [claimed] = store.claim_deliveries()
    now = 1_800_000_000
    body, headers = request_parts(claimed, now)
    stamp, signature = headers["Charter-Timestamp"], headers["Charter-Signature"]
    assert signature == sign(added.secret, now, body) and signature.startswith("sha256=")
    assert verify_signature(added.secret, body, stamp, signature, now=now + 299)
    tampered = body.replace(b'"clarity"', b'"honesty"')
    assert tampered != body
    assert not verify_signature(added.secret, tampered, stamp, signature, now=now)
    assert not verify_signature("another-secret-entirely", body, stamp, signature, now=now)
    assert not verify_signature(added.secret, body, str(now + 1), signature, now=now)
    assert not verify_signature(added.secret, body, stamp, signature, now=now + 301)  # replay
    assert not verify_signature(added.secret, body, "not-a-time", signature, now=now)
    assert not verify_signature(added.secret, body, stamp, "sha256=" + "0" * 64, now=now)


def test_a_dead_endpoint_never_slows_a_proposal_or_a_decision(store: Store) -> None:
    with receiver() as got:
        got.sleep_s = 3.0  # past the sender's 1 s timeout
        store.add_hook(got.url, ["amendment.proposed", "amendment.applied"])
        settings = HookSettings(timeout_s=1.0, backoff_s=1.0, poll_s=0.02)
        with Dispatcher(store, settings):
            started = time.monotonic()
            a = store.propose(DRAFT, AGENT)
            proposed = time.monotonic() - started
            deadline = time.monotonic() + 5
            while not got.arrived and time.monotonic() < deadline:  # a request is in flight
                time.sleep(0.01)
            started = time.monotonic()
            store.decide(a.id, ALICE, "approve", apply=False)
            store.apply(a.id, CAROL)
            decided = time.monotonic() - started
            time.sleep(1.3)
            first = store.deliveries()[-1]
    assert got.arrived and proposed < 0.5 and decided < 0.5
    assert (first.event, first.status, first.last_error) == (
        "amendment.proposed",
        "pending",
        "timed out",
    )


def test_a_hanging_endpoint_never_delays_another_hooks_deliveries(store: Store) -> None:
    with receiver() as dead, receiver() as alive:
        dead.sleep_s = 1.5  # past the sender's 1 s timeout, for every one of its rows
        hung = store.add_hook(dead.url, ["label.moved"]).hook
        healthy = store.add_hook(alive.url, ["label.moved"]).hook
        for label in ("one", "two", "three"):
            store.set_label(label, "head", CAROL)  # outbox: hung, healthy, hung, healthy, ...
        settings = HookSettings(timeout_s=1.0, backoff_s=0.05, backoff_cap_s=0.05)
        with client_for(settings) as client:
            started = time.monotonic()
            sender = threading.Thread(target=deliver_due, args=(store, client, settings))
            sender.start()
            arrived = alive.wait_for(3, timeout_s=10)
            in_time = time.monotonic() - started
            sender.join(10)
        assert len(arrived) == 3 and in_time < 0.5  # half the hung hook's first timeout
        waiting = store.deliveries(hook_id=hung.id)
        assert [(d.status, d.attempts, d.last_error) for d in waiting] == [
            ("pending", 1, "timed out")
        ] * 3
        assert {d.status for d in store.deliveries(hook_id=healthy.id)} == {"delivered"}
        dead.sleep_s = 0.0  # the endpoint is back: its rows are retried, in order
        dead.wait_for(3)  # the hung requests end (answered after the sender gave up)
        assert drain(store, settings) == 3
        retried = [r.delivery for r in dead.accepted()[3:]]
    assert [(d.status, d.attempts) for d in store.deliveries(hook_id=hung.id)] == [
        ("delivered", 2)
    ] * 3
    assert retried == sorted(retried, key=int) and len(retried) == 3


def test_a_refused_connection_is_recorded_and_retried(store: Store) -> None:
    store.add_hook("http://127.0.0.1:9/hook", ["amendment.proposed"])  # the discard port
    store.propose(DRAFT, AGENT)
    assert drain(store, HookSettings(timeout_s=1.0)) == 1
    [row] = store.deliveries()
    assert row.status == "pending" and row.attempts == 1 and row.last_status is None
    assert "ConnectError" in row.last_error and row.next_attempt_at is not None


def test_ping_reports_how_the_receiver_answered(store: Store) -> None:
    with receiver() as got:
        hook = store.add_hook(got.url, ["label.moved"])
        done = ping(store, hook.hook.id)
        assert (done.event, done.status, done.last_status) == ("ping", "delivered", 204)
        assert got.accepted()[0].valid(hook.secret)
        got.fail_next = 1
        failed = ping(store, hook.hook.id)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 1, "HTTP 500")


_KILLED_SENDER = """
import os, signal, sys
from charter._hooks import Dispatcher, HookSettings
from principles import AmendmentDraft, Actor
from store import Store

store = Store(sys.argv[1])
Dispatcher(store, HookSettings(poll_s=60)).start()  # a sender that would deliver next round
draft = AmendmentDraft(op="revise", principle_id="clarity", text="Use plain words.")
store.propose(draft, Actor(kind="agent", name="charter-agent"))
os.kill(os.getpid(), signal.SIGKILL)  # between the write and the delivery
"""


def test_an_event_written_by_a_killed_process_is_delivered_once_by_the_next(
    db_url: str, store: Store
) -> None:
    with receiver() as got:
        added = store.add_hook(got.url, ["amendment.proposed"])
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        killed = subprocess.run(
            [sys.executable, "-c", _KILLED_SENDER, db_url], env=env, timeout=60, check=False
        )
        assert killed.returncode == -signal.SIGKILL
        assert got.requests == []
        [pending] = store.deliveries()
        assert pending.status == "pending" and pending.attempts == 0
        cli = [sys.executable, "-m", "charter.cli", "--db", db_url, "hooks", "deliver", "--once"]
        done = subprocess.run(cli, env=env, timeout=60, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        subprocess.run(cli, env=env, timeout=60, check=True, capture_output=True)
        [received] = got.requests
    assert received.answered == 204 and received.valid(added.secret)
    assert received.delivery == str(pending.id)
    assert json.loads(received.body)["event"] == "amendment.proposed"
    assert store.deliveries()[0].status == "delivered"
