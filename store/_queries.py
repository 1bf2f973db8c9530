"""Read queries on one connection, returning domain values (rows never leave `store/`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, or_, select

from principles import (
    STORED,
    Amendment,
    AmendmentDraft,
    Constitution,
    Evaluation,
    Label,
    NotFound,
    PrincipleVersion,
    Review,
    Revision,
    VersionInfo,
)
from store import _ids
from store._schema import amendments, constitutions, entries, labels, reviews, revisions, versions

_VERSION_COLS = (
    versions.c.principle_id,
    versions.c.number,
    versions.c.title,
    versions.c.text,
    versions.c.entrenched,
    versions.c.author,
    versions.c.rationale,
    versions.c.amendment_id,
    versions.c.revision,
    versions.c.created_at,
    versions.c.parent_hash,
    versions.c.hash,
)


def _trusted(cls: Any, keys: tuple[str, ...], fields: frozenset[str], row: Any) -> Any:
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", dict(zip(keys, row, strict=True)))
    object.__setattr__(obj, "__pydantic_fields_set__", fields)
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


def to_version(row: Any) -> PrincipleVersion:
    """A version from a row of our own append-only table, validated when it was written.

    Built without pydantic's validation (10,000 versions in a history would otherwise cost
    most of the query's time); equality, dumping and properties behave as usual.
    """
    version: PrincipleVersion = _trusted(PrincipleVersion, _VERSION_KEYS, _VERSION_FIELDS, row)
    return version


_VERSION_KEYS = tuple(c.key for c in _VERSION_COLS)
_VERSION_FIELDS = frozenset(_VERSION_KEYS)
assert set(PrincipleVersion.model_fields) == _VERSION_FIELDS


# Statements on the write path are built once: SQLAlchemy then skips re-coercing them and
# memoizes their cache keys (about a third of a small write's time otherwise).
_CONSTITUTION_BY_NAME = select(constitutions).where(constitutions.c.name == bindparam("name"))
_REVISION_BY_NUMBER = select(revisions).where(
    revisions.c.constitution_id == bindparam("cid"), revisions.c.number == bindparam("number")
)


def constitution_row(conn: Connection, name: str) -> Row[Any]:
    row = conn.execute(_CONSTITUTION_BY_NAME, {"name": name}).first()
    if row is None:
        raise NotFound("constitution", name)
    return row


def constitution_names(conn: Connection) -> list[str]:
    return list(conn.scalars(select(constitutions.c.name).order_by(constitutions.c.name)))


def revision_row(conn: Connection, cid: int, number: int) -> Row[Any]:
    _ids.require(conn, "revision", number)
    row = conn.execute(_REVISION_BY_NUMBER, {"cid": cid, "number": number}).first()
    if row is None:
        raise NotFound("revision", number)
    return row


def resolve_revision(conn: Connection, cid: int, ref: int | str) -> int:
    """A revision number, `head`, or a label name -> a revision number."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        number = int(ref)
        revision_row(conn, cid, number)
        return number
    if ref == "head":
        head = conn.scalar(select(constitutions.c.head).where(constitutions.c.id == cid))
        if head is None:
            raise NotFound("revision", "head")
        return int(head)
    labelled = conn.scalar(
        select(labels.c.revision).where(labels.c.constitution_id == cid, labels.c.name == ref)
    )
    if labelled is None:
        raise NotFound("revision or label", ref)
    return int(labelled)


def revision_as_of(conn: Connection, cid: int, when: datetime) -> int:
    # Revision times never decrease (see _writes.commit): the newest at or before `when`
    # is one probe of the (constitution, created_at) index.
    number = conn.scalar(
        select(revisions.c.number)
        .where(revisions.c.constitution_id == cid, revisions.c.created_at <= when)
        .order_by(revisions.c.created_at.desc(), revisions.c.number.desc())
        .limit(1)
    )
    if number is None:
        raise NotFound("revision as of", when.isoformat())
    return int(number)


def snapshot(conn: Connection, cid: int, name: str, number: int) -> Constitution:
    rev = revision_row(conn, cid, number)
    rows = conn.execute(
        select(*_VERSION_COLS)
        .join(entries, entries.c.version_id == versions.c.id)
        .where(entries.c.revision_id == rev.id)
        .order_by(versions.c.principle_id)
    ).all()
    return Constitution.model_construct(
        name=name,
        revision=number,
        created_at=rev.created_at,
        principles=tuple(to_version(r) for r in rows),
    )


def to_revision(conn: Connection, name: str, row: Row[Any]) -> Revision:
    pairs = conn.execute(
        select(entries.c.principle_id, versions.c.number)
        .join(versions, versions.c.id == entries.c.version_id)
        .where(entries.c.revision_id == row.id)
        .order_by(entries.c.principle_id)
    ).all()
    return Revision(
        number=row.number,
        constitution=name,
        parent=row.parent,
        entries={p.principle_id: p.number for p in pairs},
        author=row.author,
        message=row.message,
        amendment_id=row.amendment_id,
        created_at=row.created_at,
        hash=row.hash,
    )


