"""Detection metrics (fake = positive class) and their intervals over the test split's independent units.

Scores are the model's probabilities that an image is fake, used as given (float32 or float64, never
clipped except inside the log loss): a threshold is chosen and applied on the same values.

Computed with NumPy, as scikit-learn defines each (tests/unit/test_metrics.py checks them against it): every
training job scores its splits here, and importing scikit-learn costs each job about a CPU-second.
"""
from typing import NamedTuple

import numpy as np

from harness.stats.crossed import (
    CONFIDENCE,
    MIN_UNITS,
    accuracy_bounds,
    auc_replicates,
    crossed_spread,
    logit_interval,
)


class MetricInterval(NamedTuple):
    """An interval of a test metric and the degrees of freedom of its t; low, high and df None with the
    reason where there is no honest one; units_as_trials where the units were taken as trials
    (crossed.accuracy_bounds)."""
    low: float | None
    high: float | None
    reason: str | None
    df: float | None
    units_as_trials: bool = False


def _counts_above(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each distinct score, from the highest down: the reals and the fakes scored at or above it, and it."""
    order = np.argsort(scores, kind="mergesort")[::-1]
    ranked, fake = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # each distinct score's last position
    fakes = np.cumsum(fake)[last]
    return last + 1 - fakes, fakes, ranked[last]


def roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve (false-positive rates, true-positive rates, thresholds) from (0, 0), a point at each
    distinct score, less those inside a straight segment: scikit-learn's roc_curve with its defaults."""
    labels = np.asarray(labels).astype(bool)
    reals, fakes, thresholds = _counts_above(labels, np.asarray(scores, dtype=np.float64))
    if len(reals) > 2:
        corner = np.r_[True, np.logical_or(np.diff(reals, 2), np.diff(fakes, 2)), True]
        reals, fakes, thresholds = reals[corner], fakes[corner], thresholds[corner]
    reals, fakes = np.r_[0, reals], np.r_[0, fakes]
    return reals / reals[-1], fakes / fakes[-1], np.r_[np.inf, thresholds]


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The error rate where the false-positive and false-negative rates meet on the ROC curve."""
    fpr, tpr, _ = roc_points(labels, scores)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def _area_under_roc(labels: np.ndarray, scores: np.ndarray) -> float:
    fpr, tpr, _ = roc_points(labels, scores)
    return float((np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0).sum())  # the trapezoids, as NumPy's trapz sums them


def _average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """The precision at each distinct score, weighted by the recall it adds (no interpolation)."""
    reals, fakes, _ = _counts_above(labels.astype(bool), scores)
    recall_gained = np.diff(np.r_[0, fakes]) / fakes[-1]
    return float(np.sum(recall_gained * fakes / (fakes + reals)))


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0  # scikit-learn's zero_division=0


def best_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold t that maximises the accuracy of `scores >= t` (chosen on the validation split).

    Candidates lie midway between consecutive distinct scores (and below the lowest, above the highest),
    so a threshold never coincides with a score and applying it to the same scores reproduces exactly
    the accuracy it was chosen for. Among equally accurate thresholds, the one nearest 0.5.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    levels = np.unique(scores)
    middle = levels[:-1] + (levels[1:] - levels[:-1]) / 2
    middle = np.where(middle > levels[:-1], middle, levels[1:])  # adjacent floats: no value between them
    candidates = np.concatenate([levels[:1], middle, [np.nextafter(levels[-1], np.inf)]])
    reals_below = np.searchsorted(np.sort(scores[~labels]), candidates, side="left")
    fakes_above = labels.sum() - np.searchsorted(np.sort(scores[labels]), candidates, side="left")
    correct = reals_below + fakes_above
    best = np.flatnonzero(correct == correct.max())
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def detection_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict:
    """The paper's five (accuracy, loss, precision, recall, F1 at 0.5) plus AUC, AP, EER, the accuracy at
    threshold and the confusion matrix."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)  # exact for float32: ties and order are kept
    both_classes = len(np.unique(labels)) == 2
    fake, called_fake = labels == 1, probs >= 0.5
    tp, fp = int(np.sum(fake & called_fake)), int(np.sum(~fake & called_fake))
    fn, tn = int(np.sum(fake & ~called_fake)), int(np.sum(~fake & ~called_fake))
    clipped = np.clip(probs, 1e-7, 1 - 1e-7)
    return {
        "accuracy": (tp + tn) / len(labels),
        "loss": float(-np.mean(np.where(fake, np.log(clipped), np.log(1 - clipped)))),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "auc": _area_under_roc(labels, probs) if both_classes else None,
        "average_precision": _average_precision(labels, probs) if both_classes else None,
        "eer": equal_error_rate(labels, probs) if both_classes else None,
        "threshold": float(threshold),
        "accuracy_at_threshold": float(np.mean(fake == (probs >= threshold))),
        # rows: true real, true fake; columns: predicted real, predicted fake
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "count": int(len(labels)),
    }


def too_few_units(count: int) -> str | None:
    """Why a test split of count independent units has no interval (None where it has enough)."""
    if count >= MIN_UNITS:
        return None
    return f"too few units for an interval: the test split holds {count} independent unit{'s' if count > 1 else ''}, {MIN_UNITS} needed"


def accuracy_interval(labels: np.ndarray, scores: np.ndarray, units: np.ndarray, confidence: float = CONFIDENCE,
                      threshold: float = 0.5) -> MetricInterval:
    """The accuracy of scores >= threshold and its interval over independent units (units: each image's),
    one run: seed variance is not counted. Wilson's interval with a design effect (crossed.accuracy_bounds):
    the variance between units, Wilson's interval over the effective number of images it implies (never
    more than there are), at Student's t for the units' degrees of freedom (crossed.unit_degrees_of_freedom);
    the units taken as trials where the errors, or the right answers, fall in fewer than two. With one image
    per unit this is Wilson's interval over the images."""
    correct = (np.asarray(scores, dtype=np.float64) >= threshold) == np.asarray(labels).astype(bool)
    reason = too_few_units(int(units.max()) + 1)
    if reason:
        return MetricInterval(None, None, reason, None)
    bounds = accuracy_bounds(correct, units, confidence)
    return MetricInterval(bounds.low, bounds.high, None, bounds.df, bounds.units_as_trials)


def auc_interval(labels: np.ndarray, scores: np.ndarray, units: np.ndarray, confidence: float = CONFIDENCE) -> MetricInterval:
    """The AUC's interval over independent units, one run: DeLong's variance taken between units
    (Obuchowski's clustered form; DeLong's own with one image per unit), on the logit scale so that it
    stays inside (0, 1), at Student's t for the units' degrees of freedom (units weighing by their size
    squared: crossed.unit_degrees_of_freedom with correlation 1)."""
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        return MetricInterval(None, None, "the test split holds one class only: it has no AUC", None)
    reason = too_few_units(int(units.max()) + 1)
    if reason:
        return MetricInterval(None, None, reason, None)
    spread = crossed_spread(auc_replicates(labels, np.asarray(scores, dtype=np.float64)[None], units), correlation=1.0)
    interval = logit_interval(spread, confidence)
    if interval is None:
        return MetricInterval(None, None, f"an AUC of {spread.mean:.3g} with no spread between units: its variance "
                              "cannot be estimated", None)
    return MetricInterval(*interval, None, spread.df)
