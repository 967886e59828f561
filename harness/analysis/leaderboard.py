"""The leaderboard: one row per architecture (mean over its seeds, with a 95% interval), beside Table 2.

Every architecture of the sweep has a row: one whose runs failed or are missing shows its status
and empty metrics, never a crash and never a silent omission. Plain Python (no pandas, no scipy):
`leaderboard` is typed often and must start fast.
"""
import csv
from collections import Counter
from pathlib import Path
from typing import Any

from harness.analysis.intervals import mean_interval
from harness.analysis.status import sweep_status
from harness.errors import UserError
from harness.store.paths import SweepPaths
from harness.store.records import RunRecord, read_record, read_spec
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
            "gpu_util_median": gpu.get("util_median")}


VALUE_COLUMNS = [*METRICS, *EXTRA_METRICS, *THROUGHPUT, "achieved_tflops", "mfu", "data_wait_fraction", "gpu_util_mean",
                 "gpu_util_median"]


def _sort_key(sort: str, row: dict[str, Any]) -> tuple[bool, Any]:
    value = row.get(sort)
    if value is None:
        return (True, 0)
    return (False, value if sort in LOWER_IS_BETTER else (-value if not isinstance(value, str) else value))


def leaderboard(sweep: SweepPaths, sort: str = "accuracy") -> list[dict[str, Any]]:
    """One row per architecture (and variant): the mean of each value over its completed seeds, and for
    each metric `<metric>_lo`/`<metric>_hi`, its 95% Student-t interval (None below two seeds)."""
    if sort not in SORTABLE:
        raise UserError(f"cannot sort by {sort!r}; choose one of {', '.join(SORTABLE)}")
    spec = read_spec(sweep)
    state_of = {s.run_id: s.state for s in sweep_status(sweep)[0]}
    groups: dict[str, list] = {}
    for run in spec.runs:
        groups.setdefault(run.label, []).append(run)
    rows = []
    for label, members in groups.items():
        records = []
        for run in members:
            if state_of[run.run_id] == "COMPLETED":
                try:
                    record = read_record(sweep.run(run.run_id))
                except DamagedFile:
                    record = None
                if record is not None and record.completed:
                    records.append(record)
        counts = Counter(state_of[r.run_id] for r in members)
        status = "COMPLETED" if counts["COMPLETED"] == len(members) else ", ".join(f"{n} {s}" for s, n in counts.items())
        row: dict[str, Any] = {"model": label, "architecture": members[0].model, "variant": members[0].variant,
                               "seeds": len(records), "status": status, "params": records[0].params if records else None,
                               "gpu_reason": (records[0].gpu or {}).get("reason") if records else None}
        values = [_values(r) for r in records]
        for column in VALUE_COLUMNS:
            mean, low, high = mean_interval([v[column] for v in values], bounds=(0.0, 1.0) if column in UNIT_RANGE else (0.0, None))
            row[column] = mean
            if column in METRICS + EXTRA_METRICS:
                row[f"{column}_lo"], row[f"{column}_hi"] = low, high
        rows.append(row)
    rows.sort(key=lambda r: _sort_key(sort, r))
    for row in rows:
        row["overlaps"] = _overlaps(row, rows, sort)
    return rows


def _overlaps(row: dict[str, Any], rows: list[dict[str, Any]], metric: str) -> str:
    """The architectures whose interval of metric overlaps this row's (empty where there is no interval)."""
    lo, hi = row.get(f"{metric}_lo"), row.get(f"{metric}_hi")
    if lo is None or hi is None:
        return ""
    return ", ".join(o["model"] for o in rows if o is not row and o.get(f"{metric}_lo") is not None
                     and o[f"{metric}_lo"] <= hi and lo <= o[f"{metric}_hi"])


def with_paper(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table 2's columns beside ours, as paper_<column>."""
    table = paper_table()
    paper = {p["model"]: p for p in table}
    columns = [c for c in table[0] if c != "model"]
    return [{**row, **{f"paper_{c}": paper.get(row["architecture"], {}).get(c) for c in columns}} for row in rows]
