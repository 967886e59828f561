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

from harness.analysis.columns import SORTABLE
from harness.analysis.load import SweepResults
from harness.analysis.scaling import add_scaling
from harness.analysis.status import recorded_state
from harness.errors import UserError
from harness.stats.intervals import mean_interval
from harness.store.figures import FIGURES, figures_of
from harness.store.paths import SweepPaths
from harness.store.records import RunRecord
from harness.store.schema import DamagedFile

PAPER_TABLE = Path(__file__).resolve().parent.parent / "resources" / "paper_table2.csv"


def paper_table() -> list[dict[str, Any]]:
    with open(PAPER_TABLE, newline="") as handle:
        return [{k: (v if k == "model" else float(v) if "." in v else int(v)) for k, v in row.items()}
                for row in csv.DictReader(handle)]


def _test_interval(records: list[RunRecord]) -> dict[str, Any]:
    """With one seed, its record's 95% interval of test accuracy over the test split's independent units
    (`accuracy_test_lo`/`_hi`), and how it was made or why there is none (`test_interval`). With several
    seeds the interval over seeds is the row's; records of earlier versions (a percentile bootstrap,
    no method recorded) give none."""
    test = (records[0].test or {}) if len(records) == 1 else {}
    interval = test.get("accuracy_interval") if test.get("accuracy_interval_method") else None
    return {"accuracy_test_lo": interval[0] if interval else None, "accuracy_test_hi": interval[1] if interval else None,
            "test_interval": test.get("accuracy_interval_reason") or test.get("accuracy_interval_method")}


def _sort_key(sort: str, row: dict[str, Any]) -> tuple[bool, Any]:
    """Best first (a figure as the registry says, params the most, model names A to Z), the unknown last."""
    value = row.get(sort)
    if value is None:
        return (True, 0)
    return (False, -value if sort == "params" or (sort in FIGURES and FIGURES[sort].higher_is_better) else value)


def leaderboard(results: SweepResults, sort: str = "accuracy") -> list[dict[str, Any]]:
    """One row per architecture (and variant): the mean of each figure of the registry over its completed
    seeds, and for each detection metric `<metric>_lo`/`<metric>_hi`, its 95% Student-t interval (None
    below two seeds, with `interval_reason`; then the record's interval over test units, see _test_interval)."""
    if sort not in SORTABLE:
        raise UserError(f"cannot sort by {sort!r}; choose one of {', '.join(SORTABLE)}")
    state_of = {run.run_id: recorded_state(results, run.run_id) for run in results.spec.runs}  # no scheduler asked
    groups: dict[str, list] = {}
    for run in results.spec.runs:
        groups.setdefault(run.label, []).append(run)
    records_of = results.completed()
    rows = []
    for label, members in groups.items():
        records = records_of[label]
        counts = Counter(state_of[r.run_id] for r in members)
        status = "COMPLETED" if counts["COMPLETED"] == len(members) else ", ".join(f"{n} {s}" for s, n in counts.items())
        row: dict[str, Any] = {"model": label, "architecture": members[0].model, "variant": members[0].variant,
                               "seeds": len(records), "status": status, "params": records[0].params if records else None,
                               "gpu_reason": (records[0].gpu or {}).get("reason") if records else None}
        resplit = any(r.config.get("resplit") for r in records)
        row["interval_covers"] = (None if len(records) < 2 else "seeds: initialisation, order and split (--resplit)"
                                  if resplit else "seeds: initialisation and order; the split is fixed")
        row["interval_reason"] = None if len(records) > 1 else f"{len(records)} seed: an interval over seeds needs 2"
        row.update(_test_interval(records))
        values = [figures_of(r) for r in records]
        for name, figure in FIGURES.items():
            mean, low, high = mean_interval([v[name] for v in values], bounds=(0.0, 1.0 if figure.percent else None))
            row[name] = mean
            if figure.detection:
                row[f"{name}_lo"], row[f"{name}_hi"] = low, high
        rows.append(row)
    rows.sort(key=lambda r: _sort_key(sort, r))
    _mark_separable(results.sweep, rows, records_of, sort)
    add_scaling(rows, records_of)  # a sweep at several rank counts: speedup and efficiency against one rank
    return rows


def _test_scores(sweep: SweepPaths, run_id: str) -> tuple[Any, Any, Any] | None:
    """A run's test labels, probabilities and each image's group number (None where the manifest has no
    groups); None where its test_scores.npy is missing or not what the run writes."""
    from harness.store.run_files import read_test_scores

    try:
        scores = read_test_scores(sweep.run(run_id).test_scores)
    except DamagedFile:
        return None
    return None if scores is None else (scores[0].astype(bool), scores[1], scores[2])


