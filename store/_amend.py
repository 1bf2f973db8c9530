"""Amendment decisions on one connection, so that a loop step can make them in its own
transaction together with its other results (see `Store.record_step`)."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update

from principles import (
    Actor,
    Amendment,
    Constitution,
    Decision,
    Evaluation,
    InvalidInput,
    NotFound,
    Policy,
    Revision,
    StaleAmendment,
    check_apply,
    check_open,
    check_prose,
    check_rebase,
    check_review,
    entrenched_touched,
    is_approved,
    plan_changes,
    utcnow,
)
from store import _audit, _integrity, _queries, _writes
from store._schema import amendments, constitutions, reviews


def cid(conn: Connection, name: str) -> int:
    return int(_queries.constitution_row(conn, name).id)


def head(conn: Connection, name: str) -> Constitution:
    row = _queries.constitution_row(conn, name)
    if row.head is None:
        raise NotFound("revision", "head")
    return _queries.snapshot(conn, row.id, name, row.head)


def amendment_constitution_name(conn: Connection, constitution_id: int) -> str:
    return str(
        conn.scalar(select(constitutions.c.name).where(constitutions.c.id == constitution_id))
    )


def amendment(conn: Connection, amendment_id: int) -> Amendment:
    row = _queries.amendment_row(conn, amendment_id)
    name = amendment_constitution_name(conn, row.constitution_id)
    return _queries.to_amendment(conn, name, row)


def review(
    conn: Connection,
    policy: Policy,
    amendment_id: int,
    reviewer: Actor,
    decision: Decision,
    comment: str,
) -> Amendment:
    """Record a review; a rejection closes the amendment, a quorum of approvals approves it.
    A comment with control characters (other than newline and tab) is refused."""
    if decision == "reject" and not comment.strip():
        raise InvalidInput("a rejection needs a reason")
    comment = check_prose(comment, "a comment")
    current = amendment(conn, amendment_id)
    check_review(current, reviewer, decision)
    _writes.ensure_actor(conn, reviewer)
    conn.execute(
        insert(reviews).values(
            amendment_id=amendment_id,
            reviewer=reviewer.ref,
            decision=decision,
            comment=comment,
            edit=current.edit,
            created_at=utcnow(),
        )
    )
    _audit.append(
        conn,
        reviewer.ref,
        f"review.{decision}",
        f"amendment:{amendment_id}",
        {"edit": current.edit, "comment": comment},
    )
    updated = amendment(conn, amendment_id)
    if decision == "reject":
        _writes.set_status(conn, updated, "rejected", reviewer)
    elif decision == "approve":
        trusted = _integrity.trusted_head(conn, current.constitution)
        entrenched = bool(entrenched_touched(trusted, current.draft))
        if is_approved(policy, updated, entrenched):
            _writes.set_status(conn, updated, "approved", reviewer)
    return amendment(conn, amendment_id)


def apply(
    conn: Connection, policy: Policy, amendment_id: int, actor: Actor, autonomous: bool
) -> Revision | StaleAmendment:
    """Apply as a new head revision, rebasing when clean; a stale amendment is marked stale
    and the StaleAmendment error is returned (not raised) so that the mark is committed."""
    current = amendment(conn, amendment_id)
    name = current.constitution
    constitution_id = cid(conn, name)
    now_head = _integrity.trusted_head(conn, name)  # policy decides on verified rows only
    entrenched = entrenched_touched(now_head, current.draft)
    check_apply(policy, current, actor, entrenched, autonomous)
    base = _queries.snapshot(conn, constitution_id, name, current.base_revision)
    rebase = check_rebase(base, now_head, current.draft)
    if rebase.state == "stale":
        _writes.set_status(conn, current, "stale", actor)
        return StaleAmendment(amendment_id, rebase.base, rebase.head, list(rebase.conflicts))
    _writes.ensure_actor(conn, actor)
    revision = _writes.commit(
        conn,
        constitution_id,
        name,
        plan_changes(now_head, current.draft),
        actor,
        f"amendment {amendment_id}: {current.draft.op} {current.draft.principle_id}",
        amendment_id=amendment_id,
        rationale=current.draft.rationale,
        audit_payload={"autonomous": autonomous} if autonomous else None,
    )
    _writes.set_status(
        conn,
        current,
        "applied",
        actor,
        applied_revision=revision.number,
        **({"base_revision": now_head.revision} if rebase.state == "clean" else {}),
    )
    return revision


def record_evaluation(
    conn: Connection, amendment_id: int, evaluation: Evaluation, actor: Actor
) -> Amendment:
    """Store the gate's figures on an open amendment, with its audit event."""
    check_open(amendment(conn, amendment_id))
    figures = evaluation.model_dump(mode="json")
    conn.execute(
        update(amendments)
        .where(amendments.c.id == amendment_id)
        .values(evaluation=figures, updated_at=utcnow())
    )
    _audit.append(conn, actor.ref, "amendment.evaluate", f"amendment:{amendment_id}", figures)
    return amendment(conn, amendment_id)
