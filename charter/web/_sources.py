"""Pluggable data the review UI shows but the store does not yet serve in final form.

Two hooks, passed to `create_app` explicitly:

- an evidence source turns an amendment's evidence ids into items to show. The default,
  `evidence_from_runs`, looks up `critique:ID` and `output:ID` in the amendment's run and
  shows the critique's principle, score, verdict and rationale and the output's text; an id
  it cannot resolve is shown as written (`evidence_from_ids` shows only the ids).
- a score source returns per-run score series for the dashboard's charts. The default,
  `run_scores`, charts each recent run's mean critique score of its answers per iteration;
  `no_scores` charts nothing (the dashboard then explains what will appear).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from principles import Amendment, NotFound
from store import Store


class EvidenceItem(BaseModel):
    """One piece of evidence behind an amendment; `text` is optional detail (an output)."""

    model_config = ConfigDict(frozen=True)
    ref: str
    kind: str = "evidence"
    summary: str = ""
    text: str = ""
    score: float | None = None


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
        items.append(EvidenceItem(ref=ref, kind=kind if sep and kind in KNOWN_KINDS else "id"))
    return items


def no_scores(_store: Store, _constitution: str) -> list[ScoreSeries]:
    """No run scores yet: the store does not record them in a form the charts read."""
    return []


def _ref_id(ref: str, kind: str) -> int | None:
    prefix, sep, rest = ref.partition(":")
    return int(rest) if sep and prefix == kind and rest.isdigit() else None


def evidence_from_runs(store: Store, amendment: Amendment) -> list[EvidenceItem]:
    """Critiques and outputs named by the evidence, read from the amendment's run."""
    plain = evidence_from_ids(store, amendment)
    run_id = amendment.draft.run_id
    if run_id is None:
        return plain
    output_ids = {i for ref in amendment.draft.evidence if (i := _ref_id(ref, "output"))}
    critique_ids = {i for ref in amendment.draft.evidence if (i := _ref_id(ref, "critique"))}
    try:
        outputs = {o.id: o for o in store.outputs(run_id, ids=sorted(output_ids))}
        critiques = (
            {c.id: c for c in store.critiques(run_id) if c.id in critique_ids}
            if critique_ids
            else {}
        )
    except NotFound:
        return plain
    items = []
    for item in plain:
        if (cid := _ref_id(item.ref, "critique")) in critiques:
            c = critiques[cid]
            items.append(
                item.model_copy(
                    update={
                        "summary": f"{c.principle_id}@{c.version}: {c.verdict}, "
                        f"relevance {c.relevance:.2f} (output {c.output_id})",
                        "text": c.rationale,
                        "score": c.score,
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
        else:
            items.append(item)
    return items


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
