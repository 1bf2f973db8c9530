"""Verification of the stored history, and the trusted reads that policy checks rely on.

`verify` checks, in this order, and names the first row that does not fit:
1. the audit chain (`_audit.walk`): every event's hash and link, and the exported anchor;
2. every principle version: its hash over its content and parent's hash, and that its
   parent is the previous version of the same principle;
3. every revision: its hash over its snapshot (principle -> version hash), content and
   parent's hash; that it follows the previous revision; and that its `revision.create`
   audit event names that hash, parent and amendment, and every such event a revision;
4. that every version is in the snapshot of the revision that introduced it (a row slipped
   in beside the history would otherwise read as a principle's newest version);
5. that the append-only triggers are in place.
So an edited version or revision breaks its own hash; a re-hashed one breaks the revision or
audit event above it; a consistently re-hashed log breaks the anchor. Tables are read in
batches by primary key, never whole.

`trusted_head` is the head snapshot for governance decisions: it recomputes the hashes of
the rows it returns and raises `IntegrityError` rather than let a forged `entrenched` flag
decide what an agent may change.
"""

from __future__ import annotations

from datetime import datetime
from itertools import groupby
from operator import itemgetter

from sqlalchemy import Connection

from principles import (
    Anchor,
    Constitution,
    IntegrityError,
    NotFound,
    VerifyReport,
    revision_hash,
    version_hash,
)
from store import _audit, _queries
from store._audit import Broken, RevisionEvent, aware, fetch
from store._schema import (
    APPEND_ONLY,
    FEDERATION_APPEND_ONLY,
    JUDGE_APPEND_ONLY,
    PROBE_APPEND_ONLY,
    RUN_APPEND_ONLY,
)
from store._triggers import missing_append_only

_BATCH = 5000
_VERSIONS = (
    "SELECT id, constitution_id, principle_id, number, title, text, entrenched, author, "
    "rationale, created_at, parent_hash, hash FROM principle_versions "
    "WHERE id > {p} ORDER BY id LIMIT {n}"
)
_REVISIONS = (
    "SELECT id, constitution_id, number, parent, author, message, amendment_id, created_at, "
    "hash FROM revisions WHERE id > {p} ORDER BY id LIMIT {n}"
)
# A snapshot maps principle ids to version hashes: an entry pointed at another principle's
# or constitution's version changes the map, so the revision hash covers that too.
_ENTRIES = (
    "SELECT revision_id, principle_id, version_id FROM revision_entries "
    "WHERE revision_id >= {p} AND revision_id <= {p} ORDER BY revision_id, principle_id"
)
# The first version that the revision it names as its introducer does not hold, or whose
# amendment is not that revision's (no hash covers a version's amendment and revision).
_STRAY_VERSION = (
    "SELECT v.id, v.constitution_id, v.principle_id, v.number, v.revision, e.version_id "
    "FROM principle_versions v LEFT JOIN revisions r "
    "ON r.constitution_id = v.constitution_id AND r.number = v.revision "
    "LEFT JOIN revision_entries e ON e.revision_id = r.id AND e.version_id = v.id "
    "WHERE e.version_id IS NULL OR v.amendment_id <> r.amendment_id "
    "OR (v.amendment_id IS NULL) <> (r.amendment_id IS NULL) ORDER BY v.id LIMIT 1"
)


def _sql(conn: Connection, template: str) -> str:
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return template.format(p=mark, n=_BATCH)


