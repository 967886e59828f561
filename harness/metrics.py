"""Detection metrics from scikit-learn (fake = positive class), and intervals over seeds."""
import math

import numpy as np
from scipy import stats
from sklearn import metrics as skm


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The error rate where the false-positive and false-negative rates meet on the ROC curve."""
    fpr, tpr, _ = skm.roc_curve(labels, scores)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def best_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The probability threshold that maximises accuracy (chosen on the validation split)."""
    candidates = np.unique(np.concatenate([scores, [0.5]]))
    accuracies = [skm.accuracy_score(labels, scores >= t) for t in candidates]
    return float(candidates[int(np.argmax(accuracies))])


def detection_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict:
    """The paper's five (accuracy, loss, precision, recall, F1 at 0.5) plus AUC, AP, EER and the confusion matrix."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.clip(np.asarray(probs, dtype=np.float64), 1e-7, 1 - 1e-7)
    predicted = (probs >= 0.5).astype(np.int64)
    both_classes = len(np.unique(labels)) == 2
    return {
        "accuracy": float(skm.accuracy_score(labels, predicted)),
        "loss": float(skm.log_loss(labels, probs, labels=[0, 1])),
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


def mean_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of the mean; a single value has an interval of itself."""
    data = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    if len(data) == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(data.mean())
    if len(data) == 1:
        return (mean, mean, mean)
    half = float(stats.t.ppf((1 + confidence) / 2, len(data) - 1) * data.std(ddof=1) / math.sqrt(len(data)))
    return (mean, mean - half, mean + half)
