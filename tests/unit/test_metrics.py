"""Intervals that hold and tests between runs: each result recomputed another way."""
import math

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm
from sklearn.metrics import roc_auc_score

from harness.stats.crossed import (
    accuracy_replicates,
    auc_replicates,
    crossed_paired_test,
    crossed_spread,
    paired_difference,
    unit_degrees_of_freedom,
)
from harness.stats.delong import delong_covariance, midranks
from harness.stats.intervals import mean_interval
from harness.stats.metrics import accuracy_interval, auc_interval, best_threshold, detection_metrics, roc_points
from harness.stats.paired import (
    delong_test,
    holm_bonferroni,
    image_pair_test,
    mcnemar_test,
    paired_t_test,
    separable_pairs,
)


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


# --- the detection metrics ---
def scored_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    """Labels and float32 scores as a model writes them: ties, saturated ends, skewed classes, a lone fake,
    every score equal, classes apart."""
    rng = np.random.default_rng(7)
    cases = []
    for n, fakes, decimals in ((400, 0.5, 2), (61, 0.2, 1), (1000, 0.9, 3), (9, 0.5, 6)):
        labels = (rng.random(n) < fakes).astype(np.int64)
        labels[:2] = [0, 1]
        cases.append((labels, np.clip(np.round(rng.normal(0.4 + 0.3 * labels, 0.3), decimals), 0, 1).astype(np.float32)))
    cases.append((np.r_[np.zeros(20, int), 1], rng.random(21).astype(np.float32)))
    cases.append((np.r_[np.zeros(5, int), np.ones(5, int)], np.full(10, 0.5, np.float32)))
    cases.append((np.r_[np.zeros(5, int), np.ones(5, int)], np.r_[np.zeros(5), np.ones(5)].astype(np.float32)))
    return cases


@pytest.mark.parametrize("labels, scores", scored_cases())
def test_the_metrics_are_scikit_learns(labels, scores):
    """Computed with NumPy in every job (harness.stats.metrics), each metric as scikit-learn computes it."""
    metrics = detection_metrics(labels, scores, threshold=0.45)
    exact = scores.astype(np.float64)  # as the harness compares them with a threshold (float32 would round 0.45)
    called = exact >= 0.5
    assert metrics["accuracy"] == skm.accuracy_score(labels, called)
    assert metrics["loss"] == pytest.approx(skm.log_loss(labels, np.clip(exact, 1e-7, 1 - 1e-7)), rel=1e-12)
    for name, function in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        assert metrics[name] == pytest.approx(function(labels, called, zero_division=0), rel=1e-12), name
    assert metrics["auc"] == pytest.approx(skm.roc_auc_score(labels, scores), rel=1e-12)
    assert metrics["average_precision"] == pytest.approx(skm.average_precision_score(labels, scores), rel=1e-12)
    assert metrics["accuracy_at_threshold"] == skm.accuracy_score(labels, exact >= 0.45)
    assert metrics["confusion_matrix"] == skm.confusion_matrix(labels, called, labels=[0, 1]).tolist()
    for ours, theirs in zip(roc_points(labels, scores), skm.roc_curve(labels, scores)):
        np.testing.assert_array_equal(ours, theirs)


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


# --- intervals over the test split's independent units ---
def wilson(p: float, n: float, z: float) -> tuple[float, float]:
    """Wilson's score interval, from its textbook form."""
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_over_independent_images_the_accuracy_interval_is_wilsons():
    labels, a, _ = two_runs(n=300)
    accuracy = np.mean((a >= 0.5) == labels)
    low, high, reason, df, _ = accuracy_interval(labels, a, np.arange(300))
    # the variance between 300 one-image units is p(1 - p) / 299: Wilson over 299 images, at t with 299 df
    assert (low, high) == pytest.approx(wilson(accuracy, 299, stats.t.ppf(0.975, 299))) and reason is None and df == 299
    assert high - low == pytest.approx(2 * 1.96 * math.sqrt(accuracy * (1 - accuracy) / 300), rel=0.05)


