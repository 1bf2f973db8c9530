"""What the refinement loop works with and produces: tasks, runs, outputs, critiques, stats.

Values only; the loop lives in `agent/`, persistence in `store/`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from principles._models import UTCDateTime, _Frozen

RunMode = Literal["review", "autonomous"]
BiasCheck = Literal["flagged", "all", "off"]
RunStatus = Literal["running", "completed", "stopped", "failed"]
StepName = Literal["answer", "critique", "revise", "aggregate", "propose", "evaluate", "decide"]
STEPS: tuple[StepName, ...] = (
    "answer",
    "critique",
    "revise",
    "aggregate",
    "propose",
    "evaluate",
    "decide",
)
Purpose = Literal["answer", "revision", "gate-head", "gate-candidate"]
Verdict = Literal["pass", "fail", "unclear"]
Split = Literal["train", "heldout"]
TaskId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]


class Task(_Frozen):
    """One prompt of a task suite; `reference` describes a good answer (optional)."""

    id: TaskId
    prompt: Annotated[str, Field(min_length=1, max_length=8000)]
    category: Annotated[str, Field(min_length=1, max_length=64)] = "general"
    tags: tuple[str, ...] = ()
    reference: str | None = None


def task_split(task_id: str, seed: int, heldout_fraction: float) -> Split:
    """Deterministic and order-independent: the same task always lands on the same side."""
    digest = hashlib.sha256(f"{seed}:{task_id}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") / 2**64 < heldout_fraction else "train"


def split_tasks(
    tasks: Sequence[Task], seed: int, heldout_fraction: float
) -> tuple[list[Task], list[Task]]:
    """(train, held-out); each side gets at least one task when there are two or more."""
    train = [t for t in tasks if task_split(t.id, seed, heldout_fraction) == "train"]
    held = [t for t in tasks if task_split(t.id, seed, heldout_fraction) == "heldout"]
    if len(tasks) >= 2 and not held:
        held, train = train[-1:], train[:-1]
    elif len(tasks) >= 2 and not train:
        train, held = held[:1], held[1:]
    return train, held


class GateRule(_Frozen):
    """How the gate weighs paired evidence (`agent/_significance.py` applies it).

    A candidate passes when its held-out effect is significantly positive at `alpha` (p <
    alpha and the 95% CI above zero), is not a uniform drift of every principle, and no
    entrenched principle regressed: significantly negative at `alpha` and down by at least
    `entrenched_tolerance`. A candidate widens a measured bias gap when the widening is
    significant at `alpha` (corrected p-value below it, 95% CI above zero) and at least
    `bias_tolerance` (`agent._bias.widening`). `min_effect` is the smallest gain in mean
    score worth detecting: it sizes the held-out set (a warning says when the set is too
    small to detect it); it is not a pass threshold. Configurations stored with the former
    `min_improvement` load, its value read as `min_effect`."""

    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    min_effect: float = Field(default=0.05, gt=0.0, le=1.0)
    entrenched_tolerance: float = Field(default=0.02, ge=0.0, le=1.0)
    bias_tolerance: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="the least widening of a measured bias gap that counts: in the metric's "
        "units for rates, probabilities and scores, as a share of the mean for lengths",
    )

    @model_validator(mode="before")
    @classmethod
    def _former_names(cls, data: Any) -> Any:
        if isinstance(data, dict) and "min_improvement" in data:
            data = dict(data)
            old = data.pop("min_improvement")
            if "min_effect" not in data and isinstance(old, int | float) and 0 < old <= 1:
                data["min_effect"] = old
        return data


class RunConfig(_Frozen):
    """Everything a run needs to be repeated or resumed exactly."""

    mode: RunMode = "review"
    iterations: int = Field(default=2, ge=1, le=1000)
    model: str = "default"
    seed: int = 0
    tasks: str = "builtin"
    tasks_limit: int | None = Field(default=None, ge=2)
    train_per_iteration: int = Field(default=8, ge=1)
    heldout_size: int = Field(default=6, ge=1)
    heldout_fraction: float = Field(default=0.25, gt=0.0, lt=1.0)
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    max_rationales: int = Field(default=8, ge=0)
    max_revisions: int = Field(default=4, ge=0)
    max_proposals: int = Field(default=2, ge=0, description="drafts per iteration")
    judge_paraphrases: int = Field(default=2, ge=1, le=3)
    max_new_tokens: int = Field(default=160, ge=8, le=4096)
    gate: GateRule = GateRule()
    max_drift: float = Field(
        default=0.5, ge=0.0, le=1.0, description="share of the starting principles changed"
    )
    stop_on_regression: float = Field(
        default=0.05, ge=0.0, description="stop when the held-out mean falls this far"
    )
    judge_floor: float = Field(
        default=0.75, ge=0.0, le=1.0, description="least measured judge AUC for autonomous mode"
    )
    judge_override: bool = Field(
        default=False, description="run autonomously although the judge is below its floor"
    )
    bias: BiasCheck = Field(
        default="flagged",
        description="the newest bias probe run's gaps the loop acts on: the flagged ones "
        "(evidence for the proposer, measured again by the gate), all of them (the gate "
        "measures every one; the proposer still takes only the flagged), or off",
    )


LEASE_TTL = timedelta(minutes=30)
"""How long a run's lease held on another machine outlives its last heartbeat."""

