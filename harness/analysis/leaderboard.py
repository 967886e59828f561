"""The leaderboard: one row per architecture (mean over its seeds, with a 95% interval), beside Table 2.

Every architecture of the sweep has a row: one whose runs failed or are missing shows its status
(as the records say it: a run without one is "no result yet", no scheduler is asked) and empty
metrics, never a crash and never a silent omission. Plain Python (no pandas, no scipy):
`leaderboard` is typed often and must start fast.
"""
import csv
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from harness.analysis.columns import POPULATIONS, SORTABLE
from harness.analysis.load import SweepResults
from harness.analysis.scaling import add_scaling
from harness.analysis.status import recorded_state
from harness.analysis.variance import (
    NO_SCORES,
    architecture_interval,
    crossed_pair_test,
    left_out,
    run_scores,
    same_groups,
    scored_runs,
)
from harness.errors import UserError
from harness.stats.intervals import mean_interval
from harness.store.figures import FIGURES, figures_of
from harness.store.paths import SweepPaths
from harness.store.records import RunRecord

PAPER_TABLE = Path(__file__).resolve().parent.parent / "resources" / "paper_table2.csv"
SYNTHETIC_REASON = "synthetic inputs"  # why a synthetic sweep's rows have no accuracy nor any test metric


def paper_table() -> list[dict[str, Any]]:
    with open(PAPER_TABLE, newline="") as handle:
        return [{k: (v if k == "model" else float(v) if "." in v else int(v)) for k, v in row.items()}
                for row in csv.DictReader(handle)]


def _sort_key(sort: str, row: dict[str, Any]) -> tuple[bool, Any]:
    """Best first (a figure as the registry says, params the most, model names A to Z), the unknown last."""
    value = row.get(sort)
    if value is None:
        return (True, 0)
    return (False, -value if sort == "params" or (sort in FIGURES and FIGURES[sort].higher_is_better) else value)


def leaderboard(results: SweepResults, sort: str = "accuracy", population: str = "new-test-set") -> list[dict[str, Any]]:
    """One row per architecture (and variant): the mean of each figure of the registry over its completed
    seeds, runs that collapsed left out and named (left_out), and for each detection metric `<metric>_lo`/`<metric>_hi`, its 95%
    interval: accuracy's and AUC's over the population asked for (variance.architecture_interval: seeds and
    test units together, or one of them, with interval_population, interval_method, interval_reason), the
    other metrics' Student-t over the seeds (None below two); for a figure timed in windows (images/s)
    `<figure>_q1`/`<figure>_q3`, the mean of its seeds' windows' quartiles; shared_by, the runs that shared
    their node or GPU. A sweep of synthetic inputs has no test metric (null, test_reason) and no
    separability test."""
    if sort not in SORTABLE:
        raise UserError(f"cannot sort by {sort!r}; choose one of {', '.join(SORTABLE)}")
    if population not in POPULATIONS:
        raise UserError(f"unknown population {population!r}; choose one of {', '.join(POPULATIONS)}")
    state_of = {run.run_id: recorded_state(results, run.run_id) for run in results.spec.runs}  # no scheduler asked
    groups: dict[str, list] = {}
    for run in results.spec.runs:
        groups.setdefault(run.label, []).append(run)
    records_of, kept_of = results.completed(), {}
    rows = []
    for label, members in groups.items():
        failed = [r for run in members if isinstance(r := results.records[run.run_id], RunRecord) and not r.completed]
        named = left_out(records_of[label], failed)
        records = kept_of[label] = [r for r in records_of[label] if r.run_id not in named]
        counts = Counter(state_of[r.run_id] for r in members)
        status = "COMPLETED" if counts["COMPLETED"] == len(members) else ", ".join(f"{n} {s}" for s, n in counts.items())
        row: dict[str, Any] = {"model": label, "architecture": members[0].model, "variant": members[0].variant,
                               "seeds": len(records), "status": status, "params": records[0].params if records else None,
                               "gpu_reason": (records[0].gpu or {}).get("reason") if records else None,
                               "left_out": [f"{run}: {why}" for run, why in named.items()] or None}
        values = [figures_of(r) for r in records]
        for name, figure in FIGURES.items():
            mean, low, high = mean_interval([v[name] for v in values], bounds=(0.0, 1.0 if figure.percent else None))
            row[name] = mean
            if figure.detection:
                row[f"{name}_lo"], row[f"{name}_hi"] = low, high
            quartiles = [s for r in records if (s := figure.spread_of(r)) is not None]
            if quartiles and len(quartiles) == len(records):  # the timed windows' quartiles, their mean over seeds
                row[f"{name}_q1"], row[f"{name}_q3"] = (sum(s[q] for s in quartiles) / len(quartiles) for q in ("q1", "q3"))
        row["shared_by"] = [f"{r.run_id}: {'; '.join(r.shared_by)}" for r in records if r.shared_by] or None
        if results.spec.synthetic:
            row["test_reason"] = SYNTHETIC_REASON
        else:
            row.update(architecture_interval(results.sweep, records, population))
        rows.append(row)
    rows.sort(key=lambda r: _sort_key(sort, r))
    if not results.spec.synthetic:  # no test scores to tell architectures apart by
        _mark_separable(results.sweep, rows, kept_of, sort, population)
    add_scaling(rows, kept_of)  # a sweep at several rank counts: speedup and efficiency against one rank
    return rows


