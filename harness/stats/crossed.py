"""Intervals and paired tests that count the seeds and the test units together.

An architecture's test accuracy varies with its seed (initialisation, order) and with the test set (which
photographs, or identities, or images were drawn). With the split fixed, every seed scores the same
units: the design is crossed, seeds x units, and the variance of the mean over seeds is that of a two-way
random-effects model (Cornfield and Tukey 1956; Brennan, Generalizability Theory, 2001, ch. 3):

    Var(mean) = var_seed / S + var_unit / G + var_interaction / (S G),

estimated from the mean squares of the seeds x units table of each unit's influence on each seed's
value (components truncated at zero), with Satterthwaite's degrees of freedom (1946). Each unit's
influence is its share of the metric's deviation: for accuracy, (right - accuracy x images) / all images;
for AUC, DeLong's structural components summed per unit (Obuchowski 1997). With one seed the seeds' term
cannot be estimated and the variance is the units' alone: seed variance is not counted.

The units' degrees of freedom follow the working model of a beta-binomial (units of unequal size weigh
unequally: Bell and McCaffrey 2002's reasoning), and never exceed what the observed influences carry
(errors concentrated in a few units leave few degrees of freedom). Plain numpy and math: the leaderboard
imports this. benchmarks/interval_coverage.py measures what the intervals cover and the tests' size.
"""
import math
from typing import NamedTuple

import numpy as np

from harness.stats.delong import structural_components
from harness.stats.intervals import t_quantile, two_sided_p, wilson_interval

CONFIDENCE = 0.95
MIN_UNITS = 5  # below, the interval cannot be told from [0, 1] and its coverage from chance (the benchmark)
MIN_SEEDS = 3  # an interval that counts seed variance: with 2 seeds, skewed seed results are not covered


class Replicates(NamedTuple):
    """A metric on one test set for S seeds: each seed's value (S), each unit's influence on it (S x G,
    summing to zero over the units for each seed), and each unit's image count (G)."""
    per_seed: np.ndarray
    influence: np.ndarray
    sizes: np.ndarray


class Spread(NamedTuple):
    """The mean over seeds, its estimated variance and the variance's degrees of freedom."""
    mean: float
    variance: float
    df: float


def accuracy_replicates(correct: np.ndarray, units: np.ndarray) -> Replicates:
    """correct: S x N, whether each seed got each test image right; units: each image's unit, 0..G-1."""
    correct = np.atleast_2d(np.asarray(correct, dtype=np.float64))
    count = int(units.max()) + 1
    sizes = np.bincount(units, minlength=count).astype(np.float64)
    right = np.stack([np.bincount(units, weights=row, minlength=count) for row in correct])
    per_seed = correct.mean(axis=1)
    return Replicates(per_seed, (right - per_seed[:, None] * sizes) / sizes.sum(), sizes)


def auc_replicates(labels: np.ndarray, scores: np.ndarray, units: np.ndarray) -> Replicates:
    """scores: S x N, each seed's probabilities on the same images (labels: 1 = fake, both classes)."""
    labels = np.asarray(labels).astype(bool)
    aucs, fake_parts, real_parts = structural_components(labels, scores)
    count = int(units.max()) + 1
    fakes, reals = units[labels], units[~labels]

    def per_unit(parts: np.ndarray, members: np.ndarray) -> np.ndarray:  # S x G: each unit's sum less its share
        sums = np.stack([np.bincount(members, weights=row, minlength=count) for row in parts])
        return (sums - np.bincount(members, minlength=count) * aucs[:, None]) / parts.shape[1]

    return Replicates(aucs, per_unit(fake_parts, fakes) + per_unit(real_parts, reals),
                      np.bincount(units, minlength=count).astype(np.float64))


