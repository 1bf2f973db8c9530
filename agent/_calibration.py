"""Calibrations: from a judge model's raw figures to scores that agree with people.

A small model's yes/no option probabilities track how substantive a response looks, not
what the question asks (the default model ranks refusals below compliance when asked
whether a response declines). A calibration replaces them, per principle, by a learned
head fitted on labels:
- `probe`: L2-regularised logistic regression on what the judge model shows of the pair:
  the request-response mutual information (how much the request explains the response: low
  for refusals and for answers to another question), the raw log-odds of "Yes", and the
  hidden state at the position that answers the question. One row per paraphrased question;
  the judgment is the mean of their probabilities, their spread the judge's disagreement.
  Whether a head reads the two summary columns or everything is chosen, with the
  regularisation strength, by cross-validation inside the training labels;
- `platt`: the same on the raw log-odds alone, for servers that expose no hidden states.
Principles without a head keep the raw score and are reported as uncalibrated.

The regularisation strength is chosen by cross-validation inside the training data, and
every figure a calibration reports about itself is out of sample: k-fold cross-validation
grouped by labelled pair, so paraphrases of one pair never straddle a fold.
numpy is imported inside the functions that need it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from principles import Calibration, InvalidInput

METHODS = ("probe", "platt")
LAMBDAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
COMPONENTS = 32  # principal directions of the hidden state a full head reads
SUMMARY = 2  # a probe row starts with the request PMI and the raw log-odds
MIN_PER_CLASS = 6


def raw_logit(p: float) -> float:
    p = min(1 - 1e-6, max(1e-6, p))
    return math.log(p / (1 - p))


def _sigmoid(x: Any) -> Any:
    import numpy as np

    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


def fit_logistic(x: Any, target: Any, lam: float) -> tuple[Any, float]:
    """Weights and bias minimising the log-loss against soft targets in [0, 1] plus
    `lam`/2 times the squared weights (the bias is not penalised); Newton's method."""
    import numpy as np

    n, k = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(k + 1)
    penalty = lam * np.eye(k + 1)
    penalty[-1, -1] = 1e-8
    for _ in range(100):
        p = _sigmoid(xb @ w)
        grad = xb.T @ (p - target) + penalty @ w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + penalty
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-7:
            break
    return w[:-1], float(w[-1])


def _folds(groups: Any, k: int, seed: int) -> list[Any]:
    """Row indices of k folds, every group's rows in one fold."""
    import numpy as np

    unique = np.unique(groups)
    order = np.random.default_rng(seed).permutation(unique)
    return [np.flatnonzero(np.isin(groups, part)) for part in np.array_split(order, k)]


@dataclass(frozen=True)
class Head:
    """One principle's fitted head: standardise, project the hidden state onto its leading
    principal components (when it reads more than the summary), then a logistic layer."""

    mean: list[float]
    scale: list[float]
    weights: list[float]
    bias: float
    lam: float
    n: int
    columns: int | None = None
    projection: list[list[float]] | None = None

    def _inputs(self, rows: Any) -> Any:
        import numpy as np

        x = np.asarray(rows, dtype=float)[:, : self.columns]
        x = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        if self.projection is not None:
            x = np.hstack([x[:, :SUMMARY], x[:, SUMMARY:] @ np.asarray(self.projection).T])
        return x

    def apply(self, rows: Any) -> Any:
        """P(follows) per row; a head fitted on the summary reads the first columns only."""
        import numpy as np

        return _sigmoid(self._inputs(rows) @ np.asarray(self.weights) + self.bias)

    def as_json(self) -> dict[str, Any]:
        return {
            "mean": [round(v, 6) for v in self.mean],
            "scale": [round(v, 6) for v in self.scale],
            "weights": [round(v, 8) for v in self.weights],
            "bias": round(self.bias, 8),
            "lam": self.lam,
            "n": self.n,
            "columns": self.columns,
            "projection": None
            if self.projection is None
            else [[round(v, 6) for v in row] for row in self.projection],
        }


