"""The evaluation gate: does a candidate revision do better than the head on held-out tasks?

The actor answers the held-out tasks under the head and under each candidate. Every answer
is judged against the head's principles (which include every entrenched principle), never
only by the rules the candidate itself wrote. The gate also reports how clear the changed
principle's own judgments became (the share of ambiguous judgments, before and after).
A candidate passes when its mean score improves by at least `min_improvement` and no
entrenched principle's score falls by more than `entrenched_tolerance`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from agent._actor import answer
from agent._aggregate import AMBIGUOUS_BAND, DISAGREEMENT
from agent._critic import Judgment, Pair, judge
from agent._progress import Progress
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


@dataclass(frozen=True)
class GateResult:
    outputs: list[NewOutput]
    critiques: list[NewCritique]
    evaluations: dict[int, Evaluation]
    head_mean: float


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


def _means(pairs: Sequence[Pair], judgments: Sequence[Judgment]) -> dict[str, float]:
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
) -> GateResult:
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
    judgments = judge(backend, judges, pairs, paraphrases, progress)

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
    before = _means(head_pairs, head_j)
    head_mean = sum(j.score for j in head_j) / len(head_j) if head_j else 0.0

    evaluations: dict[int, Evaluation] = {}
    for idx, (aid, draft, cand) in enumerate(candidates):
        lo = n_head + idx * n_head
        cp, cj = pairs[lo : lo + n_head], judgments[lo : lo + n_head]
        after = _means(cp, cj)
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
            clarity_after = _ambiguity(judge(backend, cand, own, paraphrases, progress))
        regressions = {
            pid: round(before[pid] - after.get(pid, 0.0), 6)
            for pid in sorted(entrenched)
            if pid in before and before[pid] - after.get(pid, 0.0) > rule.entrenched_tolerance
        }
        improvement = after_mean - head_mean
        passed = improvement >= rule.min_improvement and not regressions
        evaluations[aid] = Evaluation(
            before=round(head_mean, 6),
            after=round(after_mean, 6),
            passed=passed,
            per_principle_before=before,
            per_principle_after=after,
            details={
                "heldout_tasks": len(heldout),
                "judged_by": "head principles (all entrenched included)",
                "min_improvement": rule.min_improvement,
                "entrenched_regressions": regressions,
                "ambiguity_before": clarity_before,
                "ambiguity_after": clarity_after,
                "reason": (
                    "passed"
                    if passed
                    else f"entrenched principles regressed: {', '.join(regressions)}"
                    if regressions
                    else f"improvement {improvement:+.4f} < {rule.min_improvement}"
                ),
            },
        )
    return GateResult(
        outputs=outputs, critiques=critiques, evaluations=evaluations, head_mean=head_mean
    )
