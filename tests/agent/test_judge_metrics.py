"""Agreement figures and labels files: known answers on hand-made data."""

from __future__ import annotations

import json

import pytest

from agent._labels import label_set_hash, parse_labels
from agent._metrics import agreement, auc, grouped
from principles import InvalidInput


def _np(values: list[float]) -> object:
    import numpy as np

    return np.asarray(values, dtype=float)


def test_auc_is_one_when_every_follower_outscores_every_violator() -> None:
    assert auc(_np([0.9, 0.8, 0.2, 0.1]), _np([1, 1, 0, 0]).astype(int)) == 1.0


def test_auc_is_zero_when_the_ranking_is_inverted() -> None:
    assert auc(_np([0.1, 0.2, 0.8, 0.9]), _np([1, 1, 0, 0]).astype(int)) == 0.0


def test_auc_counts_ties_as_half() -> None:
    assert auc(_np([0.5, 0.5]), _np([1, 0]).astype(int)) == 0.5


def test_auc_is_undefined_with_one_class() -> None:
    assert auc(_np([0.5, 0.7]), _np([1, 1]).astype(int)) is None


def test_agreement_reports_accuracy_kappa_and_a_ci_that_contains_the_point() -> None:
    scores = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1] * 5
    labels = [1, 1, 1, 0, 1, 0, 0, 0] * 5
    out = agreement(scores, labels, threshold=0.5, resamples=300)
    assert out["n"] == 40 and out["positives"] == 20
    assert out["accuracy"] == pytest.approx(0.75)
    assert out["balanced_accuracy"] == pytest.approx(0.75)
    assert out["kappa"] == pytest.approx(0.5)
    assert out["auc"] == pytest.approx(15 / 16)
    lo, hi = out["auc_ci"]
    assert lo <= out["auc"] <= hi and hi - lo > 0.01
    assert out["spearman"] is None  # binary labels


def test_graded_labels_get_spearman_and_are_binarised_above_one_half() -> None:
    scores = [0.1, 0.3, 0.5, 0.7, 0.9] * 4
    labels = [0.0, 0.25, 0.5, 0.75, 1.0] * 4
    out = agreement(scores, labels, graded=True, resamples=100)
    assert out["spearman"] == pytest.approx(1.0)
    assert out["positives"] == 8  # 0.75 and 1.0 follow; 0.5 does not
    assert out["auc"] == 1.0


def test_perfectly_calibrated_scores_have_no_calibration_error() -> None:
    scores = [0.25] * 4 + [0.75] * 4
    labels = [1, 0, 0, 0, 1, 1, 1, 0]
    assert agreement(scores, labels, resamples=0)["ece"] == pytest.approx(0.0)


def test_grouped_reports_each_principle_and_the_overall_figures() -> None:
    out = grouped(
        ["a", "a", "b", "b"], [0.9, 0.1, 0.2, 0.8], [1, 0, 1, 0], [False] * 4, resamples=50
    )
    assert [r["principle"] for r in out["principles"]] == ["a", "b"]
    assert out["principles"][0]["auc"] == 1.0 and out["principles"][1]["auc"] == 0.0
    assert out["overall"]["n"] == 4


def _line(**fields: object) -> str:
    base: dict[str, object] = {"prompt": "p", "response": "r", "principle": "honesty"}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None})


def test_labels_file_takes_binary_labels_and_graded_scores() -> None:
    pairs = parse_labels(_line(label=1) + "\n\n" + _line(score=0.25) + "\n")
    assert [(p.label, p.graded, p.binary) for p in pairs] == [(1.0, False, 1), (0.25, True, 0)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "labels:2: not valid JSON"),
        (_line(label=2), "labels:2: label must be 0 or 1"),
        (_line(score=1.5), "labels:2: score must be in [0, 1]"),
        (_line(label=1, score=1.0), "labels:2: give exactly one of"),
        (_line(principle=""), "labels:2: 'principle' must be a non-empty string"),
        (_line(label="yes"), "labels:2: label must be a number"),
    ],
)
def test_a_bad_labels_line_is_refused_with_its_number(line: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_labels(_line(label=1) + "\n" + line)


def test_an_empty_labels_file_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no labels"):
        parse_labels("\n\n")


def test_the_label_set_hash_ignores_order_but_not_content() -> None:
    a = parse_labels(_line(label=1) + "\n" + _line(label=0, prompt="q"))
    b = parse_labels(_line(label=0, prompt="q") + "\n" + _line(label=1))
    c = parse_labels(_line(label=0) + "\n" + _line(label=0, prompt="q"))
    assert label_set_hash(a) == label_set_hash(b) != label_set_hash(c)
