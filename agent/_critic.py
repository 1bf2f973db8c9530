"""The critic: scores every (output, principle) pair in [0, 1] by answer-option scoring.

For each pair the judge is asked, in `paraphrases` wordings, whether the response follows
the principle; the options Yes / No / N/A are scored in one batched call per chunk, all
sharing the constitution as a cached prefix. score = P(Yes) / (P(Yes) + P(No)),
relevance = 1 - P(N/A), spread = the largest disagreement between wordings. Written
rationales are generated only for the lowest-scoring pairs below the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from agent._progress import Progress
from agent._prompts import JUDGE_OPTIONS, judge_prefix, judge_turn, rationale_turn
from agent.models import Backend, GenerationParams
from principles import Principle, Task

BATCH = 32


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


def judge(
    backend: Backend,
    constitution: Sequence[Principle],
    pairs: Sequence[Pair],
    paraphrases: int,
    progress: Progress,
) -> list[Judgment]:
    """One judgment per pair, in order."""
    prefix = judge_prefix(constitution)
    prompts = [
        judge_turn(p.task, p.response, p.principle, k) for p in pairs for k in range(paraphrases)
    ]
    rows: list[list[float]] = []
    for start in range(0, len(prompts), BATCH):
        chunk = prompts[start : start + BATCH]
        rows += backend.score_options(chunk, JUDGE_OPTIONS, shared_prefix=prefix)
        progress.advance(len(chunk))
    judgments = []
    for i in range(len(pairs)):
        scores, relevances = [], []
        for row in rows[i * paraphrases : (i + 1) * paraphrases]:
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
    if not pairs:
        return []
    prefix = judge_prefix(constitution)
    out: list[str] = []
    for start in range(0, len(pairs), 8):
        chunk = pairs[start : start + 8]
        out += backend.generate(
            [rationale_turn(p.task, p.response, p.principle) for p in chunk],
            params,
            shared_prefix=prefix,
        )
        progress.advance(len(chunk))
    return [" ".join(r.split())[:600] or "(no rationale)" for r in out]
