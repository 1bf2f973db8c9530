"""The critic: scores every (output, principle) pair in [0, 1] by answer-option scoring.

For each pair the judge is asked, in `paraphrases` wordings, whether the response follows
the principle; the options Yes / No / NA are scored in one batched call per output, whose
shared prefix is the constitution followed by the exchange (see `judge_prefix`).
raw score = P(Yes) / (P(Yes) + P(No)), relevance = 1 - P(NA), spread = the largest
disagreement between wordings. Where the judge's calibration has a head for a principle
(`agent._calibration`), the score is the head's, read from the same forward pass (hidden
states) plus the exchange's request-response mutual information; elsewhere the raw score
stands. Written rationales are generated only for the lowest-scoring pairs below the
threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from agent._calibration import Calibrator, raw_logit
from agent._progress import Progress
from agent._prompts import JUDGE_OPTIONS, judge_prefix, judge_turn, rationale_turn
from agent.models import Backend, FeatureBackend, GenerationParams, exposes_features
from principles import Principle, Task


@dataclass(frozen=True)
class Pair:
    task: Task
    response: str
    principle: Principle


@dataclass(frozen=True)
class Judgment:
    """`score` is what the loop acts on: calibrated where the calibration has a head for
    the principle (`calibrated`), else the raw P(Yes)/(P(Yes)+P(No)), which is `raw`."""

    score: float
    relevance: float
    spread: float
    raw: float = 0.5
    calibrated: bool = False


@dataclass(frozen=True)
class Observation:
    """What the judge model gave for one pair, per paraphrased question: option
    log-probabilities (Yes, No, NA) and, when asked for, hidden-state features."""

    logprobs: list[list[float]]
    features: list[list[float]]
    request_pmi: float = 0.0

    def raw_scores(self) -> list[float]:
        out = []
        for row in self.logprobs:
            yes, no, _ = _probabilities(row)
            out.append(yes / (yes + no) if yes + no > 0 else 0.5)
        return out

    def relevance(self) -> float:
        return sum(1.0 - _probabilities(row)[2] for row in self.logprobs) / len(self.logprobs)


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


def observe(
    backend: Backend,
    constitution: Sequence[Principle],
    pairs: Sequence[Pair],
    paraphrases: int,
    progress: Progress,
    *,
    layer: int | None = None,
) -> list[Observation]:
    """The judge model's raw figures per pair, in order: one batched scoring call per
    judged output; with `layer`, the hidden states of that layer and the exchange's
    request-response mutual information (`FeatureBackend.relevance`) too."""
    out: dict[int, Observation] = {}
    for indices in _by_output(pairs).values():
        first = pairs[indices[0]]
        prompts = [judge_turn(pairs[i].principle, k) for i in indices for k in range(paraphrases)]
        prefix = judge_prefix(constitution, first.task, first.response)
        pmi = 0.0
        if layer is None:
            rows = backend.score_options(prompts, JUDGE_OPTIONS, shared_prefix=prefix)
            features: list[list[float]] = [[] for _ in rows]
        else:
            featured = cast(FeatureBackend, backend)
            scored = featured.score_with_features(
                prompts, JUDGE_OPTIONS, shared_prefix=prefix, layer=layer
            )
            rows, features = [s.logprobs for s in scored], [s.features for s in scored]
            [pmi] = featured.relevance([(first.task.prompt, first.response)])
        for n, i in enumerate(indices):
            span = slice(n * paraphrases, (n + 1) * paraphrases)
            out[i] = Observation(rows[span], features[span], pmi)
        progress.advance(len(prompts))
    return [out[i] for i in range(len(pairs))]


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def feature_rows(seen: Observation, method: str) -> list[list[float]]:
    """What a calibration's head reads, one row per paraphrase: `platt` the raw log-odds;
    `probe` the request-response mutual information and the raw log-odds (the summary),
    then the hidden state."""
    odds = [raw_logit(r) for r in seen.raw_scores()]
    if method == "platt":
        return [[o] for o in odds]
    return [[seen.request_pmi, o, *f] for o, f in zip(odds, seen.features, strict=True)]


def combine(principle_id: str, seen: Observation, calibrator: Calibrator | None) -> Judgment:
    """One judgment from one pair's observation: the mean over paraphrases, calibrated
    where `calibrator` has a head for the principle; spread = the paraphrases' range."""
    raw = seen.raw_scores()
    scores = raw
    calibrated = calibrator is not None and calibrator.covers(principle_id)
    if calibrator is not None and calibrated:
        scores = calibrator.scores(principle_id, feature_rows(seen, calibrator.method))
    return Judgment(
        score=_clip(sum(scores) / len(scores)),
        relevance=_clip(seen.relevance()),
        spread=_clip(max(scores) - min(scores)),
        raw=_clip(sum(raw) / len(raw)),
        calibrated=calibrated,
    )


def judge(
    backend: Backend,
    constitution: Sequence[Principle],
    pairs: Sequence[Pair],
    paraphrases: int,
    progress: Progress,
    calibrator: Calibrator | None = None,
) -> list[Judgment]:
    """One judgment per pair, in order; one batched scoring call per judged output.

    A calibration that reads hidden states applies only where the backend exposes them;
    elsewhere the raw scores stand (and say so: `calibrated` is False).
    """
    if calibrator is not None and calibrator.needs_features and not exposes_features(backend):
        calibrator = None
    wanted = calibrator is not None and any(calibrator.covers(p.principle.id) for p in pairs)
    layer = (
        calibrator.layer
        if calibrator is not None and wanted and calibrator.needs_features
        else None
    )
    seen = observe(backend, constitution, pairs, paraphrases, progress, layer=layer)
    return [combine(p.principle.id, o, calibrator) for p, o in zip(pairs, seen, strict=True)]


def lowest(judgments: Sequence[Judgment], threshold: float, limit: int) -> list[int]:
    """The indexes of the judgments below `threshold`, lowest score first, at most `limit`:
    the ones worth a written rationale."""
    below = (i for i, j in enumerate(judgments) if j.score < threshold)
    return sorted(below, key=lambda i: (judgments[i].score, i))[:limit]


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
