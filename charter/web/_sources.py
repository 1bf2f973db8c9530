"""Pluggable data the review UI shows but the store does not yet serve in final form.

Two hooks, passed to `create_app` explicitly:

- an evidence source turns an amendment's evidence ids into items to show. The default,
  `evidence_from_runs`, looks up `critique:ID` (in any run) and `output:ID` (in the
  amendment's run) and shows the critique's principle, score, verdict, rationale and the
  labels people gave it, and the output's text; `probe:ID` (a bias probe run) shows its
  flagged gaps and links to its page; an id it cannot resolve is shown as written
  (`evidence_from_ids` shows only the ids). People can label an item with a verdict.
- a score source returns per-run score series for the dashboard's charts. The default,
  `run_scores`, charts each recent run's mean critique score of its answers per iteration;
  `no_scores` charts nothing (the dashboard then explains what will appear).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from principles import Amendment, Critique, JudgeLabel, NotFound, agrees
from store import Store


class LabelMark(BaseModel):
    """A label that counts on an evidence critique: `said` is right or wrong about the
    critic's verdict, or (on an unclear verdict) follows or violates."""

    model_config = ConfigDict(frozen=True)
    labeller: str
    label: int
    said: str
    right: bool | None
    note: str = ""

    @classmethod
    def of(cls, critique: Critique, label: JudgeLabel) -> LabelMark:
        right = agrees(critique.verdict, label.label)
        if right is None:
            said = "follows" if label.binary else "violates"
        else:
            said = "right" if right else "wrong"
        return cls(
            labeller=label.labeller.ref, label=label.binary, said=said, right=right, note=label.note
        )


class EvidenceItem(BaseModel):
    """One piece of evidence behind an amendment; `text` is optional detail (an output)."""

    model_config = ConfigDict(frozen=True)
    ref: str
    kind: str = "evidence"
    summary: str = ""
    text: str = ""
    href: str = ""
    score: float | None = None
    critique_id: int | None = None
    verdict: str | None = Field(default=None, description="set when the critique was found")
    labels: tuple[LabelMark, ...] = ()


class ScorePoint(BaseModel):
    model_config = ConfigDict(frozen=True)
    iteration: int
    score: float = Field(ge=0.0, le=1.0)


class ScoreSeries(BaseModel):
    """A run's score over its iterations (mean critique score, or one principle's)."""

    model_config = ConfigDict(frozen=True)
    run_id: int
    label: str
    points: tuple[ScorePoint, ...]


EvidenceSource = Callable[[Store, Amendment], list[EvidenceItem]]
ScoreSource = Callable[[Store, str], list[ScoreSeries]]

KNOWN_KINDS = ("critique", "output", "task", "run", "probe")


def evidence_from_ids(_store: Store, amendment: Amendment) -> list[EvidenceItem]:
    """The evidence ids as stored on the draft, with their kind when the id names one."""
    items = []
    for ref in amendment.draft.evidence:
        kind, sep, _ = ref.partition(":")
        items.append(
            EvidenceItem(
                ref=ref,
                kind=kind if sep and kind in KNOWN_KINDS else "id",
                critique_id=_ref_id(ref, "critique"),
            )
        )
    return items


def no_scores(_store: Store, _constitution: str) -> list[ScoreSeries]:
    """No run scores yet: the store does not record them in a form the charts read."""
    return []


def _ref_id(ref: str, kind: str) -> int | None:
    prefix, sep, rest = ref.partition(":")
    return int(rest) if sep and prefix == kind and rest.isdigit() else None


def evidence_from_runs(store: Store, amendment: Amendment) -> list[EvidenceItem]:
    """Critiques (with their labels) and outputs named by the evidence."""
    plain = evidence_from_ids(store, amendment)
    run_id = amendment.draft.run_id
    output_ids = {i for ref in amendment.draft.evidence if (i := _ref_id(ref, "output"))}
    critiques = store.critiques_by_id(i for item in plain if (i := item.critique_id))
    labels = store.critique_labels(critiques)
    try:
        outputs = (
            {o.id: o for o in store.outputs(run_id, ids=sorted(output_ids))}
            if run_id is not None and output_ids
            else {}
        )
    except NotFound:
        outputs = {}
    items = []
    for item in plain:
        if item.critique_id in critiques:
            c = critiques[item.critique_id]
            items.append(
                item.model_copy(
                    update={
                        "summary": f"{c.principle_id}@{c.version}: {c.verdict}, "
                        f"relevance {c.relevance:.2f} (output {c.output_id})",
                        "text": c.rationale,
                        "score": c.score,
                        "verdict": c.verdict,
                        "labels": tuple(LabelMark.of(c, x) for x in labels.get(c.id, [])),
                    }
                )
            )
        elif (oid := _ref_id(item.ref, "output")) in outputs:
            o = outputs[oid]
            items.append(
                item.model_copy(
                    update={
                        "summary": f"answer to task {o.task_id} under revision {o.revision}, "
                        f"iteration {o.iteration}",
                        "text": o.text,
                    }
                )
            )
        elif (pid := _ref_id(item.ref, "probe")) is not None and (probe := _probe(store, pid)):
            items.append(item.model_copy(update=probe))
        else:
            items.append(item)
    return items


def _probe(store: Store, run_id: int) -> dict[str, str]:
    """A bias probe run as evidence: what it measured, its flagged gaps, its page."""
    from agent._bias_loop import figure

    try:
        run = store.probe_run(run_id)
    except NotFound:
        return {}
    gaps = [g for g in run.report.get("gaps", []) if g.get("significant")]
    return {
        "summary": f"bias probe run {run.id} under revision {run.revision} ({run.model}, "
        f"{run.variants} variants): {len(gaps)} gap(s) flagged",
        "text": "\n".join(f"{g['source']}: {figure(g)}" for g in gaps),
        "href": f"/probes?run={run.id}",
    }


def run_scores(store: Store, constitution: str, last: int = 6) -> list[ScoreSeries]:
    """Each of the newest `last` runs: mean critique score of its answers per iteration."""
    series = []
    for run in store.runs(constitution)[-last:]:
        iteration_of = {o.id: o.iteration for o in store.outputs(run.id, purpose="answer")}
        scores: dict[int, list[float]] = defaultdict(list)
        for c in store.critiques(run.id):
            if c.output_id in iteration_of:
                scores[iteration_of[c.output_id]].append(c.score)
        if not scores:
            continue
        points = tuple(
            ScorePoint(iteration=i, score=sum(v) / len(v)) for i, v in sorted(scores.items())
        )
        label = f"{run.config.model}, {run.config.mode} mode, {run.status}"
        series.append(ScoreSeries(run_id=run.id, label=label, points=points))
    return series
