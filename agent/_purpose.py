"""Principles drafted from a purpose: the agent answers sample tasks, critiques its answers
against the purpose, and drafts principles that would make them serve it better.

1. The tasks are split as a run splits them (`split_tasks`, by task id and seed). The agent
   answers up to `ANSWERED` training tasks under the existing constitution (none at all for
   a constitution started empty).
2. The critic judges every answer against the purpose, stated as a principle
   (`agent._prompts.purpose_principle`), and writes a critique of the `samples` answers that
   serve it least.
3. For each of those the model drafts one new principle (structured output: id, title and
   text; several sampled variants; degenerate drafts rejected by the proposer's filter:
   copies of the purpose, of a principle or of a worked example, and drafts that share no
   content word with the purpose, among them).
4. Near-duplicates are merged, each keeping how many answers proposed it; a candidate whose
   id the constitution or a worked example has is set aside with the reason.
5. Each candidate is measured on up to `HELDOUT` held-out tasks the way the gate measures an
   amendment: the agent answers them under the constitution without and with it, every
   answer judged against the purpose and against each principle of the constitution. The
   paired effect on the purpose's score (its 95% CI and p-value) gives the outcome:
   passed, inconclusive, or regressed, which also covers answers that got significantly
   worse by the constitution's own principles (an entrenched one, or all of them together).
6. Candidates that did not raise the purpose's held-out score at all (an effect of zero or
   less) or that regressed are dropped; the rest, those that passed first, then largest
   effect first, at most `max_principles`, are returned with their evaluation for the
   caller to propose as `add` amendments. Nothing is applied: people review them like any
   other amendment (a run applies only amendments it proposed itself).
   (A gain inside the noise is proposed, marked inconclusive, because a person may still
   want it; the small held-out set rarely makes a gain significant with a weak model.)

Drafts carry no model-written rationale or evidence: a small model's rationale repeats the
evidence (`agent._prompts.RevisedPrinciple`); the caller writes both from the figures here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from agent._actor import answer
from agent._calibration import Calibrator
from agent._critic import Judgment, Pair, judge, rationales
from agent._drafting import DraftRequest, RejectedDraft, draft_texts, id_problem, merge_new
from agent._gate import gate_details, principle_means, scored
from agent._progress import NoProgress, Progress
from agent._prompts import (
    VARIANTS,
    NewPrinciple,
    purpose_principle,
    purpose_request,
    worked_examples,
)
from agent._significance import Comparison, GateDecision, Scored, compare, decide
from agent.models import Backend, GenerationParams
from principles import (
    Evaluation,
    GateRule,
    InvalidInput,
    Principle,
    Task,
    split_tasks,
    validation_message,
)

ANSWERED = 12
"""Training tasks answered and judged against the purpose, at most."""
HELDOUT = 10
"""Held-out tasks each candidate is measured on, at most (the sign-flip test needs 6 at
alpha 0.05)."""
SAMPLES = 4
PARAPHRASES = 3
HELDOUT_FRACTION = 0.3
PURPOSE_WORDS = 3


@dataclass(frozen=True)
class Shortfall:
    """A training task whose answer served the purpose least: what a draft was asked about."""

    task: Task
    answer: str
    score: float
    critique: str


@dataclass(frozen=True)
class PurposeCandidate:
    """A drafted principle, how many shortfalls proposed it (near-duplicates merged) and
    which tasks those were, and what adding it to the constitution did to held-out answers."""

    principle: Principle
    support: int
    sources: tuple[str, ...]
    evaluation: Evaluation

    @property
    def effect(self) -> float:
        return float(self.evaluation.details.get("effect", 0.0))


@dataclass
class PurposeDrafted:
    """What drafting from a purpose found; see the module docstring."""

    purpose: Principle
    answered: int
    heldout: int
    mean_score: float
    shortfalls: list[Shortfall] = field(default_factory=list)
    candidates: list[PurposeCandidate] = field(default_factory=list)
    kept: list[PurposeCandidate] = field(default_factory=list)
    rejected: list[RejectedDraft] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def state_purpose(text: str) -> Principle:
    """The purpose as a principle the critic can judge by; one clear error when it cannot."""
    text = " ".join(text.split())
    if len(text.split()) < PURPOSE_WORDS:
        raise InvalidInput(
            f"--purpose: say what the assistant is for in {PURPOSE_WORDS} words or more"
        )
    try:
        return purpose_principle(text)
    except ValidationError as exc:
        raise InvalidInput(f"--purpose: {validation_message(exc)}") from exc


def _scores(
    backend: Backend,
    judges: Sequence[Principle],
    tasks: Sequence[Task],
    answers: Sequence[str],
    calibrator: Calibrator | None,
) -> list[tuple[Pair, Judgment]]:
    pairs = [Pair(t, a, p) for t, a in zip(tasks, answers, strict=True) for p in judges]
    judged = judge(backend, judges, pairs, PARAPHRASES, NoProgress(), calibrator)
    return list(zip(pairs, judged, strict=True))


def _rows(judged: Sequence[tuple[Pair, Judgment]], purpose: str, mine: bool) -> list[Scored]:
    """The purpose's rows (`mine`), or the constitution's principles' rows."""
    rows = scored([p for p, _ in judged], [j for _, j in judged])
    return [r for r in rows if (r.principle == purpose) == mine]


def _means(judged: Sequence[tuple[Pair, Judgment]]) -> dict[str, float]:
    return principle_means([p for p, _ in judged], [j for _, j in judged])