Tested = tuple[float | None, str | None]  # a pair's p-value, or None with the reason it was not tested
NO_SPREAD = "no spread to judge the difference by"


def separability(sweep: SweepPaths, rows: list[dict[str, Any]], records_of: dict[str, list[RunRecord]],
                 sort: str) -> tuple[dict[tuple[str, str], Tested], str]:
    """Each pair of rows' p-value (or the reason it was not tested) and the test that ran.

    The test pairs on the unit that is independent: with several seeds, the seeds (Student's paired t
    on each seed's value of the metric the table sorts by, accuracy where it sorts by no metric); with
    one, the test photographs or identities where the manifest has groups (cluster-robust tests), else
    the test images (McNemar's on accuracy, DeLong's on AUC where the table sorts by AUC)."""
    from itertools import combinations

    from harness.stats.paired import image_pair_test, paired_t_test

    models = [row["model"] for row in rows if records_of[row["model"]]]
    pairs = list(combinations(models, 2))
    if any(len(records_of[m]) > 1 for m in models):
        metric = sort if sort in FIGURES and FIGURES[sort].detection else "accuracy"
        per_seed = {m: {r.seed: v for r in records_of[m] if (v := FIGURES[metric].value(r)) is not None} for m in models}
        tested: dict[tuple[str, str], Tested] = {}
        for a, b in pairs:
            p = paired_t_test(per_seed[a], per_seed[b])
            common = len(set(per_seed[a]) & set(per_seed[b]))
            tested[(a, b)] = (p, None if p is not None else f"{common} seed in common: a spread needs 2"
                              if common < 2 else f"every seed differs by the same amount: {NO_SPREAD}")
        return tested, f"paired t-test on per-seed {metric}"
    metric = "auc" if sort == "auc" else "accuracy"
    scored = {m: found for m in models if (found := _test_scores(sweep, records_of[m][0].run_id)) is not None}
    unreadable = "test scores missing or damaged (test_scores.npy)"
    if not scored:
        return {pair: (None, unreadable) for pair in pairs}, ""
    labels, _, units = next(iter(scored.values()))
    if metric == "auc" and (labels.all() or not labels.any()):
        return {pair: (None, "the test split holds one class: it has no AUC") for pair in pairs}, ""
    same = {m for m, (y, _, groups) in scored.items() if y.shape == labels.shape and (y == labels).all()
            and (groups is None if units is None else groups is not None and (groups == units).all())}
    if units is None:
        test = {"accuracy": "McNemar on accuracy", "auc": "DeLong on AUC"}[metric] + " over the test images"
    else:
        count = int(units.max()) + 1
        test = {"accuracy": "cluster-robust paired t-test on accuracy", "auc": "DeLong on AUC clustered by group (Obuchowski)"}[metric]
        test += f" over {count} test groups"
        if count < 2:
            return {pair: (None, "the test split holds one group: a spread between groups needs 2") for pair in pairs}, test
    tested = {}
    for a, b in pairs:
        if a not in same or b not in same:
            tested[(a, b)] = (None, unreadable if a not in scored or b not in scored else "not both scored on the same test images")
            continue
        p = image_pair_test(labels, scored[a][1], scored[b][1], metric, units)
        tested[(a, b)] = (p, None if p is not None else f"every group differs by the same share: {NO_SPREAD}")
    return tested, test


def _mark_separable(sweep: SweepPaths, rows: list[dict[str, Any]], records_of: dict[str, list[RunRecord]], sort: str) -> None:
    """For each row, the architectures the test cannot tell from it at 5% after Holm's correction over
    the pairs tested (not_separable_from), those it was not tested against (not_tested_against), both
    as compact letters (group: rows that share a letter are not separable; an untested pair counts as
    not separable), the test (separability_test) and why pairs were not tested (separability_reason)."""
    from harness.stats.paired import compact_letters, separable_pairs

    tested, test = separability(sweep, rows, records_of, sort)
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


def with_paper(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table 2's columns beside ours, as paper_<column>."""
    table = paper_table()
    paper = {p["model"]: p for p in table}
    columns = [c for c in table[0] if c != "model"]
    return [{**row, **{f"paper_{c}": paper.get(row["architecture"], {}).get(c) for c in columns}} for row in rows]
