"""The loop's seven steps, each a function of one run's working context (`Loop`).

answer -> critique -> revise -> aggregate -> propose -> evaluate -> decide

Each step reads its inputs from the store, calls the model, and records everything it
produced together with its completion mark in one transaction (`Store.record_step`), so a
step either happened completely or not at all. `agent/_loop.py` drives them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent import _actor, _critic
from agent._aggregate import aggregate
from agent._bias_loop import Findings, findings, flagged, newest, plan
from agent._calibration import Calibrator
from agent._gate import evaluate
from agent._progress import Progress
from agent._prompts import actor_system, revision_turn
from agent._proposer import propose
from agent._tracing import NoTracer, Tracer
from agent.models import Backend, GenerationParams
from principles import (
    OPEN_STATUSES,
    STEPS,
    Actor,
    Aggregate,
    Amendment,
    Constitution,
    Critique,
    NewCritique,
    NewOutput,
    Run,
    RunConfig,
    RunLease,
    StepName,
    Task,
    entrenched_touched,
    verdict,
)
from store import StepDecision, Store

AGENT = Actor(kind="agent", name="charter-agent")


@dataclass
class Loop:
    """One run's working context: passed explicitly, never global."""

    store: Store
    backend: Backend
    run: Run
    progress: Progress
    actor: Actor = AGENT
    calibrator: Calibrator | None = None
    tracer: Tracer = field(default_factory=NoTracer)
    lease: RunLease | None = None
    """The lease this process claimed (not `run.lease`, which names whoever holds it now):
    every step is recorded under it, so a run taken over refuses this process's writes."""

    @property
    def config(self) -> RunConfig:
        return self.run.config

    def params(
        self, iteration: int, step: str, max_new_tokens: int | None = None
    ) -> GenerationParams:
        return GenerationParams(
            max_new_tokens=max_new_tokens or self.config.max_new_tokens,
            temperature=0.0,
            seed=self.config.seed * 1000 + iteration * 10 + STEPS.index(step),
        )

    def tasks(self) -> tuple[list[Task], list[Task]]:
        pairs = self.store.run_tasks(self.run.id)
        train = [t for t, s in pairs if s == "train"]
        held = [t for t, s in pairs if s == "heldout"]
        return train, held[: self.config.heldout_size]

    def task_map(self) -> dict[str, Task]:
        return {t.id: t for t, _ in self.store.run_tasks(self.run.id)}

    def constitution_at(self, revision: int) -> Constitution:
        return self.store.constitution(self.run.constitution, at=revision)

    def bias_findings(self, head: Constitution) -> Findings | None:
        """The newest bias probe run under `head` or before, its gaps as `config.bias`
        chooses (`agent._bias_loop`)."""
        if self.config.bias == "off":
            return None
        runs = self.store.probe_runs(self.run.constitution)
        return findings(newest(runs, head.revision), self.config.bias)


def sample_train(loop: Loop, iteration: int) -> list[Task]:
    train, _ = loop.tasks()
    rng = random.Random(f"{loop.config.seed}:{iteration}")
    k = min(loop.config.train_per_iteration, len(train))
    return sorted(rng.sample(train, k), key=lambda t: t.id)


def step_answer(loop: Loop, iteration: int) -> None:
    head = loop.store.constitution(loop.run.constitution)
    tasks = sample_train(loop, iteration)
    loop.progress.step(iteration, loop.config.iterations, "answer", len(tasks))
    principles = [p.as_principle() for p in head.principles]
    texts = _actor.answer(
        loop.backend, principles, tasks, loop.params(iteration, "answer"), loop.progress
    )
    loop.store.record_step(
        loop.run.id,
        iteration,
        "answer",
        loop.actor,
        lease=loop.lease,
        outputs_=[
            NewOutput(key=t.id, task_id=t.id, purpose="answer", revision=head.revision, text=x)
            for t, x in zip(tasks, texts, strict=True)
        ],
        result={"revision": head.revision, "tasks": [t.id for t in tasks]},
    )


