"""Values of the judge's own record: human labels on critiques, fitted calibrations, and
measurements of the judge against labels.

A label says what a person (or a labelled data set) holds to be the right verdict for one
(exchange, principle) pair: 1 = the response follows the principle, 0 = it does not; graded
labels carry a score in [0, 1]. Labels, calibrations and evaluations are append-only data:
a new calibration or evaluation is a new row, never an edit of an old one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from principles._errors import InvalidInput, PolicyViolation
from principles._models import Actor, Slug, UTCDateTime, _Frozen
from principles._runs import Verdict

LabelSource = Literal["reviewer", "import"]
Judgment = Literal["right", "wrong", "follows", "violates"]
JUDGMENTS: tuple[Judgment, ...] = ("right", "wrong", "follows", "violates")
MAX_LABEL_NOTE = 2000


class JudgeLabel(_Frozen):
    """A label on one (exchange, principle) pair; `critique_id` names the critique a
    reviewer marked (None for labels imported from a file).

    Labels are never edited. A person who changes their mind labels the critique again: of
    one labeller's labels on one critique only the newest counts (in evaluations, fits and
    exports), while labels by different people on one critique each count.
    """

    id: int
    critique_id: int | None = None
    principle_id: Slug
    prompt: str
    response: str
    label: float = Field(ge=0.0, le=1.0)
    source: LabelSource
    labeller: Actor
    note: str = ""
    created_at: UTCDateTime

    @property
    def binary(self) -> int:
        """1 when the response follows the principle (a graded label above one half)."""
        return int(self.label > 0.5)


class NewCalibration(_Frozen):
    """A calibration before it is stored: how one judge model's raw figures map to scores.

    `model` names the judge it was fitted for (see `agent.judge_model_id`); `label_set` is
    the hash of the labels it was fitted on; `params` holds what applying it needs;
    `metrics` holds out-of-sample figures (cross-validated), never in-sample ones.
    """

    model: str = Field(min_length=1, max_length=300)
    method: str = Field(min_length=1, max_length=64)
    label_set: str = Field(min_length=1, max_length=128)
    n_labels: int = Field(ge=0)
    params: dict[str, Any]
    metrics: dict[str, Any] = Field(default_factory=dict)
    source: str = Field(default="", max_length=300)


class Calibration(NewCalibration):
    id: int
    created_by: Actor
    created_at: UTCDateTime


class NewJudgeEvaluation(_Frozen):
    """One measurement of a judge (a model with a calibration, or none) against labels.

    `report` is the full figures (`{"principles": [...], "overall": {...}}`); `auc` is the
    overall AUC, kept apart because the autonomous-mode floor reads it.
    """

    model: str = Field(min_length=1, max_length=300)
    calibration_id: int | None = None
    label_set: str = Field(min_length=1, max_length=128)
    n: int = Field(ge=0)
    auc: float | None = Field(default=None, ge=0.0, le=1.0)
    report: dict[str, Any] = Field(default_factory=dict)
    source: str = Field(default="", max_length=300)


class JudgeEvaluation(NewJudgeEvaluation):
    id: int
    created_by: Actor
    created_at: UTCDateTime


def check_labeller(actor: Actor) -> None:
    """Only a person labels critiques: the agent (or any non-human actor) may not grade the
    critic whose scores drive its own loop."""
    if actor.kind != "human":
        raise PolicyViolation(
            f"{actor.ref} is not a person: only people label critiques"
            + (" (an agent never grades its own critic)" if actor.kind == "agent" else "")
        )


def label_for(verdict: Verdict, judgment: Judgment) -> int:
    """The label (1 = the response follows the principle) that a reviewer's judgment of a
    critique stands for.

    `right` confirms the critic's verdict and `wrong` reverses it; `follows` and `violates`
    state the right verdict outright. An `unclear` verdict has nothing to confirm or reverse,
    so `right`/`wrong` on it is refused: say `follows` or `violates`.
    """
    if judgment == "follows":
        return 1
    if judgment == "violates":
        return 0
    if judgment not in ("right", "wrong"):
        raise InvalidInput(f"unknown judgment {judgment!r}: use {', '.join(JUDGMENTS)}")
    if verdict == "unclear":
        raise InvalidInput(
            "the critic's verdict was unclear, so right/wrong says nothing: "
            "give the right verdict (follows or violates)"
        )
    critic = 1 if verdict == "pass" else 0
    return critic if judgment == "right" else 1 - critic


def agrees(verdict: Verdict, label: float) -> bool | None:
    """Whether a label says the critic's verdict was right; None for an unclear verdict."""
    if verdict == "unclear":
        return None
    return (verdict == "pass") == (label > 0.5)


def export_record(label: JudgeLabel) -> dict[str, Any]:
    """One line of a labels file (`charter judge eval --labels`): a 0/1 label as `label`, a
    graded one as `score`, with where it came from."""
    value: dict[str, Any] = (
        {"label": int(label.label)} if label.label in (0.0, 1.0) else {"score": label.label}
    )
    return {
        "prompt": label.prompt,
        "response": label.response,
        "principle": label.principle_id,
        **value,
        "critique_id": label.critique_id,
        "labeller": label.labeller.ref,
        "created_at": label.created_at.isoformat(),
    }
