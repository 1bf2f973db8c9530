"""Runs of the refinement loop: durable steps, outputs, critiques, and their decisions.

`record_step` is the loop's only write: a step's outputs, critiques, proposed amendments,
evaluations and decisions, and the mark that the step is done, commit in one transaction.
A run killed at any point therefore resumes at the first unmarked step with nothing lost and
nothing written twice. Steps, finishes and heartbeats are written only by the run's lease
holder (store/_leases.py): a process whose run was taken over writes nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, func, insert, select, update

from principles import (
    SYSTEM,
    Actor,
    AmendmentDraft,
    Conflict,
    Critique,
    Evaluation,
    NewCritique,
    NewOutput,
    NotFound,
    Output,
    Policy,
    Revision,
    Run,
    RunConfig,
    RunLease,
    RunStatus,
    StaleAmendment,
    StepName,
    Task,
    utcnow,
)
from store import _amend, _audit, _ids, _leases, _writes
from store._base import StoreBase
from store._schema import amendments, critiques, outputs, run_steps, run_tasks, runs

T = TypeVar("T")


class StepDecision(BaseModel):
    """What the loop decided about one amendment at the end of an iteration."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["apply", "reject"]
    amendment_id: int
    reason: str = ""


class StepRecord(BaseModel):
    """What `record_step` wrote: stored ids by the step's own keys, and decision outcomes."""

    model_config = ConfigDict(frozen=True)
    output_ids: dict[str, int] = Field(default_factory=dict)
    amendment_ids: tuple[int, ...] = ()
    outcomes: dict[int, str] = Field(default_factory=dict)


