"""Governance as pure functions over domain values.

Rules: entrenched principles change only with a human's approval; no actor approves an
amendment it proposed or edited, and agents never approve; an edit voids earlier approvals
(reviews are tied to the edit they saw); an amendment whose base is no longer the head is
stale unless it rebases cleanly (touches nothing the head changed since its base); runs and
constitutions are capped in size.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from principles._errors import (
    Conflict,
    EntrenchedPrinciple,
    InvalidAmendment,
    NotFound,
    PolicyViolation,
    SelfApproval,
)
from principles._models import (
    OPEN_STATUSES,
    Actor,
    Amendment,
    AmendmentDraft,
    Constitution,
    Decision,
    Principle,
)


class Policy(BaseModel):
    """The configurable part of governance; the entrenchment rule is not configurable."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    quorum: int = Field(default=1, ge=1, description="distinct approvals needed to approve")
    max_amendments_per_run: int = Field(default=5, ge=0)
    max_principles: int = Field(default=24, ge=1)
    min_principles: int = Field(default=1, ge=0)
    allow_autonomous: bool = Field(
        default=True, description="agents may apply gated amendments to non-entrenched principles"
    )


class Change(BaseModel):
    """One principle's new content in a commit; `principle` None removes (retires) it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    principle_id: str
    principle: Principle | None


class RebaseCheck(BaseModel):
    model_config = ConfigDict(frozen=True)
    state: Literal["current", "clean", "stale"]
    base: int
    head: int
    conflicts: tuple[str, ...] = ()


def plan_changes(head: Constitution, draft: AmendmentDraft) -> list[Change]:
    """The commit an amendment makes on `head`; raises if it does not fit `head`."""
    current = {p.principle_id: p for p in head.principles}

    def need(pid: str) -> Principle:
        if pid not in current:
            raise NotFound("principle", pid)
        return current[pid].as_principle()

    try:
        if draft.op == "add":
            if draft.principle_id in current:
                raise InvalidAmendment(f"principle {draft.principle_id!r} already exists")
            assert draft.title is not None and draft.text is not None
            new = Principle(
                id=draft.principle_id,
                title=draft.title,
                text=draft.text,
                entrenched=bool(draft.entrenched),
            )
            return [Change(principle_id=new.id, principle=new)]
        if draft.op == "revise":
            old = need(draft.principle_id)
            new = old.model_copy(
                update={
                    "title": draft.title or old.title,
                    "text": draft.text or old.text,
                    "entrenched": old.entrenched if draft.entrenched is None else draft.entrenched,
                }
            )
            if new == old:
                raise InvalidAmendment(f"the revision of {old.id!r} changes nothing")
            return [Change(principle_id=old.id, principle=new)]
        if draft.op == "retire":
            need(draft.principle_id)
            return [Change(principle_id=draft.principle_id, principle=None)]
        # merge
        merged = [need(pid) for pid in draft.merge_from]
        target = current.get(draft.principle_id)
        title = draft.title or (target.title if target else None)
        if title is None:
            raise InvalidAmendment("a merge into a new principle needs a title")
        assert draft.text is not None
        entrenched = draft.entrenched
        if entrenched is None:
            entrenched = any(p.entrenched for p in merged) or bool(target and target.entrenched)
        into = Principle(id=draft.principle_id, title=title, text=draft.text, entrenched=entrenched)
        return [
            Change(principle_id=into.id, principle=into),
            *(Change(principle_id=p.id, principle=None) for p in merged),
        ]
    except ValueError as exc:  # a pydantic error building the new principle
        raise InvalidAmendment(str(exc)) from exc


def entrenched_touched(head: Constitution, draft: AmendmentDraft) -> list[str]:
    """Principles the draft touches that are entrenched now or that it would entrench."""
    hit = [pid for pid in draft.touched if (p := head.get(pid)) is not None and p.entrenched]
    if draft.entrenched and draft.principle_id not in hit:
        hit.append(draft.principle_id)
    return hit


def check_size(policy: Policy, head: Constitution, changes: list[Change]) -> None:
    """The constitution after `changes` is within the policy's bounds; one still under the
    minimum (started empty, its principles being drafted) may grow towards it."""
    ids = set(head.entries)
    for change in changes:
        if change.principle is None:
            ids.discard(change.principle_id)
        else:
            ids.add(change.principle_id)
    if len(ids) < policy.min_principles and len(ids) >= len(head.entries):
        return
    check_count(policy, len(ids), "the constitution would have")


def check_count(policy: Policy, count: int, subject: str = "the constitution has") -> None:
    """A constitution of `count` principles is within the policy's size bounds (a seed too:
    one over the cap could never be amended again)."""
    if count > policy.max_principles:
        raise PolicyViolation(f"{subject} {count} principles; the cap is {policy.max_principles}")
    if count < policy.min_principles:
        raise PolicyViolation(
            f"{subject} {count} principles; the minimum is {policy.min_principles}"
        )


def check_run_cap(policy: Policy, proposed_in_run: int) -> None:
    if proposed_in_run >= policy.max_amendments_per_run:
        raise PolicyViolation(
            f"this run has proposed {proposed_in_run} amendments; the cap is "
            f"{policy.max_amendments_per_run}"
        )


def check_open(amendment: Amendment) -> None:
    if amendment.status not in OPEN_STATUSES:
        raise Conflict(f"amendment {amendment.id} is {amendment.status}; it can no longer change")


def check_review(amendment: Amendment, actor: Actor, decision: Decision) -> None:
    """May `actor` record `decision` on `amendment`? Comments are open to everyone."""
    if decision == "comment":
        return
    check_open(amendment)
    if amendment.status != "proposed":
        raise Conflict(f"amendment {amendment.id} is already {amendment.status}")
    if actor.kind == "agent":
        raise PolicyViolation(f"{actor.ref} is an agent: agents never {decision} amendments")
    if decision == "approve":
        if actor.ref == amendment.proposer or actor.ref in amendment.editors:
            raise SelfApproval(amendment.id, actor.ref)
        if any(r.reviewer == actor.ref for r in amendment.current_approvals):
            raise Conflict(f"{actor.ref} has already approved amendment {amendment.id}")


def check_edit(amendment: Amendment, actor: Actor) -> None:
    check_open(amendment)
    if actor.kind == "agent" and actor.ref != amendment.proposer:
        raise PolicyViolation("an agent may only edit amendments it proposed")


def is_approved(policy: Policy, amendment: Amendment, entrenched: bool) -> bool:
    """Quorum reached by distinct reviewers on the current edit; entrenched needs a human."""
    reviewers = {r.reviewer for r in amendment.current_approvals}
    if len(reviewers) < policy.quorum:
        return False
    return not entrenched or any(r.startswith("human:") for r in reviewers)


def check_apply(
    policy: Policy, amendment: Amendment, actor: Actor, entrenched: list[str], autonomous: bool
) -> None:
    """Approved amendments apply; autonomous application skips review only where allowed."""
    check_open(amendment)
    if autonomous:
        if actor.kind not in ("agent", "system"):
            raise PolicyViolation("only the agent or the system applies autonomously")
        if not policy.allow_autonomous:
            raise PolicyViolation("the policy does not allow autonomous application")
        if entrenched:
            raise EntrenchedPrinciple(entrenched[0])
        return
    if actor.kind == "agent":
        raise PolicyViolation("an agent applies only autonomously, never on a human's behalf")
    if amendment.status != "approved":
        raise PolicyViolation(f"amendment {amendment.id} is {amendment.status}, not approved")


def check_rebase(base: Constitution, head: Constitution, draft: AmendmentDraft) -> RebaseCheck:
    """Compare what changed from base to head with what the draft touches."""
    if base.revision == head.revision:
        return RebaseCheck(state="current", base=base.revision, head=head.revision)
    ids = set(base.entries) | set(head.entries)
    changed = {pid for pid in ids if base.entries.get(pid) != head.entries.get(pid)}
    conflicts = tuple(sorted(changed & set(draft.touched)))
    return RebaseCheck(
        state="stale" if conflicts else "clean",
        base=base.revision,
        head=head.revision,
        conflicts=conflicts,
    )
