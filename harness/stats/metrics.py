"""Detection metrics (fake = positive class) and their intervals over the test split's independent units.

Scores are the model's probabilities that an image is fake, used as given (float32 or float64, never
clipped except inside the log loss): a threshold is chosen and applied on the same values.
"""
import math
from typing import NamedTuple

import numpy as np
from sklearn import metrics as skm

from harness.stats.intervals import t_quantile, wilson_interval
from harness.stats.paired import clustered_auc_covariance

CONFIDENCE = 0.95
MIN_UNITS = 2  # a spread between units needs two of them


class MetricInterval(NamedTuple):
    """An interval of a test metric; low and high None with the reason where there is no honest one."""
    low: float | None
    high: float | None
    reason: str | None


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


def accuracy_interval(labels: np.ndarray, scores: np.ndarray, units: np.ndarray, confidence: float = CONFIDENCE,
                      threshold: float = 0.5) -> MetricInterval:
    """The accuracy of scores >= threshold and its interval over independent units (units: each image's).

    Wilson's interval with a design effect: the variance of the accuracy is estimated between units
    (cluster-robust, the ratio estimator's), Wilson's interval is taken over the effective number of
    images it implies, at Student's t quantile for G - 1 degrees of freedom, as the variance rests on G
    units. With one image per unit this is Wilson's interval over the images. Where every unit has the
    same accuracy (no spread to measure), the images count as independent."""
    correct = (np.asarray(scores, dtype=np.float64) >= threshold) == np.asarray(labels).astype(bool)
    count = int(units.max()) + 1
    if count < MIN_UNITS:
        return MetricInterval(None, None, f"the test split holds {count} independent unit: a spread needs {MIN_UNITS}")
    accuracy = float(correct.mean())
    sizes, right = np.bincount(units, minlength=count), np.bincount(units, weights=correct, minlength=count)
    variance = count / (count - 1) * float(np.sum((right - accuracy * sizes) ** 2)) / len(correct) ** 2
    effective_n = accuracy * (1 - accuracy) / variance if variance > 0 else float(len(correct))
    return MetricInterval(*wilson_interval(accuracy, effective_n, t_quantile((1 + confidence) / 2, count - 1)), None)


def auc_interval(labels: np.ndarray, scores: np.ndarray, units: np.ndarray, confidence: float = CONFIDENCE) -> MetricInterval:
    """The AUC's interval over independent units: DeLong's variance taken between units (Obuchowski's
    clustered form; DeLong's own with one image per unit), on the logit scale so that it stays inside
    (0, 1), at Student's t quantile for G - 1 degrees of freedom."""
    labels = np.asarray(labels).astype(bool)
    count = int(units.max()) + 1
    if labels.all() or not labels.any():
        return MetricInterval(None, None, "the test split holds one class only: it has no AUC")
    if count < MIN_UNITS:
        return MetricInterval(None, None, f"the test split holds {count} independent unit: a spread needs {MIN_UNITS}")
    aucs, covariance = clustered_auc_covariance(labels, scores, units)
    auc, variance = float(aucs[0]), float(covariance[0, 0])
    if not 0 < auc < 1 or variance <= 0:
        return MetricInterval(None, None, f"an AUC of {auc:.3g} with no spread between units: its variance cannot be estimated")
    half = t_quantile((1 + confidence) / 2, count - 1) * math.sqrt(variance) / (auc * (1 - auc))
    centre = math.log(auc / (1 - auc))
    return MetricInterval(1 / (1 + math.exp(half - centre)), 1 / (1 + math.exp(-half - centre)), None)
