"""Where a sweep's files live, and the versioned result record (documented in README, "Results").

results/<sweep-id>/
  sweep.json                 the sweep's spec (every option, the run list), written before any job starts
  jobs.json                  how its jobs were submitted (executor, job ids, task of each run)
  preprocess/progress.json   the preprocessing job's progress
  runs/<run-id>/result.json  the run's record (RESULT_SCHEMA), written atomically once the run ends
  runs/<run-id>/history.csv  per-epoch train and validation loss and accuracy
  runs/<run-id>/progress.json, best.pt, state.pt, attempts.json
  logs/                      submitit's logs and pickles
"""
import re
from pathlib import Path
from typing import Any

from harness.atomic import read_json
from harness.errors import UserError

RESULT_SCHEMA = 1
SWEEP_SCHEMA = 1
SWEEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def run_id(model: str, seed: int, variant: str = "") -> str:
    return f"{model}-{variant}-s{seed}" if variant else f"{model}-s{seed}"


def run_label(run: dict[str, Any]) -> str:
    """What a leaderboard row is called: the architecture, and its variant if the sweep has several."""
    return f"{run['model']} [{run['variant']}]" if run.get("variant") else run["model"]


def check_sweep_name(name: str) -> str:
    """A sweep name is one plain folder name: it may not leave the results folder."""
    if not SWEEP_NAME.match(name) or name in (".", ".."):
        raise UserError(f"sweep name {name!r} must be a plain folder name (letters, digits, '.', '_', '-'), not a path")
    return name


def sweep_dir(results: Path, sweep_id: str) -> Path:
    return Path(results) / check_sweep_name(sweep_id)


def run_dir(sweep: Path, rid: str) -> Path:
    return Path(sweep) / "runs" / rid


def list_sweeps(results: Path) -> list[Path]:
    """Sweeps under results, oldest first (by the time their spec was written)."""
    if not Path(results).is_dir():
        return []
    found = [p for p in Path(results).iterdir() if (p / "sweep.json").is_file()]
    return sorted(found, key=lambda p: ((p / "sweep.json").stat().st_mtime, p.name))


def find_sweep(results: Path, sweep: str | None) -> Path:
    """A sweep by id, unique prefix or path; the latest one when sweep is None."""
    sweeps = list_sweeps(results)
    if sweep is None:
        if not sweeps:
            raise UserError(f"no sweep under {results}; start one with: python -m harness sweep")
        return sweeps[-1]
    if (Path(sweep) / "sweep.json").is_file():
        return Path(sweep)
    exact = [p for p in sweeps if p.name == sweep]
    matches = exact or [p for p in sweeps if p.name.startswith(sweep)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UserError(f"no sweep {sweep!r} under {results}" + (f"; sweeps there: {', '.join(p.name for p in sweeps[-5:])}" if sweeps else ""))
    raise UserError(f"sweep {sweep!r} is ambiguous under {results}: {', '.join(p.name for p in matches)}")


def read_sweep(sweep: Path) -> dict[str, Any]:
    return read_json(Path(sweep) / "sweep.json")


def read_result(sweep: Path, rid: str) -> dict[str, Any] | None:
    path = run_dir(sweep, rid) / "result.json"
    return read_json(path) if path.is_file() else None


def read_progress(sweep: Path, rid: str) -> dict[str, Any] | None:
    path = run_dir(sweep, rid) / "progress.json"
    return read_json(path) if path.is_file() else None