Tested = tuple[float | None, str | None]  # a pair's p-value, or None with the reason it was not tested
NO_SPREAD = "no spread to judge the difference by"


def separability(sweep: SweepPaths, rows: list[dict[str, Any]], records_of: dict[str, list[RunRecord]],
                 sort: str, population: str = "new-test-set") -> tuple[dict[tuple[str, str], Tested], str]:
    """Each pair of rows' p-value (or the reason it was not tested) and the test that ran: with several
    seeds _seed_tests, with one _one_seed_tests. The metric is the one the table sorts by (accuracy where
    it sorts by no metric; with one seed, accuracy or AUC)."""
    from itertools import combinations

    models = [row["model"] for row in rows if records_of[row["model"]]]
    pairs = list(combinations(models, 2))
    if any(len(records_of[m]) > 1 for m in models):
        metric = sort if sort in FIGURES and FIGURES[sort].detection else "accuracy"
        return _seed_tests(sweep, pairs, records_of, metric, population)
    return _one_seed_tests(sweep, models, pairs, records_of, "auc" if sort == "auc" else "accuracy")


def _seed_tests(sweep: SweepPaths, pairs: list[tuple[str, str]], records_of: dict[str, list[RunRecord]], metric: str,
                population: str) -> tuple[dict[tuple[str, str], Tested], str]:
    """Several seeds. The split fixed, on accuracy or AUC over new test sets: the crossed paired test over
    seeds and test units (variance.crossed_pair_test). Else (or where a run's test scores cannot be read)
    Student's paired t on each seed's value: with --resplit it covers the splits too; with the split fixed
    it is conditional on this test set."""
    from harness.stats.paired import paired_t_test

    resplit = any(r.config.get("resplit") for records in records_of.values() for r in records)
    crossed = metric in ("accuracy", "auc") and not resplit and population == "new-test-set"
    models = {m for pair in pairs for m in pair}
    scored = {m: scored_runs(sweep, records_of[m]) for m in models} if crossed else {}
    if crossed and all(found != NO_SCORES for found in scored.values()):  # every run's test scores read
        return ({(a, b): crossed_pair_test(records_of[a], records_of[b], scored[a], scored[b], metric) for a, b in pairs},
                f"crossed paired test on {metric} over seeds x test units (two-way random effects, t at most seeds - 1 df)")
    per_seed = {m: {r.seed: v for r in records_of[m] if (v := FIGURES[metric].value(r)) is not None} for m in models}
    tested: dict[tuple[str, str], Tested] = {}
    for a, b in pairs:
        p = paired_t_test(per_seed[a], per_seed[b])
        common = len(set(per_seed[a]) & set(per_seed[b]))
        tested[(a, b)] = (p, None if p is not None else f"{common} seed in common: a spread needs 2"
                          if common < 2 else f"every seed differs by the same amount: {NO_SPREAD}")
    over = "seeds and their splits (--resplit)" if resplit else "seeds, conditional on this test set" + (
        f" ({NO_SCORES}: the test units cannot be counted)" if crossed else "")
    return tested, f"paired t-test on per-seed {metric} over {over}"


def _one_seed_tests(sweep: SweepPaths, models: list[str], pairs: list[tuple[str, str]], records_of: dict[str, list[RunRecord]],
                    metric: str) -> tuple[dict[tuple[str, str], Tested], str]:
    """One seed: over the test photographs or identities where the manifest has groups (the crossed test
    with one seed), else over the test images (McNemar's on accuracy, DeLong's on AUC). Seed variance is
    not counted."""
    from harness.stats.paired import image_pair_test

    scored = {m: found for m in models if (found := run_scores(sweep, records_of[m][0].run_id)) is not None}
    if not scored:
        return {pair: (None, NO_SCORES) for pair in pairs}, ""
    labels, _, units = next(iter(scored.values()))
    if metric == "auc" and (labels.all() or not labels.any()):
        return {pair: (None, "the test split holds one class: it has no AUC") for pair in pairs}, ""
    same = {m for m, (y, _, groups) in scored.items() if np.array_equal(y, labels) and same_groups(groups, units)}
    if units is None:
        test = {"accuracy": "McNemar on accuracy", "auc": "DeLong on AUC"}[metric] + " over the test images"
    else:
        count = int(units.max()) + 1
        test = {"accuracy": "paired test on accuracy", "auc": "DeLong on AUC clustered by group (Obuchowski)"}[metric]
        test += f" over {count} test groups"
        if count < 2:
            return {pair: (None, "the test split holds one group: a spread between groups needs 2") for pair in pairs}, test
    test += " (1 seed: seed variance not counted)"
    tested: dict[tuple[str, str], Tested] = {}
    for a, b in pairs:
        if a not in same or b not in same:
            tested[(a, b)] = (None, NO_SCORES if a not in scored or b not in scored else "not both scored on the same test images")
            continue
        p = image_pair_test(labels, scored[a][1], scored[b][1], metric, units)
        tested[(a, b)] = (p, None if p is not None else f"every group differs by the same share: {NO_SPREAD}")
    return tested, test


