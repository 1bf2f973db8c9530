"""The Store API on SQLite and PostgreSQL: lifecycle, history queries, governance, errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from principles import (
    SYSTEM,
    AmendmentDraft,
    Change,
    CharterError,
    Conflict,
    EntrenchedPrinciple,
    Evaluation,
    InvalidAmendment,
    InvalidInput,
    NotFound,
    Policy,
    PolicyViolation,
    Principle,
    Seed,
    SelfApproval,
    StaleAmendment,
    default_seed,
)
from store import Store, redact_credentials
from tests.conftest import AGENT, ALICE, BOB, CAROL


def revise(pid: str, text: str, **kw: object) -> AmendmentDraft:
    return AmendmentDraft(op="revise", principle_id=pid, text=text, **kw)  # type: ignore[arg-type]


def approved(store: Store, draft: AmendmentDraft) -> int:
    a = store.propose(draft, ALICE)
    return store.decide(a.id, BOB, "approve").amendment.id


def test_init_creates_revision_one(store: Store) -> None:
    c = store.constitution()
    assert c.revision == 1
    assert len(c.principles) == len(default_seed().principles)
    assert all(p.number == 1 for p in c.principles)
    assert store.revisions()[0].number == 1
    with pytest.raises(InvalidInput, match="already exists"):
        store.init(default_seed())


def test_init_refuses_a_seed_over_the_size_cap_and_writes_nothing(db_url: str) -> None:
    seed = default_seed()  # 10 principles
    with Store(db_url, policy=Policy(max_principles=9)) as s:
        with pytest.raises(PolicyViolation, match="10 principles; the cap is 9"):
            s.init(seed)
        assert s.constitutions() == [] and s.audit_log() == []
    with (
        Store(db_url, policy=Policy(min_principles=11)) as s,
        pytest.raises(PolicyViolation, match="the minimum is 11"),
    ):
        s.init(seed)
    with Store(db_url, policy=Policy(max_principles=10)) as s:
        assert len(s.init(seed).entries) == 10


def test_an_empty_constitution_grows_by_amendments_towards_the_minimum(db_url: str) -> None:
    def add(pid: str) -> AmendmentDraft:
        return AmendmentDraft(op="add", principle_id=pid, title=pid.title(), text=f"Be {pid}.")

    with Store(db_url, policy=Policy(min_principles=3)) as s:
        first = s.init(Seed(name="drafted"))
        assert first.number == 1 and first.entries == {}
        assert s.constitution("drafted").principles == ()
        for pid in ("kind", "brief"):  # under the minimum, but growing
            a = s.propose(add(pid), ALICE, "drafted")
            s.decide(a.id, BOB, "approve")
            s.apply(a.id, BOB)
        assert [p.principle_id for p in s.constitution("drafted").principles] == ["brief", "kind"]
        assert s.constitution("drafted", at=1).principles == ()
        retire = AmendmentDraft(op="retire", principle_id="kind")
        with pytest.raises(PolicyViolation, match="would have 1 principles; the minimum is 3"):
            s.propose(retire, ALICE, "drafted")
        assert s.verify().ok


def test_reopening_keeps_everything(db_url: str) -> None:
    with Store(db_url) as s:
        s.init(default_seed())
        s.apply(approved(s, revise("clarity", "Short.")), BOB)
    with Store(db_url) as s:
        assert s.constitution().revision == 2
        assert s.principle("clarity").text == "Short."
        assert s.verify().ok


def test_full_amendment_lifecycle(store: Store) -> None:
    a = store.propose(revise("clarity", "Use plain words.", rationale="too long"), ALICE)
    assert a.status == "proposed" and a.base_revision == 1
    a = store.decide(a.id, BOB, "approve", "fine").amendment
    assert a.status == "approved"
    rev = store.apply(a.id, CAROL)
    assert rev.number == 2 and rev.amendment_id == a.id and rev.parent == 1
    assert store.amendment(a.id).status == "applied"
    assert store.amendment(a.id).applied_revision == 2
    v = store.principle("clarity")
    assert (v.number, v.text, v.revision, v.amendment_id) == (2, "Use plain words.", 2, a.id)
    assert v.rationale == "too long"
    history = store.history("clarity")
    assert [h.number for h in history] == [1, 2]
    assert history[1].parent_hash == history[0].hash
    actions = [e.action for e in store.audit_log()]
    assert actions[-5:] == [
        "amendment.propose",
        "review.approve",
        "amendment.approved",
        "revision.create",
        "amendment.applied",
    ]
    assert store.verify().ok


def test_add_retire_merge(store: Store) -> None:
    store.apply(
        approved(
            store,
            AmendmentDraft(
                op="add", principle_id="humility", title="Humility", text="Admit limits."
            ),
        ),
        BOB,
    )
    store.apply(approved(store, AmendmentDraft(op="retire", principle_id="humility")), BOB)
    assert store.constitution().get("humility") is None
    assert store.principle("humility").number == 1  # retired, history kept
    store.apply(
        approved(
            store,
            AmendmentDraft(
                op="merge", principle_id="clarity", merge_from=("autonomy",), text="Merged."
            ),
        ),
        BOB,
    )
    c = store.constitution()
    assert c.get("autonomy") is None and c.get("clarity") is not None
    assert c.get("clarity").text == "Merged."  # type: ignore[union-attr]
    assert c.revision == 4


def test_invalid_amendments_are_refused_and_nothing_is_written(store: Store) -> None:
    events = len(store.audit_log())
    with pytest.raises(NotFound):
        store.propose(AmendmentDraft(op="retire", principle_id="missing"), ALICE)
    with pytest.raises(InvalidAmendment):
        store.propose(AmendmentDraft(op="add", principle_id="clarity", title="C", text="x"), ALICE)
    with pytest.raises(InvalidAmendment, match="changes nothing"):
        store.propose(revise("clarity", store.principle("clarity").text), ALICE)
    assert len(store.audit_log()) == events
    assert store.amendments() == []


def test_governance(store: Store) -> None:
    a = store.propose(revise("clarity", "x"), ALICE)
    with pytest.raises(SelfApproval):
        store.decide(a.id, ALICE, "approve")
    with pytest.raises(PolicyViolation, match="agent"):
        store.decide(a.id, AGENT, "approve")
    with pytest.raises(PolicyViolation, match="not approved"):
        store.apply(a.id, BOB)
    with pytest.raises(InvalidInput, match="reason"):
        store.decide(a.id, BOB, "reject", "")
    store.decide(a.id, BOB, "reject", "no")
    with pytest.raises(Conflict):
        store.decide(a.id, CAROL, "approve")
    assert store.amendment(a.id).status == "rejected"


def test_entrenched_needs_a_human_and_autonomy_is_bounded(store: Store) -> None:
    e = store.propose(revise("honesty", "Be honest, mostly."), AGENT)
    with pytest.raises(EntrenchedPrinciple):
        store.apply(e.id, AGENT, autonomous=True)
    assert store.amendment(e.id).status == "proposed"
    n = store.propose(revise("clarity", "Be clear."), AGENT)
    rev = store.apply(n.id, AGENT, autonomous=True)
    assert rev.author == AGENT.ref
    store.decide(e.id, ALICE, "approve")
    assert store.apply(e.id, BOB).number == 3


def test_edit_voids_approvals_and_blocks_the_editor(store: Store) -> None:
    a = store.propose(revise("clarity", "x"), ALICE)
    store.decide(a.id, BOB, "approve")
    a = store.edit(a.id, CAROL, text="y")
    assert a.status == "proposed" and a.edit == 1 and a.current_approvals == ()
    assert len(a.reviews) == 1  # the old approval is kept, but no longer counts
    with pytest.raises(SelfApproval):
        store.decide(a.id, CAROL, "approve")
    a = store.decide(a.id, BOB, "approve").amendment
    assert a.status == "approved"
    store.apply(a.id, BOB)
    assert store.principle("clarity").text == "y"
    edit_event = next(e for e in store.audit_log() if e.action == "amendment.edit")
    assert edit_event.payload["voided_approvals"] == 1


def test_quorum(db_url: str) -> None:
    with Store(db_url, policy=Policy(quorum=2)) as s:
        s.init(default_seed())
        a = s.propose(revise("clarity", "x"), ALICE)
        assert s.decide(a.id, BOB, "approve").amendment.status == "proposed"
        with pytest.raises(Conflict, match="already approved"):
            s.decide(a.id, BOB, "approve")
        assert s.decide(a.id, CAROL, "approve").amendment.status == "approved"


def test_stale_and_clean_rebase(store: Store) -> None:
    first = approved(store, revise("clarity", "one"))
    same = approved(store, revise("clarity", "two"))
    other = approved(store, revise("autonomy", "three"))
    store.apply(first, BOB)
    with pytest.raises(StaleAmendment) as info:
        store.apply(same, BOB)
    assert (info.value.base, info.value.head, info.value.principles) == (1, 2, ["clarity"])
    assert store.amendment(same).status == "stale"
    rev = store.apply(other, BOB)
    assert rev.number == 3 and rev.entries["clarity"] == 2 and rev.entries["autonomy"] == 2
    assert store.amendment(other).base_revision == 2  # rebased


def test_supersede(store: Store) -> None:
    old = store.propose(revise("clarity", "x"), AGENT)
    new = store.propose(revise("clarity", "y"), AGENT, supersedes=old.id)
    assert store.amendment(old.id).status == "superseded"
    assert store.amendment(old.id).superseded_by == new.id


def test_run_cap(db_url: str) -> None:
    with Store(db_url, policy=Policy(max_amendments_per_run=1)) as s:
        s.init(default_seed())
        s.propose(revise("clarity", "x", run_id=1), AGENT)
        with pytest.raises(PolicyViolation, match="cap"):
            s.propose(revise("autonomy", "x", run_id=1), AGENT)


def test_evaluation_is_stored(store: Store) -> None:
    a = store.propose(revise("clarity", "x"), AGENT)
    ev = Evaluation(before=0.5, after=0.7, passed=True, per_principle_after={"clarity": 0.9})
    assert store.record_evaluation(a.id, ev, SYSTEM).evaluation == ev
    assert store.amendment(a.id).evaluation == ev


def test_revert_makes_a_new_revision(store: Store) -> None:
    store.apply(approved(store, revise("clarity", "two")), BOB)
    store.apply(approved(store, AmendmentDraft(op="retire", principle_id="autonomy")), BOB)
    rev = store.revert(1, CAROL)
    assert rev.number == 4 and rev.parent == 3
    c = store.constitution()
    assert store.constitution(at=1).entries.keys() == c.entries.keys()
    assert c.get("clarity").text == store.principle("clarity", 1).text  # type: ignore[union-attr]
    assert c.get("autonomy").number == 1  # type: ignore[union-attr] # restored, not rewritten
    assert [v.number for v in store.history("clarity")] == [1, 2, 3]
    assert [r.number for r in store.revisions()] == [4, 3, 2, 1]
    with pytest.raises(InvalidInput, match="already equals"):
        store.revert(4, CAROL)
    with pytest.raises(PolicyViolation):
        store.revert(2, AGENT)


def test_labels_point_and_move(store: Store) -> None:
    store.set_label("production", 1, CAROL)
    store.apply(approved(store, revise("clarity", "two")), BOB)
    assert store.constitution(at="production").revision == 1
    store.set_label("production", "head", CAROL)
    assert store.resolve("production") == 2
    assert [(x.name, x.revision) for x in store.labels()] == [("production", 2)]
    with pytest.raises(NotFound):
        store.set_label("x", 99, CAROL)
    with pytest.raises(InvalidInput):
        store.set_label("head", 1, CAROL)
    store.delete_label("production", CAROL)
    assert store.labels() == []
    assert [e.action for e in store.audit_log()].count("label.set") == 2


def test_as_of_time(store: Store) -> None:
    t1 = datetime.now(UTC)
    time.sleep(0.01)
    store.apply(approved(store, revise("clarity", "two")), BOB)
    assert store.constitution(as_of=t1).revision == 1
    assert store.constitution(as_of=datetime.now(UTC)).revision == 2
    with pytest.raises(NotFound):
        store.constitution(as_of=t1 - timedelta(days=1))
    with pytest.raises(InvalidInput, match="timezone"):
        store.constitution(as_of=datetime.now())  # noqa: DTZ005


def test_blame_and_search(store: Store) -> None:
    original = store.principle("clarity").text
    store.apply(approved(store, revise("clarity", original + "\nNew closing line.")), BOB)
    lines = store.blame("clarity")
    assert lines[-1].text == "New closing line." and lines[-1].version == 2
    assert lines[-1].revision == 2 and lines[-1].amendment_id is not None
    assert all(line.version == 1 for line in lines[:-1])
    assert [line.version for line in store.blame("clarity", 1)] == [1] * (len(lines) - 1)
    found = store.search("CLOSING")
    assert [v.ref for v in found] == ["clarity@2"]
    with pytest.raises(NotFound):
        store.blame("clarity", 9)


def test_direct_commit_needs_system_or_admin(store: Store) -> None:
    change = Change(principle_id="x", principle=Principle(id="x", title="X", text="x"))
    with pytest.raises(PolicyViolation):
        store.commit([change], ALICE, "m")
    assert store.commit([change], SYSTEM, "m").number == 2
    with pytest.raises(InvalidAmendment, match="nothing to commit"):
        store.commit([change], CAROL, "again")


def test_lm_cache(store: Store) -> None:
    assert store.cache_get("k") is None
    store.cache_put("k", "v")
    store.cache_put("k", "other")  # first write wins: replays are stable
    assert store.cache_get("k") == "v"


def test_unknown_things(store: Store) -> None:
    for call in (
        lambda: store.principle("nope"),
        lambda: store.principle("clarity", 5),
        lambda: store.history("nope"),
        lambda: store.revision(42),
        lambda: store.constitution(at="no-such-label"),
        lambda: store.amendment(99),
        lambda: store.constitution("other"),
    ):
        with pytest.raises(NotFound):
            call()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bob:pa@ss-word-9@127.0.0.1:1/x",  # unreachable
        "postgresql://bob:pa@ss-word-9@127.0.0.1:notaport/x",  # unparseable
        "mysql://bob:pa@ss-word-9@127.0.0.1/x",  # unsupported
    ],
)
def test_a_database_urls_password_never_reaches_an_error_message(url: str) -> None:
    with pytest.raises(CharterError) as caught:
        Store(url)
    assert "ss-word-9" not in str(caught.value) and "pa@" not in str(caught.value)


def test_credentials_are_redacted_from_any_message() -> None:
    said = "cannot open 'postgresql+psycopg://bob:s3cr@t@db.example:5432/c' (sqlite:///x.db)"
    assert redact_credentials(said) == (
        "cannot open 'postgresql+psycopg://bob:***@db.example:5432/c' (sqlite:///x.db)"
    )
    assert redact_credentials("postgresql://bob@h/c and https://h/a@b") == (
        "postgresql://bob@h/c and https://h/a@b"
    )
