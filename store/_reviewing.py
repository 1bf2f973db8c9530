"""Human review of amendments (mixed into Store): what to show, and decisions that race safely.

Guarantees:
- `decide` checks, under the write lock, that the amendment is still the edit the reviewer
  saw; of two reviewers deciding at once exactly one wins and the other gets `Conflict`.
- Approving an amendment whose base is stale marks it stale (committed, audited) and raises
  `StaleAmendment`; a clean one can be approved, and is rebased when applied.
- `decide` and `edit` are the only ways to review: every approval, rejection, comment and
  edit goes through them (the loop's own rejections use `_amend.review` in its step).
- A decision the policy refuses (an agent approving, self-approval) raises as before and
  leaves a `review.refused` audit event, so refused attempts are on the record too.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, update

from principles import (
    Actor,
    Amendment,
    AmendmentDraft,
    Conflict,
    Constitution,
    Decision,
    InvalidAmendment,
    InvalidInput,
    Policy,
    PolicyViolation,
    ReviewState,
    Revision,
    StaleAmendment,
    check_edit,
    check_open,
    check_rebase,
    check_review,
    plan_changes,
    review_state,
    utcnow,
    validation_message,
)
from store import _amend, _audit, _queries, _writes
from store._base import StoreBase
from store._schema import amendments


class ReviewOutcome(BaseModel):
    """A decision as recorded, and the revision it produced when it was also applied."""

    model_config = ConfigDict(frozen=True)
    amendment: Amendment
    revision: Revision | None = None


def _check_seen(current: Amendment, seen_edit: int | None) -> None:
    if seen_edit is not None and current.edit != seen_edit:
        raise Conflict(
            f"amendment {current.id} was edited while you were reading it (it is now edit "
            f"{current.edit}, you saw edit {seen_edit}): reload it and review the new text"
        )


def _state(
    conn: Connection,
    policy: Policy,
    a: Amendment,
    head: Constitution,
    seen: dict[int, Constitution] | None = None,
) -> ReviewState:
    """`seen` caches snapshots by revision number across the amendments of one listing."""
    cid = _amend.cid(conn, a.constitution)
    cache = {} if seen is None else seen

    def at(number: int) -> Constitution:
        if number not in cache:
            cache[number] = _queries.snapshot(conn, cid, a.constitution, number)
        return cache[number]

    base = at(a.base_revision)
    if a.status == "applied" and a.applied_revision is not None:
        parent = _queries.revision_row(conn, cid, a.applied_revision).parent
        before = at(parent) if parent else base
        return review_state(
            policy, a, base, head, applied_from=before, applied_to=at(a.applied_revision)
        )
    return review_state(policy, a, base, head)


def edit_on(
    conn: Connection,
    amendment_id: int,
    editor: Actor,
    updates: dict[str, str],
    seen_edit: int | None = None,
) -> Amendment:
    """Change a pending amendment's title, text or rationale; voids its approvals."""
    current = _amend.amendment(conn, amendment_id)
    _check_seen(current, seen_edit)
    check_edit(current, editor)
    if current.draft.op == "retire" and ("title" in updates or "text" in updates):
        raise InvalidAmendment("a retire has no title or text to edit")
    if not updates:
        raise InvalidInput("nothing to edit: give a new title, text or rationale")
    try:
        draft = AmendmentDraft.model_validate({**current.draft.model_dump(), **updates})
    except ValueError as exc:
        raise InvalidAmendment(validation_message(exc)) from exc
    if draft == current.draft:
        raise InvalidInput("nothing to edit: the new text equals the current one")
    plan_changes(_amend.head(conn, current.constitution), draft)
    _writes.ensure_actor(conn, editor)
    done = conn.execute(
        update(amendments)
        .where(amendments.c.id == amendment_id, amendments.c.edit == current.edit)
        .values(
            title=draft.title,
            text=draft.text,
            rationale=draft.rationale,
            edit=current.edit + 1,
            editors=sorted({*current.editors, editor.ref}),
            status="proposed",
            updated_at=utcnow(),
        )
    )
    if done.rowcount != 1:
        raise Conflict(f"amendment {amendment_id} changed while this edit ran")
    _audit.append(
        conn,
        editor.ref,
        "amendment.edit",
        f"amendment:{amendment_id}",
        {
            "edit": current.edit + 1,
            "before": {k: getattr(current.draft, k) for k in updates},
            "after": updates,
            "voided_approvals": len(current.current_approvals),
        },
    )
    return _amend.amendment(conn, amendment_id)


