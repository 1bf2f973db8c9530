"""The critic: scores every (output, principle) pair in [0, 1] by answer-option scoring.

For each pair the judge is asked, in `paraphrases` wordings, whether the response follows
the principle; the options Yes / No / NA are scored in one batched call per output, whose
shared prefix is the constitution followed by the exchange (see `judge_prefix`).
score = P(Yes) / (P(Yes) + P(No)), relevance = 1 - P(NA), spread = the largest disagreement
between wordings. Written rationales are generated only for the lowest-scoring pairs below
the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from agent._progress import Progress
from agent._prompts import JUDGE_OPTIONS, judge_prefix, judge_turn, rationale_turn
from agent.models import Backend, GenerationParams
from principles import Principle, Task


@dataclass(frozen=True)
class Pair:
    task: Task
    response: str
    principle: Principle


@dataclass(frozen=True)
class Judgment:
    score: float
    relevance: float
    spread: float


def _probabilities(logprobs: Sequence[float]) -> list[float]:
    top = max(logprobs)
    weights = [math.exp(x - top) for x in logprobs]
    total = sum(weights)
    return [w / total for w in weights]


def _by_output(pairs: Sequence[Pair]) -> dict[tuple[str, str], list[int]]:
    """Pair indices grouped by the exchange they judge, in first-seen order."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(pairs):
        groups.setdefault((p.task.id, p.response), []).append(i)
    return groups


def judge(
    backend: Backend,
    constitution: Sequence[Principle],
    pairs: Sequence[Pair],
    paraphrases: int,
    progress: Progress,
) -> list[Judgment]:
    """One judgment per pair, in order; one batched scoring call per judged output."""
    rows: dict[int, list[list[float]]] = {}
    for indices in _by_output(pairs).values():
        first = pairs[indices[0]]
        prompts = [judge_turn(pairs[i].principle, k) for i in indices for k in range(paraphrases)]
        scored = backend.score_options(
            prompts,
            JUDGE_OPTIONS,
            shared_prefix=judge_prefix(constitution, first.task, first.response),
        )
        for n, i in enumerate(indices):
            rows[i] = scored[n * paraphrases : (n + 1) * paraphrases]
        progress.advance(len(prompts))
    judgments = []
    for i in range(len(pairs)):
        scores, relevances = [], []
        for row in rows[i]:
            yes, no, na = _probabilities(row)
            scores.append(yes / (yes + no) if yes + no > 0 else 0.5)
            relevances.append(1.0 - na)
        judgments.append(
            Judgment(
                score=min(1.0, max(0.0, sum(scores) / len(scores))),
                relevance=min(1.0, max(0.0, sum(relevances) / len(relevances))),
                spread=min(1.0, max(scores) - min(scores)),
            )
        )
    return judgments


def rationales(
    backend: Backend,
    constitution: Sequence[Principle],
    pairs: Sequence[Pair],
    params: GenerationParams,
    progress: Progress,
) -> list[str]:
    """A short written critique for each pair (callers pass only the weakest pairs)."""
    out: dict[int, str] = {}
    for indices in _by_output(pairs).values():
        first = pairs[indices[0]]
        replies = backend.generate(
            [rationale_turn(pairs[i].principle) for i in indices],
            params,
            shared_prefix=judge_prefix(constitution, first.task, first.response),
        )
        out.update(zip(indices, replies, strict=True))
        progress.advance(len(indices))
    return [" ".join(out[i].split())[:600] or "(no rationale)" for i in range(len(pairs))]
