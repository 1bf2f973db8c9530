"""Measuring and calibrating the judge against labels.

- `evaluate_judge` judges every labelled pair exactly as the loop's critic would (same
  prompts, same paraphrases, the calibration in force) and reports agreement with the
  labels, per principle and overall, each figure with a bootstrap 95% CI, before
  calibration (the raw option scores) and after.
- `fit_calibration` fits a head per principle on the labels and reports only
  cross-validated figures for it; the result is a `NewCalibration` for the store.
- `calibrator_for` finds the calibration in force for a model: the newest one stored for
  it, else the one shipped for the default model (installed into the store on first use,
  audited like any other).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from agent import _calibration as cal
from agent._critic import Observation, Pair, combine, feature_rows, judge, observe
from agent._labels import LabelledPair, label_set_hash
from agent._metrics import grouped
from agent._progress import Progress
from agent.models import Backend, exposes_features
from principles import (
    SYSTEM,
    Calibration,
    InvalidInput,
    NewCalibration,
    NewJudgeEvaluation,
    Principle,
    Task,
)
from store import Store

DEFAULT_LAYER = 20
SHIPPED = {
    "default": "calibration-default.json",
    "default?score_dtype=bfloat16": "calibration-default-bf16.json",
}
MAX_PROMPT = 8000


def judge_model_id(backend: Backend) -> str:
    """The name calibrations and measurements are kept under: the backend's URI."""
    return backend.uri


def labelled_pairs(labelled: Sequence[LabelledPair], principles: Sequence[Principle]) -> list[Pair]:
    by_id = {p.id: p for p in principles}
    missing = sorted({x.principle for x in labelled} - set(by_id))
    if missing:
        raise InvalidInput(
            f"labels name principles that are not in the constitution: {', '.join(missing)} "
            "(add them with --principles FILE)"
        )
    out = []
    for x in labelled:
        digest = hashlib.sha256(f"{x.prompt}\x1f{x.response}".encode()).hexdigest()[:16]
        task = Task(id=f"label-{digest}", prompt=x.prompt[:MAX_PROMPT])
        out.append(Pair(task, x.response, by_id[x.principle]))
    return out


@dataclass(frozen=True)
class JudgeReport:
    """`figures` is `{"principles": [...], "overall": {...}}` after calibration; `raw` the
    same for the uncalibrated option scores."""

    model: str
    calibration_id: int | None
    label_set: str
    n: int
    figures: dict[str, Any]
    raw: dict[str, Any]
    calibrated: list[str]
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "calibration_id": self.calibration_id,
            "label_set": self.label_set,
            "n": self.n,
            "calibrated_principles": self.calibrated,
            "labels_per_second": round(self.n / self.seconds, 3) if self.seconds else None,
            **self.figures,
            "raw": self.raw,
        }

    def evaluation(self, source: str) -> NewJudgeEvaluation:
        return NewJudgeEvaluation(
            model=self.model,
            calibration_id=self.calibration_id,
            label_set=self.label_set,
            n=self.n,
            auc=self.figures["overall"]["auc"],
            report=self.as_json(),
            source=source,
        )


def _report(
    pairs: Sequence[Pair],
    labelled: Sequence[LabelledPair],
    scores: Sequence[float],
    threshold: float,
    resamples: int,
) -> dict[str, Any]:
    return grouped(
        [p.principle.id for p in pairs],
        list(scores),
        [x.label for x in labelled],
        [x.graded for x in labelled],
        threshold=threshold,
        resamples=resamples,
    )


def evaluate_judge(
    backend: Backend,
    principles: Sequence[Principle],
    labelled: Sequence[LabelledPair],
    *,
    calibrator: cal.Calibrator | None,
    paraphrases: int = 2,
    threshold: float = 0.5,
    resamples: int = 1000,
    progress: Progress,
) -> JudgeReport:
    """The judge's agreement with `labelled`, before and after `calibrator`."""
    pairs = labelled_pairs(labelled, principles)
    started = time.perf_counter()
    judgments = judge(backend, principles, pairs, paraphrases, progress, calibrator)
    seconds = time.perf_counter() - started
    calibrated = sorted(
        {p.principle.id for p, j in zip(pairs, judgments, strict=True) if j.calibrated}
    )
    return JudgeReport(
        model=judge_model_id(backend),
        calibration_id=calibrator.id if calibrator is not None else None,
        label_set=label_set_hash(labelled),
        n=len(labelled),
        figures=_report(pairs, labelled, [j.score for j in judgments], threshold, resamples),
        raw=_report(pairs, labelled, [j.raw for j in judgments], threshold, resamples),
        calibrated=calibrated,
        seconds=seconds,
    )


@dataclass(frozen=True)
class Fitted:
    """Heads fitted per principle, and per labelled pair (by index) its out-of-sample
    calibrated score and its raw score; `skipped` says which principles had too few labels."""

    heads: dict[str, cal.Head]
    out_of_sample: dict[int, float]
    raw: dict[int, float]
    skipped: list[str]


def fit_heads(
    pairs: Sequence[Pair],
    labelled: Sequence[LabelledPair],
    seen: Sequence[Observation],
    *,
    method: str,
    folds: int = 5,
    seed: int = 0,
) -> Fitted:
    """A head per principle with enough labels, each pair's score from a head that never
    saw it (k-fold, grouped by pair), and the raw scores for comparison."""
    import numpy as np

    heads: dict[str, cal.Head] = {}
    skipped: list[str] = []
    oos: dict[int, float] = {}
    for pid in sorted({p.principle.id for p in pairs}):
        idx = [i for i, p in enumerate(pairs) if p.principle.id == pid]
        why = cal.check_trainable(pid, [labelled[i].label for i in idx])
        if why is not None:
            skipped.append(why)
            continue
        rows, target, groups = [], [], []
        for i in idx:
            for row in feature_rows(seen[i], method):
                rows.append(row)
                target.append(labelled[i].label)
                groups.append(i)
        x, t, g = np.asarray(rows, float), np.asarray(target, float), np.asarray(groups)
        cv = cal.cross_validated(x, t, g, k=folds, seed=seed)
        for i in idx:
            oos[i] = float(cv[g == i].mean())
        heads[pid] = cal.fit(x, t, g, seed=seed)
    raw = {i: combine(pairs[i].principle.id, seen[i], None).raw for i in oos}
    return Fitted(heads, oos, raw, skipped)


