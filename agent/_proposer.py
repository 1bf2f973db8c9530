"""The proposer: turns an iteration's statistics into amendment drafts with evidence.

Which change to draft follows from the statistics, as in Inverse Constitutional AI's
filtering: a principle that is often violated or judged ambiguously is revised; one that is
never relevant is retired; two judged almost identically are merged; principles that pull
against each other get the non-entrenched one revised; a low overall score asks for a new
principle. The model writes the new text and the rationale, as structured output. Drafts
that duplicate a pending amendment, or that do not apply to the head, are skipped; the
number of drafts is capped by the caller.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel

from agent._progress import Progress
from agent._prompts import (
    MergedPrinciple,
    NewPrinciple,
    RevisedPrinciple,
    add_request,
    merge_request,
    revise_request,
)
from agent.models import Backend, ChatMessage, GenerationParams
from principles import (
    Aggregate,
    Amendment,
    AmendmentDraft,
    CharterError,
    Constitution,
    Critique,
    Policy,
    check_size,
    plan_changes,
)

REVISE_AT = 0.3
SIMILAR_TEXT = 0.9


@dataclass
class Candidate:
    op: str
    principle_id: str
    priority: float
    merge_from: tuple[str, ...] = ()
    reason: str = ""
    evidence: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Proposals:
    drafts: list[AmendmentDraft]
    skipped: list[str]


def _evidence_for(pid: str, critiques: Sequence[Critique], limit: int = 5) -> list[str]:
    worst = sorted((c for c in critiques if c.principle_id == pid), key=lambda c: c.score)[:limit]
    return [f"critique:{c.id}" for c in worst] + [f"output:{c.output_id}" for c in worst]


def candidates(
    head: Constitution, agg: Aggregate, critiques: Sequence[Critique]
) -> list[Candidate]:
    entrenched = {p.principle_id for p in head.principles if p.entrenched}
    out: list[Candidate] = []
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


def _duplicates(draft: AmendmentDraft, pending: Sequence[Amendment]) -> Amendment | None:
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
) -> Proposals:
    """Up to `budget` drafts that apply cleanly to `head` and duplicate nothing pending."""
    skipped: list[str] = []
    chosen: list[Candidate] = []
    busy = {pid for a in pending for pid in a.draft.touched}
    for c in candidates(head, agg, critiques):
        if len(chosen) >= budget:
            break
        if c.principle_id in busy and c.op != "add":
            skipped.append(f"{c.op} {c.principle_id}: a pending amendment already touches it")
            continue
        chosen.append(c)
    rationale_by: dict[int, str] = {}
    requests: dict[str, list[tuple[int, list[ChatMessage]]]] = {
        "revise": [],
        "merge": [],
        "add": [],
    }
    principles = {p.principle_id: p.as_principle() for p in head.principles}
    failures = [c.rationale for c in sorted(critiques, key=lambda c: c.score) if c.rationale]
    for i, c in enumerate(chosen):
        if c.op == "revise":
            examples = [
                x.rationale for x in critiques if x.principle_id == c.principle_id and x.rationale
            ][:3]
            requests["revise"].append(
                (
                    i,
                    revise_request(
                        principles[c.principle_id], agg.per_principle[c.principle_id], examples
                    ),
                )
            )
        elif c.op == "merge":
            r = next(x for x in agg.redundant if x.a == c.principle_id and x.b in c.merge_from)
            requests["merge"].append(
                (i, merge_request(principles[r.a], principles[r.b], r.correlation))
            )
        elif c.op == "add":
            requests["add"].append((i, add_request(list(principles.values()), failures)))
        else:
            rationale_by[i] = f"Retire {c.principle_id}: {c.reason}."
    texts: dict[int, BaseModel] = {}
    schemas: dict[str, type[BaseModel]] = {
        "revise": RevisedPrinciple,
        "merge": MergedPrinciple,
        "add": NewPrinciple,
    }
    for op, items in requests.items():
        if not items:
            continue
        try:
            replies: list[BaseModel] = backend.generate_structured(
                [conv for _, conv in items], schemas[op], params
            )
        except CharterError as exc:
            skipped += [f"{op}: the model's draft was unusable ({exc})" for _ in items]
            continue
        for (i, _), reply in zip(items, replies, strict=True):
            texts[i] = reply
        progress.advance(len(items))
    drafts: list[AmendmentDraft] = []
    for i, c in enumerate(chosen):
        try:
            draft = _draft(c, texts.get(i), rationale_by.get(i), run_id)
            changes = plan_changes(head, draft)
            check_size(policy, head, changes)
        except (CharterError, ValueError) as exc:
            skipped.append(f"{c.op} {c.principle_id or '(new)'}: {str(exc).splitlines()[0]}")
            continue
        if (dup := _duplicates(draft, pending)) is not None:
            skipped.append(f"{c.op} {draft.principle_id}: duplicates amendment {dup.id}")
            continue
        drafts.append(draft)
    return Proposals(drafts=drafts, skipped=skipped)


def _draft(
    c: Candidate,
    reply: BaseModel | None,
    rationale: str | None,
    run_id: int,
) -> AmendmentDraft:
    why = f" Evidence: {c.reason}."
    if c.op == "retire":
        return AmendmentDraft(
            op="retire",
            principle_id=c.principle_id,
            rationale=(rationale or "") + why,
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
            rationale=reply.rationale + why,
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
            rationale=reply.rationale + why,
            evidence=tuple(c.evidence),
            run_id=run_id,
        )
    if not isinstance(reply, RevisedPrinciple):
        raise ValueError(f"unexpected draft {type(reply).__name__}")
    return AmendmentDraft(
        op="revise",
        principle_id=c.principle_id,
        text=reply.text,
        rationale=reply.rationale + why,
        evidence=tuple(c.evidence),
        run_id=run_id,
    )
