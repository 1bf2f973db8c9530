"""Write operations on one connection inside one transaction, each with its audit event.

Callers hold the write lock (see `_engine.write`). Nothing here commits: a change and the
event recording it land together or not at all.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from principles import (
    Actor,
    Amendment,
    AmendmentDraft,
    Change,
    Conflict,
    Constitution,
    InvalidAmendment,
    Policy,
    Revision,
    check_run_cap,
    check_size,
    plan_changes,
    revision_hash,
    utcnow,
    version_hash,
)
from store import _audit, _queries
from store._schema import actors, amendments, constitutions, entries, revisions, versions

# Statements of the commit path, built once (see store/_queries.py for why).
_HEAD = select(constitutions.c.head).where(constitutions.c.id == bindparam("cid"))
_HEAD_ENTRIES = (
    select(
        entries.c.principle_id,
        versions.c.id,
        versions.c.hash,
        versions.c.number,
        versions.c.title,
        versions.c.text,
        versions.c.entrenched,
    )
    .join(versions, versions.c.id == entries.c.version_id)
    .where(entries.c.revision_id == bindparam("rid"))
)
_LATEST = (
    select(versions)
    .where(
        versions.c.constitution_id == bindparam("cid"), versions.c.principle_id == bindparam("pid")
    )
    .order_by(versions.c.number.desc())
    .limit(1)
)
_INSERT_VERSION = insert(versions)
_INSERT_REVISION = insert(revisions)
_INSERT_ENTRIES = insert(entries)
_SET_HEAD = (
    update(constitutions)
    .where(constitutions.c.id == bindparam("cid"))
    .values(head=bindparam("new_head"))
)


def ensure_actor(conn: Connection, actor: Actor) -> None:
    """Record the actor on first use. Known refs are remembered on the pooled connection
    (actors are never deleted), so repeated writes by one actor skip the lookup."""
    known: set[str] = conn.info.setdefault("charter_known_actors", set())
    if actor.ref in known:
        return
    if conn.scalar(select(actors.c.id).where(actors.c.ref == actor.ref)) is not None:
        known.add(actor.ref)  # only once it is committed: a rolled-back insert is not known
    else:
        conn.execute(
            insert(actors).values(
                ref=actor.ref,
                kind=actor.kind,
                name=actor.name,
                roles=",".join(actor.roles),
                created_at=utcnow(),
            )
        )


def create_constitution(conn: Connection, name: str, description: str, actor: Actor) -> int:
    cid = conn.execute(
        insert(constitutions).values(name=name, description=description, created_at=utcnow())
    ).inserted_primary_key
    assert cid is not None
    _audit.append(conn, actor.ref, "constitution.create", f"constitution:{name}", {"name": name})
    return int(cid[0])


def commit(
    conn: Connection,
    cid: int,
    name: str,
    changes: list[Change],
    author: Actor,
    message: str,
    *,
    amendment_id: int | None = None,
    rationale: str = "",
    audit_payload: dict[str, Any] | None = None,
) -> Revision:
    """Make a new head revision from the current head plus `changes`.

    A principle whose content equals its latest version reuses that version; otherwise a new
    version is appended, chained to the previous one by hash. Raises if nothing changes.
    """
    head = conn.scalar(_HEAD, {"cid": cid})
    current: dict[str, tuple[int, str, int]] = {}  # principle -> (version id, hash, number)
    # A principle in the head holds its latest version (commits only append or reuse the
    # latest), so the head's rows double as "the latest version" for those principles.
    latest: dict[str, Any] = {}
    parent_hash: str | None = None
    parent_time = None
    if head is not None:
        head_row = _queries.revision_row(conn, cid, head)
        parent_hash, parent_time = head_row.hash, head_row.created_at
        for r in conn.execute(_HEAD_ENTRIES, {"rid": head_row.id}):
            current[r.principle_id] = (r.id, r.hash, r.number)
            latest[r.principle_id] = r
    number = (head or 0) + 1
    # Revision times never go backwards, so "as of a time" is one index probe.
    now = utcnow() if parent_time is None else max(utcnow(), parent_time)
    new = dict(current)
    for change in changes:
        if change.principle is None:
            new.pop(change.principle_id, None)
            continue
        p = change.principle
        last = (
            latest.get(p.id)
            or conn.execute(
                select(versions)
                .where(versions.c.constitution_id == cid, versions.c.principle_id == p.id)
                .order_by(versions.c.number.desc())
                .limit(1)
            ).first()
        )
        if last is not None and (last.title, last.text, last.entrenched) == (
            p.title,
            p.text,
            p.entrenched,
        ):
            new[p.id] = (last.id, last.hash, last.number)
            continue
        fields: dict[str, Any] = {
            "principle_id": p.id,
            "number": last.number + 1 if last else 1,
            "title": p.title,
            "text": p.text,
            "entrenched": p.entrenched,
            "author": author.ref,
            "rationale": rationale,
            "created_at": now,
            "parent_hash": last.hash if last else None,
        }
        digest = version_hash(**fields)
        vid = conn.execute(
            _INSERT_VERSION,
            {
                "constitution_id": cid,
                "amendment_id": amendment_id,
                "revision": number,
                "hash": digest,
                **fields,
            },
        ).inserted_primary_key
        assert vid is not None
        new[p.id] = (int(vid[0]), digest, fields["number"])
    if head is not None and new == current:  # a first revision may be empty (init --empty)
        raise InvalidAmendment("nothing to commit: the result equals the head revision")
    digest = revision_hash(
        constitution=name,
        number=number,
        entries={pid: h for pid, (_, h, _) in sorted(new.items())},
        author=author.ref,
        message=message,
        created_at=now,
        parent_hash=parent_hash,
    )
    rid = conn.execute(
        _INSERT_REVISION,
        {
            "constitution_id": cid,
            "number": number,
            "parent": head,
            "author": author.ref,
            "message": message,
            "amendment_id": amendment_id,
            "created_at": now,
            "hash": digest,
        },
    ).inserted_primary_key
    assert rid is not None
    if new:  # an empty revision (init --empty, or a policy minimum of 0) has no entries
        conn.execute(
            _INSERT_ENTRIES,
            [
                {"revision_id": rid[0], "principle_id": pid, "version_id": vid}
                for pid, (vid, _, _) in sorted(new.items())
            ],
        )
    conn.execute(_SET_HEAD, {"cid": cid, "new_head": number})
    changed = sorted(pid for pid in set(new) | set(current) if new.get(pid) != current.get(pid))
    _audit.append(
        conn,
        author.ref,
        "revision.create",
        f"constitution:{name}",
        {
            "revision": number,
            "parent": head,
            "hash": digest,
            "message": message,
            "changed": changed,
            "amendment": amendment_id,
            **(audit_payload or {}),
        },
    )
    return Revision(
        number=number,
        constitution=name,
        parent=head,
        entries={pid: n for pid, (_, _, n) in sorted(new.items())},
        author=author.ref,
        message=message,
        amendment_id=amendment_id,
        created_at=now,
        hash=digest,
    )


def propose(
    conn: Connection,
    cid: int,
    name: str,
    head: Constitution,
    policy: Policy,
    draft: AmendmentDraft,
    proposer: Actor,
    supersedes: Amendment | None,
) -> Amendment:
    check_size(policy, head, plan_changes(head, draft))
    if draft.run_id is not None:
        in_run = conn.scalar(
            select(func.count()).select_from(amendments).where(amendments.c.run_id == draft.run_id)
        )
        check_run_cap(policy, int(in_run or 0))
    now = utcnow()
    aid = conn.execute(
        insert(amendments).values(
            constitution_id=cid,
            op=draft.op,
            principle_id=draft.principle_id,
            merge_from=list(draft.merge_from),
            title=draft.title,
            text=draft.text,
            entrenched=draft.entrenched,
            rationale=draft.rationale,
            evidence=list(draft.evidence),
            run_id=draft.run_id,
            base_revision=head.revision,
            proposer=proposer.ref,
            status="proposed",
            edit=0,
            editors=[],
            created_at=now,
            updated_at=now,
        )
    ).inserted_primary_key
    assert aid is not None
    amendment_id = int(aid[0])
    _audit.append(
        conn,
        proposer.ref,
        "amendment.propose",
        f"amendment:{amendment_id}",
        {"base": head.revision, **draft.model_dump(mode="json", exclude_none=True)},
    )
    if supersedes is not None:
        set_status(conn, supersedes, "superseded", proposer, superseded_by=amendment_id)
    return _queries.to_amendment(conn, name, _queries.amendment_row(conn, amendment_id))


def set_status(
    conn: Connection, amendment: Amendment, status: str, actor: Actor, **fields: Any
) -> None:
    """Move an amendment's status, guarded on the status and edit the caller saw."""
    result = conn.execute(
        update(amendments)
        .where(
            amendments.c.id == amendment.id,
            amendments.c.status == amendment.status,
            amendments.c.edit == amendment.edit,
        )
        .values(status=status, updated_at=utcnow(), **fields)
    )
    if result.rowcount != 1:
        raise Conflict(f"amendment {amendment.id} changed while this action ran")
    _audit.append(
        conn,
        actor.ref,
        f"amendment.{status}",
        f"amendment:{amendment.id}",
        {"from": amendment.status, **{k: v for k, v in fields.items() if k != "evaluation"}},
    )
