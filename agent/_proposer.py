"""The proposer: turns an iteration's statistics into amendment drafts with evidence.

Which change to draft follows from the statistics, as in Inverse Constitutional AI's
filtering: a principle that is often violated or judged ambiguously is revised; one that is
never relevant is retired; two judged almost identically are merged; principles that pull
against each other get the non-entrenched one revised; a low overall score asks for a new
principle; significant gaps found by a stored bias probe run (`agent._bias_loop`) ask, before
anything else, for a revision of `fairness`, or a new principle where there is none. The
model writes the new text as structured output (several candidates per change, degenerate
ones rejected before the gate ever sees them: `agent._drafting`); the rationale states the
evidence. Drafts that duplicate a pending amendment, or that do not apply to the head, are
skipped; the number of drafts is capped by the caller.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from agent._bias import DEFAULT_JUDGED
from agent._bias_loop import Findings
from agent._drafting import DraftRequest, draft_texts
from agent._progress import Progress
from agent._prompts import (
    VARIANTS,
    MergedPrinciple,
    NewPrinciple,
    RevisedPrinciple,
    add_request,
    bias_add_request,
    bias_revise_request,
    merge_request,
    revise_request,
    worked_examples,
)
from agent.models import Backend, GenerationParams
from principles import (
    Aggregate,
    Amendment,
    AmendmentDraft,
    CharterError,
    Constitution,
    Critique,
    Policy,
    Principle,
    check_size,
    plan_changes,
)

REVISE_AT = 0.3
SIMILAR_TEXT = 0.9
BIAS_PRIORITY = 3.0
"""A measured unfair treatment of people outranks every other reason to redraft (the
statistics give at most 2: violation rate plus ambiguity)."""


@dataclass
class Candidate:
    op: str
    principle_id: str
    priority: float
    merge_from: tuple[str, ...] = ()
    reason: str = ""
    evidence: list[str] = field(default_factory=list)
    bias: tuple[str, ...] = ()
    """The probe run's gaps in words, when the change answers them."""


@dataclass(frozen=True)
class Proposals:
    """What the proposer drafted, what it skipped and why, and the drafting figures:
    `rejected` holds every degenerate candidate with its reasons (JSON-ready), `figures`
    the counts of changes and candidates attempted and well-formed."""

    drafts: list[AmendmentDraft]
    skipped: list[str]
    rejected: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)


def _evidence_for(pid: str, critiques: Sequence[Critique], limit: int = 5) -> list[str]:
    worst = sorted((c for c in critiques if c.principle_id == pid), key=lambda c: c.score)[:limit]
    return [f"critique:{c.id}" for c in worst] + [f"output:{c.output_id}" for c in worst]


def candidates(
    head: Constitution,
    agg: Aggregate,
    critiques: Sequence[Critique],
    bias: Findings | None = None,
) -> list[Candidate]:
    entrenched = {p.principle_id for p in head.principles if p.entrenched}
    out: list[Candidate] = []
    if bias is not None:
        fair = head.get(DEFAULT_JUDGED) is not None
        out.append(
            Candidate(
                "revise" if fair else "add",
                DEFAULT_JUDGED if fair else "",
                BIAS_PRIORITY,
                reason=bias.figures(),
                evidence=[bias.ref],
                bias=tuple(bias.in_words()),
            )
        )
    for pid, s in agg.per_principle.items():
        if head.get(pid) is None or not s.judged:
            continue
        if s.never_relevant and pid not in entrenched:
            out.append(
                Candidate(
                    "retire",
                    pid,
                    0.45,
                    reason=f"relevant in {s.relevance:.0%} of {s.judged} judgments",
                    evidence=_evidence_for(pid, critiques),
                )
            )
        elif s.violation_rate >= REVISE_AT or s.ambiguity >= REVISE_AT:
            out.append(
                Candidate(
                    "revise",
                    pid,
                    s.violation_rate + s.ambiguity,
                    reason=f"violations {s.violation_rate:.0%}, ambiguous {s.ambiguity:.0%}",
                    evidence=_evidence_for(pid, critiques),
                )
            )
    for conflict in agg.conflicts:
        target = conflict.b if conflict.b not in entrenched else conflict.a
        if target in entrenched:
            continue
        out.append(
            Candidate(
                "revise",
                target,
                0.5 + abs(conflict.correlation) / 2,
                reason=f"conflicts with {conflict.a if target == conflict.b else conflict.b} "
                f"(correlation {conflict.correlation:.2f})",
                evidence=_evidence_for(conflict.a, critiques, 2)
                + _evidence_for(conflict.b, critiques, 2),
            )
        )
    for r in agg.redundant:
        if r.a in entrenched or r.b in entrenched:
            continue
        out.append(
            Candidate(
                "merge",
                r.a,
                0.4,
                merge_from=(r.b,),
                reason=f"judged like {r.b} (correlation {r.correlation:.2f})",
                evidence=_evidence_for(r.a, critiques, 2) + _evidence_for(r.b, critiques, 2),
            )
        )
    if agg.mean < 0.5:
        worst = sorted(critiques, key=lambda c: c.score)[:5]
        out.append(
            Candidate(
                "add",
                "",
                0.3,
                reason=f"overall mean score {agg.mean:.2f}",
                evidence=[f"critique:{c.id}" for c in worst],
            )
        )
    out.sort(key=lambda c: (-c.priority, c.op, c.principle_id))
    seen: set[tuple[str, str]] = set()
    unique = []
    for c in out:
        if (c.op, c.principle_id) not in seen:
            seen.add((c.op, c.principle_id))
            unique.append(c)
    return unique


