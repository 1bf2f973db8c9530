"""What a reviewer needs to see about an amendment, as pure functions of domain values.

`review_state` combines the amendment, the constitution at its base and at the head with
the policy: which principles change and how, whether the base is stale or rebases cleanly,
which entrenched principles it touches (a human must approve), and how far it is from its
quorum. The CLI prints it and the web UI renders it; neither recomputes any of it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from principles._errors import CharterError
from principles._models import OPEN_STATUSES, Amendment, AmendmentDraft, Constitution
from principles._models import PrincipleVersion as Version
from principles._policy import (
    Policy,
    RebaseCheck,
    check_rebase,
    entrenched_touched,
    is_approved,
    plan_changes,
)

ChangeKind = Literal["add", "revise", "retire"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProposedChange(_Frozen):
    """One principle before and after the amendment; `new_text` None means it is retired."""

    principle_id: str
    kind: ChangeKind
    old: Version | None
    new_title: str | None
    new_text: str | None
    entrenched: bool

    @property
    def old_text(self) -> str:
        return self.old.text if self.old is not None else ""

    @property
    def title_changed(self) -> bool:
        return (
            self.old is not None
            and self.new_title is not None
            and self.old.title != (self.new_title)
        )


class ReviewState(_Frozen):
    """An amendment with everything the policy says about it against the current head."""

    amendment: Amendment
    head: int
    rebase: RebaseCheck
    entrenched: tuple[str, ...]
    quorum: int
    approvals: tuple[str, ...]
    approved: bool
    changes: tuple[ProposedChange, ...]
    compared_with: int
    problem: str = ""

    @property
    def is_open(self) -> bool:
        return self.amendment.status in OPEN_STATUSES

    @property
    def missing_approvals(self) -> int:
        return max(0, self.quorum - len(self.approvals))

    @property
    def needs_human(self) -> bool:
        return bool(self.entrenched)

    def requirements(self) -> list[str]:
        """What policy still requires, as sentences for a person (empty when closed)."""
        if not self.is_open:
            return []
        a, needs = self.amendment, []
        if self.rebase.state == "stale":
            needs.append(
                f"a new proposal: the head moved from revision {self.rebase.base} to "
                f"{self.rebase.head} and changed {', '.join(self.rebase.conflicts)}"
            )
        elif self.rebase.state == "clean":
            needs.append(
                f"a rebase onto revision {self.rebase.head} (clean: the head changed other "
                "principles only; applying rebases it)"
            )
        if self.missing_approvals:
            needs.append(
                f"{self.missing_approvals} more approval(s) for a quorum of {self.quorum}, "
                f"from people other than {_people(a)}"
            )
        if self.entrenched:
            has_human = any(r.startswith("human:") for r in self.approvals)
            if not has_human or self.missing_approvals:
                needs.append(
                    f"a human's approval: it touches entrenched {', '.join(self.entrenched)}"
                )
        if self.problem:
            needs.append(f"a fix: {self.problem}")
        if a.status == "approved":
            needs.append("to be applied (it is approved)")
        return needs


def _people(a: Amendment) -> str:
    people = [a.proposer, *(e for e in a.editors if e != a.proposer)]
    return " and ".join(people)


def _draft_change(before: Constitution, draft: AmendmentDraft) -> list[ProposedChange]:
    """The draft's change read directly, for a draft that no longer fits the head."""
    changes: list[ProposedChange] = []
    for pid in draft.touched:
        old = before.get(pid)
        if pid == draft.principle_id and draft.op != "retire":
            changes.append(
                ProposedChange(
                    principle_id=pid,
                    kind="revise" if old is not None else "add",
                    old=old,
                    new_title=draft.title or (old.title if old else None),
                    new_text=draft.text or (old.text if old else None),
                    entrenched=bool(draft.entrenched or (old and old.entrenched)),
                )
            )
        else:
            changes.append(
                ProposedChange(
                    principle_id=pid,
                    kind="retire",
                    old=old,
                    new_title=None,
                    new_text=None,
                    entrenched=bool(old and old.entrenched),
                )
            )
    return changes


def proposed_changes(
    before: Constitution, draft: AmendmentDraft
) -> tuple[list[ProposedChange], str]:
    """Each touched principle before and after `draft` applied to `before`.

    Returns the changes and, when the draft does not fit `before` (its target was retired,
    its new id was taken), the reason; the changes then show the draft as written.
    """
    try:
        planned = plan_changes(before, draft)
    except CharterError as exc:
        return _draft_change(before, draft), str(exc)
    out: list[ProposedChange] = []
    for change in planned:
        old = before.get(change.principle_id)
        new = change.principle
        out.append(
            ProposedChange(
                principle_id=change.principle_id,
                kind="retire" if new is None else ("add" if old is None else "revise"),
                old=old,
                new_title=new.title if new else None,
                new_text=new.text if new else None,
                entrenched=new.entrenched if new else bool(old and old.entrenched),
            )
        )
    return out, ""


def applied_changes(
    before: Constitution, after: Constitution, touched: tuple[str, ...]
) -> list[ProposedChange]:
    """What an applied amendment did: its principles in the revisions around it."""
    out: list[ProposedChange] = []
    for pid in touched:
        old, new = before.get(pid), after.get(pid)
        if old is not None and new is not None and old.hash == new.hash:
            continue
        either = new or old
        out.append(
            ProposedChange(
                principle_id=pid,
                kind="retire" if new is None else ("add" if old is None else "revise"),
                old=old,
                new_title=new.title if new else None,
                new_text=new.text if new else None,
                entrenched=bool(either and either.entrenched),
            )
        )
    return out


def review_state(
    policy: Policy,
    amendment: Amendment,
    base: Constitution,
    head: Constitution,
    *,
    applied_from: Constitution | None = None,
    applied_to: Constitution | None = None,
) -> ReviewState:
    """The review view of `amendment`. For an applied one, pass the revisions around it."""
    entrenched = tuple(entrenched_touched(head, amendment.draft))
    if applied_from is not None and applied_to is not None:
        changes = applied_changes(applied_from, applied_to, amendment.draft.touched)
        problem, compared = "", applied_from.revision
    else:
        changes, problem = proposed_changes(head, amendment.draft)
        compared = head.revision
    return ReviewState(
        amendment=amendment,
        head=head.revision,
        rebase=check_rebase(base, head, amendment.draft),
        entrenched=entrenched,
        quorum=policy.quorum,
        approvals=tuple(sorted({r.reviewer for r in amendment.current_approvals})),
        approved=is_approved(policy, amendment, bool(entrenched)),
        changes=tuple(changes),
        compared_with=compared,
        problem=problem if amendment.status in OPEN_STATUSES else "",
    )
