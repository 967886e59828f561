"""A leaderboard row's interval and the separability test, counting the seeds and the test units together
(stats.crossed), and the runs left out of both (stats.collapse): read from each run's record and its test
scores. Plain Python and numpy, as the leaderboard.

Populations: `new-test-set` (the default), the accuracy over new seeds and new test units (photographs,
identities or images) drawn as these were; `this-test-set`, over new seeds on this test set (conditional
on it). With --resplit each seed drew its own split, so the seeds' spread covers both and there is no
one test set to condition on.
"""
from typing import Any, NamedTuple

import numpy as np

from harness.stats.collapse import DIVERGED, collapsed_runs, run_score
from harness.stats.crossed import (
    MIN_SEEDS,
    MIN_UNITS,
    UNITS_AS_TRIALS,
    Replicates,
    Spread,
    accuracy_bounds,
    accuracy_replicates,
    auc_replicates,
    crossed_paired_test,
    crossed_spread,
    logit_interval,
    proportion_interval,
    seed_spread,
)
from harness.store.paths import SweepPaths
from harness.store.records import RunRecord
from harness.store.schema import DamagedFile

NO_SCORES = "test scores missing or damaged (test_scores.npy)"


class ScoredRuns(NamedTuple):
    """The runs of one architecture scored on one test set: labels, probabilities (runs x images), each
    image's unit, and what a unit is ("groups" where the manifest gives them, else "images")."""
    labels: np.ndarray
    probs: np.ndarray
    units: np.ndarray
    unit: str

    @property
    def correct(self) -> np.ndarray:
        return (self.probs >= 0.5) == self.labels

    def replicates(self, metric: str) -> Replicates:
        if metric == "auc":
            return auc_replicates(self.labels, self.probs, self.units)
        return accuracy_replicates(self.correct, self.units)