def revision_list(conn: Connection, cid: int, name: str, limit: int | None) -> list[Revision]:
    query = select(revisions).where(revisions.c.constitution_id == cid)
    rows = conn.execute(query.order_by(revisions.c.number.desc()).limit(limit)).all()
    return [to_revision(conn, name, r) for r in rows]


def history(conn: Connection, cid: int, principle_id: str) -> list[PrincipleVersion]:
    rows = conn.execute(
        select(*_VERSION_COLS)
        .where(versions.c.constitution_id == cid, versions.c.principle_id == principle_id)
        .order_by(versions.c.number)
    ).all()
    if not rows:
        raise NotFound("principle", principle_id)
    return [to_version(r) for r in rows]


_LOG_SQL = (
    "SELECT principle_id, number, title, entrenched, author, amendment_id, revision, "
    "created_at, hash FROM principle_versions WHERE constitution_id = {p} AND "
    "principle_id = {p} ORDER BY number"
)


def _utc(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite keeps naive UTC text
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def version_log(conn: Connection, cid: int, principle_id: str) -> list[VersionInfo]:
    """A principle's versions without their texts, oldest first (the history listing).

    The hot path of long histories: plain driver SQL (no per-value type processing) into
    named tuples.
    """
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    rows = conn.exec_driver_sql(_LOG_SQL.format(p=mark), (cid, principle_id)).fetchall()
    if not rows:
        raise NotFound("principle", principle_id)
    return [
        VersionInfo(pid, n, title, bool(ent), author, aid, rev, _utc(at), digest)
        for pid, n, title, ent, author, aid, rev, at, digest in rows
    ]


def version(conn: Connection, cid: int, principle_id: str, number: int | None) -> PrincipleVersion:
    query = select(*_VERSION_COLS).where(
        versions.c.constitution_id == cid, versions.c.principle_id == principle_id
    )
    if number is None:
        row = conn.execute(query.order_by(versions.c.number.desc()).limit(1)).first()
    else:
        _ids.require(conn, "principle version", number, f"{principle_id}@{number}")
        row = conn.execute(query.where(versions.c.number == number)).first()
    if row is None:
        ref = principle_id if number is None else f"{principle_id}@{number}"
        raise NotFound("principle version", ref)
    return to_version(row)


def search(conn: Connection, cid: int, text: str, limit: int) -> list[PrincipleVersion]:
    pattern = f"%{text.lower()}%"
    rows = conn.execute(
        select(*_VERSION_COLS)
        .where(
            versions.c.constitution_id == cid,
            or_(
                func.lower(versions.c.text).like(pattern),
                func.lower(versions.c.title).like(pattern),
            ),
        )
        .order_by(versions.c.principle_id, versions.c.number)
        .limit(limit)
    ).all()
    return [to_version(r) for r in rows]


def label_list(conn: Connection, cid: int, name: str) -> list[Label]:
    rows = conn.execute(
        select(labels).where(labels.c.constitution_id == cid).order_by(labels.c.name)
    ).all()
    return [
        Label(name=r.name, constitution=name, revision=r.revision, updated_at=r.updated_at)
        for r in rows
    ]


def to_amendment(conn: Connection, name: str, row: Row[Any]) -> Amendment:
    review_rows = conn.execute(
        select(reviews).where(reviews.c.amendment_id == row.id).order_by(reviews.c.id)
    ).all()
    # STORED: a row written before control characters were refused loads as it is.
    draft = AmendmentDraft.model_validate(
        {
            "op": row.op,
            "principle_id": row.principle_id,
            "title": row.title,
            "text": row.text,
            "entrenched": row.entrenched,
            "merge_from": tuple(row.merge_from),
            "rationale": row.rationale,
            "evidence": tuple(row.evidence),
            "run_id": row.run_id,
        },
        context=STORED,
    )
    return Amendment(
        id=row.id,
        constitution=name,
        draft=draft,
        base_revision=row.base_revision,
        proposer=row.proposer,
        status=row.status,
        edit=row.edit,
        editors=tuple(row.editors),
        evaluation=Evaluation.model_validate(row.evaluation) if row.evaluation else None,
        applied_revision=row.applied_revision,
        superseded_by=row.superseded_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        reviews=tuple(
            Review.model_validate(
                {
                    "id": r.id,
                    "amendment_id": r.amendment_id,
                    "reviewer": r.reviewer,
                    "decision": r.decision,
                    "comment": r.comment,
                    "edit": r.edit,
                    "created_at": r.created_at,
                },
                context=STORED,
            )
            for r in review_rows
        ),
    )


def amendment_row(conn: Connection, amendment_id: int) -> Row[Any]:
    _ids.require(conn, "amendment", amendment_id)
    row = conn.execute(select(amendments).where(amendments.c.id == amendment_id)).first()
    if row is None:
        raise NotFound("amendment", amendment_id)
    return row


def amendment_list(
    conn: Connection, cid: int, name: str, status: str | None, run_id: int | None
) -> list[Amendment]:
    query = select(amendments).where(amendments.c.constitution_id == cid)
    if status is not None:
        query = query.where(amendments.c.status == status)
    if run_id is not None:
        query = query.where(amendments.c.run_id == run_id)
    return [to_amendment(conn, name, r) for r in conn.execute(query.order_by(amendments.c.id))]
