"""Bias probes in the refinement loop.

The loop reads the newest stored probe run (`charter probe bias`) measured under the head
revision or an earlier one:
- its significant gaps in the agent's behaviour (not the critic's own: those are the
  judge's) are evidence for the proposer, which drafts a revision of `fairness`, or a new
  principle where the constitution has none (`agent._proposer`);
- the gate measures those gaps again under the head and under each candidate on the same
  variants (the suite's first templates, as many as the run had, only the attributes and
  template kinds the gaps need), and asks whether the candidate widens any of them
  (`agent._bias.widening`: paired permutation p-value, Holm-corrected over the gaps
  checked; widened when significant, its CI above zero and at least the gate's
  `bias_tolerance`). The critic's scores are taken on the head's principles, never the candidate's.
  `RunConfig.bias` chooses the gaps: `flagged` (the default), `all` measured, or `off`.
A candidate that widens a gap is flagged with a warning in review mode and
rejected in autonomous mode (`agent._steps.step_decide`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent._bias import Measured, critic_principles, measure_agent, widening
from agent._calibration import Calibrator
from agent._probes import GENERATED, Suite, Variant, load_suite, variants
from agent._progress import Progress
from agent._prompts import bias_finding
from agent.models import Backend, GenerationParams
from principles import BiasCheck, InvalidInput, Principle, ProbeRun

DECISION_METRICS = frozenset({"p_yes", "decision_yes"})
ANSWER_METRICS = frozenset({"refusal", "length", "critic_score"})


@dataclass(frozen=True)
class Findings:
    """The gaps of one stored probe run that the loop acts on (agent rows only)."""

    run: ProbeRun
    gaps: tuple[dict[str, Any], ...]

    @property
    def ref(self) -> str:
        """The evidence id of the probe run (`probe:ID`)."""
        return f"probe:{self.run.id}"

    def in_words(self) -> list[str]:
        """Each gap described for the model, without figures (`bias_finding`)."""
        return [
            bias_finding(g["attribute"], g["metric"], g["lowest"], g["highest"]) for g in self.gaps
        ]

    def figures(self) -> str:
        """The gaps with their figures, for an amendment's rationale."""
        shown = "; ".join(figure(g) for g in self.gaps[:3])
        more = f"; and {len(self.gaps) - 3} more" if len(self.gaps) > 3 else ""
        return (
            f"bias probe run {self.run.id} (revision {self.run.revision}, {self.run.model}) "
            f"found {shown}{more}"
        )


def figure(gap: dict[str, Any]) -> str:
    """One gap as `religion refusal: muslim 1.000 vs christian 0.000, gap 1.000 [0.950,
    1.000], p (Holm) 0.0020`."""
    low, high = gap["lowest"], gap["highest"]
    lo, hi = gap["gap_ci"]
    return (
        f"{gap['attribute']} {gap['metric']}: {high} {gap['groups'][high]:.3f} vs {low} "
        f"{gap['groups'][low]:.3f}, gap {gap['gap']:.3f} [{lo:.3f}, {hi:.3f}], "
        f"p (Holm) {gap['p_adjusted']:.4f}"
    )


def newest(runs: Sequence[ProbeRun], revision: int) -> ProbeRun | None:
    """The newest of `runs` (oldest first) measured under `revision` or an earlier one."""
    under = [r for r in runs if r.revision <= revision]
    return under[-1] if under else None


def findings(run: ProbeRun | None, which: BiasCheck) -> Findings | None:
    """The agent's gaps in `run` the loop acts on: the significant ones (`flagged`) or all
    (`all`); None when there are none, or `which` is `off`."""
    if run is None or which == "off":
        return None
    gaps = tuple(
        g
        for g in run.report.get("gaps", [])
        if g.get("source") == "agent" and (which == "all" or g.get("significant"))
    )
    return Findings(run, gaps) if gaps else None


def flagged(found: Findings | None) -> Findings | None:
    """Only the significant gaps of `found` (the proposer's evidence)."""
    if found is None:
        return None
    gaps = tuple(g for g in found.gaps if g.get("significant"))
    return Findings(found.run, gaps) if gaps else None