def verify(conn: Connection, expected: Anchor | None = None) -> VerifyReport:
    """Check the whole stored history (see the module docstring); never raises on bad data.

    All tables are read as of one moment, so that a change committed meanwhile is not taken
    for a gap (SQLite's read transaction is a snapshot already; PostgreSQL's default is not).
    """
    if conn.dialect.name == "postgresql" and not conn.in_transaction():
        conn.execution_options(isolation_level="REPEATABLE READ")
    events: dict[tuple[str, int], RevisionEvent] = {}
    counts = {"events": 0, "versions": 0, "revisions": 0}
    try:
        counts["events"] = _audit.walk(conn, expected, events)
        names = {
            int(cid): str(name)
            for cid, name in conn.exec_driver_sql("SELECT id, name FROM constitutions")
        }
        hashes: dict[int, str] = {}  # version id -> its checked hash
        counts["versions"] = _versions(conn, names, hashes)
        counts["revisions"] = _revisions(conn, names, hashes, events)
        _leftover_events(events)
        _stray_version(conn, names)
    except Broken as broken:
        if broken.checked is not None:
            counts["events"] = broken.checked
        return VerifyReport(
            status="altered",
            **counts,
            first_bad=broken.row if broken.table == "audit_events" else None,
            bad_table=broken.table,
            bad_row=broken.row,
            reason=broken.reason,
        )
    if counts["events"] == 0 and counts["revisions"] == 0:
        return VerifyReport(
            status="empty",
            **counts,
            reason="the audit log is empty: there is no history to verify",
        )
    missing = missing_append_only(
        conn,
        (
            *APPEND_ONLY,
            *RUN_APPEND_ONLY,
            *JUDGE_APPEND_ONLY,
            *PROBE_APPEND_ONLY,
            *FEDERATION_APPEND_ONLY,
        ),
    )
    if missing:
        return VerifyReport(
            status="unprotected",
            **counts,
            missing_triggers=tuple(missing),
            reason=f"the history is intact but its append-only triggers are missing: "
            f"{', '.join(missing)}",
        )
    return VerifyReport(status="intact", **counts)


def _versions(conn: Connection, names: dict[int, str], hashes: dict[int, str]) -> int:
    """Check every version's hash and its link to the previous version; return the count
    and fill `hashes` (version id -> hash) for the snapshots."""
    last: dict[tuple[int, str], tuple[int, str]] = {}  # (constitution, principle) -> tip
    after, count, query = 0, 0, _sql(conn, _VERSIONS)
    while rows := fetch(conn, query, (after,)):
        for vid, cid, pid, number, title, text, entrenched, author, why, at, parent, stored in rows:
            tip = last.get((cid, pid))
            if number != (tip[0] + 1 if tip else 1) or parent != (tip[1] if tip else None):
                previous = f"version {tip[0]}" if tip else "no version"
                where = _version_row(vid, cid, pid, number, names)
                raise Broken("principle_versions", vid, f"{where} does not follow {previous}")
            digest = version_hash(
                principle_id=pid,
                number=number,
                title=title,
                text=text,
                entrenched=bool(entrenched),
                author=author,
                rationale=why,
                created_at=_time(at, "principle_versions", vid),
                parent_hash=parent,
            )
            if digest != stored:
                where = _version_row(vid, cid, pid, number, names)
                raise Broken(
                    "principle_versions",
                    vid,
                    f"{where} was altered: its content does not match its hash",
                )
            last[cid, pid] = (number, stored)
            hashes[vid] = stored
        count += len(rows)
        after = rows[-1][0]
    return count


def _time(value: str | datetime, table: str, row: int) -> datetime:
    try:
        return aware(value)
    except (TypeError, ValueError):
        raise Broken(table, row, f"{table} row {row} is unreadable: bad time {value!r}") from None


def _version_row(vid: int, cid: int, pid: str, number: int, names: dict[int, str]) -> str:
    return f"principle_versions row {vid} ({pid} version {number} of {names.get(cid)!r})"


