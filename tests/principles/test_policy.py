from __future__ import annotations

from datetime import UTC, datetime

import pytest

from principles import (
    Actor,
    Amendment,
    AmendmentDraft,
    Conflict,
    Constitution,
    EntrenchedPrinciple,
    InvalidAmendment,
    NotFound,
    Policy,
    PolicyViolation,
    PrincipleVersion,
    Review,
    SelfApproval,
    check_apply,
    check_rebase,
    check_review,
    check_run_cap,
    check_size,
    entrenched_touched,
    is_approved,
    plan_changes,
)

NOW = datetime(2026, 11, 26, tzinfo=UTC)
ALICE = Actor(kind="human", name="alice")
BOB = Actor(kind="human", name="bob")
AGENT = Actor(kind="agent", name="a")
SYSTEM = Actor(kind="system", name="s")


def _pv(
    pid: str, number: int = 1, entrenched: bool = False, text: str = "text"
) -> PrincipleVersion:
    return PrincipleVersion(
        principle_id=pid,
        number=number,
        title=pid.title(),
        text=text,
        entrenched=entrenched,
        author="system:s",
        revision=1,
        created_at=NOW,
        parent_hash=None,
        hash=f"{pid}{number}",
    )


def _c(revision: int, *versions: PrincipleVersion) -> Constitution:
    return Constitution(name="c", revision=revision, created_at=NOW, principles=versions)


HEAD = _c(1, _pv("honesty", entrenched=True), _pv("clarity"), _pv("brevity"))


def _amendment(draft: AmendmentDraft, status: str = "proposed", **kw: object) -> Amendment:
    return Amendment.model_validate(
        dict(
            id=7,
            constitution="c",
            draft=draft,
            base_revision=1,
            proposer=ALICE.ref,
            status=status,
            created_at=NOW,
            updated_at=NOW,
            **kw,
        )
    )


REVISE = AmendmentDraft(op="revise", principle_id="clarity", text="new")


def test_plan_add_revise_retire_merge() -> None:
    add = plan_changes(HEAD, AmendmentDraft(op="add", principle_id="privacy", title="P", text="x"))
    assert add[0].principle is not None and add[0].principle.id == "privacy"
    rev = plan_changes(HEAD, REVISE)
    assert rev[0].principle is not None and rev[0].principle.text == "new"
    assert rev[0].principle.title == "Clarity"  # kept
    ret = plan_changes(HEAD, AmendmentDraft(op="retire", principle_id="brevity"))
    assert ret[0].principle is None
    merge = plan_changes(
        HEAD,
        AmendmentDraft(op="merge", principle_id="clarity", merge_from=("brevity",), text="both"),
    )
    assert [c.principle_id for c in merge] == ["clarity", "brevity"]
    assert merge[1].principle is None


def test_plan_rejects_what_does_not_fit_the_head() -> None:
    with pytest.raises(InvalidAmendment, match="already exists"):
        plan_changes(HEAD, AmendmentDraft(op="add", principle_id="clarity", title="C", text="x"))
    with pytest.raises(NotFound):
        plan_changes(HEAD, AmendmentDraft(op="retire", principle_id="missing"))
    with pytest.raises(NotFound):
        plan_changes(HEAD, AmendmentDraft(op="revise", principle_id="missing", text="x"))
    with pytest.raises(InvalidAmendment, match="changes nothing"):
        plan_changes(HEAD, AmendmentDraft(op="revise", principle_id="clarity", text="text"))
    with pytest.raises(InvalidAmendment, match="title"):
        plan_changes(
            HEAD,
            AmendmentDraft(op="merge", principle_id="new-one", merge_from=("brevity",), text="x"),
        )


def test_entrenched_detection() -> None:
    assert entrenched_touched(HEAD, REVISE) == []
    assert entrenched_touched(HEAD, AmendmentDraft(op="retire", principle_id="honesty")) == [
        "honesty"
    ]
    assert entrenched_touched(
        HEAD, AmendmentDraft(op="revise", principle_id="clarity", text="x", entrenched=True)
    ) == ["clarity"]