def step_critique(loop: Loop, iteration: int) -> None:
    outputs = loop.store.outputs(loop.run.id, iteration=iteration, purpose="answer")
    tasks = loop.task_map()
    revision = outputs[0].revision if outputs else loop.store.resolve("head", loop.run.constitution)
    constitution = loop.constitution_at(revision)
    principles = [p.as_principle() for p in constitution.principles]
    pairs = [_critic.Pair(tasks[o.task_id], o.text, p) for o in outputs for p in principles]
    paraphrases = loop.config.judge_paraphrases
    loop.progress.step(iteration, loop.config.iterations, "critique", len(pairs) * paraphrases)
    judgments = _critic.judge(
        loop.backend, principles, pairs, paraphrases, loop.progress, loop.calibrator
    )
    threshold = loop.config.threshold
    low = _critic.lowest(judgments, threshold, loop.config.max_rationales)
    notes = _critic.rationales(
        loop.backend,
        principles,
        [pairs[i] for i in low],
        loop.params(iteration, "critique", 64),
        loop.progress,
    )
    rationale = dict(zip(low, notes, strict=True))
    versions = constitution.entries
    owner = [o for o in outputs for _ in principles]
    loop.store.record_step(
        loop.run.id,
        iteration,
        "critique",
        loop.actor,
        lease=loop.lease,
        critiques_=[
            NewCritique(
                output_id=o.id,
                principle_id=p.principle.id,
                version=versions[p.principle.id],
                score=j.score,
                relevance=j.relevance,
                spread=j.spread,
                verdict=verdict(j.score, threshold),
                rationale=rationale.get(i, ""),
            )
            for i, (o, p, j) in enumerate(zip(owner, pairs, judgments, strict=True))
        ],
        result={"revision": revision, "pairs": len(pairs), "rationales": len(low)},
    )


def step_revise(loop: Loop, iteration: int) -> None:
    """Constitutional AI's supervised stage: rewrite the worst answers from their critiques."""
    outputs = {
        o.id: o for o in loop.store.outputs(loop.run.id, iteration=iteration, purpose="answer")
    }
    critiques = [
        c for c in loop.store.critiques(loop.run.id, output_ids=list(outputs)) if c.rationale
    ]
    chosen: list[Critique] = []
    seen: set[int] = set()
    for c in sorted(critiques, key=lambda c: (c.score, c.id)):
        if c.output_id not in seen and len(chosen) < loop.config.max_revisions:
            seen.add(c.output_id)
            chosen.append(c)
    tasks = loop.task_map()
    loop.progress.step(iteration, loop.config.iterations, "revise", len(chosen))
    new: list[NewOutput] = []
    if chosen:
        revision = outputs[chosen[0].output_id].revision
        constitution = loop.constitution_at(revision)
        principles = [p.as_principle() for p in constitution.principles]
        by_id = {p.id: p for p in principles}
        texts = loop.backend.generate(
            [
                revision_turn(
                    tasks[outputs[c.output_id].task_id],
                    outputs[c.output_id].text,
                    by_id[c.principle_id],
                    c.rationale,
                )
                for c in chosen
            ],
            loop.params(iteration, "revise"),
            shared_prefix=actor_system(principles),
        )
        loop.progress.advance(len(chosen))
        new = [
            NewOutput(
                key=f"rev:{c.id}",
                task_id=outputs[c.output_id].task_id,
                purpose="revision",
                revision=revision,
                parent_id=c.output_id,
                text=t.strip() or "(no answer)",
            )
            for c, t in zip(chosen, texts, strict=True)
        ]
    loop.store.record_step(
        loop.run.id,
        iteration,
        "revise",
        loop.actor,
        lease=loop.lease,
        outputs_=new,
        result={"revised": len(new), "critiques": [c.id for c in chosen]},
    )


def iteration_aggregate(loop: Loop, iteration: int) -> Aggregate:
    outputs = loop.store.outputs(loop.run.id, iteration=iteration, purpose="answer")
    critiques = loop.store.critiques(loop.run.id, output_ids=[o.id for o in outputs])
    revision = outputs[0].revision if outputs else loop.store.resolve("head", loop.run.constitution)
    ids = list(loop.constitution_at(revision).entries)
    return aggregate(critiques, ids, loop.config.threshold)