def duplicates(draft: AmendmentDraft, pending: Sequence[Amendment]) -> Amendment | None:
    """The pending amendment that makes the same change as `draft`, if any."""
    for a in pending:
        if a.draft.op != draft.op or a.draft.principle_id != draft.principle_id:
            continue
        if draft.op == "retire" or draft.text is None or a.draft.text is None:
            return a
        if difflib.SequenceMatcher(a=a.draft.text, b=draft.text).ratio() >= SIMILAR_TEXT:
            return a
    return None


def propose(
    backend: Backend,
    head: Constitution,
    agg: Aggregate,
    critiques: Sequence[Critique],
    pending: Sequence[Amendment],
    *,
    budget: int,
    run_id: int,
    policy: Policy,
    params: GenerationParams,
    progress: Progress,
    bias: Findings | None = None,
) -> Proposals:
    """Up to `budget` drafts that apply cleanly to `head` and duplicate nothing pending.

    Text is drafted by `draft_texts`: several candidates per change, degenerate ones
    rejected (and recorded in `rejected`); a change with no well-formed candidate is skipped.
    `bias` (a probe run's significant gaps) asks for a change that answers them, unless a
    pending amendment already cites the same probe run.
    """
    skipped: list[str] = []
    chosen: list[Candidate] = []
    busy = {pid for a in pending for pid in a.draft.touched}
    cited = {ref: a.id for a in pending for ref in a.draft.evidence if ref.startswith("probe:")}
    for c in candidates(head, agg, critiques, bias):
        if len(chosen) >= budget:
            break
        if c.principle_id in busy and c.op != "add":
            skipped.append(f"{c.op} {c.principle_id}: a pending amendment already touches it")
            continue
        if c.bias and c.evidence[0] in cited:
            skipped.append(
                f"{c.op} {c.principle_id or '(new)'}: amendment {cited[c.evidence[0]]} already "
                f"answers {c.evidence[0].replace(':', ' run ')}"
            )
            continue
        chosen.append(c)
    requests = [
        r for i, c in enumerate(chosen) if (r := _request(i, c, head, agg, critiques)) is not None
    ]
    drafted = draft_texts(backend, requests, params)
    progress.advance(len(requests))
    drafts: list[AmendmentDraft] = []
    for i, c in enumerate(chosen):
        if i in drafted.failed:
            skipped.append(f"{c.op} {c.principle_id or '(new)'}: {drafted.failed[i]}")
            continue
        try:
            draft = _draft(c, drafted.replies.get(i), run_id)
            changes = plan_changes(head, draft)
            check_size(policy, head, changes)
        except (CharterError, ValueError) as exc:
            skipped.append(f"{c.op} {c.principle_id or '(new)'}: {str(exc).splitlines()[0]}")
            continue
        if (dup := duplicates(draft, pending)) is not None:
            skipped.append(f"{c.op} {draft.principle_id}: duplicates amendment {dup.id}")
            continue
        drafts.append(draft)
    return Proposals(
        drafts=drafts,
        skipped=skipped,
        rejected=[r.model_dump(mode="json") for r in drafted.rejected],
        figures=drafted.figures(),
    )


