"""Detection metrics (fake = positive class), the intervals around them, and the tests that compare runs.

Scores are the model's probabilities that an image is fake, used as given (float32 or float64, never
clipped except inside the log loss): a threshold is chosen and applied on the same values.
"""
import math

import numpy as np
from sklearn import metrics as skm

BOOTSTRAP_METRICS = ("accuracy", "auc")
BOOTSTRAP_CHUNK = 250  # draws evaluated at once: memory bounded by this x the images


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


def _clip(value: float, bounds: tuple[float | None, float | None] | None) -> float:
    low, high = bounds or (None, None)
    return float(min(max(value, -math.inf if low is None else low), math.inf if high is None else high))


def _weighted_accuracy(weights: np.ndarray, labels: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    correct = (scores >= threshold) == labels
    return weights @ correct / weights.sum(axis=1)


def _weighted_auc(weights: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUC of each row of weights (how many times each image is drawn), ties counted half; NaN where a
    draw holds one class only."""
    _, level = np.unique(scores, return_inverse=True)
    order = np.argsort(level, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(level[order]) != 0])
    fakes = np.add.reduceat((weights * labels)[:, order], starts, axis=1)  # weight of each distinct score
    reals = np.add.reduceat((weights * ~labels)[:, order], starts, axis=1)
    reals_below = np.cumsum(reals, axis=1) - reals
    with np.errstate(invalid="ignore", divide="ignore"):
        return (fakes * (reals_below + reals / 2)).sum(axis=1) / (fakes.sum(axis=1) * reals.sum(axis=1))


def bootstrap_interval(labels: np.ndarray, scores: np.ndarray, metric: str = "auc", groups: np.ndarray | None = None,
                       n_boot: int = 2000, seed: int = 0, confidence: float = 0.95, threshold: float = 0.5
                       ) -> tuple[float, float | None, float | None]:
    """A run's metric on its test images and the percentile bootstrap interval of it, in [0, 1].

    metric: "accuracy" (of scores >= threshold) or "auc". groups: the source of each image (photograph,
    identity); where given, whole groups are drawn with replacement, as images of one source are not
    independent; else images are drawn. Draws holding one class only are left out of the AUC's
    interval. Seeded: the same arguments give the same interval.
    """
    if metric not in BOOTSTRAP_METRICS:
        raise ValueError(f"metric must be one of {', '.join(BOOTSTRAP_METRICS)}, got {metric!r}")
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    members = np.unique(np.asarray(groups), return_inverse=True)[1] if groups is not None else np.arange(len(labels))
    n_groups = int(members.max()) + 1

    def evaluate(weights: np.ndarray) -> np.ndarray:
        if metric == "accuracy":
            return _weighted_accuracy(weights, labels, scores, threshold)
        return _weighted_auc(weights, labels, scores)

    estimate = float(evaluate(np.ones((1, len(labels))))[0])
    rng = np.random.default_rng(seed)
    chunks = []
    for start in range(0, n_boot, BOOTSTRAP_CHUNK):
        size = min(BOOTSTRAP_CHUNK, n_boot - start)
        drawn = rng.multinomial(n_groups, np.full(n_groups, 1 / n_groups), size=size)  # times each group is drawn
        chunks.append(evaluate(drawn[:, members].astype(np.float64)))
    draws = np.concatenate(chunks) if chunks else np.empty(0)
    draws = draws[~np.isnan(draws)]
    if len(draws) == 0:
        return (estimate, None, None)
    alpha = 1 - confidence
    low, high = np.percentile(draws, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return (estimate, _clip(low, (0.0, 1.0)), _clip(high, (0.0, 1.0)))