def step_aggregate(loop: Loop, iteration: int) -> None:
    loop.progress.step(iteration, loop.config.iterations, "aggregate", 1)
    agg = iteration_aggregate(loop, iteration)
    loop.progress.advance()
    loop.store.record_step(
        loop.run.id,
        iteration,
        "aggregate",
        loop.actor,
        lease=loop.lease,
        result={"aggregate": agg.model_dump(mode="json")},
    )


def step_propose(loop: Loop, iteration: int) -> None:
    agg = Aggregate.model_validate(
        loop.store.step_result(loop.run.id, iteration, "aggregate")["aggregate"]
    )
    head = loop.store.constitution(loop.run.constitution)
    outputs = loop.store.outputs(loop.run.id, iteration=iteration, purpose="answer")
    critiques = loop.store.critiques(loop.run.id, output_ids=[o.id for o in outputs])
    pending = [a for a in loop.store.amendments(loop.run.constitution) if a.status in OPEN_STATUSES]
    used = loop.store.amendments_in_run(loop.run.id)
    budget = max(0, min(loop.config.max_proposals, loop.store.policy.max_amendments_per_run - used))
    bias = flagged(loop.bias_findings(head))
    loop.progress.step(iteration, loop.config.iterations, "propose", budget)
    found = propose(
        loop.backend,
        head,
        agg,
        critiques,
        pending,
        budget=budget,
        run_id=loop.run.id,
        policy=loop.store.policy,
        params=loop.params(iteration, "propose", 256),
        progress=loop.progress,
        bias=bias,
    )
    loop.store.record_step(
        loop.run.id,
        iteration,
        "propose",
        loop.actor,
        lease=loop.lease,
        proposals=found.drafts,
        result={
            "head": head.revision,
            "skipped": found.skipped,
            "budget": budget,
            "rejected_drafts": found.rejected,
            "drafting": found.figures,
            "bias": None if bias is None else {"probe_run": bias.run.id, "gaps": len(bias.gaps)},
        },
    )


def _iteration_amendments(loop: Loop, iteration: int) -> list[Amendment]:
    ids = loop.store.step_result(loop.run.id, iteration, "propose").get("amendments", [])
    return [loop.store.amendment(i) for i in ids]


def step_evaluate(loop: Loop, iteration: int) -> None:
    head = loop.store.constitution(loop.run.constitution)
    drafts = [
        (a.id, a.draft) for a in _iteration_amendments(loop, iteration) if a.status == "proposed"
    ]
    _, heldout = loop.tasks()
    bias, skipped = plan(loop.bias_findings(head)) if drafts else (None, None)
    loop.progress.step(
        iteration,
        loop.config.iterations,
        "evaluate",
        (1 + len(drafts))
        * (
            len(heldout) * (1 + len(head.principles) * loop.config.judge_paraphrases)
            + (bias.answered if bias is not None else 0)
        ),
    )
    result = evaluate(
        loop.backend,
        head,
        drafts,
        heldout,
        rule=loop.config.gate,
        threshold=loop.config.threshold,
        paraphrases=loop.config.judge_paraphrases,
        params=loop.params(iteration, "evaluate"),
        progress=loop.progress,
        calibrator=loop.calibrator,
        bias=bias,
        notes=[skipped] if skipped else [],
    )
    loop.store.record_step(
        loop.run.id,
        iteration,
        "evaluate",
        loop.actor,
        lease=loop.lease,
        outputs_=result.outputs,
        critiques_=result.critiques,
        evaluations=result.evaluations,
        result={
            "head": head.revision,
            "heldout_mean": round(result.head_mean, 6),
            "passed": [aid for aid, e in result.evaluations.items() if e.passed],
            "gate": {str(aid): e.outcome for aid, e in result.evaluations.items()},
            "bias_widened": [aid for aid, e in result.evaluations.items() if widened(e.details)],
            "warnings": result.warnings,
        },
    )
    for warning in result.warnings:
        loop.progress.message(f"warning: {warning}")