def _revisions(
    conn: Connection,
    names: dict[int, str],
    hashes: dict[int, str],
    events: dict[tuple[str, int], RevisionEvent],
) -> int:
    """Check every revision against its snapshot (principle -> hash of the version it
    holds, from `hashes`), its parent and its audit event (taken out of `events`); return
    the count."""
    last: dict[int, tuple[int, str]] = {}  # constitution -> (number, hash) of its newest
    after, count = 0, 0
    query, snapshot_query = _sql(conn, _REVISIONS), _sql(conn, _ENTRIES)
    while rows := fetch(conn, query, (after,)):
        held = fetch(conn, snapshot_query, (rows[0][0], rows[-1][0]))
        snapshots = {
            rid: {pid: hashes.get(vid, "") for _, pid, vid in group}  # "": no such version
            for rid, group in groupby(held, key=itemgetter(0))
        }
        for rid, cid, number, parent, author, message, amendment, at, stored in rows:
            name = names.get(cid, f"#{cid}")
            where = f"revision {number} of {name!r}"
            tip = last.get(cid)
            if number != (tip[0] + 1 if tip else 1) or parent != (tip[0] if tip else None):
                previous = f"revision {tip[0]}" if tip else "nothing"
                raise Broken("revisions", rid, f"{where} does not follow {previous}")
            digest = revision_hash(
                constitution=name,
                number=number,
                entries=snapshots.get(rid, {}),
                author=author,
                message=message,
                created_at=_time(at, "revisions", rid),
                parent_hash=tip[1] if tip else None,
            )
            if digest != stored:
                raise Broken(
                    "revisions",
                    rid,
                    f"{where} was altered: its snapshot or content does not match its hash",
                )
            event = events.pop((f"constitution:{name}", number), None)
            if event is None:
                raise Broken("revisions", rid, f"{where} has no revision.create audit event")
            if (event.hash, event.parent, event.amendment) != (stored, parent, amendment):
                raise Broken(
                    "revisions", rid, f"{where} is not the revision audit event {event.seq} names"
                )
            last[cid] = (number, stored)
        count += len(rows)
        after = rows[-1][0]
    return count


def _leftover_events(events: dict[tuple[str, int], RevisionEvent]) -> None:
    if events:
        (subject, number), event = min(events.items(), key=lambda item: item[1].seq)
        name = subject.removeprefix("constitution:")
        raise Broken(
            "audit_events",
            event.seq,
            f"audit event {event.seq} records revision {number} of {name!r}, which is missing",
        )


def _stray_version(conn: Connection, names: dict[int, str]) -> None:
    row = conn.exec_driver_sql(_STRAY_VERSION).first()
    if row is not None:
        vid, cid, pid, number, rev, held = row
        where = _version_row(vid, cid, pid, number, names)
        problem = (
            f"is not in the snapshot of revision {rev}, which it names"
            if held is None
            else f"names another amendment than revision {rev}, which introduced it"
        )
        raise Broken("principle_versions", vid, f"{where} {problem}")


def trusted_head(conn: Connection, name: str) -> Constitution:
    """The head snapshot, its versions' and revision's hashes recomputed; `IntegrityError`
    when a row was altered in place (a consistent re-hash of the whole history is what
    `verify` with an anchor is for)."""
    row = _queries.constitution_row(conn, name)
    if row.head is None:
        raise NotFound("revision", "head")
    head = _queries.snapshot(conn, row.id, name, row.head)
    revision = _queries.revision_row(conn, row.id, row.head)
    parent = _queries.revision_row(conn, row.id, revision.parent) if revision.parent else None
    for v in head.principles:
        digest = version_hash(
            principle_id=v.principle_id,
            number=v.number,
            title=v.title,
            text=v.text,
            entrenched=v.entrenched,
            author=v.author,
            rationale=v.rationale,
            created_at=v.created_at,
            parent_hash=v.parent_hash,
        )
        if digest != v.hash:
            raise IntegrityError(
                f"principle {v.principle_id!r} version {v.number} of {name!r} does not match "
                "its hash: the database was altered (run `charter audit verify`)"
            )
    digest = revision_hash(
        constitution=name,
        number=revision.number,
        entries={v.principle_id: v.hash for v in head.principles},
        author=revision.author,
        message=revision.message,
        created_at=revision.created_at,
        parent_hash=parent.hash if parent is not None else None,
    )
    if digest != revision.hash:
        raise IntegrityError(
            f"revision {revision.number} of {name!r} does not match its hash: the database "
            "was altered (run `charter audit verify`)"
        )
    return head
