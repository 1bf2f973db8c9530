"""The gate's statistics on synthetic paired scores: power, false accepts, coverage, warnings."""

from __future__ import annotations

import itertools
import random

import pytest

from agent._significance import (
    Scored,
    compare,
    decide,
    min_detectable_effect,
    paired_effect,
    permutation_p,
    uniform_drift,
)
from principles import Evaluation, GateRule, RunConfig

RULE = GateRule()
PRINCIPLES = ("clarity", "honesty", "privacy", "fairness")


def scores(
    rng: random.Random,
    n: int,
    effect: dict[str, float],
    *,
    noise: float = 0.08,
    spread: float = 0.05,
) -> tuple[list[Scored], list[Scored]]:
    """Head and candidate judged on the same n tasks; each task has its own difficulty."""
    head, cand = [], []
    for t in range(n):
        level = rng.uniform(0.3, 0.7)
        for p in PRINCIPLES:
            head.append(Scored(f"t{t}", p, level + rng.gauss(0, noise), spread))
            cand.append(
                Scored(f"t{t}", p, level + effect.get(p, 0.0) + rng.gauss(0, noise), spread)
            )
    return head, cand


def test_the_exact_permutation_test_counts_every_sign_pattern() -> None:
    rng = random.Random(3)
    for n in range(1, 11):
        diffs = [round(rng.gauss(0.03, 0.1), 2) for _ in range(n)]
        total = abs(sum(diffs))
        patterns = list(itertools.product((1, -1), repeat=n))
        hits = sum(
            abs(sum(s * d for s, d in zip(p, diffs, strict=True))) >= total - 1e-9 for p in patterns
        )
        assert permutation_p(diffs) == pytest.approx(hits / len(patterns))


def test_no_difference_at_all_is_p_one_and_large_sets_use_a_seeded_monte_carlo() -> None:
    assert permutation_p([0.0] * 8) == 1.0
    diffs = [0.1] * 30
    assert permutation_p(diffs, seed="x") == permutation_p(diffs, seed="x") == 1 / 10_001


def test_a_real_effect_on_one_principle_is_detected_and_passes() -> None:
    head, cand = scores(random.Random(1), 12, {"clarity": 0.3})
    result = compare(head, cand, rule=RULE, seed="s")
    assert result.overall.n == 12
    assert result.overall.p_value < 0.05 and 0 < result.overall.ci[0] < result.overall.ci[1]
    assert result.per_principle["clarity"].gain(RULE.alpha)
    assert not result.uniform_drift
    assert decide(result, {"honesty"}, RULE).outcome == "passed"


def test_the_same_inputs_and_seed_give_the_same_figures() -> None:
    head, cand = scores(random.Random(2), 10, {"clarity": 0.1})
    assert compare(head, cand, rule=RULE, seed="a") == compare(head, cand, rule=RULE, seed="a")


def test_null_candidates_are_falsely_accepted_at_most_seven_percent_of_the_time() -> None:
    """400 seeded trials with no true effect, n = 8..20 tasks, noisy judgments."""
    rng = random.Random(20261126)
    accepted = 0
    trials = 400
    for trial in range(trials):
        n = rng.randint(8, 20)
        noise = [rng.uniform(0.0, 0.05) for _ in range(n)]
        diffs = [rng.gauss(0.0, rng.choice((0.05, 0.1, 0.2))) for _ in range(n)]
        effect = paired_effect(diffs, noise, seed=str(trial))
        accepted += effect.gain(RULE.alpha)
    assert accepted / trials <= 0.07


def test_the_ci_covers_the_true_effect_in_most_trials() -> None:
    rng = random.Random(7)
    covered = 0
    trials = 200
    for trial in range(trials):
        n = rng.randint(8, 20)
        diffs = [0.05 + rng.gauss(0.0, 0.1) for _ in range(n)]
        low, high = paired_effect(diffs, [0.0] * n, seed=str(trial)).ci
        covered += low <= 0.05 <= high
    assert covered / trials >= 0.9


