"""Paired evidence: is a candidate revision better than the head, or is it the judge's noise?

Head and candidate answer the SAME held-out tasks and every answer is judged against the same
principles, so each task gives one paired difference (candidate minus head): of the mean over
principles overall, and of each principle's score. Tasks are the unit of replication.

- effect: the mean paired difference over tasks.
- 95% CI: paired bootstrap over tasks (seeded, deterministic). Each resampled mean is jittered
  by the judge's own noise: a judgment is the mean of its paraphrased questions, and its
  `spread` (largest minus smallest paraphrase score) gives its SD as spread / 2 (exact for two
  paraphrases, conservative for three). The noise of one answer's judgments is taken as fully
  correlated across principles (one judge, one answer: they move together, as in a drift).
  The bootstrap already sees the noise that varies between tasks; the jitter counts it again,
  so an effect that rephrasing the question could produce does not clear zero. Conservative
  by design. Bootstrap deviations are scaled by sqrt(n / (n - 1)) * t(n - 1) / z, the
  small-sample correction that brings the percentile interval's coverage to its nominal 95%
  at 6-20 tasks (a plain percentile bootstrap covers about 90% there).
- p-value: two-sided paired sign-flip permutation test over tasks (under "no effect" each
  difference is as likely negative as positive): exact over all 2^n sign patterns up to 24
  tasks, else a seeded Monte Carlo of 10,000 draws. It is a valid test at any n; with n tasks the
  smallest attainable p is 2 / 2^n, so fewer than 6 tasks can never reach p < 0.05.
- minimum detectable effect: (z(1 - alpha/2) + z(power)) * sqrt((sd^2 + judge var) / n), a
  normal approximation with the observed paired SD; a warning says when the configured
  minimum effect is below it (the held-out set is too small to detect it).
- uniform drift: every principle's mean moved the same way by similar amounts. A real change
  to one principle does not lift unrelated ones in lockstep; the critic's drift does.

`decide` turns a comparison into the gate's outcome (see its docstring for the rule).
Pure: no model, no database, no torch; the same inputs and seed give the same figures.
"""

from __future__ import annotations

import bisect
import math
import random
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from principles import GateOutcome, GateRule

BOOTSTRAP_DRAWS = 2000
PERMUTATION_DRAWS = 10_000
MAX_EXACT_TASKS = 24
CHUNK = 12
POWER = 0.8
DRIFT_MIN_PRINCIPLES = 3
DRIFT_MIN_MOVE = 0.01


@dataclass(frozen=True)
class Scored:
    """One judgment of one answer: its score and its paraphrase spread."""

    task: str
    principle: str
    score: float
    spread: float = 0.0


class Effect(BaseModel):
    """A paired effect over `n` tasks (candidate minus head) with its uncertainty."""

    model_config = ConfigDict(frozen=True)

    effect: float
    ci: tuple[float, float]
    p_value: float
    n: int
    sd: float
    judge_sd: float

    def gain(self, alpha: float) -> bool:
        """Significantly positive: p < alpha and the whole CI above zero."""
        return self.p_value < alpha and self.ci[0] > 0

    def loss(self, alpha: float) -> bool:
        """Significantly negative: p < alpha and the whole CI below zero."""
        return self.p_value < alpha and self.ci[1] < 0


class Comparison(BaseModel):
    """Head against candidate on the same tasks: overall, per principle, and warnings."""

    model_config = ConfigDict(frozen=True)

    overall: Effect
    per_principle: dict[str, Effect]
    alpha: float
    min_effect: float
    min_detectable_effect: float | None
    uniform_drift: bool
    warnings: tuple[str, ...] = ()


class GateDecision(BaseModel):
    """The gate's outcome for one candidate, why, and the entrenched principles it hurt."""

    model_config = ConfigDict(frozen=True)

    outcome: GateOutcome
    reason: str
    entrenched_regressions: dict[str, float] = Field(default_factory=dict)


def _round(x: float) -> float:
    return round(x, 6)


def _subset_sums(xs: Sequence[float]) -> list[float]:
    """Sums of every subset of xs, indexed by its bit mask (bit i set: xs[i] included)."""
    sums = [0.0]
    for x in xs:
        sums += [s + x for s in sums]
    return sums