class RunsAPI(StoreBase):
    """The run half of `Store` (a `Store` mixin)."""

    def create_run(
        self,
        config: RunConfig,
        tasks: Sequence[tuple[Task, str]],
        actor: Actor,
        name: str = "default",
        model_info: dict[str, Any] | None = None,
    ) -> Run:
        """Start a run at the current head with its tasks and their train/held-out split."""

        def run(conn: Connection) -> Run:
            cid = _amend.cid(conn, name)
            head = _amend.head(conn, name).revision
            now = utcnow()
            rid = conn.execute(
                insert(runs).values(
                    constitution_id=cid,
                    config=config.model_dump(mode="json"),
                    status="running",
                    start_revision=head,
                    model_info=model_info or {},
                    stop_reason="",
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key
            assert rid is not None
            run_id = int(rid[0])
            if tasks:
                conn.execute(
                    insert(run_tasks),
                    [
                        {
                            "run_id": run_id,
                            "task_id": t.id,
                            "prompt": t.prompt,
                            "category": t.category,
                            "tags": list(t.tags),
                            "reference": t.reference,
                            "split": split,
                        }
                        for t, split in tasks
                    ],
                )
            _writes.ensure_actor(conn, actor)
            _audit.append(
                conn,
                actor.ref,
                "run.create",
                f"run:{run_id}",
                {
                    "config": config.model_dump(mode="json"),
                    "start_revision": head,
                    "tasks": len(tasks),
                },
            )
            return _run(conn, run_id)

        result: Run = self._write(run)
        return result

    def run(self, run_id: int) -> Run:
        result: Run = self._read(lambda c: _run(c, run_id))
        return result

    def runs(self, name: str = "default") -> list[Run]:
        def run(conn: Connection) -> list[Run]:
            cid = _amend.cid(conn, name)
            ids = conn.scalars(
                select(runs.c.id).where(runs.c.constitution_id == cid).order_by(runs.c.id)
            )
            return [_run(conn, i) for i in ids]

        result: list[Run] = self._read(run)
        return result

    def run_tasks(self, run_id: int) -> list[tuple[Task, str]]:
        def run(conn: Connection) -> list[tuple[Task, str]]:
            rows = conn.execute(
                select(run_tasks).where(run_tasks.c.run_id == run_id).order_by(run_tasks.c.task_id)
            ).all()
            return [
                (
                    Task(
                        id=r.task_id,
                        prompt=r.prompt,
                        category=r.category,
                        tags=tuple(r.tags),
                        reference=r.reference,
                    ),
                    r.split,
                )
                for r in rows
            ]

        result: list[tuple[Task, str]] = self._read(run)
        return result

    def step_result(self, run_id: int, iteration: int, step: StepName) -> dict[str, Any]:
        def run(conn: Connection) -> dict[str, Any]:
            value = conn.scalar(
                select(run_steps.c.result).where(
                    run_steps.c.run_id == run_id,
                    run_steps.c.iteration == iteration,
                    run_steps.c.step == step,
                )
            )
            if value is None:
                raise NotFound("run step", f"{run_id}/{iteration}/{step}")
            return dict(value)

        result: dict[str, Any] = self._read(run)
        return result

    def step_results(self, run_id: int) -> list[tuple[int, str, dict[str, Any]]]:
        def run(conn: Connection) -> list[tuple[int, str, dict[str, Any]]]:
            rows = conn.execute(
                select(run_steps.c.iteration, run_steps.c.step, run_steps.c.result)
                .where(run_steps.c.run_id == run_id)
                .order_by(run_steps.c.iteration, run_steps.c.completed_at)
            ).all()
            return [(r.iteration, r.step, dict(r.result)) for r in rows]

        result: list[tuple[int, str, dict[str, Any]]] = self._read(run)
        return result

    def outputs(
        self,
        run_id: int,
        *,
        iteration: int | None = None,
        purpose: str | None = None,
        ids: Sequence[int] | None = None,
    ) -> list[Output]:
        def run(conn: Connection) -> list[Output]:
            query = select(outputs).where(outputs.c.run_id == run_id)
            if iteration is not None:
                query = query.where(outputs.c.iteration == iteration)
            if purpose is not None:
                query = query.where(outputs.c.purpose == purpose)
            if ids is not None:
                query = query.where(outputs.c.id.in_(list(ids)))
            rows = conn.execute(query.order_by(outputs.c.id)).all()
            return [Output.model_validate(r._asdict()) for r in rows]

        result: list[Output] = self._read(run)
        return result

    def critiques(self, run_id: int, *, output_ids: Sequence[int] | None = None) -> list[Critique]:
        def run(conn: Connection) -> list[Critique]:
            query = select(critiques).where(critiques.c.run_id == run_id)
            if output_ids is not None:
                query = query.where(critiques.c.output_id.in_(list(output_ids)))
            rows = conn.execute(query.order_by(critiques.c.id)).all()
            return [Critique.model_validate(r._asdict()) for r in rows]

        result: list[Critique] = self._read(run)
        return result

    def amendments_in_run(self, run_id: int) -> int:
        result: int = self._read(
            lambda c: int(
                c.scalar(
                    select(func.count())
                    .select_from(amendments)
                    .where(amendments.c.run_id == run_id)
                )
                or 0
            )
        )
        return result

    def record_step(
        self,
        run_id: int,
        iteration: int,
        step: StepName,
        actor: Actor,
        *,
        outputs_: Sequence[NewOutput] = (),
        critiques_: Sequence[NewCritique] = (),
        proposals: Sequence[AmendmentDraft] = (),
        evaluations: dict[int, Evaluation] | None = None,
        decisions: Sequence[StepDecision] = (),
        result: dict[str, Any] | None = None,
        lease: RunLease | None = None,
    ) -> StepRecord:
        """Write everything a step produced and mark it done, in one transaction.

        `lease` must be the run's lease (`None`: the run has none); otherwise this raises
        `LeaseLost` (or `Conflict`) and writes nothing.
        """

        def run(conn: Connection) -> StepRecord:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
            if row is None:
                raise NotFound("run", run_id)
            _leases.hold(conn, run_id, lease)
            if row.status != "running":
                raise Conflict(f"run {run_id} is {row.status}")
            done = conn.scalar(
                select(func.count())
                .select_from(run_steps)
                .where(
                    run_steps.c.run_id == run_id,
                    run_steps.c.iteration == iteration,
                    run_steps.c.step == step,
                )
            )
            if done:
                raise Conflict(f"run {run_id}: step {step} of iteration {iteration} is recorded")
            now = utcnow()
            ids = _insert_outputs(conn, run_id, iteration, outputs_, now)
            _insert_critiques(conn, run_id, ids, critiques_, now)
            name = _amend.amendment_constitution_name(conn, row.constitution_id)
            proposed = []
            for draft in proposals:
                a = _writes.propose(
                    conn,
                    row.constitution_id,
                    name,
                    _amend.head(conn, name),
                    self.policy,
                    draft,
                    actor,
                    None,
                )
                proposed.append(a.id)
            for aid, evaluation in (evaluations or {}).items():
                _amend.record_evaluation(conn, aid, evaluation, actor)
            outcomes = {d.amendment_id: _decide(conn, self.policy, d, actor) for d in decisions}
            conn.execute(
                insert(run_steps).values(
                    run_id=run_id,
                    iteration=iteration,
                    step=step,
                    result={
                        **(result or {}),
                        "amendments": proposed,
                        "outcomes": {str(k): v for k, v in outcomes.items()},
                    },
                    completed_at=now,
                )
            )
            conn.execute(update(runs).where(runs.c.id == run_id).values(updated_at=now))
            _audit.append(
                conn,
                actor.ref,
                "run.step",
                f"run:{run_id}",
                {
                    "iteration": iteration,
                    "step": step,
                    "outputs": len(outputs_),
                    "critiques": len(critiques_),
                    "amendments": proposed,
                    "outcomes": {str(k): v for k, v in outcomes.items()},
                },
            )
            return StepRecord(output_ids=ids, amendment_ids=tuple(proposed), outcomes=outcomes)

        record: StepRecord = self._write(run)
        return record

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        reason: str,
        actor: Actor,
        *,
        lease: RunLease | None = None,
    ) -> Run:
        """End the run with `status` and release its lease; only `lease`'s holder may (as in
        `record_step`)."""

        def run(conn: Connection) -> Run:
            current = _run(conn, run_id)
            _leases.hold(conn, run_id, lease)
            if current.status != "running":
                raise Conflict(f"run {run_id} is already {current.status}")
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(status=status, stop_reason=reason, updated_at=utcnow())
            )
            _leases.release(conn, run_id)
            _audit.append(conn, actor.ref, f"run.{status}", f"run:{run_id}", {"reason": reason})
            return _run(conn, run_id)

        result: Run = self._write(run)
        return result

    def resume_run(self, run_id: int, actor: Actor, lease: RunLease | None = None) -> Run:
        """Claim the run for `lease` (default: this process) and mark it running again.

        One claim at a time: while another process holds a live lease (see
        `store/_leases.py`), this raises `Conflict` and changes nothing. A killed run is
        still `running` with its dead process's lease, which is taken over.
        """
        lease = lease or _leases.this_process()

        def run(conn: Connection) -> Run:
            current = _run(conn, run_id)
            if current.status == "completed":
                raise Conflict(f"run {run_id} is completed; start a new run instead")
            _leases.claim(conn, run_id, lease)
            if current.status != "running":
                conn.execute(
                    update(runs)
                    .where(runs.c.id == run_id)
                    .values(status="running", updated_at=utcnow())
                )
                _audit.append(conn, actor.ref, "run.resume", f"run:{run_id}", {})
            return _run(conn, run_id)

        result: Run = self._write(run)
        return result

    def renew_lease(self, run_id: int, lease: RunLease) -> None:
        """Refresh the run's heartbeat for `lease`, so that another machine cannot take a
        live run over; a lease that is no longer the run's raises `LeaseLost`, changing
        nothing."""
        self._write(lambda conn: _leases.renew(conn, run_id, lease))

    def release_run(self, run_id: int, lease: RunLease) -> None:
        """Give up `lease` on a run that stays as it is (a process that stops executing it
        without finishing it); a lease someone else holds now is left alone."""
        self._write(lambda conn: _leases.release(conn, run_id, lease.token))


