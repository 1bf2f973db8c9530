"""Per-principle statistics over an iteration's critiques (pure)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from itertools import combinations

from principles import Aggregate, Critique, PrincipleConflict, PrincipleStats

AMBIGUOUS_BAND = 0.15
DISAGREEMENT = 0.3
CONFLICT_CORRELATION = -0.5
REDUNDANT_CORRELATION = 0.95
MIN_SHARED_OUTPUTS = 4


def _pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    vx = sum((x - mx) ** 2 for x in xs)
    vy = sum((y - my) ** 2 for y in ys)
    if vx < 1e-12 or vy < 1e-12:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / math.sqrt(vx * vy)


def aggregate(
    critiques: Sequence[Critique], principle_ids: Sequence[str], threshold: float
) -> Aggregate:
    """Violation rate, ambiguity (scores near 0.5 or judges disagreeing), relevance, and
    pairs of principles that conflict or are redundant across the same outputs."""
    by_principle: dict[str, list[Critique]] = defaultdict(list)
    by_output: dict[int, dict[str, float]] = defaultdict(dict)
    for c in critiques:
        by_principle[c.principle_id].append(c)
        by_output[c.output_id][c.principle_id] = c.score
    stats = {}
    for pid in principle_ids:
        cs = by_principle.get(pid, [])
        n = len(cs)
        stats[pid] = PrincipleStats(
            principle_id=pid,
            judged=n,
            mean=sum(c.score for c in cs) / n if n else 0.0,
            violation_rate=sum(c.score < threshold for c in cs) / n if n else 0.0,
            ambiguity=(
                sum(abs(c.score - 0.5) < AMBIGUOUS_BAND or c.spread > DISAGREEMENT for c in cs) / n
                if n
                else 0.0
            ),
            relevance=sum(c.relevance for c in cs) / n if n else 0.0,
            spread=sum(c.spread for c in cs) / n if n else 0.0,
        )
    conflicts, redundant = [], []
    for a, b in combinations(sorted(principle_ids), 2):
        shared = [(s[a], s[b]) for s in by_output.values() if a in s and b in s]
        if len(shared) < MIN_SHARED_OUTPUTS:
            continue
        r = _pearson([x for x, _ in shared], [y for _, y in shared])
        if r is None:
            continue
        pair = PrincipleConflict(a=a, b=b, correlation=round(r, 4), outputs=len(shared))
        if r <= CONFLICT_CORRELATION:
            conflicts.append(pair)
        elif r >= REDUNDANT_CORRELATION:
            redundant.append(pair)
    scores = [c.score for c in critiques]
    return Aggregate(
        mean=sum(scores) / len(scores) if scores else 0.0,
        per_principle=stats,
        conflicts=tuple(conflicts),
        redundant=tuple(redundant),
    )