def unit_degrees_of_freedom(unit_influence: np.ndarray, sizes: np.ndarray, correlation: float) -> float:
    """The degrees of freedom of the between-unit variance: under a working model where a unit of n images
    weighs n (1 + (n - 1) correlation) (a beta-binomial's variance), (G - 1) (sum w)^2 / (G sum w^2), which
    is G - 1 for units of equal size; and where units hold several images, at most what the observed
    influences carry, 3 (sum z^2)^2 / sum z^4 (a chi-square's kurtosis), as errors in few units carry little."""
    count = len(sizes)
    weight = sizes * (1 + (sizes - 1) * correlation)
    modelled = (count - 1) * weight.sum() ** 2 / (count * (weight ** 2).sum())
    squares = unit_influence ** 2
    if sizes.max() <= 1 or squares.sum() <= 0:
        return float(modelled)
    return float(max(1.0, min(modelled, 3 * squares.sum() ** 2 / (squares ** 2).sum())))


def design_correlation(mean: float, unit_variance: float, sizes: np.ndarray) -> float:
    """The intra-unit correlation of right answers that a between-unit variance implies, from the design
    effect 1 + (m - 1) rho, m the size-weighted mean unit size (0 where the variance is binomial or less)."""
    binomial = mean * (1 - mean) / sizes.sum()
    weighted_size = float((sizes ** 2).sum() / sizes.sum())
    if binomial <= 0 or weighted_size <= 1:
        return 0.0
    return min(1.0, max(0.0, (unit_variance / binomial - 1) / (weighted_size - 1)))


def crossed_spread(replicates: Replicates, correlation: float | None = None) -> Spread:
    """The mean over seeds and the variance of a new draw of both seeds and test units (the two-way
    random-effects estimate, components truncated at zero), with Satterthwaite's degrees of freedom.
    correlation: the working model's intra-unit correlation (None: the design effect's, for a proportion).
    With one seed, the units' variance alone."""
    per_seed, influence, sizes = replicates
    seeds, units = influence.shape
    mean = float(per_seed.mean())
    unit_mean = influence.mean(axis=0)
    unit_part = units / (units - 1) * float((unit_mean ** 2).sum())
    rho = design_correlation(mean, unit_part, sizes) if correlation is None else correlation
    unit_df = unit_degrees_of_freedom(unit_mean, sizes, rho)
    if seeds == 1:
        return Spread(mean, unit_part, unit_df)
    seed_part = float(((per_seed - mean) ** 2).sum()) / (seeds * (seeds - 1))
    cross_df = (seeds - 1) * (units - 1)
    cross = units * float(((influence - unit_mean) ** 2).sum()) / (seeds * (seeds - 1) * (units - 1))
    # Each main term counts the interaction once: the variance is seed + unit - interaction. Where a term
    # falls below the interaction, its own component is taken as zero (the interaction stands in for it).
    use_seed, use_unit = int(seed_part >= cross), int(unit_part >= cross)
    parts = [(seed_part, seeds - 1.0)] * use_seed + [(unit_part, unit_df)] * use_unit + [(cross * (1 - use_seed - use_unit), cross_df)]
    variance = sum(value for value, _ in parts)
    spread_df = sum(value ** 2 / df for value, df in parts)
    return Spread(mean, variance, variance ** 2 / spread_df if spread_df > 0 else unit_df)


def seed_spread(per_seed: np.ndarray) -> Spread:
    """The mean over seeds and its variance from the seeds' spread alone (S - 1 degrees of freedom): over
    new seeds on this test set, or over new seeds and splits where each seed drew its own (--resplit)."""
    values = np.asarray(per_seed, dtype=np.float64)
    mean = float(values.mean())
    return Spread(mean, float(((values - mean) ** 2).sum()) / (len(values) * (len(values) - 1)), len(values) - 1.0)


