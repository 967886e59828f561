"""The results as pandas frames, for a notebook: `harness.load(results, sweep)`. The same readers as the
command line (every file checked on read), no scheduler asked."""
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.analysis.leaderboard import leaderboard
from harness.analysis.load import SweepResults
from harness.store.paths import find_sweep, perflog
from harness.store.perflog import read_perflog
from harness.store.records import RunRecord


@dataclass(frozen=True)
class Results:
    """A sweep's results: runs (one row per run of its spec, its record flattened, `state` COMPLETED, FAILED,
    CANCELLED, DAMAGED or NO RECORD), leaderboard (as `leaderboard --format json`) and the results folder's
    perflog (one row per completed run of every sweep there, its figures as `figures.NAME.value`)."""

    sweep_id: str
    runs: pd.DataFrame
    leaderboard: pd.DataFrame
    perflog: pd.DataFrame


def load(results: str | os.PathLike[str] | None = None, sweep: str | None = None, sort: str = "accuracy") -> Results:
    """The sweep (an id or a unique prefix; default the latest) under results (default: $HARNESS_RESULTS,
    else ./results), read once. Damaged files are rows with their reason, never an exception; a results
    folder without a sweep raises harness.errors.UserError, as the command line says it."""
    folder = Path(results if results is not None else os.environ.get("HARNESS_RESULTS") or "results").absolute()
    read = SweepResults(find_sweep(folder, sweep))
    rows = []
    for run in read.spec.runs:
        record = read.records.get(run.run_id)
        if isinstance(record, RunRecord):
            rows.append({"state": record.status, "reason": record.error or "", **record.to_json()})
        else:
            rows.append({"run_id": run.run_id, "model": run.model, "seed": run.seed,
                         "state": "NO RECORD" if record is None else "DAMAGED", "reason": "" if record is None else str(record)})
    entries, _ = read_perflog(perflog(folder))
    return Results(sweep_id=read.spec.sweep_id, runs=pd.json_normalize(rows),
                   leaderboard=pd.DataFrame(leaderboard(read, sort)),
                   perflog=pd.json_normalize([entry.to_json() for entry in entries]))