def _mark_separable(sweep: SweepPaths, rows: list[dict[str, Any]], records_of: dict[str, list[RunRecord]], sort: str,
                    population: str) -> None:
    """For each row, the architectures the test cannot tell from it at 5% after Holm's correction over
    the pairs tested (not_separable_from), those it was not tested against (not_tested_against), both
    as compact letters (group: rows that share a letter are not separable; an untested pair counts as
    not separable), the test (separability_test) and why pairs were not tested (separability_reason)."""
    from harness.stats.paired import compact_letters, separable_pairs

    tested, test = separability(sweep, rows, records_of, sort, population)
    pairs = separable_pairs({pair: p for pair, (p, _) in tested.items()})
    count = sum(p["separable"] is not None for p in pairs)
    letters = compact_letters([row["model"] for row in rows], [frozenset((p["a"], p["b"])) for p in pairs if p["separable"]])
    for row in rows:
        mine = [(p["b"] if p["a"] == row["model"] else p["a"], p["separable"]) for p in pairs if row["model"] in (p["a"], p["b"])]
        reasons = sorted({reason for pair, (_, reason) in tested.items() if reason and row["model"] in pair})
        any_tested = any(separable is not None for _, separable in mine)
        row["group"] = letters[row["model"]] if any_tested else None
        row["not_separable_from"] = [other for other, separable in mine if separable is False] if any_tested else None
        row["not_tested_against"] = [other for other, separable in mine if separable is None] or None
        row["separability_test"] = f"{test}, Holm over {count} pair{'s' if count > 1 else ''}, 5%" if count else None
        row["separability_reason"] = "; ".join(reasons) or None


def separability_caption(rows: list[dict[str, Any]]) -> str:
    """One line under the leaderboard: the separability test that ran, and which pairs it did not test, why."""
    tests = sorted({row["separability_test"] for row in rows if row.get("separability_test")})
    reasons = sorted({reason for row in rows if row.get("separability_reason") for reason in row["separability_reason"].split("; ")})
    line = f"group: architectures that share a letter are not separable ({'; '.join(tests)})" if tests else \
        "group: no pair tested"
    return line + (f"; not tested where {'; '.join(reasons)}" if reasons else "")


def interval_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The caption's lines on the accuracy's interval: what it is about and how it was made, why a row has
    none, and the runs left out of the means, intervals and tests."""
    by_method: dict[str, list[str]] = {}
    for r in rows:
        if r.get("accuracy_lo") is not None:
            by_method.setdefault(f"acc 95% CI over {r['interval_population']}: {r['interval_method']}", []).append(r["model"])
    # where the rows' intervals were made in more than one way, each way names its rows
    made = sorted(by_method if len(by_method) < 2 else (f"{way} ({', '.join(models)})" for way, models in by_method.items()))
    missing = sorted({r["interval_reason"] for r in rows if r.get("accuracy_lo") is None and r.get("interval_reason")})
    left = [entry for r in rows for entry in (r.get("left_out") or [])]
    return made + ([f"no acc 95% CI where {'; '.join(missing)}"] if missing else []) + \
        ([f"left out of the means, intervals and tests: {'; '.join(left)}"] if left else [])


def units_line(records: list[RunRecord]) -> str | None:
    """The caption's line on what its tests and intervals count as independent, as the runs' records say
    (test.interval_unit): the dataset's groups, or, where it has none, its images."""
    units = {(r.test or {}).get("interval_unit") for r in records}
    if "images" in units:
        return ("the dataset has no groups (data prepare --groups): every test and interval counts its test images as "
                "independent, which images of one person are not")
    if "groups" in units:
        return "test units: the dataset's groups (people, source photographs): every test and interval counts a group as one"
    return None


def with_paper(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table 2's columns beside ours, as paper_<column>."""
    table = paper_table()
    paper = {p["model"]: p for p in table}
    columns = [c for c in table[0] if c != "model"]
    return [{**row, **{f"paper_{c}": paper.get(row["architecture"], {}).get(c) for c in columns}} for row in rows]