class ReviewAPI(StoreBase):
    """The review half of `Store` (a `Store` mixin)."""

    def review_state(self, amendment_id: int) -> ReviewState:
        """The amendment with its changes against the head, rebase state and requirements."""

        def run(conn: Connection) -> ReviewState:
            a = _amend.amendment(conn, amendment_id)
            return _state(conn, self.policy, a, _amend.head(conn, a.constitution))

        result: ReviewState = self._read(run)
        return result

    def review_states(
        self, name: str = "default", statuses: Iterable[str] | None = None
    ) -> list[ReviewState]:
        """Review states of the constitution's amendments (optionally only `statuses`)."""
        wanted = set(statuses) if statuses is not None else None

        def run(conn: Connection) -> list[ReviewState]:
            cid = _amend.cid(conn, name)
            head = _amend.head(conn, name)
            found = _queries.amendment_list(conn, cid, name, None, None)
            seen: dict[int, Constitution] = {head.revision: head}
            return [
                _state(conn, self.policy, a, head, seen)
                for a in found
                if wanted is None or a.status in wanted
            ]

        result: list[ReviewState] = self._read(run)
        return result

    def _audit_refusal(self, actor: Actor, action: str, amendment_id: int, exc: Exception) -> None:
        code = getattr(exc, "code", "policy")
        self._write(
            lambda c: _audit.append(
                c,
                actor.ref,
                "review.refused",
                f"amendment:{amendment_id}",
                {"action": action, "code": code, "reason": str(exc)},
            )
        )

    def decide(
        self,
        amendment_id: int,
        actor: Actor,
        decision: Decision,
        comment: str = "",
        *,
        seen_edit: int | None = None,
        apply: bool = False,
    ) -> ReviewOutcome:
        """Approve, reject or comment as a reviewer, in one transaction.

        `seen_edit` is the edit the reviewer was shown: if the amendment changed since, the
        decision is refused with `Conflict`. With `apply`, an approval that completes the
        quorum also applies the amendment (rebasing it when clean) in the same transaction.
        """
        if decision == "comment" and not comment.strip():
            raise InvalidInput("the comment is empty")

        def run(conn: Connection) -> ReviewOutcome | StaleAmendment:
            current = _amend.amendment(conn, amendment_id)
            if decision != "comment":
                _check_seen(current, seen_edit)
            check_review(current, actor, decision)
            if decision == "approve":
                name = current.constitution
                base = _queries.snapshot(conn, _amend.cid(conn, name), name, current.base_revision)
                rebase = check_rebase(base, _amend.head(conn, name), current.draft)
                if rebase.state == "stale":
                    _writes.set_status(conn, current, "stale", actor)
                    return StaleAmendment(
                        amendment_id, rebase.base, rebase.head, list(rebase.conflicts)
                    )
            updated = _amend.review(conn, self.policy, amendment_id, actor, decision, comment)
            if not (apply and updated.status == "approved"):
                return ReviewOutcome(amendment=updated)
            applied = _amend.apply(conn, self.policy, amendment_id, actor, False)
            if isinstance(applied, StaleAmendment):
                return applied
            return ReviewOutcome(amendment=_amend.amendment(conn, amendment_id), revision=applied)

        try:
            result: ReviewOutcome | StaleAmendment = self._write(run)
        except PolicyViolation as exc:
            self._audit_refusal(actor, decision, amendment_id, exc)
            raise
        if isinstance(result, StaleAmendment):
            raise result
        return result

    def edit(
        self,
        amendment_id: int,
        editor: Actor,
        *,
        seen_edit: int | None = None,
        title: str | None = None,
        text: str | None = None,
        rationale: str | None = None,
    ) -> Amendment:
        """Edit as a reviewer: refused with `Conflict` if it changed since `seen_edit`."""
        updates = {
            k: v
            for k, v in {"title": title, "text": text, "rationale": rationale}.items()
            if v is not None
        }
        try:
            result: Amendment = self._write(
                lambda c: edit_on(c, amendment_id, editor, updates, seen_edit)
            )
        except PolicyViolation as exc:
            self._audit_refusal(actor=editor, action="edit", amendment_id=amendment_id, exc=exc)
            raise
        return result

    def rebase(self, amendment_id: int, actor: Actor) -> Amendment:
        """Move a cleanly rebasable amendment's base to the head; its approvals still count.

        A stale one is marked stale and `StaleAmendment` raised; a current one is refused.
        """

        def run(conn: Connection) -> Amendment | StaleAmendment:
            current = _amend.amendment(conn, amendment_id)
            check_open(current)
            name = current.constitution
            head = _amend.head(conn, name)
            base = _queries.snapshot(conn, _amend.cid(conn, name), name, current.base_revision)
            check = check_rebase(base, head, current.draft)
            if check.state == "current":
                raise InvalidInput(f"amendment {amendment_id} is already based on the head")
            if check.state == "stale":
                _writes.set_status(conn, current, "stale", actor)
                return StaleAmendment(amendment_id, check.base, check.head, list(check.conflicts))
            done = conn.execute(
                update(amendments)
                .where(
                    amendments.c.id == amendment_id,
                    amendments.c.edit == current.edit,
                    amendments.c.base_revision == current.base_revision,
                )
                .values(base_revision=head.revision, updated_at=utcnow())
            )
            if done.rowcount != 1:
                raise Conflict(f"amendment {amendment_id} changed while this rebase ran")
            _writes.ensure_actor(conn, actor)
            _audit.append(
                conn,
                actor.ref,
                "amendment.rebase",
                f"amendment:{amendment_id}",
                {"from": check.base, "to": check.head},
            )
            return _amend.amendment(conn, amendment_id)

        result: Amendment | StaleAmendment = self._write(run)
        if isinstance(result, StaleAmendment):
            raise result
        return result
