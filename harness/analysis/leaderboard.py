"""The leaderboard: one row per architecture (mean over its seeds, with a 95% interval), beside Table 2.

Every architecture of the sweep has a row: one whose runs failed or are missing shows its status
and empty metrics, never a crash and never a silent omission. Plain Python (no pandas, no scipy):
`leaderboard` is typed often and must start fast.
"""
import csv
from collections import Counter
from pathlib import Path
from typing import Any

from harness.analysis.load import SweepResults
from harness.analysis.status import sweep_status
from harness.errors import UserError
from harness.stats.intervals import mean_interval
from harness.store.paths import SweepPaths
from harness.store.records import RunRecord
from harness.store.schema import DamagedFile

PAPER_TABLE = Path(__file__).resolve().parent.parent / "resources" / "paper_table2.csv"
METRICS = ["accuracy", "loss", "precision", "recall", "f1", "auc"]
EXTRA_METRICS = ["average_precision", "eer", "accuracy_at_threshold"]
THROUGHPUT = ["train_images_per_s", "infer_images_per_s"]
COLUMNS = ["model", "params", *METRICS, *THROUGHPUT, "gpu_util_mean", "status"]
SORTABLE = [*METRICS, *EXTRA_METRICS, *THROUGHPUT, "gpu_util_mean", "params", "model"]
LOWER_IS_BETTER = {"loss", "eer", "model"}
UNIT_RANGE = set(METRICS + EXTRA_METRICS) - {"loss"}


def paper_table() -> list[dict[str, Any]]:
    with open(PAPER_TABLE, newline="") as handle:
        return [{k: (v if k == "model" else float(v) if "." in v else int(v)) for k, v in row.items()}
                for row in csv.DictReader(handle)]


def _values(record: RunRecord) -> dict[str, Any]:
    test, throughput, gpu = record.test or {}, record.throughput or {}, record.gpu or {}
    return {**{m: test.get(m) for m in METRICS + EXTRA_METRICS}, **{t: throughput.get(t) for t in THROUGHPUT},
            "achieved_tflops": throughput.get("achieved_tflops"), "mfu": throughput.get("mfu"),
            "data_wait_fraction": throughput.get("data_wait_fraction"), "gpu_util_mean": gpu.get("util_mean"),
            "gpu_util_median": gpu.get("util_median"), "train_energy_per_image_j": gpu.get("energy_per_image_j"),
            "infer_energy_per_image_j": (gpu.get("infer") or {}).get("energy_per_image_j")}


VALUE_COLUMNS = [*METRICS, *EXTRA_METRICS, *THROUGHPUT, "achieved_tflops", "mfu", "data_wait_fraction", "gpu_util_mean",
                 "gpu_util_median", "train_energy_per_image_j", "infer_energy_per_image_j"]


def _sort_key(sort: str, row: dict[str, Any]) -> tuple[bool, Any]:
    value = row.get(sort)
    if value is None:
        return (True, 0)
    return (False, value if sort in LOWER_IS_BETTER else (-value if not isinstance(value, str) else value))


def leaderboard(results: SweepResults, sort: str = "accuracy") -> list[dict[str, Any]]:
    """One row per architecture (and variant): the mean of each value over its completed seeds, and for
    each metric `<metric>_lo`/`<metric>_hi`, its 95% Student-t interval (None below two seeds)."""
    if sort not in SORTABLE:
        raise UserError(f"cannot sort by {sort!r}; choose one of {', '.join(SORTABLE)}")
    state_of = {s.run_id: s.state for s in sweep_status(results)[0]}
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
        values = [_values(r) for r in records]
        for column in VALUE_COLUMNS:
            mean, low, high = mean_interval([v[column] for v in values], bounds=(0.0, 1.0) if column in UNIT_RANGE else (0.0, None))
            row[column] = mean
            if column in METRICS + EXTRA_METRICS:
                row[f"{column}_lo"], row[f"{column}_hi"] = low, high
        rows.append(row)
    rows.sort(key=lambda r: _sort_key(sort, r))
    _mark_separable(results.sweep, rows, records_of, "accuracy" if sort == "accuracy" else "auc")
    return rows


def _test_scores(sweep: SweepPaths, run_ids: list[str]) -> tuple[Any, Any] | None:
    """The test labels and the mean of the runs' test probabilities (their seeds' ensemble)."""
    import numpy as np

    from harness.store.run_files import read_test_scores

    try:
        found = [read_test_scores(sweep.run(rid).test_scores) for rid in run_ids]
    except DamagedFile:
        return None
    loaded = [a for a in found if a is not None]
    if not loaded or len(loaded) < len(found) or any(not np.array_equal(a[0], loaded[0][0]) for a in loaded):
        return None
    return loaded[0][0], np.mean([a[1] for a in loaded], axis=0)


def _mark_separable(sweep: SweepPaths, rows: list[dict[str, Any]], records_of: dict[str, list[RunRecord]], metric: str) -> None:
    """For each row, the architectures the test data cannot tell from it: a paired test on the same test
    images (McNemar for accuracy, DeLong for AUC) of their seeds' mean scores, Holm-corrected over all
    pairs, at 5%. Rows without test scores (or scored on other images) are left out."""
    from harness.stats.paired import separable_pairs

    found = {row["model"]: _test_scores(sweep, [r.run_id for r in records_of[row["model"]]])
             for row in rows if records_of[row["model"]]}
    both = {model: pair for model, pair in found.items() if pair is not None}
    labels = next(iter(both.values()))[0] if both else None
    scored = {m: probs for m, (y, probs) in both.items() if labels is not None and len(y) == len(labels) and (y == labels).all()}
    pairs = separable_pairs(labels, scored, metric=metric) if labels is not None and len(scored) > 1 else []
    test = {"accuracy": "McNemar on accuracy", "auc": "DeLong on AUC"}[metric]
    for row in rows:
        same = [p["b"] if p["a"] == row["model"] else p["a"] for p in pairs
                if row["model"] in (p["a"], p["b"]) and not p["separable"]]
        row["not_separable_from"] = ", ".join(same) if row["model"] in scored and len(scored) > 1 else None
        row["separability_test"] = f"{test}, Holm over {len(pairs)} pairs, 5%" if pairs else None


def with_paper(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table 2's columns beside ours, as paper_<column>."""
    table = paper_table()
    paper = {p["model"]: p for p in table}
    columns = [c for c in table[0] if c != "model"]
    return [{**row, **{f"paper_{c}": paper.get(row["architecture"], {}).get(c) for c in columns}} for row in rows]