LEASE_HEARTBEAT = LEASE_TTL / 6
"""How often a process executing a run renews its lease's heartbeat (well inside the TTL, so
a missed beat or two never lets another machine take a live run over)."""


class RunLease(_Frozen):
    """The one process executing a run: its host, pid and a token unique to its claim.

    A run has at most one lease. A second process may take it over only when the lease is
    stale (`lease_is_stale`), so two `charter run --resume` never execute one run at once.
    """

    token: Annotated[str, Field(min_length=8, max_length=64)]
    host: Annotated[str, Field(min_length=1, max_length=255)]
    pid: int = Field(ge=1)
    since: UTCDateTime

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.since:%Y-%m-%d %H:%M:%S} UTC"


def lease_is_stale(
    lease: RunLease,
    heartbeat: datetime,
    now: datetime,
    *,
    host: str,
    holder_alive: bool,
    ttl: timedelta = LEASE_TTL,
) -> bool:
    """May a process on `host` take `lease` over? On the lease's own host, exactly when its
    process is gone (`holder_alive` is that host's answer); from another host, which cannot
    see the process, when the run's last heartbeat is older than `ttl`."""
    if lease.host == host:
        return not holder_alive
    return now - heartbeat > ttl


class Run(_Frozen):
    id: int
    constitution: str
    config: RunConfig
    status: RunStatus
    start_revision: int
    model_info: dict[str, Any] = Field(default_factory=dict)
    stop_reason: str = ""
    created_at: UTCDateTime
    updated_at: UTCDateTime
    steps_done: tuple[tuple[int, StepName], ...] = ()
    lease: RunLease | None = Field(default=None, description="who executes it now, if anyone")

    def done(self, iteration: int, step: StepName) -> bool:
        return (iteration, step) in self.steps_done


class Output(_Frozen):
    """An answer the actor wrote for a task under a revision (or a candidate revision)."""

    id: int
    run_id: int
    iteration: int
    task_id: str
    purpose: Purpose
    revision: int
    amendment_id: int | None = None
    parent_id: int | None = None
    text: str
    created_at: UTCDateTime


class NewOutput(_Frozen):
    """An output before it is stored; `key` links critiques to it within one step."""

    key: str
    task_id: str
    purpose: Purpose
    revision: int
    amendment_id: int | None = None
    parent_id: int | None = None
    text: str


class Critique(_Frozen):
    """A judgment of one output against one principle version: score in [0, 1]."""

    id: int
    run_id: int
    output_id: int
    principle_id: str
    version: int
    score: float = Field(ge=0.0, le=1.0)
    relevance: float = Field(ge=0.0, le=1.0)
    spread: float = Field(ge=0.0, le=1.0, description="disagreement across judge paraphrases")
    verdict: Verdict
    rationale: str = ""
    created_at: UTCDateTime


class NewCritique(_Frozen):
    """A critique before it is stored: `output_key` or `output_id` names what it judged."""

    output_key: str | None = None
    output_id: int | None = None
    principle_id: str
    version: int
    score: float = Field(ge=0.0, le=1.0)
    relevance: float = Field(ge=0.0, le=1.0)
    spread: float = Field(ge=0.0, le=1.0)
    verdict: Verdict
    rationale: str = ""

    @model_validator(mode="after")
    def _target(self) -> NewCritique:
        if (self.output_key is None) == (self.output_id is None):
            raise ValueError("a critique names exactly one of output_key and output_id")
        return self


class PrincipleStats(_Frozen):
    principle_id: str
    judged: int
    mean: float
    violation_rate: float
    ambiguity: float
    relevance: float
    spread: float

    @property
    def never_relevant(self) -> bool:
        return self.judged > 0 and self.relevance < 0.25


class PrincipleConflict(_Frozen):
    """Two principles whose scores move against each other across the same outputs."""

    a: str
    b: str
    correlation: float
    outputs: int


class Aggregate(_Frozen):
    """Per-principle statistics of one iteration's critiques.

    `conflicts`: pairs whose scores are strongly anti-correlated (satisfying one tends to
    violate the other); `redundant`: pairs judged almost identically (merge candidates).
    """

    mean: float
    per_principle: dict[str, PrincipleStats]
    conflicts: tuple[PrincipleConflict, ...] = ()
    redundant: tuple[PrincipleConflict, ...] = ()


def verdict(score: float, threshold: float, margin: float = 0.1) -> Verdict:
    if score >= threshold + margin:
        return "pass"
    if score < threshold - margin:
        return "fail"
    return "unclear"