def run_scores(sweep: SweepPaths, run_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """A run's test labels, probabilities and each image's group number (None where the manifest has no
    groups); None where its test_scores.npy is missing or not what the run writes."""
    from harness.store.run_files import read_test_scores

    try:
        scores = read_test_scores(sweep.run(run_id).test_scores)
    except DamagedFile:
        return None
    return None if scores is None else (scores[0].astype(bool), scores[1], scores[2])


def scored_runs(sweep: SweepPaths, records: list[RunRecord]) -> ScoredRuns | str:
    """The records' runs on their common test set, or why there is none (scores missing, or the runs were
    not scored on the same images: --resplit)."""
    found = [run_scores(sweep, r.run_id) for r in records]
    scores = [f for f in found if f is not None]
    if len(scores) < len(found):
        return NO_SCORES
    labels, _, groups = scores[0]
    if any(not np.array_equal(other, labels) or not same_groups(units, groups) for other, _, units in scores):
        return "not all seeds were scored on the same test images"
    for record, (_, probs, _) in zip(records, scores):  # a file from disk: it must be the run's own
        if not np.isclose(np.mean((probs >= 0.5) == labels), (record.test or {}).get("accuracy", np.nan), rtol=0, atol=1e-9):
            return f"{record.run_id}'s test scores (test_scores.npy) disagree with its record's test accuracy"
    units = np.arange(len(labels)) if groups is None else groups
    return ScoredRuns(labels, np.stack([probs for _, probs, _ in scores]), units, "images" if groups is None else "groups")


def same_groups(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Whether two runs' test images fall in the same groups (None: the manifest has none)."""
    return a is None and b is None or (a is not None and b is not None and np.array_equal(a, b))


def left_out(records: list[RunRecord], failed: list[RunRecord]) -> dict[str, str]:
    """The runs of one architecture named rather than averaged: completed ones at chance while their
    siblings learnt, and failed ones whose training diverged (run id -> why)."""
    out = collapsed_runs({r.run_id: score for r in records if (score := run_score(r.test or {})) is not None})
    out.update({r.run_id: str(r.error) for r in failed if str(r.error or "").startswith(DIVERGED)})
    return out


def _bounds(metric: str, spread: Spread, images: int | None) -> tuple[float, float] | None:
    return proportion_interval(spread, images) if metric == "accuracy" else logit_interval(spread)


def _interval_fields(bounds: dict[str, tuple[float, float] | None], population: str | None, method: str | None,
                     reason: str | None, df: float | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"interval_population": population, "interval_method": method, "interval_df": df,
                              "interval_reason": reason}
    for metric in ("accuracy", "auc"):
        found = bounds.get(metric)
        fields[f"{metric}_lo"], fields[f"{metric}_hi"] = found if found else (None, None)
    return fields


def resplit_interval(records: list[RunRecord]) -> dict[str, Any]:
    """Each seed drew its own split: the seeds' values are independent draws of seed and test set."""
    seeds = len(records)
    if seeds < MIN_SEEDS:
        return _interval_fields({}, None, None, f"{seeds} seeds on their own splits (--resplit): too few for an interval "
                                f"({MIN_SEEDS} needed)")
    images = sum(int((r.test or {}).get("count") or 0) for r in records) or None  # the seeds' test sets, all of them
    bounds = {}
    for metric in ("accuracy", "auc"):
        values = [(r.test or {}).get(metric) for r in records]
        if None not in values:
            bounds[metric] = _bounds(metric, seed_spread(np.array(values, dtype=np.float64)), images)
    return _interval_fields(bounds, "new splits", "Wilson with a design effect over the seeds, each on its own split "
                            "(--resplit); AUC on the logit scale", None, seeds - 1.0)


def fixed_split_interval(scored: ScoredRuns, population: str) -> dict[str, Any]:
    """The split fixed: seeds and units crossed (new-test-set), or seeds alone (this-test-set)."""
    seeds, count = len(scored.probs), int(scored.units.max()) + 1
    word = f"test {scored.unit}"
    if population == "new-test-set" and count < MIN_UNITS:
        return _interval_fields({}, None, None, f"too few units for an interval: {count} {word}, {MIN_UNITS} needed")
    if seeds > 1 and seeds < MIN_SEEDS:
        return _interval_fields({}, None, None, f"{seeds} seeds: too few for an interval that counts seed variance "
                                f"({MIN_SEEDS} needed); with one seed the interval counts the {word} alone")
    both = bool(scored.labels.any() and not scored.labels.all())
    bounds: dict[str, tuple[float, float] | None] = {}
    if population == "this-test-set":
        if seeds < MIN_SEEDS:
            return _interval_fields({}, None, None, f"{seeds} seed: an interval over seeds on this test set needs {MIN_SEEDS}")
        for metric in ("accuracy", "auc") if both else ("accuracy",):
            spread = seed_spread(scored.replicates(metric).per_seed)
            bounds[metric] = _bounds(metric, spread, None) if spread.variance > 0 else None
        reason = None if bounds["accuracy"] else "every seed scored the same on this test set: no spread to estimate"
        return _interval_fields(bounds, "this test set", "Wilson with a design effect over the seeds, conditional on this "
                                "test set (--population new-test-set counts the test units too)", reason, seeds - 1.0)
    accuracy = accuracy_bounds(scored.correct, scored.units)
    bounds["accuracy"] = (accuracy.low, accuracy.high)
    if both:
        bounds["auc"] = _bounds("auc", crossed_spread(scored.replicates("auc"), correlation=1.0), None)
    method = (f"Wilson with a design effect over the {word}; 1 seed: seed variance not counted" if seeds == 1 else
              f"Wilson with a design effect over seeds x {word} crossed (two-way random effects)")
    if accuracy.units_as_trials:
        method += "; " + UNITS_AS_TRIALS.format(unit=word)
    return _interval_fields(bounds, f"new {word}", method + "; AUC on the logit scale" if both else method, None, accuracy.df)


def architecture_interval(sweep: SweepPaths, records: list[RunRecord], population: str) -> dict[str, Any]:
    """A row's 95% intervals of accuracy and AUC (accuracy_lo/_hi, auc_lo/_hi) over its records' runs, the
    population they are about (interval_population), how they were made (interval_method), or why there
    are none (interval_reason)."""
    if not records:
        return _interval_fields({}, None, None, "no completed run")
    if len(records) > 1 and any(r.config.get("resplit") for r in records):
        if population == "this-test-set":
            return _interval_fields({}, None, None, "each seed drew its own split (--resplit): there is no one test set "
                                    "to be conditional on")
        return resplit_interval(records)
    scored = scored_runs(sweep, records)
    if isinstance(scored, str):
        return seed_only_interval(records, scored)
    return fixed_split_interval(scored, population)


def seed_only_interval(records: list[RunRecord], why: str) -> dict[str, Any]:
    """The split fixed but the test units unreadable (why): the seeds' spread alone, conditional on this test set."""
    seeds = len(records)
    values = [(r.test or {}).get("accuracy") for r in records]
    if seeds < MIN_SEEDS or None in values:
        return _interval_fields({}, None, None, why)
    spread = seed_spread(np.array(values, dtype=np.float64))
    if spread.variance <= 0:
        return _interval_fields({}, None, None, f"{why}; every seed scored the same: no spread to estimate")
    return _interval_fields({"accuracy": proportion_interval(spread, None)}, "this test set",
                            f"Wilson with a design effect over the seeds, conditional on this test set ({why}: the test "
                            "units cannot be counted)", None, seeds - 1.0)


def crossed_pair_test(a: list[RunRecord], b: list[RunRecord], scored_a: ScoredRuns | str, scored_b: ScoredRuns | str,
                      metric: str) -> tuple[float | None, str | None]:
    """Two architectures' runs paired by seed on one test set: the crossed paired test over seeds and test
    units (stats.crossed.crossed_paired_test), or None with the reason it was not tested. scored_a, scored_b:
    each architecture's scored_runs, read once for all its pairs (a sweep of 10,000 runs has 45 pairs)."""
    seeds = sorted({r.seed for r in a} & {r.seed for r in b})
    if len(seeds) < 2:
        return None, f"{len(seeds)} seed in common: a spread needs 2"
    if isinstance(scored_a, str) or isinstance(scored_b, str):
        return None, scored_a if isinstance(scored_a, str) else str(scored_b)
    if not np.array_equal(scored_a.labels, scored_b.labels) or scored_a.unit != scored_b.unit or \
            not np.array_equal(scored_a.units, scored_b.units):
        return None, "not all seeds were scored on the same test images"
    rows_a, rows_b = ({r.seed: row for row, r in enumerate(records)} for records in (a, b))
    scored = ScoredRuns(scored_a.labels, np.concatenate([scored_a.probs[[rows_a[s] for s in seeds]],
                                                        scored_b.probs[[rows_b[s] for s in seeds]]]), scored_a.units, scored_a.unit)
    if int(scored.units.max()) + 1 < 2:
        return None, "the test split holds one unit: a spread between units needs 2"
    if metric == "auc" and (scored.labels.all() or not scored.labels.any()):
        return None, "the test split holds one class: it has no AUC"
    both = scored.replicates(metric)
    half = len(seeds)
    first = Replicates(both.per_seed[:half], both.influence[:half], both.sizes)
    second = Replicates(both.per_seed[half:], both.influence[half:], both.sizes)
    p = crossed_paired_test(first, second)
    return p, None if p is not None else "every seed and unit differs by the same amount: no spread to judge the difference by"
