"""`Store`: the only way into Charter's database.

Every method is one transaction. Writes take the write lock (SQLite `BEGIN IMMEDIATE`,
PostgreSQL advisory lock), check the governance policy against the state they read under
that lock, write the change and its audit event, and commit together.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from principles import (
    SYSTEM,
    Actor,
    Amendment,
    AmendmentDraft,
    Anchor,
    AuditEvent,
    BlameLine,
    Change,
    Constitution,
    Evaluation,
    InvalidInput,
    Label,
    NotFound,
    Policy,
    PolicyViolation,
    PrincipleVersion,
    Revision,
    Seed,
    StaleAmendment,
    VerifyReport,
    VersionInfo,
    blame,
    check_count,
    check_open,
    utcnow,
    validation_message,
)
from store import _amend, _audit, _engine, _integrity, _queries, _writes
from store._federation import FederationAPI
from store._hooks import HooksAPI
from store._judging import JudgingAPI
from store._probing import ProbingAPI
from store._reviewing import ReviewAPI
from store._runs import RunsAPI
from store._schema import labels, lm_cache
from store._sessions import SessionsAPI
from store._users import UsersAPI

DEFAULT = "default"


class Store(
    RunsAPI,
    UsersAPI,
    SessionsAPI,
    ReviewAPI,
    JudgingAPI,
    ProbingAPI,
    HooksAPI,
    FederationAPI,
):
    """A Charter database: SQLite file path or URL, or a PostgreSQL URL.

    Opening applies pending migrations. `policy` holds the configurable governance rules.
    """

    def __init__(self, url: str, *, policy: Policy | None = None, migrate: bool = True) -> None:
        self.url = _engine.normalise_url(url)
        self.engine = _engine.create(self.url)
        self.policy = policy or Policy()
        self._writer_lock = _engine.writer_lock(self.engine)
        if migrate:
            _engine.migrate(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()
        if self._writer_lock is not None:
            self._writer_lock.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------

    @staticmethod
    def _cid(conn: Connection, name: str) -> int:
        return _amend.cid(conn, name)

    @staticmethod
    def _head(conn: Connection, name: str) -> Constitution:
        return _amend.head(conn, name)

    # -- constitutions -------------------------------------------------------------------

    def init(self, seed: Seed, actor: Actor = SYSTEM, *, message: str = "") -> Revision:
        """Create constitution `seed.name` with revision 1 holding the seed's principles.

        A seed outside the policy's size bounds is refused before anything is written; an
        empty seed starts a constitution to be drafted, which amendments then grow.
        """
        if seed.principles:
            check_count(self.policy, len(seed.principles), "the seed has")

        def run(conn: Connection) -> Revision:
            if seed.name in _queries.constitution_names(conn):
                raise InvalidInput(f"constitution {seed.name!r} already exists")
            _writes.ensure_actor(conn, actor)
            cid = _writes.create_constitution(conn, seed.name, seed.description, actor)
            changes = [Change(principle_id=p.id, principle=p) for p in seed.principles]
            return _writes.commit(
                conn, cid, seed.name, changes, actor, message or "initial constitution"
            )

        return self._write(run)

    def constitutions(self) -> list[str]:
        return self._read(_queries.constitution_names)

    def exists(self, name: str = DEFAULT) -> bool:
        return name in self.constitutions()

    # -- reading history -----------------------------------------------------------------

    def resolve(self, ref: int | str, name: str = DEFAULT) -> int:
        """A revision number, `head` or a label -> a revision number."""
        return self._read(lambda c: _queries.resolve_revision(c, self._cid(c, name), ref))

    def constitution(
        self, name: str = DEFAULT, *, at: int | str | None = None, as_of: datetime | None = None
    ) -> Constitution:
        """The constitution at revision/label `at`, as of time `as_of`, or at the head."""
        _check_as_of(as_of)

        def run(conn: Connection) -> Constitution:
            cid = self._cid(conn, name)
            number = _pick_revision(conn, cid, "head" if at is None else at, as_of)
            return _queries.snapshot(conn, cid, name, number)

        return self._read(run)

    def principle(
        self, principle_id: str, version: int | None = None, name: str = DEFAULT
    ) -> PrincipleVersion:
        """A version of a principle; without `version`, its latest (retired or not)."""
        return self._read(lambda c: _queries.version(c, self._cid(c, name), principle_id, version))

    def history(self, principle_id: str, name: str = DEFAULT) -> list[PrincipleVersion]:
        """Every version of a principle with its text, oldest first."""
        return self._read(lambda c: _queries.history(c, self._cid(c, name), principle_id))

    def version_log(self, principle_id: str, name: str = DEFAULT) -> list[VersionInfo]:
        """Every version of a principle without its text: the history listing, cheaply."""
        return self._read(lambda c: _queries.version_log(c, self._cid(c, name), principle_id))

    def blame(
        self, principle_id: str, version: int | None = None, name: str = DEFAULT
    ) -> list[BlameLine]:
        versions = self.history(principle_id, name)
        if version is not None:
            if not any(v.number == version for v in versions):
                raise NotFound("principle version", f"{principle_id}@{version}")
            versions = [v for v in versions if v.number <= version]
        return blame(versions)

    def revisions(self, name: str = DEFAULT, limit: int | None = None) -> list[Revision]:
        """Newest first."""
        return self._read(lambda c: _queries.revision_list(c, self._cid(c, name), name, limit))

    def revision(
        self, ref: int | str = "head", name: str = DEFAULT, *, as_of: datetime | None = None
    ) -> Revision:
        """Revision `ref` (a number, `head` or a label) or, with `as_of`, the newest made at
        or before that time; without its principles (see `constitution`)."""
        _check_as_of(as_of)

        def run(conn: Connection) -> Revision:
            cid = self._cid(conn, name)
            number = _pick_revision(conn, cid, ref, as_of)
            return _queries.to_revision(conn, name, _queries.revision_row(conn, cid, number))

        return self._read(run)

    def search(self, text: str, name: str = DEFAULT, limit: int = 50) -> list[PrincipleVersion]:
        """Versions (any, not only current) whose title or text contains `text`."""
        if not text.strip():
            raise InvalidInput("search for what? the query is empty")
        return self._read(lambda c: _queries.search(c, self._cid(c, name), text, limit))

    def labels(self, name: str = DEFAULT) -> list[Label]:
        return self._read(lambda c: _queries.label_list(c, self._cid(c, name), name))

    # -- direct changes ------------------------------------------------------------------

    def commit(
        self, changes: list[Change], author: Actor, message: str, name: str = DEFAULT
    ) -> Revision:
        """Commit changes without an amendment: only the system or a human admin may."""
        if not author.administers:
            raise PolicyViolation("direct commits need the system or a human admin")

        def run(conn: Connection) -> Revision:
            _writes.ensure_actor(conn, author)
            return _writes.commit(conn, self._cid(conn, name), name, changes, author, message)

        return self._write(run)

    def revert(
        self, to: int | str, actor: Actor, name: str = DEFAULT, message: str = ""
    ) -> Revision:
        """A new head revision whose content equals revision `to`; history is kept."""
        if actor.kind not in ("human", "system"):
            raise PolicyViolation("only a person or the system may revert the constitution")

        def run(conn: Connection) -> Revision:
            cid = self._cid(conn, name)
            number = _queries.resolve_revision(conn, cid, to)
            target = _queries.snapshot(conn, cid, name, number)
            head = self._head(conn, name)
            changes = [
                Change(principle_id=p.principle_id, principle=p.as_principle())
                for p in target.principles
                if (h := head.get(p.principle_id)) is None or h.hash != p.hash
            ] + [
                Change(principle_id=p.principle_id, principle=None)
                for p in head.principles
                if target.get(p.principle_id) is None
            ]
            if not changes:
                raise InvalidInput(f"the head already equals revision {number}")
            _writes.ensure_actor(conn, actor)
            return _writes.commit(
                conn,
                cid,
                name,
                changes,
                actor,
                message or f"revert to revision {number}",
                rationale=f"revert to revision {number}",
                audit_payload={"reverted_to": number},
            )

        return self._write(run)

    def set_label(self, label: str, to: int | str, actor: Actor, name: str = DEFAULT) -> Label:
        """Point `label` at a revision (created if new); the move is audited."""
        try:
            Label(name=label, constitution=name, revision=1, updated_at=utcnow())
        except ValueError as exc:
            raise InvalidInput(f"bad label name {label!r}: {validation_message(exc)}") from exc
        if label == "head":
            raise InvalidInput("`head` is reserved: it always names the newest revision")

        def run(conn: Connection) -> Label:
            cid = self._cid(conn, name)
            number = _queries.resolve_revision(conn, cid, to)
            old = conn.scalar(
                select(labels.c.revision).where(
                    labels.c.constitution_id == cid, labels.c.name == label
                )
            )
            now = utcnow()
            if old is None:
                conn.execute(
                    insert(labels).values(
                        constitution_id=cid, name=label, revision=number, updated_at=now
                    )
                )
            else:
                conn.execute(
                    update(labels)
                    .where(labels.c.constitution_id == cid, labels.c.name == label)
                    .values(revision=number, updated_at=now)
                )
            _audit.append(
                conn, actor.ref, "label.set", f"label:{name}/{label}", {"from": old, "to": number}
            )
            return Label(name=label, constitution=name, revision=number, updated_at=now)

        return self._write(run)

    def delete_label(self, label: str, actor: Actor, name: str = DEFAULT) -> None:
        def run(conn: Connection) -> None:
            cid = self._cid(conn, name)
            where = (labels.c.constitution_id == cid, labels.c.name == label)
            old = conn.scalar(select(labels.c.revision).where(*where))
            gone = conn.execute(delete(labels).where(*where))
            if gone.rowcount != 1:
                raise NotFound("label", label)
            _audit.append(
                conn, actor.ref, "label.delete", f"label:{name}/{label}", {"from": old, "to": None}
            )

        self._write(run)

    # -- amendments ----------------------------------------------------------------------

    def amendments(
        self, name: str = DEFAULT, *, status: str | None = None, run_id: int | None = None
    ) -> list[Amendment]:
        return self._read(
            lambda c: _queries.amendment_list(c, self._cid(c, name), name, status, run_id)
        )

    def amendment(self, amendment_id: int) -> Amendment:
        return self._read(lambda c: self._amendment(c, amendment_id))

    @staticmethod
    def _amendment(conn: Connection, amendment_id: int) -> Amendment:
        return _amend.amendment(conn, amendment_id)

    def propose(
        self,
        draft: AmendmentDraft,
        proposer: Actor,
        name: str = DEFAULT,
        *,
        supersedes: int | None = None,
    ) -> Amendment:
        """Store a proposal based on the current head; it must apply cleanly to the head."""

        def run(conn: Connection) -> Amendment:
            old = None
            if supersedes is not None:
                old = self._amendment(conn, supersedes)
                check_open(old)
            _writes.ensure_actor(conn, proposer)
            return _writes.propose(
                conn,
                self._cid(conn, name),
                name,
                self._head(conn, name),
                self.policy,
                draft,
                proposer,
                old,
            )

        return self._write(run)

    def record_evaluation(
        self, amendment_id: int, evaluation: Evaluation, actor: Actor
    ) -> Amendment:
        """Store the gate's figures on an open amendment."""
        return self._write(lambda c: _amend.record_evaluation(c, amendment_id, evaluation, actor))

    def apply(self, amendment_id: int, actor: Actor, *, autonomous: bool = False) -> Revision:
        """Apply an approved amendment (or, autonomously, a gated one) as a new head revision.

        If the head moved since the amendment's base and touched the same principles, the
        amendment is marked stale (committed) and StaleAmendment is raised; if the head moved
        elsewhere only, it is rebased onto the head and applied.
        """
        result = self._write(
            lambda c: _amend.apply(c, self.policy, amendment_id, actor, autonomous)
        )
        if isinstance(result, StaleAmendment):
            raise result
        return result

    # -- audit ---------------------------------------------------------------------------

    def audit_log(
        self, *, limit: int | None = None, after: int = 0, subject: str | None = None
    ) -> list[AuditEvent]:
        return self._read(lambda c: _audit.events(c, limit=limit, after=after, subject=subject))

    def verify(self, anchor: Anchor | None = None) -> VerifyReport:
        """Check the audit chain, every principle version and revision against their hashes
        and each other, and the append-only triggers (see store/_integrity.py).

        A failed check also queues `audit.verify_failed` for subscribed webhooks, in its own
        write after the read (best effort: a read-only database still gets its report)."""
        report = self._read(lambda c: _integrity.verify(c, anchor))
        if report.status in ("altered", "unprotected"):
            with contextlib.suppress(_engine.DatabaseError):
                self.notify_verify_failed(report)
        return report

    def anchor(self) -> Anchor:
        return self._read(_audit.anchor)

    # -- LM-call cache -------------------------------------------------------------------

    def cache_get(self, key: str) -> str | None:
        return self._read(lambda c: c.scalar(select(lm_cache.c.value).where(lm_cache.c.key == key)))

    def cache_put(self, key: str, value: str) -> None:
        def run(conn: Connection) -> None:
            ins = (pg_insert if self.dialect == "postgresql" else sqlite_insert)(lm_cache)
            conn.execute(
                ins.values(key=key, value=value, created_at=utcnow()).on_conflict_do_nothing()
            )

        self._write(run)


def _check_as_of(as_of: datetime | None) -> None:
    if as_of is not None and as_of.tzinfo is None:
        raise InvalidInput("--as-of needs a timezone (e.g. 2026-11-26T12:00:00Z)")


def _pick_revision(conn: Connection, cid: int, ref: int | str, as_of: datetime | None) -> int:
    """The revision number at `ref` (a number, `head` or a label), or as of a time."""
    if as_of is not None:
        return _queries.revision_as_of(conn, cid, as_of)
    return _queries.resolve_revision(conn, cid, ref)