def proportion_interval(spread: Spread, images: float | None, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson's interval with a design effect (Korn and Graubard 1998): Wilson's over the effective number
    of images the variance implies, at Student's t for its degrees of freedom; images: the binomial floor
    (never more effective images than there are; None: no floor, as for a fixed test set)."""
    mean, variance, df = spread
    if variance <= 0 and images is None:
        raise ValueError("no spread and no binomial floor: an interval would have zero width")
    effective = min(mean * (1 - mean) / variance if variance > 0 else math.inf, math.inf if images is None else float(images))
    return wilson_interval(mean, effective, t_quantile((1 + confidence) / 2, df))


class AccuracyBounds(NamedTuple):
    """An accuracy's interval, the degrees of freedom of its t, and whether its units were taken as trials."""
    low: float
    high: float
    df: float
    units_as_trials: bool


# What a caption says where accuracy_bounds took the units as trials
UNITS_AS_TRIALS = "accuracy with its {unit} as trials (its errors, or its right answers, in fewer than two)"


def accuracy_bounds(correct: np.ndarray, units: np.ndarray, confidence: float = CONFIDENCE) -> AccuracyBounds:
    """The mean accuracy's interval over new seeds and new units (correct: S x N, whether each seed got each
    test image right; units: each image's unit, 0..G-1): Wilson's with a design effect (proportion_interval)
    of the crossed variance (crossed_spread).

    Where units hold several images and the wrong answers of all the seeds together fall in fewer than two
    of them (or the right answers do), how errors cluster by unit cannot be estimated: the variance between
    units rests on one unit that holds errors, or none, and such a test set looks the same whether errors
    are spread thin or concentrated in photographs it does not hold (the variance then reads near binomial
    and the interval lies above the truth: benchmarks/interval_coverage.py's concentrated regime,
    docs/science.md). The units are then taken as trials: the variance is at least that of a proportion over
    (sum n)^2 / sum n^2 trials (each unit wholly right or wrong), at Student's t on no more degrees of freedom
    than such units give (unit_degrees_of_freedom at correlation 1: G - 1 for units of equal size). A
    threshold, not a blend: with a second unit holding errors the estimate is used again, and may be narrower."""
    correct = np.atleast_2d(np.asarray(correct, dtype=bool))
    replicates = accuracy_replicates(correct, units)
    spread, sizes, trials = crossed_spread(replicates), replicates.sizes, float(correct.shape[1])
    holding = min(len(np.unique(units[~correct.all(axis=0)])), len(np.unique(units[correct.any(axis=0)])))
    units_as_trials = bool(sizes.max() > 1 and holding < 2)
    if units_as_trials:
        trials = float(sizes.sum() ** 2 / (sizes ** 2).sum())
        floor = spread.mean * (1 - spread.mean) / trials
        spread = Spread(spread.mean, max(spread.variance, floor),
                        min(spread.df, unit_degrees_of_freedom(np.zeros(len(sizes)), sizes, 1.0)))
    low, high = proportion_interval(spread, trials, confidence)
    return AccuracyBounds(low, high, spread.df, units_as_trials)


def logit_interval(spread: Spread, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The interval of a metric in (0, 1) on the logit scale, at Student's t (None at 0 or 1, or no spread)."""
    mean, variance, df = spread
    if not 0 < mean < 1 or variance <= 0:
        return None
    half = t_quantile((1 + confidence) / 2, df) * math.sqrt(variance) / (mean * (1 - mean))
    centre = math.log(mean / (1 - mean))
    return (1 / (1 + math.exp(half - centre)), 1 / (1 + math.exp(-half - centre)))


def paired_difference(a: Replicates, b: Replicates) -> Replicates:
    """Two architectures' replicates on the same seeds and units, as one: their difference."""
    return Replicates(a.per_seed - b.per_seed, a.influence - b.influence, a.sizes)


def crossed_paired_test(a: Replicates, b: Replicates, correlation: float = 1.0) -> float | None:
    """Two-sided p-value that two architectures, scored by the same seeds on the same units, are equally
    good over new seeds and new units: their difference over its crossed variance (correlation 1: units
    weigh by their size squared, as differences between architectures cluster fully), at Student's t
    with Satterthwaite's degrees of freedom but never more than the seeds' (S - 1): with few seeds the
    seed term's estimate is often small by chance, and Satterthwaite's degrees of freedom then overstate
    what the variance rests on (the benchmark measures the size). None where the difference does not vary
    but is not zero."""
    spread = crossed_spread(paired_difference(a, b), correlation)
    seeds = len(a.per_seed)
    df = spread.df if seeds == 1 else min(spread.df, seeds - 1.0)
    if spread.variance <= 0:
        return 1.0 if spread.mean == 0 else None
    return two_sided_p(spread.mean / math.sqrt(spread.variance), df)