@dataclass(frozen=True)
class BiasPlan:
    """What the gate measures again: the variants, and the gaps to compare."""

    found: Findings
    suite: Suite
    variants: list[Variant]
    keys: frozenset[tuple[str, str]]

    @property
    def answered(self) -> int:
        """Variants the actor answers per constitution (for progress)."""
        return sum(v.template.kind in GENERATED for v in self.variants)


def plan(found: Findings | None) -> tuple[BiasPlan | None, str | None]:
    """The gate's re-measurement of `found`, or None with why it cannot be made (a suite
    that no longer loads)."""
    if found is None:
        return None, None
    try:
        suite = load_suite(found.run.suite)
    except InvalidInput as exc:
        return None, f"bias check skipped: probe run {found.run.id}'s suite: {exc}"
    keys = frozenset((g["attribute"], g["metric"]) for g in found.gaps)
    attributes = {a for a, _ in keys}
    metrics = {m for _, m in keys}
    kinds = {"decision"} if metrics & DECISION_METRICS else set()
    if metrics & ANSWER_METRICS:
        kinds |= set(GENERATED)
    chosen = [
        v
        for v in variants(suite, found.run.templates)
        if v.attribute in attributes and v.template.kind in kinds
    ]
    if not chosen:
        return None, f"bias check skipped: probe run {found.run.id}'s gaps match no variant"
    return BiasPlan(found, suite, chosen, keys), None


def check(
    backend: Backend,
    head: Sequence[Principle],
    candidates: Sequence[tuple[int, Sequence[Principle]]],
    bias: BiasPlan,
    *,
    alpha: float,
    tolerance: float,
    params: GenerationParams,
    progress: Progress,
    calibrator: Calibrator | None = None,
) -> dict[int, dict[str, Any]]:
    """Per candidate, the gaps of `bias` measured under the head and under the candidate,
    and which it widens (`agent._bias.widening`; `Evaluation.details["bias"]`)."""
    metrics = {m for _, m in bias.keys}
    judged_by = critic_principles(head) if "critic_score" in metrics else []
    progress.message(
        f"bias check: {len(bias.variants)} variants of probe run {bias.found.run.id}, under "
        f"the head and {len(candidates)} candidate(s)"
    )
    quiet = _Counting(progress)

    def measure(principles: Sequence[Principle]) -> list[Measured]:
        measured, _ = measure_agent(
            backend,
            principles,
            bias.variants,
            params=params,
            judged_by=judged_by,
            judge_context=head,
            calibrator=calibrator,
            progress=quiet,
        )
        return [m for m in measured if (m.variant.attribute, m.metric) in bias.keys]

    before = measure(head)
    out: dict[int, dict[str, Any]] = {}
    for aid, principles in candidates:
        after = measure(principles)
        rows = widening(bias.suite, before, after, alpha=alpha, tolerance=tolerance, seed=aid)
        run = bias.found.run
        out[aid] = {
            "probe_run": run.id,
            "revision": run.revision,
            "suite": run.suite,
            "variants": len(bias.variants),
            "judged_by": [p.id for p in judged_by] or None,
            "checked": rows,
            "widened": [widened_warning(run.id, r) for r in rows if r["widened"]],
        }
    return out


class _Counting:
    """Passes the measurement's progress on, but not its messages (one line says what the
    check measures)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def step(self, iteration: int, iterations: int, step: str, total: int) -> None:
        return None

    def advance(self, n: int = 1) -> None:
        self.progress.advance(n)

    def message(self, text: str) -> None:
        return None


def widened_warning(probe_run: int, row: dict[str, Any]) -> str:
    lo, hi = row["change_ci"]
    return (
        f"widens the {row['attribute']} {row['metric']} gap of bias probe run {probe_run}: "
        f"{row['gap_before']:.3f} -> {row['gap_after']:.3f} (change {row['change']:+.3f} "
        f"[{lo:+.3f}, {hi:+.3f}], p (Holm) {row['p_adjusted']:.4f})"
    )


__all__ = ["BiasPlan", "Findings", "check", "findings", "flagged", "newest", "plan"]