def _run(conn: Connection, run_id: int) -> Run:
    _ids.require(conn, "run", run_id)
    row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    if row is None:
        raise NotFound("run", run_id)
    steps = conn.execute(
        select(run_steps.c.iteration, run_steps.c.step)
        .where(run_steps.c.run_id == run_id)
        .order_by(run_steps.c.iteration, run_steps.c.completed_at)
    ).all()
    return Run(
        id=row.id,
        constitution=_amend.amendment_constitution_name(conn, row.constitution_id),
        config=RunConfig.model_validate(row.config),
        status=row.status,
        start_revision=row.start_revision,
        model_info=row.model_info,
        stop_reason=row.stop_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        steps_done=tuple((s.iteration, s.step) for s in steps),
        lease=_leases.lease_of(row),
    )


def _insert_outputs(
    conn: Connection, run_id: int, iteration: int, new: Sequence[NewOutput], now: Any
) -> dict[str, int]:
    ids: dict[str, int] = {}
    for o in new:
        if o.key in ids:
            raise Conflict(f"two outputs share the key {o.key!r}")
        pk = conn.execute(
            insert(outputs).values(
                run_id=run_id,
                iteration=iteration,
                task_id=o.task_id,
                purpose=o.purpose,
                revision=o.revision,
                amendment_id=o.amendment_id,
                parent_id=o.parent_id,
                text=o.text,
                created_at=now,
            )
        ).inserted_primary_key
        assert pk is not None
        ids[o.key] = int(pk[0])
    return ids


def _insert_critiques(
    conn: Connection, run_id: int, ids: dict[str, int], new: Sequence[NewCritique], now: Any
) -> None:
    if not new:
        return
    rows = []
    for c in new:
        output_id = ids[c.output_key] if c.output_key is not None else c.output_id
        rows.append(
            {
                "run_id": run_id,
                "output_id": output_id,
                "principle_id": c.principle_id,
                "version": c.version,
                "score": c.score,
                "relevance": c.relevance,
                "spread": c.spread,
                "verdict": c.verdict,
                "rationale": c.rationale,
                "created_at": now,
            }
        )
    conn.execute(insert(critiques), rows)


def _decide(conn: Connection, policy: Policy, decision: StepDecision, actor: Actor) -> str:
    if decision.kind == "reject":
        _amend.review(conn, policy, decision.amendment_id, SYSTEM, "reject", decision.reason)
        return "rejected"
    outcome: Revision | StaleAmendment = _amend.apply(
        conn, policy, decision.amendment_id, actor, True
    )
    if isinstance(outcome, StaleAmendment):
        return "stale"
    return f"applied:{outcome.number}"