def _decide(
    purpose: Comparison, guard: Comparison | None, entrenched: set[str], rule: GateRule
) -> GateDecision:
    """The purpose's own outcome, unless the constitution's principles regressed."""
    if guard is not None and (held := decide(guard, entrenched, rule)).outcome == "regressed":
        return GateDecision(
            outcome="regressed",
            reason=f"the constitution's principles: {held.reason}",
            entrenched_regressions=held.entrenched_regressions,
        )
    return decide(purpose, set(), rule)


def _evaluate(
    backend: Backend,
    purpose: Principle,
    existing: Sequence[Principle],
    candidate: Principle,
    heldout: Sequence[Task],
    before: Sequence[tuple[Pair, Judgment]],
    *,
    rule: GateRule,
    params: GenerationParams,
    calibrator: Calibrator | None,
) -> Evaluation:
    judges = [purpose, *existing]
    texts = answer(backend, [*existing, candidate], heldout, params, NoProgress())
    after = _scores(backend, judges, heldout, texts, calibrator)
    seed = f"purpose:{candidate.id}"
    pid = purpose.id
    mine = compare(_rows(before, pid, True), _rows(after, pid, True), rule=rule, seed=seed)
    guard = (
        compare(
            _rows(before, pid, False), _rows(after, pid, False), rule=rule, seed=f"{seed}:guard"
        )
        if existing
        else None
    )
    decision = _decide(mine, guard, {p.id for p in existing if p.entrenched}, rule)
    m_before, m_after = _means(before), _means(after)
    details = gate_details(mine, decision)
    details["measure"] = "the purpose's score on held-out answers, without and with it"
    details["purpose"] = purpose.text
    if guard is not None:
        details["constitution_effect"] = guard.overall.effect
        details["constitution_ci"] = list(guard.overall.ci)
    return Evaluation(
        before=m_before[pid],
        after=m_after[pid],
        passed=decision.outcome == "passed",
        outcome=decision.outcome,
        per_principle_before=m_before,
        per_principle_after=m_after,
        details=details,
    )


def draft_from_purpose(
    backend: Backend,
    purpose_text: str,
    tasks: Sequence[Task],
    existing: Sequence[Principle],
    *,
    max_principles: int = 3,
    samples: int = SAMPLES,
    seed: int = 0,
    rule: GateRule | None = None,
    params: GenerationParams | None = None,
    calibrator: Calibrator | None = None,
    progress: Progress | None = None,
) -> PurposeDrafted:
    """Candidate principles for `purpose_text`, measured and kept as the module says."""
    taken = {p.id for p in existing}
    purpose = state_purpose(purpose_text)
    while purpose.id in taken:  # the constitution has a principle called "purpose"
        purpose = purpose.model_copy(update={"id": f"the-{purpose.id}"})
    rule = rule or GateRule()
    params = params or GenerationParams(max_new_tokens=96, seed=seed)
    progress = progress or NoProgress()
    train, held = split_tasks(tasks, seed, HELDOUT_FRACTION)
    train, held = train[:ANSWERED], held[:HELDOUT]
    if not train or not held:
        raise InvalidInput("drafting from a purpose needs at least two tasks")
    progress.message(f"answering {len(train)} training tasks")
    answers = answer(backend, existing, train, params, NoProgress())
    judged = _scores(backend, [purpose], train, answers, calibrator)
    scores = [j.score for _, j in judged]
    order = sorted(range(len(train)), key=lambda i: (scores[i], train[i].id))[:samples]
    progress.message(f"critiquing the {len(order)} answers that serve the purpose least")
    written = rationales(backend, [purpose], [judged[i][0] for i in order], params, NoProgress())
    result = PurposeDrafted(
        purpose=purpose,
        answered=len(train),
        heldout=len(held),
        mean_score=sum(scores) / len(scores),
        shortfalls=[
            Shortfall(train[i], answers[i], scores[i], c)
            for i, c in zip(order, written, strict=True)
        ],
    )
    progress.message(f"drafting from {len(result.shortfalls)} shortfalls")
    requests = [
        DraftRequest(
            key,
            "add",
            "",
            [
                purpose_request(existing, purpose.text, s.task.prompt, s.answer, s.critique, v)
                for v in range(VARIANTS)
            ],
            others=(*worked_examples(), purpose.text, *(p.text for p in existing)),
            topic=purpose.text,
        )
        for key, s in enumerate(result.shortfalls)
    ]
    drafted = draft_texts(backend, requests, params.model_copy(update={"max_new_tokens": 160}))
    result.rejected = drafted.rejected
    result.failed = [
        f"task {result.shortfalls[key].task.id}: {why}"
        for key, why in sorted(drafted.failed.items())
    ]
    replies = [
        (key, r) for key, r in sorted(drafted.replies.items()) if isinstance(r, NewPrinciple)
    ]
    merged = merge_new([r for _, r in replies])
    if not merged:
        return result
    progress.message(f"measuring {len(merged)} candidates on {len(held)} held-out tasks")
    base = answer(backend, existing, held, params, NoProgress())
    before = _scores(backend, [purpose, *existing], held, base, calibrator)
    for principle, members in merged:
        if (why := id_problem(principle.id, taken)) is not None:
            result.failed.append(f"{principle.id}: {why}")
            continue
        evaluation = _evaluate(
            backend,
            purpose,
            existing,
            principle,
            held,
            before,
            rule=rule,
            params=params,
            calibrator=calibrator,
        )
        asked = tuple(result.shortfalls[replies[m][0]].task.id for m in members)
        result.candidates.append(PurposeCandidate(principle, len(members), asked, evaluation))
    standing = [
        c for c in result.candidates if c.evaluation.outcome != "regressed" and c.effect > 0
    ]
    standing.sort(key=lambda c: (c.evaluation.outcome != "passed", -c.effect, -c.support))
    result.kept = standing[:max_principles]
    return result
