"""The evaluation gate: does a candidate revision do better than the head on held-out tasks?

The actor answers the held-out tasks under the head and under each candidate. Every answer
is judged against the head's principles (which include every entrenched principle), never
only by the rules the candidate itself wrote. The gate also reports how clear the changed
principle's own judgments became (the share of ambiguous judgments, before and after).
Head and candidate are compared pairwise over the same tasks (`agent/_significance.py`): the
amendment's evaluation stores the effect, its 95% CI and p-value, overall and per principle,
the warnings, and the outcome (passed / inconclusive / regressed) that `decide` gives.
Where a stored bias probe run found gaps, the gate also measures them under the head and each
candidate (`agent._bias_loop.check`); a candidate that significantly widens one carries a
warning and `details["bias"]["widened"]`, which autonomous mode rejects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent._actor import answer
from agent._aggregate import AMBIGUOUS_BAND, DISAGREEMENT
from agent._bias_loop import BiasPlan, check
from agent._calibration import Calibrator
from agent._critic import Judgment, Pair, judge
from agent._progress import Progress
from agent._significance import (
    Comparison,
    GateDecision,
    Scored,
    compare,
    decide,
    smallest_testable_n,
    untestable,
)
from agent.models import Backend, GenerationParams
from principles import (
    AmendmentDraft,
    Constitution,
    Evaluation,
    GateRule,
    NewCritique,
    NewOutput,
    Principle,
    Task,
    plan_changes,
    verdict,
)

BIAS_TOKENS = 64
"""Tokens per answer when bias probes are measured again (as `charter probe bias`)."""


@dataclass(frozen=True)
class GateResult:
    outputs: list[NewOutput]
    critiques: list[NewCritique]
    evaluations: dict[int, Evaluation]
    head_mean: float
    warnings: list[str]


def candidate_principles(head: Constitution, draft: AmendmentDraft) -> list[Principle]:
    current = {p.principle_id: p.as_principle() for p in head.principles}
    for change in plan_changes(head, draft):
        if change.principle is None:
            current.pop(change.principle_id, None)
        else:
            current[change.principle_id] = change.principle
    return [current[k] for k in sorted(current)]


def _ambiguity(judgments: Sequence[Judgment]) -> float | None:
    if not judgments:
        return None
    return sum(
        abs(j.score - 0.5) < AMBIGUOUS_BAND or j.spread > DISAGREEMENT for j in judgments
    ) / len(judgments)


def scored(pairs: Sequence[Pair], judgments: Sequence[Judgment]) -> list[Scored]:
    return [
        Scored(p.task.id, p.principle.id, j.score, j.spread)
        for p, j in zip(pairs, judgments, strict=True)
    ]


def gate_details(comparison: Comparison, decision: GateDecision) -> dict[str, Any]:
    """The figures stored in `Evaluation.details` (JSON): outcome, effect, 95% CI, p-value,
    n tasks, per principle the same, the minimum detectable effect and the warnings."""
    overall = comparison.overall
    return {
        "outcome": decision.outcome,
        "reason": decision.reason,
        "effect": overall.effect,
        "ci": list(overall.ci),
        "p_value": overall.p_value,
        "n": overall.n,
        "sd": overall.sd,
        "judge_sd": overall.judge_sd,
        "alpha": comparison.alpha,
        "min_effect": comparison.min_effect,
        "min_detectable_effect": comparison.min_detectable_effect,
        "uniform_drift": comparison.uniform_drift,
        "warnings": list(comparison.warnings),
        "per_principle": {
            p: {"effect": e.effect, "ci": list(e.ci), "p_value": e.p_value}
            for p, e in comparison.per_principle.items()
        },
        "entrenched_regressions": decision.entrenched_regressions,
    }


def principle_means(pairs: Sequence[Pair], judgments: Sequence[Judgment]) -> dict[str, float]:
    by: dict[str, list[float]] = defaultdict(list)
    for p, j in zip(pairs, judgments, strict=True):
        by[p.principle.id].append(j.score)
    return {k: round(sum(v) / len(v), 6) for k, v in sorted(by.items())}


def evaluate(
    backend: Backend,
    head: Constitution,
    drafts: Sequence[tuple[int, AmendmentDraft]],
    heldout: Sequence[Task],
    *,
    rule: GateRule,
    threshold: float,
    paraphrases: int,
    params: GenerationParams,
    progress: Progress,
    calibrator: Calibrator | None = None,
    bias: BiasPlan | None = None,
    notes: Sequence[str] = (),
) -> GateResult:
    """`notes` are warnings for the run's log from before the gate ran (a bias check that
    could not be made)."""
    judges = [p.as_principle() for p in head.principles]
    versions = {p.principle_id: p.number for p in head.principles}
    entrenched = {p.principle_id for p in head.principles if p.entrenched}
    candidates = [(aid, d, candidate_principles(head, d)) for aid, d in drafts]

    head_answers = answer(backend, judges, heldout, params, progress)
    cand_answers = [answer(backend, cp, heldout, params, progress) for _, _, cp in candidates]

    outputs: list[NewOutput] = []
    pairs: list[Pair] = []
    keys: list[str] = []
    for t, text in zip(heldout, head_answers, strict=True):
        outputs.append(
            NewOutput(
                key=f"head:{t.id}",
                task_id=t.id,
                purpose="gate-head",
                revision=head.revision,
                text=text,
            )
        )
    for (aid, _, _), texts in zip(candidates, cand_answers, strict=True):
        for t, text in zip(heldout, texts, strict=True):
            outputs.append(
                NewOutput(
                    key=f"a{aid}:{t.id}",
                    task_id=t.id,
                    purpose="gate-candidate",
                    revision=head.revision,
                    amendment_id=aid,
                    text=text,
                )
            )
    for o in outputs:
        task = next(t for t in heldout if t.id == o.task_id)
        for principle in judges:
            pairs.append(Pair(task, o.text, principle))
            keys.append(o.key)
    judgments = judge(backend, judges, pairs, paraphrases, progress, calibrator)

    critiques = [
        NewCritique(
            output_key=k,
            principle_id=p.principle.id,
            version=versions[p.principle.id],
            score=j.score,
            relevance=j.relevance,
            spread=j.spread,
            verdict=verdict(j.score, threshold),
        )
        for k, p, j in zip(keys, pairs, judgments, strict=True)
    ]
    per_output = len(judges)
    n_head = len(heldout) * per_output
    head_pairs, head_j = pairs[:n_head], judgments[:n_head]
    before = principle_means(head_pairs, head_j)
    head_mean = sum(j.score for j in head_j) / len(head_j) if head_j else 0.0

    evaluations: dict[int, Evaluation] = {}
    for idx, (aid, draft, cand) in enumerate(candidates):
        lo = n_head + idx * n_head
        cp, cj = pairs[lo : lo + n_head], judgments[lo : lo + n_head]
        after = principle_means(cp, cj)
        after_mean = sum(j.score for j in cj) / len(cj) if cj else 0.0
        changed = next((p for p in cand if p.id == draft.principle_id), None)
        clarity_before = _ambiguity(
            [
                j
                for p, j in zip(head_pairs, head_j, strict=True)
                if p.principle.id == draft.principle_id
            ]
        )
        clarity_after = None
        if changed is not None:
            own = [
                Pair(next(t for t in heldout if t.id == o.task_id), o.text, changed)
                for o in outputs
                if o.amendment_id == aid
            ]
            clarity_after = _ambiguity(judge(backend, cand, own, paraphrases, progress, calibrator))
        comparison = compare(scored(head_pairs, head_j), scored(cp, cj), rule=rule, seed=f"a{aid}")
        decision = decide(comparison, entrenched, rule)
        evaluations[aid] = Evaluation(
            before=round(head_mean, 6),
            after=round(after_mean, 6),
            passed=decision.outcome == "passed",
            outcome=decision.outcome,
            per_principle_before=before,
            per_principle_after=after,
            details={
                "heldout_tasks": len(heldout),
                "judged_by": "head principles (all entrenched included)",
                **gate_details(comparison, decision),
                "ambiguity_before": clarity_before,
                "ambiguity_after": clarity_after,
            },
        )
    if bias is not None and candidates:
        checked = check(
            backend,
            judges,
            [(aid, cand) for aid, _, cand in candidates],
            bias,
            alpha=rule.alpha,
            tolerance=rule.bias_tolerance,
            params=params.model_copy(update={"max_new_tokens": BIAS_TOKENS}),
            progress=progress,
            calibrator=calibrator,
        )
        for aid, found in checked.items():
            e = evaluations[aid]
            details = {**e.details, "bias": found}
            details["warnings"] = [*e.details.get("warnings", []), *found["widened"]]
            evaluations[aid] = e.model_copy(update={"details": details})
    return GateResult(
        outputs=outputs,
        critiques=critiques,
        evaluations=evaluations,
        head_mean=head_mean,
        warnings=[*notes, *run_warnings(len(heldout), rule, evaluations)],
    )


def run_warnings(n: int, rule: GateRule, evaluations: dict[int, Evaluation]) -> list[str]:
    """The gate's warnings for the run's log: one line when no held-out result can be
    significant with n tasks (even with no drafts), then each amendment's own warnings."""
    out: list[str] = []
    if n < smallest_testable_n(rule.alpha):
        out.append(untestable(n, rule.alpha))
    for aid, e in sorted(evaluations.items()):
        for w in e.details.get("warnings", []):
            if not w.startswith("held-out set too small:"):
                out.append(f"amendment {aid}: {w}")
    return out
