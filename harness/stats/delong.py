"""DeLong's AUC machinery: midranks, each run's structural components, and the AUCs' covariance over
independent images (DeLong, DeLong and Clarke-Pearson, 1988, in the fast midrank form of Sun and Xu,
2014); the paired tests (stats.paired) and the crossed intervals (stats.crossed) build on it."""
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


def structural_components(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs of k score vectors on the same images (scores: k x images), and DeLong's structural
    components: for each fake, the share of reals it outranks (k x fakes); for each real, the share of
    fakes that outrank it (k x reals); ties count half (the fast midrank form of Sun and Xu, 2014)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    fakes, reals = scores[:, labels], scores[:, ~labels]
    m, n = fakes.shape[1], reals.shape[1]
    if m == 0 or n == 0:
        raise ValueError("DeLong's AUC needs both classes")
    rank_fakes = midranks(fakes, axis=1)
    rank_reals = midranks(reals, axis=1)
    rank_all = midranks(np.concatenate([fakes, reals], axis=1), axis=1)
    aucs = (rank_all[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    return aucs, (rank_all[:, :m] - rank_fakes) / n, 1 - (rank_all[:, m:] - rank_reals) / m


def delong_covariance(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of k score vectors on the same images (scores: k x images) and their covariance matrix, by
    DeLong's method, each image independent."""
    aucs, fake_components, real_components = structural_components(labels, scores)
    m, n = fake_components.shape[1], real_components.shape[1]
    covariance = (np.atleast_2d(np.cov(fake_components)) / m + np.atleast_2d(np.cov(real_components)) / n)
    return aucs, covariance
