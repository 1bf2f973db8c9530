"""Agreement between a judge's scores and labels, each figure with a bootstrap 95% CI.

For a set of (score, label) pairs, where a score is the judge's P(follows) and a label is 1
(follows) / 0 (does not) or a graded score in [0, 1] (binarised above one half):
- auc: the chance that a random following response outscores a random violating one;
- accuracy and balanced accuracy of the verdict `score >= threshold`;
- kappa: Cohen's kappa between that verdict and the binary label;
- spearman: rank correlation with the graded label (None for binary labels);
- ece: expected calibration error over 10 equal-width bins of the score.
CIs are percentile intervals over `resamples` bootstrap resamples of the pairs (seeded, so a
report is reproducible); a resample with one class only does not count towards the AUC CI.
numpy is imported inside the functions that need it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

Figure = float | None
METRICS = ("auc", "accuracy", "balanced_accuracy", "kappa", "spearman", "ece")


def _ranks(values: Any) -> Any:
    """Average ranks (ties share the mean of their ranks), 1-based, as a float array."""
    import numpy as np

    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    _, first, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = np.repeat(average, counts)
    return ranks


def auc(scores: Any, binary: Any) -> Figure:
    import numpy as np

    pos = int(binary.sum())
    neg = len(binary) - pos
    if pos == 0 or neg == 0:
        return None
    ranks = _ranks(np.asarray(scores, dtype=float))
    return float((ranks[binary == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def accuracy(verdicts: Any, binary: Any) -> Figure:
    return float((verdicts == binary).mean()) if len(binary) else None


def balanced_accuracy(verdicts: Any, binary: Any) -> Figure:
    rates = [float((verdicts[binary == c] == c).mean()) for c in (0, 1) if (binary == c).any()]
    return sum(rates) / len(rates) if rates else None


def kappa(verdicts: Any, binary: Any) -> Figure:
    if not len(binary):
        return None
    observed = float((verdicts == binary).mean())
    p1, q1 = float(verdicts.mean()), float(binary.mean())
    expected = p1 * q1 + (1 - p1) * (1 - q1)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1 - expected)


def spearman(scores: Any, labels: Any) -> Figure:
    import numpy as np

    if len(labels) < 3:
        return None
    a, b = _ranks(scores), _ranks(labels)
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def ece(scores: Any, labels: Any, bins: int = 10) -> Figure:
    import numpy as np

    if not len(labels):
        return None
    which = np.minimum((scores * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(float(scores[mask].mean()) - float(labels[mask].mean()))
    return total / len(labels)


def _figures(scores: Any, labels: Any, threshold: float, graded: bool) -> dict[str, Figure]:
    binary = (labels > 0.5).astype(int)
    verdicts = (scores >= threshold).astype(int)
    return {
        "auc": auc(scores, binary),
        "accuracy": accuracy(verdicts, binary),
        "balanced_accuracy": balanced_accuracy(verdicts, binary),
        "kappa": kappa(verdicts, binary),
        "spearman": spearman(scores, labels) if graded else None,
        "ece": ece(scores, labels),
    }


def _interval(values: list[float]) -> tuple[float, float] | None:
    import numpy as np

    finite = [v for v in values if v is not None and math.isfinite(v)]
    if len(finite) < 20:
        return None
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return (round(float(lo), 4), round(float(hi), 4))


def agreement(
    scores: Sequence[float],
    labels: Sequence[float],
    *,
    threshold: float = 0.5,
    graded: bool = False,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every figure of the module docstring with `<name>_ci`, plus n and class counts."""
    import numpy as np

    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float)
    if s.shape != y.shape:
        raise ValueError("scores and labels differ in length")
    point = _figures(s, y, threshold, graded)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {k: [] for k in METRICS}
    for _ in range(resamples if len(y) else 0):
        idx = rng.integers(0, len(y), len(y))
        for k, v in _figures(s[idx], y[idx], threshold, graded).items():
            if v is not None:
                draws[k].append(v)
    out: dict[str, Any] = {
        "n": len(y),
        "positives": int((y > 0.5).sum()),
        "graded": graded,
        "threshold": threshold,
    }
    for k in METRICS:
        value = point[k]
        out[k] = None if value is None else round(value, 4)
        out[f"{k}_ci"] = None if value is None else _interval(draws[k])
    return out


def grouped(
    keys: Sequence[str],
    scores: Sequence[float],
    labels: Sequence[float],
    graded: Sequence[bool],
    *,
    threshold: float = 0.5,
    resamples: int = 1000,
    seed: int = 0,
    figures: Callable[..., dict[str, Any]] = agreement,
) -> dict[str, Any]:
    """`{"principles": [{"principle": key, ...figures}], "overall": {...}}`."""
    rows = []
    for key in sorted(set(keys)):
        idx = [i for i, k in enumerate(keys) if k == key]
        rows.append(
            {
                "principle": key,
                **figures(
                    [scores[i] for i in idx],
                    [labels[i] for i in idx],
                    threshold=threshold,
                    graded=any(graded[i] for i in idx),
                    resamples=resamples,
                    seed=seed,
                ),
            }
        )
    overall = figures(
        scores, labels, threshold=threshold, graded=any(graded), resamples=resamples, seed=seed
    )
    return {"principles": rows, "overall": overall}