def test_images_of_one_source_count_as_one_unit():
    # ten crops of each photograph, scored alike: 30 photographs, not 300 independent images
    labels, a, _ = two_runs(n=30, seed=2)
    labels, a, groups = np.repeat(labels, 10), np.repeat(a, 10), np.repeat(np.arange(30), 10)
    low_images, high_images, _, _, _ = accuracy_interval(labels, a, np.arange(300))
    low_sources, high_sources, _, df, _ = accuracy_interval(labels, a, groups)
    assert (high_sources - low_sources) > 2.5 * (high_images - low_images)  # about sqrt(10) times wider
    accuracy = np.mean((a >= 0.5) == labels)
    # the design effect is 10: Wilson over the 30 photographs' worth of images, at t with 29 df (30 units alike)
    assert df == 29 and (low_sources, high_sources) == pytest.approx(wilson(accuracy, accuracy * (1 - accuracy) / (
        30 / 29 * np.sum((np.bincount(groups, (a >= 0.5) == labels) - 10 * accuracy) ** 2) / 300 ** 2), stats.t.ppf(0.975, 29)))


def test_with_errors_in_fewer_than_two_photographs_the_photographs_are_taken_as_trials():
    """No error in 10 photographs of 32 crops: how errors cluster by photograph cannot be told, so the
    interval is Wilson's over the 10 photographs (at t with 9 df), not over 320 images; with all three errors
    in one photograph, at least as wide as that, on no more degrees of freedom; errors in two photographs
    give the design effect they show; one image a unit, Wilson's over the images. Units of unequal size
    count as (sum n)^2 / sum n^2 trials, on the degrees of freedom of units weighing their size squared."""
    labels, groups = np.array([0, 1] * 160, dtype=bool), np.repeat(np.arange(10), 32)
    right = labels * 0.9 + 0.05
    none_wrong = accuracy_interval(labels, right, groups)
    assert none_wrong.units_as_trials and none_wrong.df == 9
    assert (none_wrong.low, none_wrong.high) == pytest.approx(wilson(1.0, 10, stats.t.ppf(0.975, 9)))
    in_one = right.copy()
    in_one[[35, 40, 60]] = 1 - in_one[[35, 40, 60]]  # three crops of photograph 1
    one = accuracy_interval(labels, in_one, groups)
    assert one.units_as_trials and one.df <= 9 and one.low <= wilson(317 / 320, 10, stats.t.ppf(0.975, 9))[0]
    in_two = right.copy()
    in_two[[3, 40]] = 1 - in_two[[3, 40]]  # photographs 0 and 1
    two = accuracy_interval(labels, in_two, groups)
    assert not two.units_as_trials and two.low > wilson(318 / 320, 10, stats.t.ppf(0.975, 9))[0]
    assert not accuracy_interval(labels, right, np.arange(320)).units_as_trials
    all_wrong = accuracy_interval(labels, 1 - right, groups)  # the right answers in no photograph: the same
    assert all_wrong.units_as_trials and all_wrong.low == 0.0 and all_wrong.high == pytest.approx(1 - none_wrong.low)
    sizes = np.array([100] + [10] * 9)  # one large photograph among small ones
    unequal = accuracy_interval(np.ones(190, dtype=bool), np.ones(190), np.repeat(np.arange(10), sizes))
    trials, df = 190 ** 2 / (sizes ** 2).sum(), 9 * (sizes ** 2).sum() ** 2 / (10 * (sizes ** 4).sum())
    assert unequal.df == pytest.approx(df) and (unequal.low, unequal.high) == pytest.approx(wilson(1.0, trials, stats.t.ppf(0.975, df)))


def test_the_accuracy_interval_stays_in_the_unit_interval_and_is_never_of_zero_width():
    labels = np.array([0, 1] * 30, dtype=bool)
    low, high, _, _, _ = accuracy_interval(labels, labels * 0.9, np.repeat(np.arange(6), 10))  # all right
    assert 0.0 < low < high == 1.0
    low, high, _, _, _ = accuracy_interval(labels, 1 - labels * 0.9, np.arange(60))  # all wrong
    assert low == 0.0 < high < 1.0