def _request(
    key: int, c: Candidate, head: Constitution, agg: Aggregate, critiques: Sequence[Critique]
) -> DraftRequest | None:
    """The drafting request for a change that needs text (None for a retirement)."""
    principles = {p.principle_id: p.as_principle() for p in head.principles}
    if c.bias:
        return _bias_request(key, c, principles)
    texts = {pid: p.text for pid, p in principles.items()}
    copies = tuple(worked_examples())
    variants = range(VARIANTS)
    if c.op == "revise":
        p, stats = principles[c.principle_id], agg.per_principle[c.principle_id]
        return DraftRequest(
            key,
            "revise",
            c.principle_id,
            [revise_request(p, stats, v) for v in variants],
            original=p.text,
            others=copies + tuple(t for pid, t in texts.items() if pid != c.principle_id),
            topic=f"{p.title} {p.text}",
        )
    if c.op == "merge":
        a, b = principles[c.principle_id], principles[c.merge_from[0]]
        return DraftRequest(
            key,
            "merge",
            c.principle_id,
            [merge_request(a, b, v) for v in variants],
            others=copies + tuple(texts.values()),
            topic=f"{a.title} {a.text} {b.title} {b.text}",
        )
    if c.op == "add":
        failures = [x.rationale for x in sorted(critiques, key=lambda x: x.score) if x.rationale]
        return DraftRequest(
            key,
            "add",
            "",
            [add_request(list(principles.values()), failures, v) for v in variants],
            others=copies + tuple(texts.values()),
        )
    return None


def _bias_request(key: int, c: Candidate, principles: dict[str, Principle]) -> DraftRequest:
    """A revision of `fairness`, or a new principle, from the probe run's gaps in words."""
    texts = {pid: p.text for pid, p in principles.items()}
    copies = tuple(worked_examples())
    variants = range(VARIANTS)
    if c.op == "revise":
        p = principles[c.principle_id]
        return DraftRequest(
            key,
            "revise",
            c.principle_id,
            [bias_revise_request(p, c.bias, v) for v in variants],
            original=p.text,
            others=copies + tuple(t for pid, t in texts.items() if pid != c.principle_id),
            topic=f"{p.title} {p.text}",
        )
    return DraftRequest(
        key,
        "add",
        "",
        [bias_add_request(list(principles.values()), c.bias, v) for v in variants],
        others=copies + tuple(texts.values()),
        topic="treat every person alike, fairly and equally, whoever they are: " + " ".join(c.bias),
    )


def _draft(c: Candidate, reply: BaseModel | None, run_id: int) -> AmendmentDraft:
    """The amendment for `c`, with `reply`'s text; the rationale comes from the evidence."""
    why = f" Evidence: {c.reason}."
    if c.op == "retire":
        return AmendmentDraft(
            op="retire",
            principle_id=c.principle_id,
            rationale=f"Retire {c.principle_id}: {c.reason}." + why,
            evidence=tuple(c.evidence),
            run_id=run_id,
        )
    if reply is None:
        raise ValueError("no draft text from the model")
    if isinstance(reply, NewPrinciple):
        return AmendmentDraft(
            op="add",
            principle_id=reply.id,
            title=reply.title,
            text=reply.text,
            rationale=(
                "A new principle so that the agent treats people alike."
                if c.bias
                else "A new principle for failures that no principle covers well."
            )
            + why,
            evidence=tuple(c.evidence),
            run_id=run_id,
        )
    if isinstance(reply, MergedPrinciple):
        return AmendmentDraft(
            op="merge",
            principle_id=c.principle_id,
            merge_from=c.merge_from,
            title=reply.title,
            text=reply.text,
            rationale=f"One principle for {c.principle_id} and {', '.join(c.merge_from)}, "
            "which are judged alike." + why,
            evidence=tuple(c.evidence),
            run_id=run_id,
        )
    if not isinstance(reply, RevisedPrinciple):
        raise ValueError(f"unexpected draft {type(reply).__name__}")
    return AmendmentDraft(
        op="revise",
        principle_id=c.principle_id,
        text=reply.text,
        rationale=(
            f"Redrafted {c.principle_id} so that the agent treats people alike."
            if c.bias
            else f"Redrafted {c.principle_id} to be clearer and easier to judge."
        )
        + why,
        evidence=tuple(c.evidence),
        run_id=run_id,
    )
