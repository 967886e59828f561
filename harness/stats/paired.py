"""Paired tests between runs on the unit that is independent: test images (McNemar for accuracy, DeLong
for AUC), groups of test images (crossed.py, one seed) or seeds (Student's paired t), with
Holm's correction over the pairs. numpy and math only: the leaderboard, a command typed often, imports
this (tests/unit recompute each result with scipy and check the tests' size by simulation)."""
import math
import string
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from harness.stats.crossed import accuracy_replicates, auc_replicates, crossed_paired_test
from harness.stats.delong import delong_covariance
from harness.stats.intervals import two_sided_p


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


def paired_t_test(values_a: Mapping[int, float], values_b: Mapping[int, float]) -> float | None:
    """Two-sided p-value that two architectures' metric has the same mean over seeds: Student's paired t
    on the seeds both ran (keyed by seed; a seed gives both the same split and data order). None with
    fewer than two seeds in common, or where the differences do not vary but are not all zero."""
    common = sorted(set(values_a) & set(values_b))
    if len(common) < 2:
        return None
    differences = np.array([values_a[s] - values_b[s] for s in common], dtype=np.float64)
    return _t_p_value(float(differences.mean()), float(np.var(differences, ddof=1)) / len(common), len(common) - 1)


def _t_p_value(difference: float, variance: float, df: int) -> float | None:
    if variance <= 0:
        return 1.0 if difference == 0 else None
    return two_sided_p(difference / math.sqrt(variance), df)


def image_pair_test(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, metric: str,
                    units: np.ndarray | None = None, threshold: float = 0.5) -> float | None:
    """The paired test of one metric ("accuracy" or "auc") between two runs of one seed each on the same
    test images: over the images where they are independent (units None: McNemar's, DeLong's), else over
    the units (crossed.crossed_paired_test with one seed: the difference over its spread between units,
    DeLong's with Obuchowski's covariance for AUC). Seed variance is not counted."""
    if metric not in ("accuracy", "auc"):
        raise ValueError(f"metric must be accuracy or auc, got {metric!r}")
    if units is None:
        return mcnemar_test(labels, scores_a, scores_b, threshold) if metric == "accuracy" else delong_test(labels, scores_a, scores_b)
    labels = np.asarray(labels).astype(bool)
    if metric == "accuracy":
        a, b = ((np.asarray(s, dtype=np.float64) >= threshold) == labels for s in (scores_a, scores_b))
        return crossed_paired_test(accuracy_replicates(a[None], units), accuracy_replicates(b[None], units))
    return crossed_paired_test(auc_replicates(labels, np.asarray(scores_a)[None], units),
                               auc_replicates(labels, np.asarray(scores_b)[None], units))


def separable_pairs(p_values: Mapping[tuple[str, str], float | None], alpha: float = 0.05) -> list[dict[str, Any]]:
    """Each pair's p-value Holm-adjusted over the pairs tested (None: not tested); a tested pair is
    separable where its adjusted p-value is below alpha, an untested one neither separable nor not."""
    tested = {pair: p for pair, p in p_values.items() if p is not None}
    adjusted = dict(zip(tested, holm_bonferroni(list(tested.values())))) if tested else {}
    return [{"a": a, "b": b, "p_value": p, "p_adjusted": None if p is None else float(adjusted[(a, b)]),
             "separable": None if p is None else bool(adjusted[(a, b)] < alpha)} for (a, b), p in p_values.items()]


def compact_letters(order: Sequence[str], separable: Collection[frozenset[str]]) -> dict[str, str]:
    """The compact letter display of pairwise tests (Piepho's insert-and-absorb, 2004): each name gets
    letters such that two names share a letter exactly when their pair is not separable. Letters run
    a, b, ... in the order given (the table's ranking; past z, A to Z, then g52, g53, ... spaced); a pair
    not in separable counts as not separable."""
    columns: list[set[str]] = [set(order)]
    for pair in separable:
        a, b = tuple(pair)
        split = []
        for column in columns:
            if a in column and b in column:  # insert: the column splits in two, one without each
                split += [column - {a}, column - {b}]
            else:
                split.append(column)
        # absorb: a column inside another says nothing more
        columns = [c for i, c in enumerate(split) if not any(c < o or (c == o and j < i) for j, o in enumerate(split))]
    rank = {name: number for number, name in enumerate(order)}
    columns.sort(key=lambda column: min(rank[name] for name in column))
    letters = [*string.ascii_lowercase, *string.ascii_uppercase, *(f"g{i}" for i in range(52, len(columns)))]
    shown = {name: [letters[i] for i, column in enumerate(columns) if name in column] for name in order}
    return {name: ("".join if len(columns) <= 52 else " ".join)(tokens) for name, tokens in shown.items()}