def test_agents_never_approve_and_nobody_self_approves() -> None:
    a = _amendment(REVISE)
    with pytest.raises(PolicyViolation, match="agent"):
        check_review(a, AGENT, "approve")
    with pytest.raises(SelfApproval):
        check_review(a, ALICE, "approve")
    edited = _amendment(REVISE, editors=(BOB.ref,), edit=1)
    with pytest.raises(SelfApproval):
        check_review(edited, BOB, "approve")
    check_review(a, BOB, "approve")
    check_review(a, AGENT, "comment")


def test_decisions_only_on_open_amendments() -> None:
    for status in ("approved", "rejected", "applied", "stale", "superseded"):
        with pytest.raises(Conflict):
            check_review(_amendment(REVISE, status=status), BOB, "approve")


def test_an_edit_voids_earlier_approvals() -> None:
    review = Review(
        id=1, amendment_id=7, reviewer=BOB.ref, decision="approve", edit=0, created_at=NOW
    )
    a = _amendment(REVISE, reviews=(review,))
    assert is_approved(Policy(), a, entrenched=False)
    edited = _amendment(REVISE, reviews=(review,), edit=1)
    assert not is_approved(Policy(), edited, entrenched=False)


def test_quorum_and_entrenched_need_humans() -> None:
    r = [
        Review(id=i, amendment_id=7, reviewer=ref, decision="approve", edit=0, created_at=NOW)
        for i, ref in enumerate(["system:s", "node:n1"])
    ]
    a = _amendment(REVISE, reviews=tuple(r))
    assert is_approved(Policy(quorum=2), a, entrenched=False)
    assert not is_approved(Policy(quorum=3), a, entrenched=False)
    assert not is_approved(Policy(quorum=2), a, entrenched=True)


def test_apply_rules() -> None:
    proposed = _amendment(REVISE)
    with pytest.raises(PolicyViolation, match="not approved"):
        check_apply(Policy(), proposed, BOB, [], autonomous=False)
    check_apply(Policy(), proposed, AGENT, [], autonomous=True)
    with pytest.raises(EntrenchedPrinciple):
        check_apply(Policy(), proposed, AGENT, ["honesty"], autonomous=True)
    with pytest.raises(PolicyViolation, match="does not allow"):
        check_apply(Policy(allow_autonomous=False), proposed, AGENT, [], autonomous=True)
    with pytest.raises(PolicyViolation):
        check_apply(Policy(), proposed, ALICE, [], autonomous=True)
    with pytest.raises(PolicyViolation, match="agent"):
        check_apply(Policy(), _amendment(REVISE, status="approved"), AGENT, [], autonomous=False)
    check_apply(Policy(), _amendment(REVISE, status="approved"), BOB, [], autonomous=False)


def test_rebase_is_clean_only_when_the_head_changed_other_principles() -> None:
    base = HEAD
    head_other = _c(2, _pv("honesty", entrenched=True), _pv("clarity"), _pv("brevity", 2))
    head_same = _c(2, _pv("honesty", entrenched=True), _pv("clarity", 2), _pv("brevity"))
    assert check_rebase(base, base, REVISE).state == "current"
    assert check_rebase(base, head_other, REVISE).state == "clean"
    stale = check_rebase(base, head_same, REVISE)
    assert stale.state == "stale" and stale.conflicts == ("clarity",)
    retired = _c(2, _pv("honesty", entrenched=True), _pv("brevity"))
    assert check_rebase(base, retired, REVISE).state == "stale"


def test_caps() -> None:
    check_run_cap(Policy(max_amendments_per_run=2), 1)
    with pytest.raises(PolicyViolation, match="cap is 2"):
        check_run_cap(Policy(max_amendments_per_run=2), 2)
    add = plan_changes(HEAD, AmendmentDraft(op="add", principle_id="x", title="X", text="x"))
    with pytest.raises(PolicyViolation, match="cap is 3"):
        check_size(Policy(max_principles=3), HEAD, add)
    check_size(Policy(max_principles=4), HEAD, add)
    one = _c(1, _pv("only"))
    with pytest.raises(PolicyViolation, match="minimum"):
        check_size(
            Policy(), one, plan_changes(one, AmendmentDraft(op="retire", principle_id="only"))
        )
