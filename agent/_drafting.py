"""Drafting a principle's text: several candidates per change, degenerate ones rejected.

For every change that needs new text the model writes one candidate per request variant
(each variant shows a different worked example, `agent._prompts.VARIANTS`), sampled at
`TEMPERATURE` with the run's seed, in one batched structured call per operation. Every
candidate goes through `principles.check_draft`. Changes left without a well-formed
candidate get another round (a new seed), up to `ROUNDS`; each change keeps its best-formed
candidate (`principles.best_draft`). A change whose candidates are all degenerate gets no
text at all, and every rejected candidate is recorded with its reasons, so that a reader of
the run sees why a draft was not proposed.

Why sampled and not greedy: with the default model, greedy decoding mostly returned the old
text, a cut of it, or one phrase looped to the length limit, and the variants' greedy
drafts were often identical; samples at 0.7 vary enough for the filter to find a
well-formed one. The same seed gives the same candidates, and each candidate's request is
distinct (variant and seed), so the LM-call cache replays them one for one.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from agent._prompts import MergedPrinciple, NewPrinciple, RevisedPrinciple, worked_example_ids
from agent.models import Backend, ChatMessage, GenerationParams
from principles import (
    CharterError,
    DraftProblem,
    DraftReason,
    Principle,
    best_draft,
    check_draft,
)

TextOp = Literal["revise", "merge", "add"]
SCHEMAS: dict[TextOp, type[RevisedPrinciple | MergedPrinciple | NewPrinciple]] = {
    "revise": RevisedPrinciple,
    "merge": MergedPrinciple,
    "add": NewPrinciple,
}
TEMPERATURE = 0.7
TOP_P = 0.95
ROUNDS = 3
"""Sampling rounds at most; a round adds one candidate per variant to each change that
still has no well-formed candidate."""
EXCERPT = 160
SIMILAR = 0.8
"""New principles whose texts are at least this alike (difflib's ratio) are one candidate."""


@dataclass(frozen=True)
class DraftRequest:
    """One change to write text for, with a conversation per variant and what the filter
    needs (`check_draft`'s `original`, `others` and `topic`)."""

    key: int
    op: TextOp
    principle_id: str
    conversations: list[list[ChatMessage]]
    original: str | None = None
    others: tuple[str, ...] = ()
    topic: str = ""


class RejectedDraft(BaseModel):
    """A candidate the filter turned down, as the propose step records it."""

    principle: str
    op: TextOp
    candidate: int
    reasons: list[DraftReason]
    messages: list[str]
    text: str


@dataclass
class Drafted:
    """Per request key, the best well-formed reply, or why there is none."""

    replies: dict[int, BaseModel] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    rejected: list[RejectedDraft] = field(default_factory=list)
    candidates: int = 0
    well_formed: int = 0

    def figures(self) -> dict[str, int]:
        """Counts for the step result: changes attempted and well-formed, candidates too."""
        attempted = len(self.replies) + len(self.failed)
        return {
            "attempted": attempted,
            "well_formed": len(self.replies),
            "candidates": self.candidates,
            "candidates_well_formed": self.well_formed,
        }


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


def _evidence_shown(request: DraftRequest) -> str:
    return request.conversations[0][-1].content


def _sample(
    backend: Backend, requests: Sequence[DraftRequest], params: GenerationParams
) -> tuple[dict[int, list[BaseModel]], dict[int, str]]:
    """One candidate per variant for each request, in one call per operation; the model's
    error for requests whose call failed."""
    replies: dict[int, list[BaseModel]] = {r.key: [] for r in requests}
    errors: dict[int, str] = {}
    for op, schema in SCHEMAS.items():
        mine = [r for r in requests if r.op == op]
        rows = [(r.key, conv) for r in mine for conv in r.conversations]
        if not rows:
            continue
        try:
            out: list[BaseModel] = list(
                backend.generate_structured([conv for _, conv in rows], schema, params)
            )
        except CharterError as exc:
            errors.update({r.key: str(exc).splitlines()[0] for r in mine})
            continue
        for (key, _), reply in zip(rows, out, strict=True):
            replies[key].append(reply)
    return replies, errors


def _check(request: DraftRequest, reply: BaseModel) -> list[DraftProblem]:
    return check_draft(
        str(getattr(reply, "text", "")),
        original=request.original,
        evidence=_evidence_shown(request),
        others=request.others,
        topic=request.topic,
    )


def draft_texts(
    backend: Backend, requests: Sequence[DraftRequest], params: GenerationParams
) -> Drafted:
    """Sample candidates for every request, reject degenerate ones, keep the best-formed."""
    found: dict[int, list[tuple[BaseModel, list[DraftProblem]]]] = {r.key: [] for r in requests}
    errors: dict[int, str] = {}
    todo = list(requests)
    for n in range(ROUNDS):
        seed = (params.seed or 0) * 10 + n
        sampling = params.model_copy(
            update={"temperature": TEMPERATURE, "top_p": TOP_P, "seed": seed}
        )
        replies, failed = _sample(backend, todo, sampling)
        errors.update(failed)
        for request in todo:
            found[request.key] += [(r, _check(request, r)) for r in replies[request.key]]
        todo = [r for r in todo if all(problems for _, problems in found[r.key])]
        if not todo:
            break
    done = Drafted()
    for request in requests:
        _choose(done, request, found[request.key], errors.get(request.key, "no reply"))
    return done


def _choose(
    done: Drafted,
    request: DraftRequest,
    found: list[tuple[BaseModel, list[DraftProblem]]],
    error: str,
) -> None:
    """Record `request`'s candidates in `done`: its best well-formed reply, or why none."""
    if not found:
        done.failed[request.key] = f"the model's draft was unusable ({error})"
        return
    texts = [str(getattr(reply, "text", "")) for reply, _ in found]
    problems = [p for _, p in found]
    done.candidates += len(found)
    done.well_formed += sum(not p for p in problems)
    done.rejected += [
        RejectedDraft(
            principle=request.principle_id or str(getattr(found[n][0], "id", "(new)")),
            op=request.op,
            candidate=n,
            reasons=[x.reason for x in p],
            messages=[x.message for x in p],
            text=_excerpt(texts[n]),
        )
        for n, p in enumerate(problems)
        if p
    ]
    best = best_draft(texts, problems)
    if problems[best]:
        reasons = sorted({x.reason for p in problems for x in p})
        done.failed[request.key] = (
            f"every one of {len(found)} candidate drafts was degenerate ({', '.join(reasons)});"
            f" e.g. {problems[best][0].message}"
        )
        return
    done.replies[request.key] = found[best][0]


def merge_new(replies: Sequence[NewPrinciple]) -> list[tuple[Principle, list[int]]]:
    """The distinct new principles among `replies` (same id, or texts at least `SIMILAR`
    alike, are one), in first-seen order, each with the indices of the replies that
    proposed it."""
    merged: list[tuple[Principle, list[int]]] = []
    for n, reply in enumerate(replies):
        for principle, members in merged:
            alike = difflib.SequenceMatcher(a=principle.text, b=reply.text).ratio()
            if principle.id == reply.id or alike >= SIMILAR:
                members.append(n)
                break
        else:
            merged.append((Principle(id=reply.id, title=reply.title, text=reply.text), [n]))
    return merged


def id_problem(principle_id: str, taken: Collection[str]) -> str | None:
    """Why a drafted new principle's id cannot be proposed: the constitution has it, or it is
    a worked example's, copied from the prompt; None when it is free."""
    if principle_id in taken:
        return "the constitution already has this id"
    if principle_id in worked_example_ids():
        return "the id of a worked example, copied"
    return None