def drift(loop: Loop, extra: Amendment | None = None) -> float:
    """Share of the starting principles that the head (plus `extra`) has changed."""
    start = loop.constitution_at(loop.run.start_revision)
    head = loop.store.constitution(loop.run.constitution)
    ids = set(start.entries) | set(head.entries)

    def content(c: Constitution, pid: str) -> str | None:
        version = c.get(pid)
        return None if version is None else version.hash

    changed = {pid for pid in ids if content(start, pid) != content(head, pid)}
    if extra is not None:
        changed |= set(extra.draft.touched)
    return len(changed) / max(1, len(start.entries))


def widened(details: dict[str, Any]) -> list[str]:
    """The gaps an evaluated candidate significantly widens, as warnings (`agent._bias_loop`)."""
    found: list[str] = (details.get("bias") or {}).get("widened", [])
    return found


def step_decide(loop: Loop, iteration: int) -> None:
    """Act on the gate's outcomes. Review mode queues every evaluated draft that passed or
    was inconclusive, so people see it with its figures (and the gaps it widens, flagged),
    and rejects only regressions. Autonomous mode applies at most one passed draft (the
    largest effect; the policy may still require a person) and rejects the inconclusive,
    the regressed and those that significantly widen a measured bias gap."""
    amendments = _iteration_amendments(loop, iteration)
    loop.progress.step(iteration, loop.config.iterations, "decide", len(amendments))
    head = loop.store.constitution(loop.run.constitution)
    decisions: list[StepDecision] = []
    queued: list[int] = []
    held: list[str] = []
    eligible: list[Amendment] = []
    for a in amendments:
        if a.status != "proposed" or a.evaluation is None:
            continue
        outcome = a.evaluation.outcome
        wider = widened(a.evaluation.details)
        if outcome == "regressed" or (loop.config.mode == "autonomous" and outcome != "passed"):
            reason = f"gate: {outcome}: {a.evaluation.details.get('reason', 'no reason recorded')}"
            decisions.append(StepDecision(kind="reject", amendment_id=a.id, reason=reason))
        elif loop.config.mode == "autonomous" and wider:
            reason = f"gate: {outcome}, but it " + "; and it ".join(wider)
            decisions.append(StepDecision(kind="reject", amendment_id=a.id, reason=reason))
        elif loop.config.mode == "autonomous" and not entrenched_touched(head, a.draft):
            eligible.append(a)
        else:
            queued.append(a.id)  # review mode, or policy requires a human
        loop.progress.advance()
    # Autonomously, at most the best passing change per iteration: the others were measured
    # against a head that this change replaces, so they wait for review (or the next run).
    eligible.sort(key=lambda a: (-(a.evaluation.delta if a.evaluation else 0.0), a.id))
    for n, a in enumerate(eligible):
        if n == 0 and drift(loop, a) <= loop.config.max_drift:
            decisions.append(StepDecision(kind="apply", amendment_id=a.id))
            continue
        if n == 0:
            held.append(
                f"amendment {a.id} would exceed the drift bound {loop.config.max_drift:.0%}"
            )
        queued.append(a.id)
    loop.store.record_step(
        loop.run.id,
        iteration,
        "decide",
        loop.actor,
        lease=loop.lease,
        decisions=decisions,
        result={
            "queued": queued,
            "held": held,
            "mode": loop.config.mode,
            "bias_flagged": [
                a.id
                for a in amendments
                if a.id in queued and a.evaluation is not None and widened(a.evaluation.details)
            ],
        },
    )


def stop_reason(loop: Loop, iteration: int) -> str:
    """Why the run should stop after `iteration`, or '' to go on."""
    decide = loop.store.step_result(loop.run.id, iteration, "decide")
    if decide.get("held"):
        return "drift bound reached: " + "; ".join(decide["held"])
    first = loop.store.step_result(loop.run.id, 1, "evaluate").get("heldout_mean")
    now = loop.store.step_result(loop.run.id, iteration, "evaluate").get("heldout_mean")
    if first is not None and now is not None and first - now > loop.config.stop_on_regression:
        return f"held-out score regressed from {first:.3f} to {now:.3f}"
    return ""


STEP_FUNCTIONS: dict[StepName, Callable[[Loop, int], None]] = {
    "answer": step_answer,
    "critique": step_critique,
    "revise": step_revise,
    "aggregate": step_aggregate,
    "propose": step_propose,
    "evaluate": step_evaluate,
    "decide": step_decide,
}