def permutation_p(
    diffs: Sequence[float], *, seed: str = "", draws: int = PERMUTATION_DRAWS
) -> float:
    """Two-sided p of the mean paired difference under random sign flips.

    A sign pattern's statistic is 2 * (sum of the kept differences) - total; exact by meeting
    in the middle (two tables of subset sums) up to MAX_EXACT_TASKS tasks, else a seeded
    Monte Carlo over tables of CHUNK tasks, with p = (hits + 1) / (draws + 1)."""
    n = len(diffs)
    total = sum(diffs)
    observed = abs(total)
    bound = observed - 1e-9 * max(1.0, observed)
    if n == 0 or bound <= 0:
        return 1.0
    if n <= MAX_EXACT_TASKS:
        low = _subset_sums(diffs[: n // 2])
        high = sorted(_subset_sums(diffs[n // 2 :]))
        up, down = (total + bound) / 2, (total - bound) / 2
        hits = sum(
            len(high) - bisect.bisect_left(high, up - a) + bisect.bisect_right(high, down - a)
            for a in low
        )
        return hits / 2**n
    tables = [_subset_sums(diffs[i : i + CHUNK]) for i in range(0, n, CHUNK)]
    mask = (1 << CHUNK) - 1
    rng = random.Random(f"perm:{seed}")
    hits = 0
    for _ in range(draws):
        bits = rng.getrandbits(n)
        kept = sum(t[(bits >> (CHUNK * c)) & mask] for c, t in enumerate(tables))
        hits += abs(2 * kept - total) >= bound
    return (hits + 1) / (draws + 1)


def bootstrap_ci(
    diffs: Sequence[float],
    noise_sd: Sequence[float],
    *,
    seed: str = "",
    draws: int = BOOTSTRAP_DRAWS,
) -> tuple[float, float]:
    """95% percentile CI of the mean difference: tasks resampled, judge noise added."""
    n = len(diffs)
    if n < 2:
        return (-1.0, 1.0)
    mean = sum(diffs) / n
    scale = math.sqrt(n / (n - 1)) * _t_quantile(0.975, n - 1) / _Z.inv_cdf(0.975)
    rows = list(zip(diffs, (s * s for s in noise_sd), strict=True))
    rng = random.Random(f"boot:{seed}")
    means = []
    for _ in range(draws):
        drawn = rng.choices(rows, k=n)
        m = sum(d for d, _ in drawn) / n
        var = sum(v for _, v in drawn) / (n * n)
        means.append(mean + (m - mean) * scale + (rng.gauss(0.0, math.sqrt(var)) if var else 0.0))
    cuts = statistics.quantiles(means, n=40, method="inclusive")
    return (cuts[0], cuts[-1])


_Z = statistics.NormalDist()


def _t_quantile(q: float, df: int) -> float:
    """Student's t quantile (Cornish-Fisher expansion: within 1% for df >= 3)."""
    z = _Z.inv_cdf(q)
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def paired_effect(diffs: Sequence[float], noise_sd: Sequence[float], *, seed: str = "") -> Effect:
    """Effect, CI and p of paired differences with their per-task judge-noise SDs."""
    n = len(diffs)
    lo, hi = bootstrap_ci(diffs, noise_sd, seed=seed)
    return Effect(
        effect=_round(sum(diffs) / n) if n else 0.0,
        ci=(_round(lo), _round(hi)),
        p_value=_round(permutation_p(diffs, seed=seed)),
        n=n,
        sd=_round(statistics.stdev(diffs)) if n >= 2 else 0.0,
        judge_sd=_round(math.sqrt(sum(s * s for s in noise_sd) / n)) if n else 0.0,
    )


def smallest_testable_n(alpha: float) -> int:
    """Fewest tasks with which the sign-flip test can reach p < alpha at all."""
    return math.floor(math.log2(2 / alpha)) + 1


def untestable(n: int, alpha: float) -> str:
    """The warning for a held-out set of n tasks too small for any result to reach alpha."""
    return (
        f"held-out set too small: with {n} task(s) no result can reach p < {alpha:g} (the "
        f"smallest possible p-value is {min(1.0, 2 / 2**n):.3f}); use at least "
        f"{smallest_testable_n(alpha)} held-out tasks"
    )


def min_detectable_effect(n: int, sd: float, alpha: float, power: float = POWER) -> float | None:
    """Approximate effect found with `power` at `alpha` by n tasks of paired SD `sd`;
    None when n tasks cannot reach p < alpha whatever the effect."""
    if n < smallest_testable_n(alpha):
        return None
    z = statistics.NormalDist()
    return (z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)) * sd / math.sqrt(n)


def uniform_drift(effects: Mapping[str, float]) -> bool:
    """Every principle (at least three) moved the same way, the largest move at most twice
    the smallest and the smallest at least DRIFT_MIN_MOVE: a lockstep shift, not a change."""
    moves = list(effects.values())
    if len(moves) < DRIFT_MIN_PRINCIPLES:
        return False
    if not (all(m > 0 for m in moves) or all(m < 0 for m in moves)):
        return False
    small, large = min(abs(m) for m in moves), max(abs(m) for m in moves)
    return small >= DRIFT_MIN_MOVE and large <= 2 * small


def _tasks(rows: Sequence[Scored]) -> dict[str, dict[str, Scored]]:
    by: dict[str, dict[str, Scored]] = defaultdict(dict)
    for r in rows:
        by[r.task][r.principle] = r
    return by


def _answer_noise(rows: Sequence[Scored]) -> float:
    return sum(r.spread for r in rows) / (2 * len(rows))


def _warnings(
    overall: Effect, mde: float | None, drift: bool, effects: Mapping[str, float], rule: GateRule
) -> list[str]:
    out = []
    n, alpha = overall.n, rule.alpha
    if mde is None:
        out.append(untestable(n, alpha))
    elif mde > rule.min_effect:
        z = statistics.NormalDist()
        total_sd = math.sqrt(overall.sd**2 + overall.judge_sd**2)
        needed = math.ceil(
            ((z.inv_cdf(1 - alpha / 2) + z.inv_cdf(POWER)) * total_sd / rule.min_effect) ** 2
        )
        out.append(
            f"held-out set too small to detect an effect of {rule.min_effect:.3f}: with {n} "
            f"tasks the minimum detectable effect is {mde:.3f} ({POWER:.0%} power, alpha "
            f"{alpha:g}); about {max(needed, smallest_testable_n(alpha))} tasks would be needed"
        )
    if drift:
        way = "up" if overall.effect > 0 else "down"
        out.append(
            f"uniform drift: every principle's mean moved {way} by "
            f"{min(effects.values()):+.3f} to {max(effects.values()):+.3f}: the critic's "
            "drift, not an improvement"
        )
    if overall.p_value < alpha and not (overall.ci[0] > 0 or overall.ci[1] < 0):
        out.append("the effect is consistent across tasks but within the judge's paraphrase noise")
    return out


def compare(
    head: Sequence[Scored], candidate: Sequence[Scored], *, rule: GateRule, seed: str = ""
) -> Comparison:
    """Paired comparison over the tasks and principles that both sides judged."""
    h, c = _tasks(head), _tasks(candidate)
    tasks = sorted(set(h) & set(c))
    diffs: list[float] = []
    noise: list[float] = []
    by_principle: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for t in tasks:
        shared = sorted(set(h[t]) & set(c[t]))
        if not shared:
            continue
        hs, cs = [h[t][p] for p in shared], [c[t][p] for p in shared]
        diffs.append(sum(x.score for x in cs) / len(cs) - sum(x.score for x in hs) / len(hs))
        noise.append(math.hypot(_answer_noise(hs), _answer_noise(cs)))
        for a, b in zip(hs, cs, strict=True):
            d, s = by_principle[a.principle]
            d.append(b.score - a.score)
            s.append(math.hypot(a.spread, b.spread) / 2)
    overall = paired_effect(diffs, noise, seed=seed)
    per = {p: paired_effect(d, s, seed=f"{seed}:{p}") for p, (d, s) in sorted(by_principle.items())}
    total_sd = math.sqrt(overall.sd**2 + overall.judge_sd**2)
    mde = min_detectable_effect(overall.n, total_sd, rule.alpha)
    effects = {p: e.effect for p, e in per.items()}
    drift = uniform_drift(effects)
    return Comparison(
        overall=overall,
        per_principle=per,
        alpha=rule.alpha,
        min_effect=rule.min_effect,
        min_detectable_effect=None if mde is None else _round(mde),
        uniform_drift=drift,
        warnings=tuple(_warnings(overall, mde, drift, effects, rule)),
    )


def decide(comparison: Comparison, entrenched: set[str], rule: GateRule) -> GateDecision:
    """The gate's outcome, a closed set:

    - regressed: the overall effect is significantly negative, or an entrenched principle
      regressed: its effect is significantly negative (p < alpha, CI below zero) and it fell
      by at least `entrenched_tolerance`;
    - passed: otherwise, the overall effect is significantly positive (p < alpha, CI above
      zero) and not a uniform drift of every principle;
    - inconclusive: everything else.
    """
    alpha = rule.alpha
    overall = comparison.overall
    regressions = {
        p: e.effect
        for p, e in sorted(comparison.per_principle.items())
        if p in entrenched and e.loss(alpha) and e.effect <= -rule.entrenched_tolerance
    }
    figures = f"effect {overall.effect:+.4f}, 95% CI [{overall.ci[0]:+.4f}, {overall.ci[1]:+.4f}]"
    figures += f", p = {overall.p_value:.3f}, n = {overall.n}"
    if overall.loss(alpha):
        return GateDecision(
            outcome="regressed", reason=f"worse: {figures}", entrenched_regressions=regressions
        )
    if regressions:
        named = ", ".join(f"{p} {e:+.3f}" for p, e in regressions.items())
        return GateDecision(
            outcome="regressed",
            reason=f"entrenched principles regressed: {named}",
            entrenched_regressions=regressions,
        )
    if overall.gain(alpha) and not comparison.uniform_drift:
        return GateDecision(outcome="passed", reason=f"better: {figures}")
    why = "uniform drift of every principle" if overall.gain(alpha) else "not significant"
    return GateDecision(outcome="inconclusive", reason=f"{why}: {figures}")
