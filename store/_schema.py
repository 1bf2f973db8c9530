"""Tables, declared as typed SQLAlchemy 2 ORM classes. Queries use their Core tables.

Append-only tables (versions, revisions, revision entries, reviews, audit events) are
protected by database triggers created in the migrations; mutable rows are pointers (a
constitution's head, labels), amendment status and the LM-call cache.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

APPEND_ONLY = ("principle_versions", "revisions", "revision_entries", "reviews", "audit_events")
RUN_APPEND_ONLY = ("run_steps", "outputs", "critiques")
JUDGE_APPEND_ONLY = ("judge_labels", "judge_calibrations", "judge_evaluations")
PROBE_APPEND_ONLY = ("probe_runs",)
FEDERATION_APPEND_ONLY = ("federation_log",)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """On SQLite, parse the stored ISO text in one C call (SQLAlchemy's generic path
        costs about 7 us a value, most of a 10,000-version history read)."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | datetime | None) -> datetime | None:
            if value is None:
                return None
            if isinstance(value, str):
                value = datetime.fromisoformat(value)
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

        return process


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class ConstitutionRow(Base):
    __tablename__ = "constitutions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    head: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ActorRow(Base):
    __tablename__ = "actors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    roles: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime]


class VersionRow(Base):
    __tablename__ = "principle_versions"
    __table_args__ = (
        UniqueConstraint("constitution_id", "principle_id", "number", name="uq_version_number"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    constitution_id: Mapped[int] = mapped_column(ForeignKey("constitutions.id"))
    principle_id: Mapped[str] = mapped_column(String(64))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    entrenched: Mapped[bool] = mapped_column(Boolean)
    author: Mapped[str] = mapped_column(String(120))
    rationale: Mapped[str] = mapped_column(Text)
    amendment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    revision: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    parent_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hash: Mapped[str] = mapped_column(String(64))


class RevisionRow(Base):
    __tablename__ = "revisions"
    __table_args__ = (
        UniqueConstraint("constitution_id", "number", name="uq_revision_number"),
        Index("ix_revisions_time", "constitution_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    constitution_id: Mapped[int] = mapped_column(ForeignKey("constitutions.id"))
    number: Mapped[int] = mapped_column(Integer)
    parent: Mapped[int | None] = mapped_column(Integer, nullable=True)
    author: Mapped[str] = mapped_column(String(120))
    message: Mapped[str] = mapped_column(Text)
    amendment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime]
    hash: Mapped[str] = mapped_column(String(64))


class EntryRow(Base):
    """Which version of each principle a revision holds (the snapshot)."""

    __tablename__ = "revision_entries"
    revision_id: Mapped[int] = mapped_column(ForeignKey("revisions.id"), primary_key=True)
    principle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("principle_versions.id"))


class LabelRow(Base):
    __tablename__ = "labels"
    constitution_id: Mapped[int] = mapped_column(ForeignKey("constitutions.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class AmendmentRow(Base):
    __tablename__ = "amendments"
    __table_args__ = (Index("ix_amendments_status", "constitution_id", "status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    constitution_id: Mapped[int] = mapped_column(ForeignKey("constitutions.id"))
    op: Mapped[str] = mapped_column(String(16))
    principle_id: Mapped[str] = mapped_column(String(64))
    merge_from: Mapped[list[Any]]
    title: Mapped[str | None] = mapped_column(String(200), nullable=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    entrenched: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    rationale: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[Any]]
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    base_revision: Mapped[int] = mapped_column(Integer)
    proposer: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16))
    edit: Mapped[int] = mapped_column(Integer, default=0)
    editors: Mapped[list[Any]]
    evaluation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    applied_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    superseded_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ReviewRow(Base):
    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    amendment_id: Mapped[int] = mapped_column(ForeignKey("amendments.id"), index=True)
    reviewer: Mapped[str] = mapped_column(String(120))
    decision: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text)
    edit: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]


class AuditRow(Base):
    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class CallCacheRow(Base):
    """LM-call cache: request hash -> reply, so a resumed run replays instead of re-generating."""

    __tablename__ = "lm_cache"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class RunRow(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    constitution_id: Mapped[int] = mapped_column(ForeignKey("constitutions.id"))
    config: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    start_revision: Mapped[int] = mapped_column(Integer)
    model_info: Mapped[dict[str, Any]]
    stop_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The lease: the one process executing the run (see store/_leases.py); NULL when none.
    lease_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lease_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lease_since: Mapped[datetime | None] = mapped_column(nullable=True)


class RunStepRow(Base):
    """A completed step; written in the transaction that writes the step's results."""

    __tablename__ = "run_steps"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    iteration: Mapped[int] = mapped_column(Integer, primary_key=True)
    step: Mapped[str] = mapped_column(String(16), primary_key=True)
    result: Mapped[dict[str, Any]]
    completed_at: Mapped[datetime]


class RunTaskRow(Base):
    __tablename__ = "run_tasks"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    prompt: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(64))
    tags: Mapped[list[Any]]
    reference: Mapped[str | None] = mapped_column(Text, nullable=True)
    split: Mapped[str] = mapped_column(String(8))


class OutputRow(Base):
    __tablename__ = "outputs"
    __table_args__ = (Index("ix_outputs_run", "run_id", "iteration", "purpose"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    iteration: Mapped[int] = mapped_column(Integer)
    task_id: Mapped[str] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(String(16))
    revision: Mapped[int] = mapped_column(Integer)
    amendment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    parent_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class CritiqueRow(Base):
    __tablename__ = "critiques"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    output_id: Mapped[int] = mapped_column(ForeignKey("outputs.id"), index=True)
    principle_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    relevance: Mapped[float] = mapped_column(Float)
    spread: Mapped[float] = mapped_column(Float)
    verdict: Mapped[str] = mapped_column(String(8))
    rationale: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


constitutions: Table = cast(Table, ConstitutionRow.__table__)
actors: Table = cast(Table, ActorRow.__table__)
versions: Table = cast(Table, VersionRow.__table__)
revisions: Table = cast(Table, RevisionRow.__table__)
entries: Table = cast(Table, EntryRow.__table__)
labels: Table = cast(Table, LabelRow.__table__)
amendments: Table = cast(Table, AmendmentRow.__table__)
reviews: Table = cast(Table, ReviewRow.__table__)
audit: Table = cast(Table, AuditRow.__table__)
lm_cache: Table = cast(Table, CallCacheRow.__table__)
runs: Table = cast(Table, RunRow.__table__)
run_steps: Table = cast(Table, RunStepRow.__table__)
run_tasks: Table = cast(Table, RunTaskRow.__table__)
outputs: Table = cast(Table, OutputRow.__table__)
critiques: Table = cast(Table, CritiqueRow.__table__)


class UserRow(Base):
    """A person or agent who signs in to review; the password is stored as an argon2 hash."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    roles: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class TokenRow(Base):
    """An API token for scripts: only its SHA-256 digest is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # "full": whatever its user may do; "read": reading the constitution only.
    scope: Mapped[str] = mapped_column(String(16), default="full", server_default="full")


class SecretRow(Base):
    """Named secrets generated once per database (e.g. the web session signing key)."""

    __tablename__ = "app_secrets"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class SessionRow(Base):
    """A signed-in browser session. Only the SHA-256 digest of the random id in the cookie
    is stored, and the session's CSRF token is derived from that id, so reading this table
    lets no one act as its user. Ended by sign-out and by changes to its user."""

    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)


class LoginFailureRow(Base):
    """One failed sign-in under a key ("user:NAME", "ip:ADDR"); shared by every server."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_at", "key", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]


users: Table = cast(Table, UserRow.__table__)
api_tokens: Table = cast(Table, TokenRow.__table__)
app_secrets: Table = cast(Table, SecretRow.__table__)
sessions: Table = cast(Table, SessionRow.__table__)
login_failures: Table = cast(Table, LoginFailureRow.__table__)


class JudgeLabelRow(Base):
    """A person's (or a data set's) label on one (exchange, principle) pair; append-only."""

    __tablename__ = "judge_labels"
    __table_args__ = (CheckConstraint("label >= 0 AND label <= 1", name="ck_judge_labels_range"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    critique_id: Mapped[int | None] = mapped_column(
        ForeignKey("critiques.id"), nullable=True, index=True
    )
    principle_id: Mapped[str] = mapped_column(String(64), index=True)
    prompt: Mapped[str] = mapped_column(Text)
    response: Mapped[str] = mapped_column(Text)
    label: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16))
    labeller: Mapped[str] = mapped_column(String(120))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class JudgeCalibrationRow(Base):
    """How one judge model's raw figures map to scores, fitted on a label set; append-only."""

    __tablename__ = "judge_calibrations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(300), index=True)
    method: Mapped[str] = mapped_column(String(64))
    label_set: Mapped[str] = mapped_column(String(128))
    n_labels: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(String(300))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]


class JudgeEvaluationRow(Base):
    """One measurement of a judge (model and calibration) against labels; append-only."""

    __tablename__ = "judge_evaluations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(300), index=True)
    calibration_id: Mapped[int | None] = mapped_column(
        ForeignKey("judge_calibrations.id"), nullable=True
    )
    label_set: Mapped[str] = mapped_column(String(128))
    n: Mapped[int] = mapped_column(Integer)
    auc: Mapped[float | None] = mapped_column(Float, nullable=True)
    report: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(String(300))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]


