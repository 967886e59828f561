"""The results as pandas frames, for a notebook: `harness.load(results, sweep)`. The same readers as the
command line (every file checked on read); what is on disk only, no scheduler asked."""
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.leaderboard import leaderboard
from harness.analysis.load import SweepResults
from harness.analysis.status import recorded_state
from harness.store.figures import FIGURES
from harness.store.paths import find_sweep, perflog
from harness.store.perflog import PERFLOG_SCHEMA
from harness.store.perflog_index import read_columns
from harness.store.records import RunRecord


@dataclass(frozen=True)
class Results:
    """A sweep's results: runs (one row per run of its spec, its record flattened, `state` COMPLETED, FAILED,
    CANCELLED, DAMAGED, "no result yet" or NOT SUBMITTED), leaderboard (as `leaderboard --format json`) and the
    results folder's perflog (one row per completed run of every sweep there, its figures as `figures.NAME.value`)."""

    sweep_id: str
    runs: pd.DataFrame
    leaderboard: pd.DataFrame
    perflog: pd.DataFrame


def _expanded(values: list[dict[str, Any]], prefix: str) -> dict[str, np.ndarray]:
    """A column of dicts (settings or systems, shared by the lines that hold the same) as one column per key:
    each distinct dict's values, taken for every line."""
    distinct: dict[int, int] = {}
    shared = [distinct.setdefault(id(one), len(distinct)) for one in values]
    dicts = list({id(one): one for one in values}.values())
    codes = np.array(shared, dtype=np.int64)
    return {f"{prefix}.{key}": np.array([one.get(key) for one in dicts], dtype=object)[codes]
            for key in dict.fromkeys(key for one in dicts for key in one)}


def perflog_table(path: Path) -> pd.DataFrame:
    """The perflog's latest line of each (sweep, run), read through its index, one column per field as pandas'
    json_normalize names them: settings.KEY, system.KEY, figures.NAME.value and figures.NAME.unit. Each
    column is made an array as it is read, and the frame takes the arrays as they are: a perflog of 100,000
    lines stays within a few hundred MB."""
    columns = read_columns(path, whole=True).columns
    count = len(columns["line"])
    table: dict[str, Any] = {name: np.array(columns.pop(name), dtype=object) for name in ("time", "sweep", "run", "architecture")}
    table["seed"] = np.array(columns.pop("seed"), dtype=np.int64)
    for part in ("settings", "system"):
        table.update(_expanded(columns.pop(part), part))
    absent = {at: set(json.loads(text)) for at, text in enumerate(columns["absent_figures"]) if text}
    other = {at: json.loads(text) for at, text in enumerate(columns["other_figures"]) if text}
    for name, figure in FIGURES.items():
        table[f"figures.{name}.value"] = np.frombuffer(columns.pop(name), dtype=float) if count else np.empty(0)
        table[f"figures.{name}.unit"] = units = np.empty(count, dtype=object)
        units.fill(figure.unit)  # one text shared (np.full would make a copy of it per line)
        for at, names in absent.items():
            units[at] = None if name in names else figure.unit
    for name in dict.fromkeys(name for figures in other.values() for name in figures):
        for key in ("value", "unit"):
            table[f"figures.{name}.{key}"] = np.array([other.get(at, {}).get(name, {}).get(key) for at in range(count)], dtype=object)
    table["variant"] = np.array(columns.pop("variant"), dtype=object)
    table["schema_version"] = np.full(count, PERFLOG_SCHEMA, dtype=np.int64)
    return pd.DataFrame(table, copy=False)


def load(results: str | os.PathLike[str] | None = None, sweep: str | None = None, sort: str = "accuracy") -> Results:
    """The sweep (an id or a unique prefix; default the latest) under results (default: $HARNESS_RESULTS,
    else ./results), read once. A damaged run's files are its row's reason, never an exception; a results
    folder without a sweep, or a sweep whose own sweep.json is damaged (there are no rows without it), raises
    harness.errors.UserError (harness.store.schema.DamagedFile, naming the file), as the command line says it."""
    folder = Path(results if results is not None else os.environ.get("HARNESS_RESULTS") or "results").absolute()
    read = SweepResults(find_sweep(folder, sweep))
    rows = []
    for run in read.spec.runs:
        record = read.records.get(run.run_id)
        if isinstance(record, RunRecord):
            rows.append({"state": record.status, "reason": record.error or "", **record.to_json()})
        else:
            rows.append({"run_id": run.run_id, "model": run.model, "seed": run.seed, "state": recorded_state(read, run.run_id),
                         "reason": "" if record is None else str(record)})
    return Results(sweep_id=read.spec.sweep_id, runs=pd.json_normalize(rows),
                   leaderboard=pd.DataFrame(leaderboard(read, sort)), perflog=perflog_table(perflog(folder)))
