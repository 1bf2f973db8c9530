"""The judge's record in the store: labels, calibrations, evaluations, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from principles import (
    AmendmentDraft,
    InvalidInput,
    NewCalibration,
    NewJudgeEvaluation,
    NotFound,
    PolicyViolation,
)
from store import Store
from tests.conftest import AGENT, ALICE, BOB, CAROL
from tests.evidence import Verdicts, critiqued_answer


def critiqued(store: Store) -> list[int]:
    """A run with one answer critiqued: clarity fails, honesty passes, privacy is unclear."""
    verdicts: Verdicts = (
        ("clarity", 0.2, "fail"),
        ("honesty", 0.9, "pass"),
        ("privacy", 0.5, "unclear"),
    )
    return critiqued_answer(
        store, prompt="Explain DNS briefly.", answer="A map.", verdicts=verdicts
    )[1]


def calibration(model: str = "scripted:", label_set: str = "ls1") -> NewCalibration:
    return NewCalibration(
        model=model,
        method="platt",
        label_set=label_set,
        n_labels=40,
        params={"a": 1.5, "b": -0.25},
        metrics={"auc_cv": 0.81},
        source="labels.jsonl",
    )


def evaluation(
    model: str = "scripted:", calibration_id: int | None = None, auc: float = 0.7
) -> NewJudgeEvaluation:
    return NewJudgeEvaluation(
        model=model,
        calibration_id=calibration_id,
        label_set="ls1",
        n=40,
        auc=auc,
        report={"overall": {"auc": auc}, "principles": []},
    )


def test_a_label_copies_the_exchange_from_the_critique(store: Store) -> None:
    clarity, *_ = critiqued(store)
    label = store.label_critique(clarity, 1, ALICE, "it is clear enough")
    assert (label.critique_id, label.principle_id, label.label, label.binary) == (
        clarity,
        "clarity",
        1.0,
        1,
    )
    assert (label.prompt, label.response) == ("Explain DNS briefly.", "A map.")
    assert (label.source, label.labeller, label.note) == ("reviewer", ALICE, "it is clear enough")
    assert store.judge_labels() == [label]
    event = store.audit_log()[-1]
    assert (event.actor, event.action, event.subject) == (
        "human:alice",
        "judge.label",
        f"critique:{clarity}",
    )
    assert event.payload["label"] == 1 and event.payload["verdict"] == "fail"
    assert store.verify().ok


def test_the_newest_label_per_labeller_counts(store: Store) -> None:
    clarity, honesty, _ = critiqued(store)
    first = store.label_critique(clarity, 1, ALICE)
    bob = store.label_critique(clarity, 0, BOB)
    second = store.label_critique(clarity, 0, ALICE, "changed my mind")
    other = store.label_critique(honesty, 1, ALICE)
    assert store.judge_labels() == [bob, second, other]
    assert store.judge_labels(superseded=True) == [first, bob, second, other]
    assert store.judge_labels(principle_id="honesty") == [other]
    assert store.judge_labels(source="import") == []
    assert store.critique_labels([clarity, honesty, 999]) == {
        clarity: [bob, second],
        honesty: [other],
    }
    assert store.critique_labels([clarity], superseded=True)[clarity] == [first, bob, second]
    assert store.critique_labels([]) == {}


def test_a_judgment_of_the_critic_is_resolved_against_its_verdict(store: Store) -> None:
    clarity, honesty, privacy = critiqued(store)
    assert store.label_critique(clarity, "right", ALICE).label == 0  # the fail was right
    assert store.label_critique(clarity, "wrong", BOB).label == 1
    assert store.label_critique(honesty, "right", ALICE).label == 1
    assert store.label_critique(honesty, "wrong", BOB).label == 0
    assert store.audit_log()[-1].payload["judgment"] == "wrong"
    with pytest.raises(InvalidInput, match="unclear"):
        store.label_critique(privacy, "right", ALICE)
    assert store.label_critique(privacy, "violates", ALICE).label == 0
    assert store.label_critique(privacy, "follows", BOB).label == 1
    with pytest.raises(InvalidInput, match="unknown judgment"):
        store.label_critique(privacy, "maybe", BOB)  # type: ignore[arg-type]
    assert len(store.judge_labels()) == 6


def test_the_agent_may_not_label_and_the_refusal_is_audited(store: Store) -> None:
    clarity, *_ = critiqued(store)
    with pytest.raises(PolicyViolation, match="only people label"):
        store.label_critique(clarity, 0, AGENT)
    event = store.audit_log()[-1]
    assert (event.actor, event.action, event.subject) == (
        "agent:charter-agent",
        "judge.refused",
        f"critique:{clarity}",
    )
    assert event.payload["action"] == "label" and event.payload["code"] == "policy"
    assert store.judge_labels(superseded=True) == []
    assert store.verify().ok


def test_bad_labels_are_refused(store: Store) -> None:
    clarity, *_ = critiqued(store)
    with pytest.raises(NotFound, match="critique not found: 999"):
        store.label_critique(999, 1, ALICE)
    for bad in (2, -1, 0.5):
        with pytest.raises(InvalidInput, match="0 \\(violates\\) or 1"):
            store.label_critique(clarity, bad, ALICE)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="limit"):
        store.label_critique(clarity, 1, ALICE, "x" * 2001)
    assert store.judge_labels(superseded=True) == []


def test_a_label_through_an_amendment_needs_the_critique_in_its_evidence(store: Store) -> None:
    clarity, honesty, _ = critiqued(store)
    a = store.propose(
        AmendmentDraft(
            op="revise", principle_id="clarity", text="Be clear.", evidence=(f"critique:{clarity}",)
        ),
        AGENT,
    )
    label = store.label_critique(clarity, 0, ALICE, amendment_id=a.id)
    assert store.audit_log()[-1].payload["amendment"] == a.id
    with pytest.raises(InvalidInput, match=f"critique {honesty} is not evidence of amendment"):
        store.label_critique(honesty, 0, ALICE, amendment_id=a.id)
    with pytest.raises(NotFound):
        store.label_critique(clarity, 0, ALICE, amendment_id=999)
    assert store.judge_labels() == [label]


def test_calibrations_round_trip_and_the_newest_is_latest(store: Store) -> None:
    assert store.latest_calibration("scripted:") is None
    first = store.add_calibration(calibration(), CAROL)
    other = store.add_calibration(calibration(model="hf:other"), CAROL)
    second = store.add_calibration(calibration(label_set="ls2"), CAROL)
    assert first.params == {"a": 1.5, "b": -0.25} and first.metrics == {"auc_cv": 0.81}
    assert first.created_by == CAROL and first.n_labels == 40
    assert store.calibration(first.id) == first
    assert store.latest_calibration("scripted:") == second
    assert store.calibrations() == [first, other, second]
    assert store.calibrations("hf:other") == [other]
    with pytest.raises(NotFound, match="calibration not found: 999"):
        store.calibration(999)
    event = store.audit_log()[-1]
    assert (event.action, event.subject) == ("judge.calibrate", f"calibration:{second.id}")
    assert event.payload["label_set"] == "ls2" and len(event.payload["params_sha256"]) == 64
    assert store.verify().ok


def test_judge_evaluations_round_trip_per_model_and_calibration(store: Store) -> None:
    cal = store.add_calibration(calibration(), CAROL)
    raw = store.record_judge_evaluation(evaluation(auc=0.3), ALICE)
    calibrated = store.record_judge_evaluation(evaluation(calibration_id=cal.id, auc=0.8), ALICE)
    newer_raw = store.record_judge_evaluation(evaluation(auc=0.35), ALICE)
    assert raw.report == {"overall": {"auc": 0.3}, "principles": []} and raw.created_by == ALICE
    assert store.latest_judge_evaluation("scripted:", None) == newer_raw
    assert store.latest_judge_evaluation("scripted:", cal.id) == calibrated
    assert store.latest_judge_evaluation("hf:other", None) is None
    assert store.judge_evaluations() == [raw, calibrated, newer_raw]
    assert store.judge_evaluations("hf:other") == []
    assert store.audit_log()[-1].action == "judge.eval"
    with pytest.raises(NotFound):
        store.record_judge_evaluation(evaluation(calibration_id=999), ALICE)
    with pytest.raises(InvalidInput, match="fitted for scripted:"):
        store.record_judge_evaluation(evaluation("hf:other", calibration_id=cal.id), ALICE)
    assert store.verify().ok


def test_figures_that_are_not_finite_json_are_refused(store: Store) -> None:
    bad = NewCalibration(
        model="m", method="platt", label_set="x", n_labels=1, params={"a": float("nan")}
    )
    with pytest.raises(InvalidInput, match="finite JSON"):
        store.add_calibration(bad, CAROL)
    with pytest.raises(InvalidInput, match="finite JSON"):
        store.record_judge_evaluation(
            NewJudgeEvaluation(model="m", label_set="x", n=0, report={"auc": float("inf")}), CAROL
        )
    assert store.calibrations() == [] and store.judge_evaluations() == []


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE judge_labels SET label = 0",
        "DELETE FROM judge_labels",
        "UPDATE judge_calibrations SET params = '{}'",
        "DELETE FROM judge_calibrations",
        "UPDATE judge_evaluations SET auc = 1",
        "DELETE FROM judge_evaluations",
    ],
)
def test_the_judges_record_is_append_only(store: Store, statement: str) -> None:
    clarity, *_ = critiqued(store)
    store.label_critique(clarity, 1, ALICE)
    cal = store.add_calibration(calibration(), CAROL)
    store.record_judge_evaluation(evaluation(calibration_id=cal.id), CAROL)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sa.text(statement))
    assert [x.label for x in store.judge_labels()] == [1.0]
    assert store.calibrations()[0].params == {"a": 1.5, "b": -0.25}
    assert store.judge_evaluations()[0].auc == 0.7
    assert store.verify().ok


def test_a_label_out_of_range_is_refused_by_the_database(store: Store) -> None:
    clarity, *_ = critiqued(store)
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO judge_labels (critique_id, principle_id, prompt, response, label, "
                "source, labeller, note, created_at) VALUES (:c, 'clarity', 'p', 'r', 2, "
                "'import', 'human:eve', '', CURRENT_TIMESTAMP)"
            ),
            {"c": clarity},
        )