judge_labels: Table = cast(Table, JudgeLabelRow.__table__)
judge_calibrations: Table = cast(Table, JudgeCalibrationRow.__table__)
judge_evaluations: Table = cast(Table, JudgeEvaluationRow.__table__)


class ProbeRunRow(Base):
    """One bias probe's report under one revision; append-only."""

    __tablename__ = "probe_runs"
    __table_args__ = (Index("ix_probe_runs_constitution", "constitution", "revision"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    constitution: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(300))
    suite: Mapped[str] = mapped_column(String(300))
    templates: Mapped[int] = mapped_column(Integer)
    variants: Mapped[int] = mapped_column(Integer)
    flagged: Mapped[int] = mapped_column(Integer)
    report: Mapped[dict[str, Any]]
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]


probe_runs: Table = cast(Table, ProbeRunRow.__table__)


class WebhookRow(Base):
    """A webhook subscription. `secret` signs deliveries (HMAC-SHA256), so it is kept as
    given; it is never shown after `hooks add` nor written to the audit log."""

    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[str] = mapped_column(String(300))  # comma-separated HOOK_EVENTS
    secret: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]
    removed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class OutboxRow(Base):
    """One event for one webhook, written in the transaction of the change it reports.

    `pending` rows are due at `next_attempt_at`; a dispatcher's claim pushes that time past
    its request's timeout and counts the attempt, so no two dispatchers send a row at once."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (Index("ix_webhook_outbox_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id"), index=True)
    event: Mapped[str] = mapped_column(String(64))
    audit_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    subject: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)


webhooks: Table = cast(Table, WebhookRow.__table__)
webhook_outbox: Table = cast(Table, OutboxRow.__table__)


class FederationNodeRow(Base):
    """A node the coordinator accepts messages from: its Ed25519 public key and whether it is
    still admitted (`active`) or `revoked`."""

    __tablename__ = "federation_nodes"
    __table_args__ = (CheckConstraint("status IN ('active', 'revoked')", name="ck_node_status"),)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]


federation_nodes: Table = cast(Table, FederationNodeRow.__table__)


class FederationLogRow(Base):
    """The coordinator's record of its rounds, append-only: every signed message it sent or
    accepted, and its own decisions, in order. A round's state is read back from it."""

    __tablename__ = "federation_log"
    __table_args__ = (Index("ix_federation_log_round", "round", "kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    sender: Mapped[str] = mapped_column(String(63))
    body: Mapped[dict[str, Any]]
    signature: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


federation_log: Table = cast(Table, FederationLogRow.__table__)