def _fit_head(x: Any, target: Any, lam: float, n: int, columns: int | None = None) -> Head:
    """Standardise on these rows; past the summary columns, keep the leading `COMPONENTS`
    principal directions of the hidden state (fitted on these rows only)."""
    import numpy as np

    x = x[:, :columns]
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    projection = None
    if z.shape[1] > SUMMARY + COMPONENTS:
        _, _, vt = np.linalg.svd(z[:, SUMMARY:], full_matrices=False)
        projection = vt[:COMPONENTS]
        z = np.hstack([z[:, :SUMMARY], z[:, SUMMARY:] @ projection.T])
    w, b = fit_logistic(z, target, lam)
    return Head(
        mean.tolist(),
        scale.tolist(),
        w.tolist(),
        b,
        lam,
        n,
        columns,
        None if projection is None else projection.tolist(),
    )


def _log_loss(p: Any, target: Any) -> float:
    import numpy as np

    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-(target * np.log(p) + (1 - target) * np.log(1 - p)).mean())


def choose(
    x: Any, target: Any, groups: Any, *, seed: int = 0, k: int = 4
) -> tuple[int | None, float]:
    """The feature set (the summary columns, or all) and the strength in `LAMBDAS` with the
    lowest cross-validated log-loss. With few labels the summary usually wins: hundreds of
    hidden dimensions drown two informative columns; with more labels the hidden state
    adds what the summary misses."""
    sets: list[int | None] = [SUMMARY, None] if x.shape[1] > SUMMARY else [None]
    best: tuple[int | None, float] = (None, LAMBDAS[0])
    best_loss = math.inf
    folds = _folds(groups, k, seed)
    for columns in sets:
        for lam in LAMBDAS:
            losses = []
            for fold in folds:
                train = _complement(len(target), fold)
                head = _fit_head(x[train], target[train], lam, len(train), columns)
                losses.append(_log_loss(head.apply(x[fold]), target[fold]))
            loss = sum(losses) / len(losses)
            if loss < best_loss:
                best, best_loss = (columns, lam), loss
    return best


def _complement(n: int, fold: Any) -> Any:
    import numpy as np

    mask = np.ones(n, dtype=bool)
    mask[fold] = False
    return np.flatnonzero(mask)


def fit(x: Any, target: Any, groups: Any, *, seed: int = 0) -> Head:
    """A head on every row, its features and strength chosen by inner cross-validation."""
    import numpy as np

    columns, lam = choose(x, target, groups, seed=seed)
    return _fit_head(x, target, lam, len(np.unique(groups)), columns)


def cross_validated(x: Any, target: Any, groups: Any, *, k: int = 5, seed: int = 0) -> Any:
    """Out-of-sample probabilities per row: each fold scored by a head (strength chosen
    inside the other folds) that never saw it."""
    import numpy as np

    out = np.zeros(len(target))
    for fold in _folds(groups, k, seed):
        train = _complement(len(target), fold)
        out[fold] = fit(x[train], target[train], groups[train], seed=seed).apply(x[fold])
    return out


def check_trainable(principle: str, labels: Sequence[float]) -> str | None:
    """Why a principle's labels cannot train a head, or None when they can."""
    positives = sum(1 for v in labels if v > 0.5)
    negatives = len(labels) - positives
    if min(positives, negatives) < MIN_PER_CLASS:
        return (
            f"{principle}: {positives} following and {negatives} violating labels; a head "
            f"needs at least {MIN_PER_CLASS} of each"
        )
    return None


class Calibrator:
    """A stored calibration, ready to apply: per principle, a head over features."""

    def __init__(self, calibration: Calibration) -> None:
        params = calibration.params
        if calibration.method not in METHODS:
            raise InvalidInput(f"unknown calibration method {calibration.method!r}")
        self.calibration = calibration
        self.method = calibration.method
        self.layer: int = int(params.get("layer", -1))
        self.heads = {pid: Head(**h) for pid, h in params.get("heads", {}).items()}

    @property
    def id(self) -> int:
        return self.calibration.id

    @property
    def needs_features(self) -> bool:
        return self.method == "probe"

    def covers(self, principle_id: str) -> bool:
        return principle_id in self.heads

    def scores(self, principle_id: str, rows: Sequence[Sequence[float]]) -> list[float]:
        """Calibrated P(follows) for each row of features (probe) or [raw log-odds] (platt)."""
        return [float(v) for v in self.heads[principle_id].apply(rows)]


def params_json(layer: int, heads: dict[str, Head], inherited: dict[str, Any]) -> dict[str, Any]:
    """A calibration's `params`: the feature layer and every head (new ones replace the
    inherited heads of the same principles)."""
    merged = dict(inherited)
    merged.update({pid: h.as_json() for pid, h in heads.items()})
    return {"layer": layer, "heads": dict(sorted(merged.items()))}