def fitted_metrics(
    pairs: Sequence[Pair],
    labelled: Sequence[LabelledPair],
    fitted: Fitted,
    *,
    threshold: float = 0.5,
    folds: int,
    paraphrases: int,
) -> dict[str, Any]:
    """A calibration's `metrics`: the out-of-sample and the raw figures on the pairs whose
    principle got a head, per principle and overall."""
    kept = sorted(fitted.out_of_sample)
    sub_pairs = [pairs[i] for i in kept]
    sub_labels = [labelled[i] for i in kept]
    return {
        "cross_validated": _report(
            sub_pairs, sub_labels, [fitted.out_of_sample[i] for i in kept], threshold, 1000
        ),
        "raw": _report(sub_pairs, sub_labels, [fitted.raw[i] for i in kept], threshold, 1000),
        "folds": folds,
        "paraphrases": paraphrases,
    }


def fit_calibration(
    backend: Backend,
    principles: Sequence[Principle],
    labelled: Sequence[LabelledPair],
    *,
    method: str = "probe",
    layer: int = DEFAULT_LAYER,
    paraphrases: int = 2,
    folds: int = 5,
    seed: int = 0,
    threshold: float = 0.5,
    inherited: Calibration | None = None,
    source: str = "",
    progress: Progress,
) -> tuple[NewCalibration, list[str]]:
    """A calibration fitted on `labelled`, and the principles skipped (with why).

    Heads of `inherited` (the calibration in force) for principles these labels do not
    cover are kept, so fitting a head for one principle never drops another's.
    """
    if method not in cal.METHODS:
        raise InvalidInput(f"unknown calibration method {method!r}: use probe or platt")
    if method == "probe" and not exposes_features(backend):
        raise InvalidInput(
            f"{backend.uri} exposes no hidden states: use --method platt for this backend"
        )
    if inherited is not None and (inherited.method != method or _layer(inherited) != layer):
        inherited = None  # heads over other features cannot be mixed with these
    pairs = labelled_pairs(labelled, principles)
    seen = observe(
        backend,
        principles,
        pairs,
        paraphrases,
        progress,
        layer=layer if method == "probe" else None,
    )
    fitted = fit_heads(pairs, labelled, seen, method=method, folds=folds, seed=seed)
    if not fitted.heads:
        raise InvalidInput("no principle has enough labels to fit: " + "; ".join(fitted.skipped))
    metrics = fitted_metrics(
        pairs, labelled, fitted, threshold=threshold, folds=folds, paraphrases=paraphrases
    )
    params = cal.params_json(layer, fitted.heads, inherited.params["heads"] if inherited else {})
    if inherited is not None:
        params["inherits"] = inherited.id
    return (
        NewCalibration(
            model=judge_model_id(backend),
            method=method,
            label_set=label_set_hash(labelled),
            n_labels=len(fitted.out_of_sample),
            params=params,
            metrics=metrics,
            source=source,
        ),
        fitted.skipped,
    )


def _layer(c: Calibration) -> int:
    return int(c.params.get("layer", -1))


def shipped_calibration(model: str) -> NewCalibration | None:
    """The calibration shipped in this package for `model`, if any."""
    name = SHIPPED.get(model)
    if name is None:
        return None
    text = resources.files("agent").joinpath("data", name).read_text(encoding="utf-8")
    return NewCalibration.model_validate(json.loads(text))


def calibration_in_force(store: Store, model: str) -> Calibration | None:
    """The newest calibration stored for `model`; for a model that ships one and has none
    stored yet, the shipped one, installed into the store (audited) on this first use."""
    found = store.latest_calibration(model)
    if found is not None:
        return found
    shipped = shipped_calibration(model)
    if shipped is None:
        return None
    return store.add_calibration(shipped, SYSTEM)


def calibrator_for(store: Store, backend: Backend) -> cal.Calibrator | None:
    found = calibration_in_force(store, judge_model_id(backend))
    return cal.Calibrator(found) if found is not None else None


def fitted_summary(c: Calibration) -> list[dict[str, Any]]:
    """Per principle with a head: its cross-validated figures where the calibration has
    them (inherited heads report theirs in the calibration they came from)."""
    cv = {r["principle"]: r for r in c.metrics.get("cross_validated", {}).get("principles", [])}
    raw = {r["principle"]: r for r in c.metrics.get("raw", {}).get("principles", [])}
    rows = []
    for pid, head in sorted(c.params.get("heads", {}).items()):
        rows.append(
            {
                "principle": pid,
                "n": head.get("n"),
                "lambda": head.get("lam"),
                "cv_auc": cv.get(pid, {}).get("auc"),
                "cv_auc_ci": cv.get(pid, {}).get("auc_ci"),
                "raw_auc": raw.get(pid, {}).get("auc"),
            }
        )
    return rows


__all__ = [
    "DEFAULT_LAYER",
    "Fitted",
    "JudgeReport",
    "calibration_in_force",
    "calibrator_for",
    "evaluate_judge",
    "fit_calibration",
    "fit_heads",
    "fitted_metrics",
    "fitted_summary",
    "judge_model_id",
    "shipped_calibration",
]
