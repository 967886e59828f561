"""Intervals that hold and tests between runs: each result recomputed another way."""
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from harness.stats.intervals import mean_interval
from harness.stats.metrics import _weighted_auc, best_threshold, bootstrap_interval, detection_metrics
from harness.stats.paired import delong_covariance, delong_test, holm_bonferroni, mcnemar_test, midranks, separable_pairs


def rank_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUC as the Mann-Whitney statistic, for an independent check."""
    ranks = stats.rankdata(scores)
    m, n = labels.sum(), (~labels).sum()
    return (ranks[labels].sum() - m * (m + 1) / 2) / (m * n)


def two_runs(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and the scores of two correlated detectors, b a little worse than a."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2 == 1
    shared = rng.normal(size=n)
    a = labels * 1.2 + shared + 0.5 * rng.normal(size=n)
    b = labels * 0.9 + shared + 0.7 * rng.normal(size=n)
    return labels, 1 / (1 + np.exp(-a)), 1 / (1 + np.exp(-b))


# --- intervals over seeds ---
def test_the_95_percent_interval_of_a_known_case():
    mean, lo, hi = mean_interval([0.90, 0.92, 0.94])
    half = 4.302653 * 0.02 / math.sqrt(3)  # t(0.975, 2 degrees of freedom), s = 0.02
    assert mean == pytest.approx(0.92) and lo == pytest.approx(0.92 - half) and hi == pytest.approx(0.92 + half)


def test_one_seed_has_no_interval_rather_than_one_of_zero_width():
    assert mean_interval([0.8]) == (0.8, None, None)
    assert mean_interval([0.8, None, math.nan]) == (0.8, None, None)
    assert mean_interval([]) == (None, None, None)


def test_the_interval_is_clipped_to_the_bounds_of_the_metric():
    mean, lo, hi = mean_interval([0.5, 0.99])  # unclipped: about [-2.4, 3.9]
    assert mean == pytest.approx(0.745) and (lo, hi) == (0.0, 1.0)
    _, lo, hi = mean_interval([0.2, 1.9], bounds=(0.0, None))  # a loss: bounded below only
    assert lo == 0.0 and hi > 1.9


# --- the threshold ---
def test_a_threshold_chosen_on_saturated_scores_reproduces_its_accuracy():
    # float32 probabilities of a confident model: the fakes at 1.0, the reals one float below it
    labels = np.r_[np.zeros(40), np.ones(40)].astype(np.int64)
    scores = np.r_[np.full(40, np.nextafter(np.float32(1), np.float32(0))), np.ones(40)].astype(np.float32)
    assert scores[0] == np.float32(0.99999994)
    threshold = best_threshold(labels, scores)
    assert scores[0] < threshold <= 1.0
    metrics = detection_metrics(labels, scores, threshold)
    assert metrics["accuracy_at_threshold"] == 1.0 and metrics["auc"] == 1.0 and metrics["eer"] == 0.0


def test_the_threshold_reaches_the_best_accuracy_any_threshold_reaches():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 500)
    # many ties and saturated values, in float32 as the model writes them
    scores = np.clip(np.round(rng.normal(0.55 + 0.2 * labels, 0.3), 3), 0, 1).astype(np.float32)
    scores[:50] = 1.0
    best = max(np.mean((scores >= t) == labels) for t in np.r_[np.unique(scores), 2.0])  # every cut, by hand
    threshold = best_threshold(labels, scores)
    assert detection_metrics(labels, scores, threshold)["accuracy_at_threshold"] == best
    assert threshold not in set(scores.astype(np.float64))


def test_among_equally_good_thresholds_the_one_nearest_one_half():
    labels = np.array([0, 0, 1, 1])
    assert best_threshold(labels, np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(0.5)
    assert best_threshold(labels, np.array([0.1, 0.3, 0.35, 0.9])) == pytest.approx(0.325)


# --- bootstrap over test images ---
def test_the_bootstrap_is_seeded_and_its_estimate_is_the_metric():
    labels, a, _ = two_runs()
    auc = bootstrap_interval(labels, a, "auc", n_boot=500, seed=3)
    assert auc == bootstrap_interval(labels, a, "auc", n_boot=500, seed=3)
    assert auc[0] == pytest.approx(roc_auc_score(labels, a)) and auc[1] < auc[0] < auc[2]
    accuracy = bootstrap_interval(labels, a, "accuracy", n_boot=500, seed=3)
    assert accuracy[0] == pytest.approx(np.mean((a >= 0.5) == labels))


def test_the_auc_of_a_draw_is_the_auc_weighted_by_how_often_each_image_is_drawn():
    labels, a, _ = two_runs(n=200)
    a = np.round(a, 2)  # ties
    weights = np.random.default_rng(0).multinomial(200, np.full(200, 1 / 200), size=5).astype(float)
    expected = [roc_auc_score(labels, a, sample_weight=w) for w in weights]
    assert _weighted_auc(weights, labels, a) == pytest.approx(expected)


def test_the_bootstrap_interval_matches_the_normal_approximation():
    labels, a, _ = two_runs(n=600)
    _, lo, hi = bootstrap_interval(labels, a, "auc", n_boot=2000, seed=0)
    _, cov = delong_covariance(labels, a)
    assert hi - lo == pytest.approx(2 * 1.96 * math.sqrt(cov[0, 0]), rel=0.15)
    accuracy, lo, hi = bootstrap_interval(labels, a, "accuracy", n_boot=2000, seed=0)
    assert hi - lo == pytest.approx(2 * 1.96 * math.sqrt(accuracy * (1 - accuracy) / len(labels)), rel=0.15)


def test_the_bootstrap_draws_whole_sources_where_given():
    # ten crops of each photograph, scored alike: 30 photographs, not 300 independent images
    labels, a, _ = two_runs(n=30, seed=2)
    labels, a, groups = np.repeat(labels, 10), np.repeat(a, 10), np.repeat(np.arange(30), 10)
    _, lo_images, hi_images = bootstrap_interval(labels, a, "accuracy", n_boot=1000)
    _, lo_sources, hi_sources = bootstrap_interval(labels, a, "accuracy", groups=groups, n_boot=1000)
    assert (hi_sources - lo_sources) > 2 * (hi_images - lo_images)  # about sqrt(10) times wider
    assert 0.0 <= lo_sources and hi_sources <= 1.0


def test_the_bootstrap_stays_in_the_unit_interval():
    labels = np.array([0, 1] * 10, dtype=bool)
    assert bootstrap_interval(labels, labels * 0.9, "accuracy", n_boot=200) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        bootstrap_interval(labels, labels * 0.9, "f1")


# --- paired tests between two runs ---
def test_mcnemar_exact_for_few_discordant_pairs_equals_the_binomial_test():
    labels = np.ones(40, dtype=bool)
    a = np.r_[np.ones(30), np.zeros(10)]  # a wrong on the last 10
    b = np.r_[np.ones(22), np.zeros(8), np.ones(6), np.zeros(4)]  # 8 wrong where a is right, 6 right where a is not
    only_a, only_b = 8, 6
    assert mcnemar_test(labels, a, b) == pytest.approx(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)
    assert mcnemar_test(labels, a, a) == 1.0


def test_mcnemar_with_many_discordant_pairs_is_the_corrected_chi_square():
    labels = np.ones(100, dtype=bool)
    a = np.r_[np.ones(40), np.zeros(20), np.ones(40)]
    b = np.r_[np.zeros(40), np.ones(20), np.ones(40)]  # 40 only a right, 20 only b right
    statistic = (abs(40 - 20) - 1) ** 2 / 60
    assert mcnemar_test(labels, a, b) == pytest.approx(math.erfc(math.sqrt(statistic / 2)))  # chi-square, 1 df


def test_delong_aucs_and_variances_match_a_paired_bootstrap():
    labels, a, b = two_runs(n=400)
    aucs, cov = delong_covariance(labels, np.stack([a, b]))
    assert aucs == pytest.approx([roc_auc_score(labels, a), roc_auc_score(labels, b)])
    rng = np.random.default_rng(0)
    fakes, reals = np.flatnonzero(labels), np.flatnonzero(~labels)
    boots = []
    for _ in range(2000):  # images drawn within each class, the same draw for both runs
        draw = np.r_[rng.choice(fakes, len(fakes)), rng.choice(reals, len(reals))]
        boots.append([rank_auc(labels[draw], a[draw]), rank_auc(labels[draw], b[draw])])
    boots = np.array(boots)
    assert np.var(boots[:, 0], ddof=1) == pytest.approx(cov[0, 0], rel=0.15)
    assert np.var(boots[:, 0] - boots[:, 1], ddof=1) == pytest.approx(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], rel=0.15)


def test_delong_separates_a_better_detector_and_not_an_equal_one():
    labels, a, b = two_runs(n=2000)
    assert delong_test(labels, a, b) < 0.01
    assert delong_test(labels, a, a) == 1.0
    rng = np.random.default_rng(5)
    _, c, _ = two_runs(n=2000, seed=6)
    p_values = [delong_test(labels, c, c + rng.normal(0, 0.02, len(c))) for _ in range(5)]
    assert min(p_values) > 0.001  # a copy with a little noise is not a different detector


# --- many pairs ---
def test_holm_adjusts_as_computed_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.06
    assert holm_bonferroni([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_bonferroni([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_separable_pairs_after_correction():
    labels, a, b = two_runs(n=2000)
    chance = np.random.default_rng(1).uniform(size=len(labels))
    pairs = separable_pairs(labels, {"A": a, "B": b, "Chance": chance})
    by_pair = {(p["a"], p["b"]): p for p in pairs}
    assert set(by_pair) == {("A", "B"), ("A", "Chance"), ("B", "Chance")}
    assert all(p["separable"] for p in pairs)
    assert by_pair[("A", "B")]["p_adjusted"] >= by_pair[("A", "B")]["p_value"]
    same = separable_pairs(labels, {"A": a, "A again": a.copy()}, metric="accuracy")
    assert same == [{"a": "A", "b": "A again", "p_value": 1.0, "p_adjusted": 1.0, "separable": False}]
    with pytest.raises(ValueError):
        separable_pairs(labels, {"A": a, "short": b[:10]})


def test_midranks_are_scipys_rankdata():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 5, (3, 40)).astype(float)  # many ties
    assert np.array_equal(midranks(values), stats.rankdata(values, axis=1))
