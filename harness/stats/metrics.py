"""Detection metrics (fake = positive class) and their intervals over the test split's independent units.

Scores are the model's probabilities that an image is fake, used as given (float32 or float64, never
clipped except inside the log loss): a threshold is chosen and applied on the same values.
"""
from typing import NamedTuple

import numpy as np
from sklearn import metrics as skm

from harness.stats.crossed import (
    CONFIDENCE,
    MIN_UNITS,
    accuracy_replicates,
    auc_replicates,
    crossed_spread,
    logit_interval,
    proportion_interval,
)


class MetricInterval(NamedTuple):
    """An interval of a test metric and the degrees of freedom of its t; low, high and df None with the
    reason where there is no honest one."""
    low: float | None
    high: float | None
    reason: str | None
    df: float | None


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The error rate where the false-positive and false-negative rates meet on the ROC curve."""
    fpr, tpr, _ = skm.roc_curve(labels, scores)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


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
    predicted = (probs >= 0.5).astype(np.int64)
    both_classes = len(np.unique(labels)) == 2
    return {
        "accuracy": float(skm.accuracy_score(labels, predicted)),
        "loss": float(skm.log_loss(labels, np.clip(probs, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "precision": float(skm.precision_score(labels, predicted, zero_division=0)),
        "recall": float(skm.recall_score(labels, predicted, zero_division=0)),
        "f1": float(skm.f1_score(labels, predicted, zero_division=0)),
        "auc": float(skm.roc_auc_score(labels, probs)) if both_classes else None,
        "average_precision": float(skm.average_precision_score(labels, probs)) if both_classes else None,
        "eer": equal_error_rate(labels, probs) if both_classes else None,
        "threshold": float(threshold),
        "accuracy_at_threshold": float(skm.accuracy_score(labels, probs >= threshold)),
        # rows: true real, true fake; columns: predicted real, predicted fake
        "confusion_matrix": skm.confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
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
    one run: seed variance is not counted. Wilson's interval with a design effect (crossed.proportion_interval):
    the variance between units, Wilson's interval over the effective number of images it implies (never
    more than there are), at Student's t for the units' degrees of freedom (crossed.unit_degrees_of_freedom).
    With one image per unit this is Wilson's interval over the images."""
    correct = (np.asarray(scores, dtype=np.float64) >= threshold) == np.asarray(labels).astype(bool)
    reason = too_few_units(int(units.max()) + 1)
    if reason:
        return MetricInterval(None, None, reason, None)
    spread = crossed_spread(accuracy_replicates(correct[None], units))
    return MetricInterval(*proportion_interval(spread, len(correct), confidence), None, spread.df)


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
