"""The leaderboard: one row per architecture (mean over its seeds, with a 95% interval), beside Table 2.

Every architecture of the sweep has a row: one whose runs failed or are missing shows its status
and empty metrics, never a crash and never a silent omission.
"""
from pathlib import Path

import pandas as pd

from harness.metrics import mean_interval
from harness.results import read_result, read_sweep, run_label
from harness.status import sweep_status

PAPER_TABLE = Path(__file__).resolve().parent.parent / "results" / "reference" / "paper_table2.csv"
METRICS = ["accuracy", "loss", "precision", "recall", "f1", "auc"]
EXTRA_METRICS = ["average_precision", "eer", "accuracy_at_threshold"]
THROUGHPUT = ["train_images_per_s", "infer_images_per_s"]
COLUMNS = ["model", "params", *METRICS, *THROUGHPUT, "gpu_util_mean", "status"]
SORTABLE = [*METRICS, *EXTRA_METRICS, *THROUGHPUT, "gpu_util_mean", "params", "model"]


def paper_table() -> pd.DataFrame:
    return pd.read_csv(PAPER_TABLE)


def _values(record: dict) -> dict:
    test, throughput, gpu = record["test"], record["throughput"], record["gpu"]
    return {**{m: test.get(m) for m in METRICS + EXTRA_METRICS}, **{t: throughput.get(t) for t in THROUGHPUT},
            "achieved_tflops": throughput.get("achieved_tflops"), "mfu": throughput.get("mfu"),
            "data_wait_fraction": throughput.get("data_wait_fraction"), "gpu_util_mean": gpu.get("util_mean"),
            "gpu_util_median": gpu.get("util_median"), "params": record["params"]}


def leaderboard(sweep: Path, sort: str = "accuracy") -> pd.DataFrame:
    """One row per architecture: mean of each value over completed seeds, *_lo/*_hi its 95% interval."""
    spec = read_sweep(sweep)
    state_of = {s.run_id: s for s in sweep_status(sweep)[0]}
    groups: dict[str, list[dict]] = {}
    for run in spec["runs"]:
        groups.setdefault(run_label(run), []).append(run)
    rows = []
    for label, members in groups.items():
        runs = [state_of[r["run_id"]] for r in members]
        records = [r for r in (read_result(sweep, s.run_id) for s in runs if s.state == "COMPLETED") if r]
        counts = pd.Series([s.state for s in runs]).value_counts()
        status = "COMPLETED" if counts.get("COMPLETED", 0) == len(runs) else ", ".join(f"{n} {state}" for state, n in counts.items())
        row: dict = {"model": label, "architecture": members[0]["model"], "variant": members[0].get("variant", ""),
                     "seeds": len(records), "status": status,
                     "gpu_reason": records[0]["gpu"]["reason"] if records else None}
        if records:
            values = pd.DataFrame([_values(r) for r in records])
            for column in values.columns:
                mean, lo, hi = mean_interval(values[column].tolist())
                row[column] = mean
                if column in METRICS + EXTRA_METRICS:
                    row[f"{column}_lo"], row[f"{column}_hi"] = lo, hi
            row["params"] = int(records[0]["params"])
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in table:
            table[column] = None
    ascending = sort in ("loss", "eer", "model")
    table = table.sort_values(sort, ascending=ascending, na_position="last", kind="stable").reset_index(drop=True)
    table["overlaps"] = _overlaps(table, sort) if f"{sort}_lo" in table else ""
    return table


def _overlaps(table: pd.DataFrame, metric: str) -> list[str]:
    """For each row, the architectures whose 95% interval of metric overlaps its own."""
    out = []
    for _, row in table.iterrows():
        others = [o["model"] for _, o in table.iterrows()
                  if o["model"] != row["model"] and pd.notna(row.get(f"{metric}_lo")) and pd.notna(o.get(f"{metric}_lo"))
                  and o[f"{metric}_lo"] <= row[f"{metric}_hi"] and row[f"{metric}_lo"] <= o[f"{metric}_hi"]]
        out.append(", ".join(others))
    return out


def with_paper(table: pd.DataFrame) -> pd.DataFrame:
    """Table 2's columns beside ours, as paper_<column>."""
    paper = paper_table().rename(columns=lambda c: "architecture" if c == "model" else f"paper_{c}")
    return table.merge(paper, on="architecture", how="left")