def test_with_too_few_groups_there_is_no_interval_and_a_reason():
    labels, a, _ = two_runs(n=40)
    for units, words in ((np.zeros(40, dtype=int), "1 independent unit, 5 needed"), (np.arange(40) % 4, "4 independent units")):
        for interval in (accuracy_interval(labels, a, units), auc_interval(labels, a, units)):
            assert interval.low is None and interval.high is None and interval.reason.startswith("too few units for an interval")
            assert words in interval.reason


def test_a_perfect_auc_has_no_interval_rather_than_one_of_zero_width():
    labels = np.array([0, 1] * 30, dtype=bool)
    low, high, reason, _, _ = auc_interval(labels, labels * 0.8 + 0.1, np.arange(60))
    assert low is None and high is None and "AUC of 1" in reason
    assert auc_interval(np.ones(10, dtype=bool), np.ones(10), np.arange(10)).reason.endswith("it has no AUC")


def test_the_auc_interval_over_images_is_delongs_on_the_logit_scale():
    labels, a, _ = two_runs(n=400)
    aucs, cov = delong_covariance(labels, a)
    low, high, _, df, _ = auc_interval(labels, a, np.arange(400))
    auc = aucs[0]
    assert 0 < low < auc < high < 1 and df == 399
    logit_half = (math.log(high / (1 - high)) - math.log(low / (1 - low))) / 2
    assert logit_half * auc * (1 - auc) == pytest.approx(1.96 * math.sqrt(cov[0, 0]), rel=0.01)


def test_the_auc_spread_between_units_is_delongs_with_one_image_per_unit():
    labels, a, b = two_runs(n=300)
    aucs, delong = delong_covariance(labels, np.stack([a, b]))
    one, difference = (crossed_spread(r, correlation=1.0) for r in (
        auc_replicates(labels, a[None], np.arange(300)),
        paired_difference(auc_replicates(labels, a[None], np.arange(300)), auc_replicates(labels, b[None], np.arange(300)))))
    m = labels.sum()
    assert one.mean == pytest.approx(aucs[0])
    # DeLong divides each class's squares by (m - 1) m; Obuchowski by m^2, times G / (G - 1); equal classes here
    assert one.variance == pytest.approx(delong[0, 0] * (m - 1) / m * 300 / 299, rel=1e-12)
    assert difference.variance == pytest.approx((delong[0, 0] + delong[1, 1] - 2 * delong[0, 1]) * (m - 1) / m * 300 / 299, rel=1e-12)


def test_the_auc_spread_between_groups_matches_a_bootstrap_of_whole_groups():
    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(60), 10)
    labels = np.arange(600) % 2 == 1
    shift = rng.normal(0, 0.8, 60)[groups]  # each photograph's fakes are as easy to catch as it makes them
    a = labels * (1.0 + shift) + rng.normal(size=600)
    b = a + 0.5 * rng.normal(size=600)
    one = crossed_spread(auc_replicates(labels, a[None], groups), correlation=1.0)
    difference = crossed_spread(paired_difference(auc_replicates(labels, a[None], groups), auc_replicates(labels, b[None], groups)))
    boots = []
    for _ in range(2000):
        draw = np.concatenate([np.flatnonzero(groups == g) for g in rng.integers(0, 60, 60)])
        boots.append([rank_auc(labels[draw], a[draw]), rank_auc(labels[draw], b[draw])])
    boots = np.array(boots)
    assert np.var(boots[:, 0], ddof=1) == pytest.approx(one.variance, rel=0.15)
    assert np.var(boots[:, 0] - boots[:, 1], ddof=1) == pytest.approx(difference.variance, rel=0.15)
    assert one.variance > 2 * delong_covariance(labels, a)[1][0, 0]  # images of one photograph are not independent


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
    p_values = {(x, y): delong_test(labels, scores[x], scores[y]) for scores in [{"A": a, "B": b, "Chance": chance}]
                for x, y in [("A", "B"), ("A", "Chance"), ("B", "Chance")]}
    pairs = separable_pairs({**p_values, ("A", "Untested"): None})
    by_pair = {(p["a"], p["b"]): p for p in pairs}
    assert set(by_pair) == {("A", "B"), ("A", "Chance"), ("B", "Chance"), ("A", "Untested")}
    assert all(by_pair[pair]["separable"] for pair in p_values)
    assert by_pair[("A", "B")]["p_adjusted"] == pytest.approx(min(1, 3 * p_values[("A", "B")]), rel=1e-9) or \
        by_pair[("A", "B")]["p_adjusted"] >= by_pair[("A", "B")]["p_value"]
    assert by_pair[("A", "Untested")] == {"a": "A", "b": "Untested", "p_value": None, "p_adjusted": None, "separable": None}
    same = separable_pairs({("A", "A again"): image_pair_test(labels, a, a.copy(), "accuracy")})
    assert same == [{"a": "A", "b": "A again", "p_value": 1.0, "p_adjusted": 1.0, "separable": False}]
    with pytest.raises(ValueError):
        image_pair_test(labels, a, b, "f1")