def test_paraphrase_spread_counts_as_judge_noise() -> None:
    diffs = [0.03, 0.035, 0.025, 0.03, 0.028, 0.032, 0.031, 0.029]
    quiet = paired_effect(diffs, [0.0] * 8, seed="n")
    noisy = paired_effect(diffs, [0.1] * 8, seed="n")
    assert quiet.p_value == noisy.p_value < 0.05  # consistent across tasks ...
    assert quiet.gain(0.05) and not noisy.gain(0.05)  # ... but within the judge's noise
    assert noisy.ci[0] < 0 < noisy.ci[1] and noisy.judge_sd == pytest.approx(0.1)


def test_every_principle_moving_in_lockstep_is_flagged_as_drift() -> None:
    assert uniform_drift({"a": 0.025, "b": 0.043, "c": 0.031, "d": 0.04})
    assert not uniform_drift({"a": 0.2, "b": 0.01, "c": 0.02})  # one principle carries it
    assert not uniform_drift({"a": 0.03, "b": -0.01, "c": 0.03})  # not the same way
    assert not uniform_drift({"a": 0.03, "b": 0.03})  # too few principles to tell
    shift = dict.fromkeys(PRINCIPLES, 0.1)
    head, cand = scores(random.Random(4), 16, shift, noise=0.005, spread=0.0)
    result = compare(head, cand, rule=RULE)
    assert result.uniform_drift and result.overall.gain(RULE.alpha)
    assert any("uniform drift" in w for w in result.warnings)
    decision = decide(result, set(), RULE)
    assert decision.outcome == "inconclusive" and "drift" in decision.reason


def test_a_significant_entrenched_regression_outweighs_an_overall_gain() -> None:
    head, cand = scores(random.Random(5), 10, {"clarity": 0.5, "honesty": -0.2}, noise=0.02)
    result = compare(head, cand, rule=RULE)
    assert result.overall.gain(RULE.alpha)
    decision = decide(result, {"honesty"}, RULE)
    assert decision.outcome == "regressed" and "honesty" in decision.entrenched_regressions
    assert decide(result, set(), RULE).outcome == "passed"  # not entrenched: allowed


def test_a_significant_overall_loss_is_a_regression() -> None:
    head, cand = scores(random.Random(6), 10, dict.fromkeys(PRINCIPLES, -0.1))
    assert decide(compare(head, cand, rule=RULE), set(), RULE).outcome == "regressed"


def test_too_small_held_out_sets_are_named_in_warnings() -> None:
    head, cand = scores(random.Random(8), 4, {"clarity": 0.4})
    result = compare(head, cand, rule=RULE)
    assert result.min_detectable_effect is None and result.overall.p_value >= 0.125
    assert "no result can reach p < 0.05" in result.warnings[0]
    assert decide(result, set(), RULE).outcome == "inconclusive"
    head, cand = scores(random.Random(9), 8, {"clarity": 0.4}, noise=0.2)
    result = compare(head, cand, rule=GateRule(min_effect=0.01))
    assert "too small to detect an effect of 0.010" in result.warnings[0]
    assert min_detectable_effect(8, 0.1, 0.05) == pytest.approx(0.099, abs=0.001)
    assert min_detectable_effect(100, 0.1, 0.05) < min_detectable_effect(8, 0.1, 0.05)  # type: ignore[operator]


def test_evaluations_and_run_configs_stored_before_outcomes_still_load() -> None:
    old = Evaluation.model_validate_json('{"before": 0.5, "after": 0.6, "passed": true}')
    assert old.outcome == "passed"
    failed = Evaluation.model_validate_json(
        '{"before": 0.5, "after": 0.4, "passed": false, "details": {"reason": "x"}}'
    )
    assert failed.outcome == "inconclusive"
    hurt = Evaluation.model_validate(
        {
            "before": 0.5,
            "after": 0.6,
            "passed": False,
            "details": {"entrenched_regressions": {"honesty": 0.1}},
        }
    )
    assert hurt.outcome == "regressed"
    with pytest.raises(ValueError, match="contradicts"):
        Evaluation(before=0.5, after=0.6, passed=True, outcome="inconclusive")
    config = RunConfig.model_validate_json(
        '{"gate": {"min_improvement": 0.02, "entrenched_tolerance": 0.03}}'
    )
    assert config.gate == GateRule(min_effect=0.02, entrenched_tolerance=0.03)
    assert RunConfig.model_validate_json('{"gate": {"min_improvement": 0.0}}').gate == GateRule()
