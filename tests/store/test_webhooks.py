"""The webhook outbox: rows written with their event, claimed once, recorded, audited."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from principles import (
    AmendmentDraft,
    InvalidInput,
    NotFound,
    PolicyViolation,
    RunConfig,
    utcnow,
)
from store import Store, _audit
from store._schema import APPEND_ONLY, webhook_outbox
from store._triggers import create_append_only, drop_append_only
from tests.conftest import AGENT, ALICE, CAROL

URL = "http://127.0.0.1:9/hook"
DRAFT = AmendmentDraft(op="revise", principle_id="clarity", text="Use plain words.")


def outbox(store: Store) -> list[sa.Row[object]]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(webhook_outbox).order_by(webhook_outbox.c.id)))


def test_each_event_writes_one_pending_delivery_per_subscribed_hook(store: Store) -> None:
    amendments = store.add_hook(URL, ["amendment.proposed,amendment.applied"]).hook
    labels = store.add_hook(URL, ["label.moved"]).hook
    a = store.propose(DRAFT, AGENT)
    store.decide(a.id, ALICE, "approve", apply=False)
    store.apply(a.id, CAROL)
    store.set_label("active", "head", CAROL)
    rows = outbox(store)
    assert [(r.hook_id, r.event) for r in rows] == [
        (amendments.id, "amendment.proposed"),
        (amendments.id, "amendment.applied"),
        (labels.id, "label.moved"),
    ]
    assert {r.status for r in rows} == {"pending"} and {r.attempts for r in rows} == {0}
    proposed, applied, moved = (r.payload for r in rows)
    assert proposed == {"amendment": a.id, "op": "revise", "principle_id": "clarity", "base": 1}
    assert applied == {"amendment": a.id, "revision": 2}
    assert moved == {"constitution": "default", "label": "active", "from": None, "to": 2}
    events = {e.seq: e.action for e in store.audit_log()}
    assert [events[r.audit_seq] for r in rows] == [
        "amendment.propose",
        "amendment.applied",
        "label.set",
    ]


def test_a_finished_run_is_one_event_and_its_steps_are_none(store: Store) -> None:
    store.add_hook(URL, ["run.finished"])
    run = store.create_run(RunConfig(model="scripted:"), [], AGENT)
    store.finish_run(run.id, "stopped", "asked to stop", AGENT)
    assert [(r.event, r.payload) for r in outbox(store)] == [
        ("run.finished", {"run": run.id, "status": "stopped", "reason": "asked to stop"})
    ]


def test_a_deleted_label_is_a_label_moved_event_to_nowhere(store: Store) -> None:
    store.add_hook(URL, ["label.moved"])
    store.set_label("staging", "head", CAROL)
    store.delete_label("staging", CAROL)
    moved, deleted = outbox(store)
    assert (deleted.event, deleted.subject) == ("label.moved", "label:default/staging")
    assert deleted.payload == {
        "constitution": "default",
        "label": "staging",
        "from": moved.payload["to"],
        "to": None,
    }
    assert store.audit_log()[-1].action == "label.delete"


def test_a_rolled_back_change_leaves_no_delivery(store: Store) -> None:
    store.add_hook(URL, ["label.moved"])

    def write_then_fail(conn: sa.Connection) -> None:
        _audit.append(conn, CAROL.ref, "label.set", "label:default/x", {"from": None, "to": 1})
        raise InvalidInput("changed my mind")

    with pytest.raises(InvalidInput):
        store._write(write_then_fail)
    assert outbox(store) == []


def test_a_removed_hook_gets_nothing_and_its_pending_deliveries_fail(store: Store) -> None:
    hook = store.add_hook(URL, ["amendment.proposed"], CAROL).hook
    store.propose(DRAFT, AGENT)
    removed = store.remove_hook(hook.id, CAROL)
    assert removed.removed_at is not None and store.hooks() == []
    assert store.hooks(removed=True) == [removed]
    store.propose(AmendmentDraft(op="revise", principle_id="honesty", text="Never lie."), AGENT)
    [row] = outbox(store)
    assert (row.status, row.last_error) == ("failed", "hook removed")
    with pytest.raises(InvalidInput, match="already removed"):
        store.remove_hook(hook.id, CAROL)
    with pytest.raises(NotFound):
        store.remove_hook(99, CAROL)


def test_adding_and_removing_hooks_is_audited_without_the_secret_or_the_path(
    store: Store,
) -> None:
    added = store.add_hook(
        "https://hooks.example.com/services/T0/B0/abcdef",
        ["label.moved"],
        CAROL,
        secret="a-secret-of-enough-length",
    )
    assert added.secret == "a-secret-of-enough-length"
    store.remove_hook(added.hook.id, CAROL)
    add, remove = store.audit_log()[-2:]
    assert (add.action, add.subject, remove.action) == (
        "hook.add",
        f"hook:{added.hook.id}",
        "hook.remove",
    )
    assert add.payload == {"origin": "https://hooks.example.com", "events": ["label.moved"]}
    assert "secret" not in str(add.payload) + str(remove.payload)
    assert "abcdef" not in str(add.payload) + str(remove.payload)


def test_a_generated_secret_is_long_and_different_each_time(store: Store) -> None:
    one, two = store.add_hook(URL, ["label.moved"]), store.add_hook(URL, ["label.moved"])
    assert len(one.secret) >= 32 and one.secret != two.secret


def test_only_an_admin_adds_or_removes_hooks_once_people_are_registered(store: Store) -> None:
    hook = store.add_hook(URL, ["label.moved"], ALICE).hook  # no one registered: single-user
    store.add_user("alice", roles=("reviewer",), password="alice-password-1")
    for actor in (ALICE, AGENT):
        with pytest.raises(PolicyViolation, match="only an admin"):
            store.add_hook(URL, ["label.moved"], actor)
        with pytest.raises(PolicyViolation):
            store.remove_hook(hook.id, actor)
    store.remove_hook(hook.id, CAROL)


@pytest.mark.parametrize(
    ("url", "events", "secret", "message"),
    [
        ("ftp://example.com/x", ["label.moved"], None, "http:// or https://"),
        ("http:///nohost", ["label.moved"], None, "with a host"),
        ("https://user:pw@example.com/", ["label.moved"], None, "no credentials"),
        (URL, ["label.moved,amendment.rejected"], None, "unknown event 'amendment.rejected'"),
        (URL, [" , "], None, "at least one event"),
        (URL, ["label.moved"], "short", "16 to 512"),
    ],
)
def test_bad_hooks_are_refused_before_anything_is_written(
    store: Store, url: str, events: list[str], secret: str | None, message: str
) -> None:
    before = len(store.audit_log())
    with pytest.raises(InvalidInput, match=message):
        store.add_hook(url, events, secret=secret)
    assert store.hooks(removed=True) == [] and len(store.audit_log()) == before


def test_a_claimed_delivery_is_not_claimed_again_until_its_claim_lapses(store: Store) -> None:
    store.add_hook(URL, ["amendment.proposed"])
    store.propose(DRAFT, AGENT)
    [first] = store.claim_deliveries(claim_s=0.3)
    assert first.attempt == 1 and first.url == URL and first.event == "amendment.proposed"
    assert store.claim_deliveries() == []  # another dispatcher finds nothing to send
    time.sleep(0.4)  # the first dispatcher died mid-send: the row is due again
    [again] = store.claim_deliveries()
    assert (again.id, again.attempt) == (first.id, 2)
    assert not store.finish_delivery(first, status=200)  # the lapsed claim records nothing
    assert store.finish_delivery(again, status=204)
    [row] = store.deliveries()
    assert (row.status, row.attempts, row.last_status, row.last_error) == (
        "delivered",
        2,
        204,
        "",
    )
    assert row.delivered_at is not None and store.claim_deliveries() == []


def test_a_failed_try_is_retried_later_or_fails_for_good(store: Store) -> None:
    store.add_hook(URL, ["amendment.proposed"])
    store.propose(DRAFT, AGENT)
    [claimed] = store.claim_deliveries()
    later = utcnow() + timedelta(hours=1)
    assert store.finish_delivery(claimed, status=500, error="HTTP 500", retry_at=later)
    [row] = store.deliveries(status="pending")
    assert (row.attempts, row.last_status, row.last_error) == (1, 500, "HTTP 500")
    assert row.next_attempt_at == later and store.claim_deliveries() == []
    [claimed] = store.claim_deliveries(only=row.id)  # `hooks test` sends regardless of time
    store.finish_delivery(claimed, error="timed out")
    [row] = store.deliveries()
    assert (row.status, row.attempts, row.last_error) == ("failed", 2, "timed out")
    assert store.deliveries(status="pending") == []
    with pytest.raises(InvalidInput, match="unknown status"):
        store.deliveries(status="lost")


def test_a_failed_verify_queues_one_verify_failed_delivery_per_finding(store: Store) -> None:
    hook = store.add_hook(URL, ["audit.verify_failed"]).hook
    assert store.verify().ok and outbox(store) == []
    events = len(store.audit_log())
    with store.engine.begin() as conn:
        drop_append_only(conn, APPEND_ONLY)
        conn.execute(sa.text("UPDATE audit_events SET actor = 'human:mallory' WHERE seq = 2"))
        create_append_only(conn, APPEND_ONLY)
    report = store.verify()
    assert not report.ok and report.first_bad == 2
    assert store.verify() == report  # the same finding again: no second delivery
    [row] = outbox(store)
    assert (row.hook_id, row.event, row.audit_seq, row.subject) == (
        hook.id,
        "audit.verify_failed",
        None,
        "audit",
    )
    assert row.payload["first_bad"] == 2 and row.payload["status"] == "altered"
    assert len(store.audit_log()) == events  # verifying never appends to what it checks
