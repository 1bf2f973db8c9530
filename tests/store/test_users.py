"""Users, credentials and review decisions in the store, on SQLite and PostgreSQL.

Covers: users and their validation, argon2 passwords and hashed tokens (never stored or
audited in clear), the per-database secret, and the review desk: refusals audited, the
edit-seen check, stale approvals, clean rebases, approve-and-apply, racing reviewers.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from principles import (
    Actor,
    AmendmentDraft,
    Conflict,
    Decision,
    InvalidInput,
    NotFound,
    Policy,
    PolicyViolation,
    SelfApproval,
    StaleAmendment,
    User,
    check_new_user,
    default_seed,
    proposed_changes,
)
from store import Store
from tests.conftest import AGENT, ALICE, BOB, CAROL

PASSWORD = "correct horse battery"


def revise(pid: str, text: str) -> AmendmentDraft:
    return AmendmentDraft(op="revise", principle_id=pid, text=text, rationale="test")


def actions(store: Store) -> list[str]:
    return [e.action for e in store.audit_log()]


# -- users and credentials ----------------------------------------------------------------


def test_add_users_and_read_them_back(store: Store) -> None:
    alice = store.add_user("alice", roles=("reviewer",), password=PASSWORD, actor=CAROL)
    agent = store.add_user("charter-agent", kind="agent")
    assert alice.actor == Actor(kind="human", name="alice", roles=("reviewer",))
    assert alice.has_password and not agent.has_password
    assert agent.actor.kind == "agent" and agent.roles == ()
    assert [u.name for u in store.users()] == ["alice", "charter-agent"]
    assert store.user("alice") == alice
    assert store.find_user("nobody") is None
    with pytest.raises(NotFound, match="user not found: nobody"):
        store.user("nobody")
    created = [e for e in store.audit_log() if e.action == "user.create"]
    assert [(e.actor, e.subject) for e in created] == [
        ("human:carol", "user:alice"),
        ("system:charter", "user:charter-agent"),
    ]
    assert created[0].payload == {"kind": "human", "roles": ["reviewer"], "password": True}
    assert store.verify().ok


@pytest.mark.parametrize(
    ("name", "kind", "roles", "password", "message"),
    [
        ("alice", "human", (), None, "needs a role"),
        ("bot", "agent", ("reviewer",), None, "agents never review"),
        ("bad name", "human", ("reviewer",), None, "bad user name"),
        ("alice", "human", ("owner",), None, "unknown role"),
        ("alice", "human", ("reviewer",), "short", "too short"),
    ],
)
def test_bad_users_are_refused(
    store: Store, name: str, kind: str, roles: tuple[str, ...], password: str | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        store.add_user(name, kind=kind, roles=roles, password=password)  # type: ignore[arg-type]
    assert store.users() == []


def test_duplicate_user_is_refused(store: Store) -> None:
    store.add_user("alice", roles=("reviewer",))
    with pytest.raises(InvalidInput, match="already exists"):
        store.add_user("alice", roles=("admin",))


def test_passwords_are_argon2_hashes_and_checked(store: Store) -> None:
    store.add_user("alice", roles=("reviewer",), password=PASSWORD)
    store.add_user("bob", roles=("reviewer",))
    store.add_user("charter-agent", kind="agent")
    assert store.authenticate("alice", PASSWORD) == store.user("alice")
    assert store.authenticate("alice", PASSWORD + "x") is None
    assert store.authenticate("nobody", PASSWORD) is None
    assert store.authenticate("bob", PASSWORD) is None  # no password set
    assert store.authenticate("charter-agent", "") is None
    with store.engine.connect() as conn:
        stored = conn.scalar(sa.text("SELECT password_hash FROM users WHERE name = 'alice'"))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    store.set_password("alice", "another long password", BOB)
    assert store.authenticate("alice", PASSWORD) is None
    assert store.authenticate("alice", "another long password") is not None
    with pytest.raises(InvalidInput, match="tokens"):
        store.set_password("charter-agent", "a long enough password")
    logged = " ".join(str(e.payload) for e in store.audit_log())
    assert PASSWORD not in logged and "argon2" not in logged


def test_tokens_are_stored_hashed_and_can_be_revoked(store: Store) -> None:
    store.add_user("charter-agent", kind="agent")
    token = store.issue_token("charter-agent", CAROL, "loop")
    second = store.issue_token("charter-agent", CAROL)
    assert token.startswith("chr_") and token != second
    found = store.token_access(token)
    assert found is not None and found.user.name == "charter-agent"
    assert store.token_access(token + "x") is None
    assert store.token_access("not-a-token") is None
    with store.engine.connect() as conn:
        digests = list(conn.scalars(sa.text("SELECT digest FROM api_tokens")))
    assert len(digests) == 2 and token not in digests
    assert store.revoke_access("charter-agent", CAROL).tokens == 2
    assert store.token_access(token) is None and store.token_access(second) is None
    assert token not in " ".join(str(e.payload) for e in store.audit_log())
    assert actions(store)[-3:] == ["user.token.issue", "user.token.issue", "user.token.revoke"]
    with pytest.raises(NotFound):
        store.issue_token("nobody")


def test_secret_is_generated_once_per_database(db_url: str) -> None:
    with Store(db_url) as s:
        first = s.secret("web-session")
        assert len(first) >= 32 and s.secret("web-session") == first
        assert s.secret("other") != first
    with Store(db_url) as s:
        assert s.secret("web-session") == first
        assert first not in str([e.payload for e in s.audit_log()])


# -- the review desk --------------------------------------------------------------------------


def test_agent_approval_is_refused_and_audited(store: Store) -> None:
    a = store.propose(revise("clarity", "Short."), ALICE)
    with pytest.raises(PolicyViolation, match="agents never approve"):
        store.decide(a.id, AGENT, "approve")
    refused = store.audit_log()[-1]
    assert (refused.actor, refused.action, refused.subject) == (
        "agent:charter-agent",
        "review.refused",
        f"amendment:{a.id}",
    )
    assert refused.payload["action"] == "approve" and refused.payload["code"] == "policy"
    assert store.amendment(a.id).reviews == ()
    assert store.verify().ok


def test_self_approval_is_refused_and_audited(store: Store) -> None:
    a = store.propose(revise("clarity", "Short."), ALICE)
    with pytest.raises(SelfApproval):
        store.decide(a.id, ALICE, "approve")
    assert store.audit_log()[-1].payload["code"] == "self-approval"
    store.edit(a.id, BOB, seen_edit=0, text="Shorter.")
    with pytest.raises(SelfApproval):
        store.decide(a.id, BOB, "approve")  # an editor may not approve either
    done = store.decide(a.id, CAROL, "approve", "fine", seen_edit=1)
    assert done.amendment.status == "approved" and done.revision is None


def test_approve_and_apply_in_one_step(store: Store) -> None:
    a = store.propose(revise("clarity", "Short."), AGENT)
    done = store.decide(a.id, BOB, "approve", apply=True)
    assert done.revision is not None and done.revision.number == 2
    assert done.amendment.status == "applied" and done.amendment.applied_revision == 2
    assert store.principle("clarity").text == "Short."
    assert actions(store)[-4:] == [
        "review.approve",
        "amendment.approved",
        "revision.create",
        "amendment.applied",
    ]


def test_quorum_of_two_and_edit_voids_approvals(db_url: str) -> None:
    with Store(db_url, policy=Policy(quorum=2)) as store:
        store.init(default_seed())
        a = store.propose(revise("clarity", "Short."), AGENT)
        assert store.decide(a.id, ALICE, "approve", apply=True).revision is None
        state = store.review_state(a.id)
        assert state.approvals == ("human:alice",) and state.missing_approvals == 1
        assert any("1 more approval" in n for n in state.requirements())
        store.edit(a.id, CAROL, seen_edit=0, text="Shorter still.")
        state = store.review_state(a.id)
        assert state.approvals == () and state.missing_approvals == 2
        store.decide(a.id, ALICE, "approve", seen_edit=1)
        done = store.decide(a.id, BOB, "approve", seen_edit=1, apply=True)
        assert done.revision is not None
        assert store.principle("clarity").text == "Shorter still."


def test_a_decision_on_an_edit_you_did_not_see_is_a_conflict(store: Store) -> None:
    a = store.propose(revise("clarity", "Short."), AGENT)
    store.edit(a.id, CAROL, seen_edit=0, text="Changed under you.")
    with pytest.raises(Conflict, match="edited while you were reading"):
        store.decide(a.id, ALICE, "approve", seen_edit=0)
    with pytest.raises(Conflict, match="edited while you were reading"):
        store.edit(a.id, BOB, seen_edit=0, text="Mine.")
    assert store.amendment(a.id).reviews == ()
    assert store.decide(a.id, ALICE, "comment", "still fine to comment").amendment.edit == 1


def test_approving_a_stale_amendment_marks_it_stale(store: Store) -> None:
    first = store.propose(revise("clarity", "First."), AGENT)
    second = store.propose(revise("clarity", "Second."), AGENT)
    store.decide(first.id, BOB, "approve", apply=True)
    state = store.review_state(second.id)
    assert state.rebase.state == "stale" and state.rebase.conflicts == ("clarity",)
    assert any("new proposal" in n for n in state.requirements())
    with pytest.raises(StaleAmendment, match="stale"):
        store.decide(second.id, BOB, "approve", apply=True)
    assert store.amendment(second.id).status == "stale"
    assert actions(store)[-1] == "amendment.stale"
    with pytest.raises(Conflict):
        store.decide(second.id, ALICE, "approve")


def test_clean_rebase_keeps_approvals(db_url: str) -> None:
    with Store(db_url, policy=Policy(quorum=2)) as store:
        store.init(default_seed())
        elsewhere = store.propose(revise("privacy", "Protect data."), AGENT)
        mine = store.propose(revise("clarity", "Short."), AGENT)
        store.decide(mine.id, ALICE, "approve")
        store.decide(elsewhere.id, ALICE, "approve")
        store.decide(elsewhere.id, BOB, "approve", apply=True)
        state = store.review_state(mine.id)
        assert (state.rebase.state, state.rebase.base, state.rebase.head) == ("clean", 1, 2)
        rebased = store.rebase(mine.id, CAROL)
        assert rebased.base_revision == 2 and len(rebased.current_approvals) == 1
        assert store.audit_log()[-1].action == "amendment.rebase"
        with pytest.raises(InvalidInput, match="already based on the head"):
            store.rebase(mine.id, CAROL)
        assert store.decide(mine.id, BOB, "approve", apply=True).revision is not None


def test_rebase_of_a_stale_amendment_marks_it_stale(store: Store) -> None:
    first = store.propose(revise("clarity", "First."), AGENT)
    second = store.propose(revise("clarity", "Second."), AGENT)
    store.decide(first.id, BOB, "approve", apply=True)
    with pytest.raises(StaleAmendment):
        store.rebase(second.id, BOB)
    assert store.amendment(second.id).status == "stale"


def test_review_state_of_entrenched_and_applied_amendments(store: Store) -> None:
    a = store.propose(revise("honesty", "Never lie."), AGENT)
    state = store.review_state(a.id)
    assert state.entrenched == ("honesty",) and state.needs_human
    assert any("human's approval" in n for n in state.requirements())
    [change] = state.changes
    assert (change.kind, change.old_text != "", change.new_text) == ("revise", True, "Never lie.")
    store.decide(a.id, BOB, "approve", apply=True)
    state = store.review_state(a.id)
    assert state.requirements() == [] and state.compared_with == 1
    [change] = state.changes
    assert change.old is not None and change.old.number == 1 and change.new_text == "Never lie."


def test_review_states_filter_by_status(store: Store) -> None:
    a = store.propose(revise("clarity", "Short."), AGENT)
    b = store.propose(revise("privacy", "Private."), AGENT)
    store.decide(b.id, BOB, "reject", "no")
    assert [s.amendment.id for s in store.review_states()] == [a.id, b.id]
    assert [s.amendment.id for s in store.review_states("default", ["proposed"])] == [a.id]
    with pytest.raises(InvalidInput, match="needs a reason"):
        store.decide(a.id, BOB, "reject", "  ")
    with pytest.raises(InvalidInput, match="empty"):
        store.decide(a.id, BOB, "comment", "")


def race(store: Store, amendment_id: int) -> dict[str, str]:
    """Alice approves and Bob rejects at the same moment; what each of them was told."""
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def decide(who: Actor, decision: Decision) -> None:
        barrier.wait()
        try:
            store.decide(amendment_id, who, decision, "because", seen_edit=0)
            results[who.name] = "won"
        except Conflict as exc:
            results[who.name] = f"conflict: {exc}"

    threads = [
        threading.Thread(target=decide, args=(ALICE, "approve")),
        threading.Thread(target=decide, args=(BOB, "reject")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_two_reviewers_deciding_at_once_one_wins(db_url: str) -> None:
    """An approval and a rejection race on real connections: exactly one is recorded."""
    with Store(db_url) as store:
        store.init(default_seed())
        for n in range(5):
            a = store.propose(revise("clarity", f"Short {n}."), AGENT)
            results = race(store, a.id)
            assert sorted(r.split(":")[0] for r in results.values()) == ["conflict", "won"]
            loser = next(r for r in results.values() if r != "won")
            assert f"amendment {a.id} is" in loser
            final = store.amendment(a.id)
            assert len(final.reviews) == 1
            assert final.status in ("approved", "rejected")
        assert store.verify().ok


# -- pure parts ---------------------------------------------------------------------------------


def test_user_model_and_checks() -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    user = User(name="dana", kind="human", roles=("admin",), created_at=now)
    assert user.is_admin and user.actor.ref == "human:dana"
    with pytest.raises(InvalidInput):
        check_new_user("x y", "human", ("reviewer",))
    check_new_user("bot-1", "agent", ())


def test_proposed_changes_of_a_draft_that_no_longer_fits(store: Store) -> None:
    head = store.constitution()
    changes, problem = proposed_changes(head, revise("no-such", "Text."))
    assert "no-such" in problem and changes[0].kind == "add" and changes[0].old is None
    changes, problem = proposed_changes(head, revise("clarity", "Text."))
    assert problem == "" and changes[0].kind == "revise"
