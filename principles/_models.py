"""Value objects of the domain. Identity and storage live in `store/`; these are plain data.

Invariants enforced here, at construction: slugs are lowercase kebab-case, texts are non-empty
and bounded, ops and statuses are closed sets, datetimes are timezone-aware, and what people
read (titles, texts, rationales, comments, actor names) holds no control characters (see
`principles/_text.py`; rows the store wrote earlier load with its `STORED` context).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    model_validator,
)

from principles._text import STORED, Line, Prose

SLUG_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
MAX_SLUG = 64
MAX_TITLE = 200
MAX_TEXT = 4000


def _slug(value: str) -> str:
    if not (0 < len(value) <= MAX_SLUG and SLUG_RE.match(value)):
        raise ValueError(
            f"bad principle id {value!r}: use lowercase letters, digits and single hyphens, "
            f"starting with a letter, at most {MAX_SLUG} characters"
        )
    return value


def _title(value: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_TITLE or "\n" in value:
        raise ValueError(f"a title must be one non-empty line of at most {MAX_TITLE} characters")
    return value


def _text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("principle text is empty")
    if len(value) > MAX_TEXT:
        raise ValueError(f"principle text is {len(value)} characters; the limit is {MAX_TEXT}")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return value.astimezone(UTC)


Slug = Annotated[str, AfterValidator(_slug)]
Title = Annotated[Line, AfterValidator(_title)]
Text = Annotated[Prose, AfterValidator(_text)]
UTCDateTime = Annotated[datetime, AfterValidator(_aware)]

ActorKind = Literal["agent", "human", "system", "node"]
Role = Literal["reviewer", "admin"]
Op = Literal["add", "revise", "retire", "merge"]
AmendmentStatus = Literal["proposed", "approved", "rejected", "applied", "stale", "superseded"]
Decision = Literal["approve", "reject", "comment"]
GateOutcome = Literal["passed", "inconclusive", "regressed"]
OPEN_STATUSES: frozenset[str] = frozenset({"proposed", "approved"})
# The review queue's filters, by name; None is every status.
STATUS_GROUPS: dict[str, tuple[AmendmentStatus, ...] | None] = {
    "open": ("proposed", "approved"),
    "stale": ("stale",),
    "closed": ("applied", "rejected", "superseded"),
    "all": None,
}
# What the review page lists as waiting on people: open amendments and stale ones.
AWAITING_STATUSES: tuple[AmendmentStatus, ...] = ("proposed", "approved", "stale")


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Actor(_Frozen):
    """Who did something. Agents never approve; humans carry roles; nodes are federated peers."""

    kind: ActorKind
    name: Annotated[Line, Field(min_length=1, max_length=100, pattern=r"^[^\s:][^:]*$")]
    roles: tuple[Role, ...] = ()

    @property
    def ref(self) -> str:
        """The stable text form `kind:name` used in audit events and reviews."""
        return f"{self.kind}:{self.name}"

    @property
    def administers(self) -> bool:
        """The system, or a person with the admin role: who may change the database's
        set-up (direct commits, webhooks)."""
        return self.kind == "system" or (self.kind == "human" and "admin" in self.roles)

    @classmethod
    def parse(cls, ref: str) -> Actor:
        """The actor of a stored `kind:name` ref (one stored before names were checked for
        control characters loads as it is)."""
        kind, _, name = ref.partition(":")
        return cls.model_validate({"kind": kind, "name": name}, context=STORED)


SYSTEM = Actor(kind="system", name="charter")


class Principle(_Frozen):
    """The content of a principle at one version: what a seed file or an amendment provides."""

    id: Slug
    title: Title
    text: Text
    entrenched: bool = False


class PrincipleVersion(_Frozen):
    """An immutable version of a principle. `hash` covers the content and the parent's hash."""

    principle_id: Slug
    number: int = Field(ge=1)
    title: Title
    text: Text
    entrenched: bool
    author: str
    rationale: str = ""
    amendment_id: int | None = None
    revision: int = Field(ge=1, description="the revision that introduced this version")
    created_at: UTCDateTime
    parent_hash: str | None
    hash: str

    @property
    def ref(self) -> str:
        return f"{self.principle_id}@{self.number}"

    def as_principle(self) -> Principle:
        """The content of this stored version (validated when it was written)."""
        return Principle.model_validate(
            {
                "id": self.principle_id,
                "title": self.title,
                "text": self.text,
                "entrenched": self.entrenched,
            },
            context=STORED,
        )


class VersionInfo(NamedTuple):
    """A version without its text: one row of a principle's history listing.

    A named tuple, not a model: a listing of 10,000 versions builds in a few milliseconds.
    Rows come only from the store's own append-only table, which validated them on write.
    """

    principle_id: str
    number: int
    title: str
    entrenched: bool
    author: str
    amendment_id: int | None
    revision: int
    created_at: datetime
    hash: str

    @property
    def ref(self) -> str:
        return f"{self.principle_id}@{self.number}"


class Revision(_Frozen):
    """An immutable snapshot {principle id -> version number} with a parent, like a commit."""

    number: int = Field(ge=1)
    constitution: str
    parent: int | None
    entries: dict[str, int]
    author: str
    message: str
    amendment_id: int | None = None
    created_at: UTCDateTime
    hash: str


class Constitution(_Frozen):
    """A constitution as of one revision: the principles in id order."""

    name: str
    revision: int
    created_at: UTCDateTime
    principles: tuple[PrincipleVersion, ...]

    def get(self, principle_id: str) -> PrincipleVersion | None:
        return next((p for p in self.principles if p.principle_id == principle_id), None)

    @property
    def entries(self) -> dict[str, int]:
        return {p.principle_id: p.number for p in self.principles}


