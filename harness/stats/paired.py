"""Paired tests between runs scored on the same test images: McNemar for accuracy, DeLong for AUC,
Holm's correction over the pairs. numpy and math only: the leaderboard, a command typed often,
imports this (tests/unit recompute each result with scipy)."""
import math
from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np


def midranks(values: np.ndarray, axis: int = 1) -> np.ndarray:
    """Ranks from 1 along axis, ties sharing their mean rank (scipy's rankdata, method 'average')."""
    values = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    ranks = np.empty_like(values)
    for index in np.ndindex(values.shape[:-1]):
        row = values[index]
        order = np.argsort(row, kind="mergesort")
        ordered = row[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        ends = np.r_[starts[1:], len(row)]
        row_ranks = np.empty(len(row))
        row_ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
        ranks[index] = row_ranks
    return np.moveaxis(ranks, -1, axis)


def mcnemar_test(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, threshold: float = 0.5,
                 exact_below: int = 25) -> float:
    """Two-sided p-value that two runs scored on the same images are equally accurate at threshold.

    Only the images where exactly one of the two is right count (the discordant pairs). Fewer than
    exact_below of them: the exact binomial test; else chi-square with continuity correction.
    """
    labels = np.asarray(labels).astype(bool)
    right_a = (np.asarray(scores_a, dtype=np.float64) >= threshold) == labels
    right_b = (np.asarray(scores_b, dtype=np.float64) >= threshold) == labels
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    discordant = only_a + only_b
    if discordant == 0:
        return 1.0
    if discordant < exact_below:
        tail = sum(math.comb(discordant, i) for i in range(min(only_a, only_b) + 1)) / 2 ** discordant
        return float(min(1.0, 2 * tail))
    statistic = (abs(only_a - only_b) - 1) ** 2 / discordant
    return math.erfc(math.sqrt(statistic / 2))  # the chi-square survival, one degree of freedom


def delong_covariance(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of k score vectors on the same images (scores: k x images) and their covariance matrix, by
    DeLong's method in the fast midrank form of Sun and Xu (2014)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    fakes, reals = scores[:, labels], scores[:, ~labels]
    m, n = fakes.shape[1], reals.shape[1]
    if m == 0 or n == 0:
        raise ValueError("DeLong's AUC needs both classes")
    rank_fakes = midranks(fakes, axis=1)  # midranks: ties count half
    rank_reals = midranks(reals, axis=1)
    rank_all = midranks(np.concatenate([fakes, reals], axis=1), axis=1)
    aucs = (rank_all[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    fake_components = (rank_all[:, :m] - rank_fakes) / n  # share of reals each fake outranks
    real_components = 1 - (rank_all[:, m:] - rank_reals) / m  # share of fakes that outrank each real
    covariance = (np.atleast_2d(np.cov(fake_components)) / m + np.atleast_2d(np.cov(real_components)) / n)
    return aucs, covariance


def delong_test(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> float:
    """Two-sided p-value that two runs scored on the same images have the same AUC (DeLong's test)."""
    aucs, cov = delong_covariance(labels, np.stack([scores_a, scores_b]))
    difference, variance = aucs[0] - aucs[1], cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    if variance <= 0:  # identical rankings, or both perfect
        return 1.0 if difference == 0 else 0.0
    return math.erfc(abs(difference) / math.sqrt(2 * variance))  # two-sided normal tail


def holm_bonferroni(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error over all of them), in the given order."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    scaled = (len(p) - np.arange(len(p))) * p[order]
    adjusted = np.empty(len(p), dtype=np.float64)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def separable_pairs(labels: np.ndarray, scores: Mapping[str, np.ndarray], metric: str = "auc",
                    alpha: float = 0.05, threshold: float = 0.5) -> list[dict]:
    """For each pair of architectures scored on the same test images, whether the data separate them.

    metric "auc": DeLong's test; "accuracy": McNemar's at threshold. The p-values are Holm-adjusted
    over all pairs; a pair is separable where its adjusted p-value is below alpha.
    """
    tests = {"auc": delong_test, "accuracy": lambda y, a, b: mcnemar_test(y, a, b, threshold)}
    if metric not in tests:
        raise ValueError(f"metric must be one of {', '.join(tests)}, got {metric!r}")
    if any(len(s) != len(labels) for s in scores.values()):
        raise ValueError("every architecture must be scored on the same test images as labels")
    pairs = list(combinations(scores, 2))
    p_values = [tests[metric](labels, scores[a], scores[b]) for a, b in pairs]
    adjusted = holm_bonferroni(p_values) if pairs else np.empty(0)
    return [{"a": a, "b": b, "p_value": p, "p_adjusted": float(q), "separable": bool(q < alpha)}
            for (a, b), p, q in zip(pairs, p_values, adjusted)]