def test_the_paired_test_over_groups_is_the_paired_t_statistic_on_per_group_accuracy():
    rng = np.random.default_rng(7)
    groups = np.repeat(np.arange(8), 15)
    labels = rng.random(120) < 0.5
    a, b = rng.random(120), rng.random(120)
    per_group = [[np.mean(((s >= 0.5) == labels)[groups == g]) for g in range(8)] for s in (a, b)]
    statistic = stats.ttest_rel(*per_group).statistic
    first, second = (accuracy_replicates(((s >= 0.5) == labels)[None], groups) for s in (a, b))
    df = unit_degrees_of_freedom(paired_difference(first, second).influence[0], first.sizes, 1.0)
    assert df <= 7  # at most G - 1; less where the differences are concentrated in a few groups
    assert image_pair_test(labels, a, b, "accuracy", groups) == pytest.approx(2 * stats.t.sf(abs(statistic), df), rel=1e-9)
    assert image_pair_test(labels, a, a, "accuracy", groups) == 1.0
    b_scores = np.ones(120)
    b_scores[::15] = 0.0  # b wrong on one image of each group, a on none: nothing to judge the spread by
    assert image_pair_test(np.ones(120, dtype=bool), np.ones(120), b_scores, "accuracy", groups) is None


def test_the_paired_auc_test_over_groups_is_delongs_with_one_image_per_unit():
    labels, a, b = two_runs(n=2000)
    assert image_pair_test(labels, a, b, "auc", np.arange(2000)) == pytest.approx(delong_test(labels, a, b), rel=0.02)


def test_the_crossed_test_takes_at_most_the_seeds_degrees_of_freedom():
    rng = np.random.default_rng(8)
    units = np.repeat(np.arange(20), 10)
    a = accuracy_replicates(rng.random((3, 200)) < 0.8, units)
    b = accuracy_replicates(rng.random((3, 200)) < 0.7, units)
    spread = crossed_spread(paired_difference(a, b), correlation=1.0)
    assert spread.df > 2
    assert crossed_paired_test(a, b) == pytest.approx(2 * stats.t.sf(abs(spread.mean) / math.sqrt(spread.variance), 2), rel=1e-9)


def test_the_paired_t_test_over_seeds_is_scipys_on_the_seeds_both_ran():
    a, b = {0: 0.91, 1: 0.88, 2: 0.93, 3: 0.90}, {0: 0.86, 1: 0.87, 2: 0.90, 5: 0.5}
    assert paired_t_test(a, b) == pytest.approx(stats.ttest_rel([0.91, 0.88, 0.93], [0.86, 0.87, 0.90]).pvalue, rel=1e-9)
    assert paired_t_test({0: 0.9}, {0: 0.8}) is None  # one seed in common: no spread
    assert paired_t_test({0: 0.9, 1: 0.8}, {0: 0.85, 1: 0.75}) is None  # the same difference twice: no spread
    assert paired_t_test({0: 0.9, 1: 0.8}, {0: 0.9, 1: 0.8}) == 1.0


def test_midranks_are_scipys_rankdata():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 5, (3, 40)).astype(float)  # many ties
    assert np.array_equal(midranks(values), stats.rankdata(values, axis=1))