class Label(_Frozen):
    """A movable pointer to a revision (MLflow's alias, git's branch)."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,62}$")]
    constitution: str
    revision: int
    updated_at: UTCDateTime


class Evaluation(_Frozen):
    """What the evaluation gate measured for an amendment: scores before and after, and the
    outcome of its paired comparison (the effect, CI and p-value live in `details`).

    `passed` is exactly `outcome == "passed"`. Rows stored before outcomes existed carry only
    `passed`; their outcome is derived: passed, regressed when an entrenched principle
    regressed, inconclusive otherwise."""

    before: float
    after: float
    passed: bool
    outcome: GateOutcome = "inconclusive"
    per_principle_before: dict[str, float] = Field(default_factory=dict)
    per_principle_after: dict[str, float] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _derive_outcome(cls, data: Any) -> Any:
        if isinstance(data, dict) and "outcome" not in data and "passed" in data:
            regressed = bool((data.get("details") or {}).get("entrenched_regressions"))
            outcome = "passed" if data["passed"] else "regressed" if regressed else "inconclusive"
            data = {**data, "outcome": outcome}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Evaluation:
        if self.passed != (self.outcome == "passed"):
            raise ValueError(f"passed={self.passed} contradicts outcome {self.outcome!r}")
        return self

    @property
    def delta(self) -> float:
        return self.after - self.before


class AmendmentDraft(_Frozen):
    """A proposed change before it is stored.

    - add: `principle_id` is the new id; title and text required.
    - revise: `principle_id` is the target; title and/or text (a missing one is kept).
    - retire: `principle_id` is the target; no text.
    - merge: `merge_from` principles are retired into `principle_id` (kept or new), which gets
      the given title and text.
    """

    op: Op
    principle_id: Slug
    title: Title | None = None
    text: Text | None = None
    entrenched: bool | None = None
    merge_from: tuple[Slug, ...] = ()
    rationale: Annotated[Prose, Field(max_length=4000)] = ""
    evidence: tuple[str, ...] = ()
    run_id: int | None = None

    @model_validator(mode="after")
    def _shape(self) -> AmendmentDraft:
        if self.op == "add" and (self.title is None or self.text is None):
            raise ValueError("an add needs a title and a text")
        if self.op == "revise" and self.title is None and self.text is None:
            raise ValueError("a revise needs a new title or text")
        if self.op == "retire" and (self.text is not None or self.title is not None):
            raise ValueError("a retire takes no title or text")
        if self.op == "merge":
            if not self.merge_from or self.text is None:
                raise ValueError("a merge needs the principles to merge and the merged text")
            if self.principle_id in self.merge_from or len(set(self.merge_from)) != len(
                self.merge_from
            ):
                raise ValueError("merge_from must be distinct and exclude the merge target")
        elif self.merge_from:
            raise ValueError("merge_from is only for a merge")
        return self

    @property
    def touched(self) -> tuple[str, ...]:
        """Every principle id this change writes or removes."""
        return (self.principle_id, *self.merge_from)


class Review(_Frozen):
    """One reviewer's decision or comment on one edit of an amendment."""

    id: int
    amendment_id: int
    reviewer: str
    decision: Decision
    comment: Prose = ""
    edit: int = Field(ge=0, description="the amendment's edit count the review saw")
    created_at: UTCDateTime


class Amendment(_Frozen):
    """A stored amendment: the draft plus its base, proposer, status, evaluation and reviews."""

    id: int
    constitution: str
    draft: AmendmentDraft
    base_revision: int
    proposer: str
    status: AmendmentStatus
    edit: int = 0
    editors: tuple[str, ...] = ()
    evaluation: Evaluation | None = None
    applied_revision: int | None = None
    superseded_by: int | None = None
    created_at: UTCDateTime
    updated_at: UTCDateTime
    reviews: tuple[Review, ...] = ()

    @property
    def current_approvals(self) -> tuple[Review, ...]:
        """Approvals given to the amendment as it is now; an edit voids earlier ones."""
        return tuple(r for r in self.reviews if r.decision == "approve" and r.edit == self.edit)


class AuditEvent(_Frozen):
    """One link of the tamper-evident chain: `hash` covers every other field and `prev_hash`."""

    seq: int = Field(ge=1)
    at: UTCDateTime
    actor: str
    action: str
    subject: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


class Anchor(_Frozen):
    """An exported checkpoint of the audit chain's head, kept outside the database."""

    seq: int = Field(ge=0)
    hash: str
    at: UTCDateTime


VerifyStatus = Literal["intact", "empty", "altered", "unprotected"]


class VerifyReport(_Frozen):
    """What `verify` found in the audit chain, the principle versions and the revisions.

    `ok` only when `status` is `intact`. `altered`: `bad_table` and `bad_row` (its primary
    key) name the first row that does not fit, and `first_bad` is the audit event's sequence
    number when the row is an event. `unprotected`: the history checks out, but the
    append-only triggers in `missing_triggers` are gone. `empty`: there is no history to
    vouch for (an emptied log is caught only against an anchor).
    """

    status: VerifyStatus
    events: int
    versions: int = 0
    revisions: int = 0
    first_bad: int | None = None
    bad_table: str | None = None
    bad_row: int | None = None
    reason: str = ""
    missing_triggers: tuple[str, ...] = ()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return self.status == "intact"


class BlameLine(_Frozen):
    line_no: int
    text: str
    version: int
    revision: int
    amendment_id: int | None
    author: str
    created_at: UTCDateTime
