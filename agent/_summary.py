"""What a run did, iteration by iteration, read back from its recorded steps."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from principles import OPEN_STATUSES, Run
from store import Store


class IterationSummary(BaseModel):
    model_config = ConfigDict(frozen=True)
    iteration: int
    revision: int | None = None
    mean_score: float | None = None
    heldout_mean: float | None = None
    per_principle: dict[str, float] = Field(default_factory=dict)
    violations: dict[str, float] = Field(default_factory=dict)
    proposed: list[int] = Field(default_factory=list)
    passed: list[int] = Field(default_factory=list)
    gate: dict[str, list[int]] = Field(
        default_factory=dict, description="amendment ids by gate outcome (passed, ...)"
    )
    outcomes: dict[str, str] = Field(default_factory=dict)
    queued: list[int] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)


class RunSummary(BaseModel):
    model_config = ConfigDict(frozen=True)
    run: Run
    iterations: list[IterationSummary]
    head: int
    pending: list[int]


def _by_outcome(outcomes: dict[str, str], passed: list[int]) -> dict[str, list[int]]:
    """Ids grouped by gate outcome; runs recorded before outcomes list only the passed."""
    if not outcomes:
        return {"passed": passed} if passed else {}
    grouped: dict[str, list[int]] = {}
    for aid, outcome in sorted(outcomes.items(), key=lambda x: int(x[0])):
        grouped.setdefault(outcome, []).append(int(aid))
    return grouped


def summarize(store: Store, run_id: int) -> RunSummary:
    run = store.run(run_id)
    rows: dict[int, dict[str, Any]] = {}
    for iteration, step, result in store.step_results(run_id):
        r = rows.setdefault(iteration, {"iteration": iteration})
        if step == "answer":
            r["revision"] = result.get("revision")
        elif step == "aggregate":
            agg = result["aggregate"]
            r["mean_score"] = round(agg["mean"], 4)
            r["per_principle"] = {k: round(v["mean"], 4) for k, v in agg["per_principle"].items()}
            r["violations"] = {
                k: round(v["violation_rate"], 4) for k, v in agg["per_principle"].items()
            }
        elif step == "propose":
            r["proposed"] = result.get("amendments", [])
            r["skipped"] = result.get("skipped", [])
        elif step == "evaluate":
            r["heldout_mean"] = result.get("heldout_mean")
            r["passed"] = result.get("passed", [])
            r["gate"] = _by_outcome(result.get("gate", {}), r["passed"])
        elif step == "decide":
            r["outcomes"] = result.get("outcomes", {})
            r["queued"] = result.get("queued", [])
    pending = [
        a.id for a in store.amendments(run.constitution, run_id=run_id) if a.status in OPEN_STATUSES
    ]
    return RunSummary(
        run=run,
        iterations=[IterationSummary.model_validate(rows[k]) for k in sorted(rows)],
        head=store.resolve("head", run.constitution),
        pending=pending,
    )
