"""Decisions through the web UI: approve, reject, edit, comment, rebase, apply, and refusals."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from charter.web import create_app
from principles import AmendmentDraft, Policy, default_seed
from store import Store
from tests.charter.web.conftest import SECRET, Client, add_people, propose, signed_in
from tests.conftest import AGENT, ALICE, CAROL


def test_approve_applies_and_records_it(alice: Client, web_store: Store) -> None:
    aid = propose(web_store)
    response = alice.post(f"/amendments/{aid}/approve", {"seen_edit": "0", "comment": "good"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/amendments/{aid}?done=approved"
    page = alice.get(response.headers["location"])
    assert "Approved and applied" in page.text and "revision 2" in page.text
    assert web_store.constitution().revision == 2
    assert web_store.principle("clarity").text == "Use plain words.\nKeep answers short."
    events = [(e.actor, e.action) for e in web_store.audit_log(subject=f"amendment:{aid}")]
    assert ("human:alice", "review.approve") in events
    assert events[-1] == ("human:alice", "amendment.applied")


def test_agent_approving_is_403_and_audited(
    app: FastAPI, web_store: Store, agent_token: str
) -> None:
    aid = propose(web_store)
    response = TestClient(app).post(
        f"/amendments/{aid}/approve",
        headers={"authorization": f"Bearer {agent_token}"},
        data={"seen_edit": "0"},
    )
    assert response.status_code == 403
    assert response.json()["code"] == "policy" and "agents never" in response.json()["error"]
    last = web_store.audit_log()[-1]
    assert (last.actor, last.action, last.subject) == (
        "agent:charter-agent",
        "review.refused",
        f"amendment:{aid}",
    )
    assert web_store.amendment(aid).status == "proposed"
    assert web_store.verify().ok


def test_self_approval_is_refused(app: FastAPI, web_store: Store) -> None:
    aid = propose(web_store, proposer=ALICE)
    alice = signed_in(app, "alice")
    page = alice.get(f"/amendments/{aid}")
    assert "you cannot approve it" in page.text
    assert f'action="/amendments/{aid}/approve"' not in page.text
    response = alice.post(f"/amendments/{aid}/approve", {"seen_edit": "0"})
    assert response.status_code == 403
    assert "may not approve amendment" in response.text and 'role="alert"' in response.text
    assert web_store.audit_log()[-1].action == "review.refused"
    assert web_store.amendment(aid).status == "proposed"


def test_approving_a_stale_amendment_is_a_conflict(alice: Client, web_store: Store) -> None:
    first = propose(web_store, text="First.")
    second = propose(web_store, text="Second.")
    assert alice.post(f"/amendments/{first}/approve", {"seen_edit": "0"}).status_code == 303
    page = alice.get(f"/amendments/{second}")
    assert "stale: clarity changed" in page.text
    response = alice.post(f"/amendments/{second}/approve", {"seen_edit": "0"})
    assert response.status_code == 409
    assert f"amendment {second} is stale" in response.text
    assert web_store.amendment(second).status == "stale"
    assert web_store.constitution().revision == 2


def test_reject_needs_a_reason(alice: Client, web_store: Store) -> None:
    aid = propose(web_store)
    response = alice.post(f"/amendments/{aid}/reject", {"seen_edit": "0", "reason": " "})
    assert response.status_code == 400 and "needs a reason" in response.text
    response = alice.post(f"/amendments/{aid}/reject", {"seen_edit": "0", "reason": "too vague"})
    assert response.status_code == 303
    a = web_store.amendment(aid)
    assert a.status == "rejected" and a.reviews[0].comment == "too vague"
    page = alice.get(f"/amendments/{aid}")
    assert "no decision is open" in page.text


def test_edit_then_another_reviewer_approves(app: FastAPI, web_store: Store) -> None:
    aid = propose(web_store)
    bob, alice = signed_in(app, "bob"), signed_in(app, "alice")
    web_store.decide(aid, CAROL, "comment", "tighten it")
    response = bob.post(
        f"/amendments/{aid}/edit",
        {
            "seen_edit": "0",
            "text": "Use plain words.\r\nBe brief.",
            "title": "Be clear and concise",
        },
    )
    assert response.status_code == 303
    a = web_store.amendment(aid)
    assert (a.edit, a.editors, a.draft.text) == (1, ("human:bob",), "Use plain words.\nBe brief.")
    assert a.draft.title is None  # an unchanged title is not an edit
    assert bob.post(f"/amendments/{aid}/approve", {"seen_edit": "1"}).status_code == 403
    stale_view = alice.post(f"/amendments/{aid}/approve", {"seen_edit": "0"})
    assert stale_view.status_code == 409 and "edited while you were reading" in stale_view.text
    assert alice.post(f"/amendments/{aid}/approve", {"seen_edit": "1"}).status_code == 303
    assert web_store.principle("clarity").text == "Use plain words.\nBe brief."


def test_edit_voids_earlier_approvals(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/quorum.db", policy=Policy(quorum=2))
    store.init(default_seed())
    add_people(store)
    app = create_app(store, secret=SECRET)
    aid = propose(store)
    alice, bob = signed_in(app, "alice"), signed_in(app, "bob")
    alice.post(f"/amendments/{aid}/approve", {"seen_edit": "0"})
    page = bob.get(f"/amendments/{aid}")
    assert "1 of 2" in page.text and "Approve and apply" in page.text
    bob.post(f"/amendments/{aid}/edit", {"seen_edit": "0", "text": "Plain words."})
    page = alice.get(f"/amendments/{aid}")
    assert "void: the text was edited after it" in page.text and "0 of 2" in page.text
    store.close()


def test_comment_with_and_without_htmx(alice: Client, web_store: Store) -> None:
    aid = propose(web_store)
    plain = alice.post(f"/amendments/{aid}/comment", {"comment": "first <b>thought</b>"})
    assert plain.status_code == 303
    fragment = alice.post(
        f"/amendments/{aid}/comment", {"comment": "second"}, headers={"HX-Request": "true"}
    )
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "first &lt;b&gt;thought&lt;/b&gt;" in fragment.text and "second" in fragment.text
    empty = alice.post(
        f"/amendments/{aid}/comment", {"comment": ""}, headers={"HX-Request": "true"}
    )
    assert empty.status_code == 400 and empty.headers["hx-retarget"] == "#flash"
    assert [r.decision for r in web_store.amendment(aid).reviews] == ["comment", "comment"]


def test_clean_rebase_from_the_page(alice: Client, web_store: Store) -> None:
    mine = propose(web_store)
    other = propose(web_store, pid="privacy", text="Protect personal data.")
    web_store.decide(other, CAROL, "approve", apply=True)
    page = alice.get(f"/amendments/{mine}")
    assert "head moved: rebases cleanly" in page.text and "Rebase onto revision 2" in page.text
    assert alice.post(f"/amendments/{mine}/rebase").status_code == 303
    assert web_store.amendment(mine).base_revision == 2
    again = alice.post(f"/amendments/{mine}/rebase")
    assert again.status_code == 400 and "already based on the head" in again.text


def test_apply_an_approved_amendment(alice: Client, web_store: Store) -> None:
    aid = propose(web_store)
    web_store.decide(aid, CAROL, "approve")  # approved, not applied
    page = alice.get(f"/amendments/{aid}")
    assert "Apply as a new revision" in page.text
    assert alice.post(f"/amendments/{aid}/apply").status_code == 303
    assert web_store.amendment(aid).applied_revision == 2
    assert alice.post(f"/amendments/{aid}/apply").status_code == 409


def test_unknown_amendment_is_404(alice: Client) -> None:
    assert alice.post("/amendments/99/approve", {"seen_edit": "0"}).status_code == 404
    assert alice.get("/amendments/99").status_code == 404


@pytest.fixture
def shared_app(db_url: str) -> Iterator[tuple[FastAPI, Store]]:
    store = Store(db_url)
    store.init(default_seed())
    add_people(store)
    yield create_app(store, secret=SECRET), store
    store.close()


def race(alice: Client, bob: Client, aid: int) -> dict[str, tuple[int, str]]:
    """Alice approves while Bob rejects, released at the same moment."""
    barrier = threading.Barrier(2)
    codes: dict[str, tuple[int, str]] = {}

    def run(name: str, client: Client, action: str) -> None:
        barrier.wait()
        r = client.post(f"/amendments/{aid}/{action}", {"seen_edit": "0", "reason": "no"})
        codes[name] = (r.status_code, r.text)

    threads = [
        threading.Thread(target=run, args=("alice", alice, "approve")),
        threading.Thread(target=run, args=("bob", bob, "reject")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return codes


def test_two_reviewers_at_once_exactly_one_wins(shared_app: tuple[FastAPI, Store]) -> None:
    """Two decisions on one amendment at once: one wins, the other gets a clear 409."""
    app, store = shared_app
    alice, bob = signed_in(app, "alice"), signed_in(app, "bob")
    for n in range(3):
        aid = store.propose(
            AmendmentDraft(op="revise", principle_id="privacy", text=f"Private {n}."), AGENT
        ).id
        codes = race(alice, bob, aid)
        assert sorted(code for code, _ in codes.values()) == [303, 409]
        loser = next(text for code, text in codes.values() if code == 409)
        assert f"amendment {aid} is" in loser and "Refused" in loser
        decided = [r for r in store.amendment(aid).reviews if r.decision != "comment"]
        assert len(decided) == 1
    assert store.verify().ok
