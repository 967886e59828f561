"""Where a sweep's files live: every file name in one place (as submitit's JobPaths keeps its own).

results/<sweep-id>/
  sweep.json                 the sweep's spec (SweepSpec), written before any job starts
  jobs.json                  how its jobs were submitted (Submissions)
  preprocess/progress.json   the preprocessing job's progress
  runs/<run-id>/result.json  the run's record (RunRecord), written atomically once the run ends
  runs/<run-id>/...          history.csv, progress.json, best.pt, state.pt (until it completes), attempts.json,
                               test_scores.npy
  logs/                      the jobs' logs
  figures/, report.html      written by `report`
results/perflog.jsonl        every completed run's figures, across the sweeps of the folder (store.perflog)
results/.perflog.index.sqlite  its index, which the reading commands query (store.perflog_index)
"""
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError

SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,150}")
SPEC_FILE, JOBS_FILE, RECORD_FILE, PERFLOG_FILE = "sweep.json", "jobs.json", "result.json", "perflog.jsonl"
KEPT_NAMES = (SPEC_FILE, JOBS_FILE, RECORD_FILE, PERFLOG_FILE)  # what a results folder keeps, wherever it lies
CLOCK_SKEW_S = 300  # how far a file server's clock may run ahead of this machine's


def check_sweep_name(name: str) -> str:
    """A sweep name is one plain folder name: it may not leave the results folder."""
    if not SWEEP_NAME.fullmatch(name) or name in (".", ".."):
        raise UserError(f"sweep name {name!r} must be a plain folder name (letters, digits, '.', '_', '-'), not a path")
    return name


def is_run_id(text: str) -> bool:
    return bool(RUN_ID.fullmatch(text)) and ".." not in text


def check_inside(path: Path, folder: Path) -> None:
    """Before a write to path: UserError where it would land outside folder, through a symbolic link at
    path or on the way to it (a run folder, runs/ or logs/ linked elsewhere). Links above folder, such
    as a home directory on another file system, are the user's own and fine."""
    if Path(path).is_symlink():  # wherever it leads: a write through it would change the file it names
        raise UserError(f"{path} is a symbolic link; the harness writes a sweep's files only as files of their own "
                        "inside its folder: remove the link")
    if not Path(path).parent.resolve().is_relative_to(Path(folder).resolve()):
        raise UserError(f"{path} leads outside {folder} through a symbolic link; the harness writes a sweep's files "
                        "only inside its folder: remove the link")


@dataclass(frozen=True)
class RunPaths:
    folder: Path
    sweep_folder: Path | None = None  # the sweep it belongs to (None for a run outside a sweep)

    @property
    def run_id(self) -> str:
        return self.folder.name

    @property
    def result(self) -> Path:
        return self.folder / RECORD_FILE

    @property
    def history(self) -> Path:
        return self.folder / "history.csv"

    @property
    def progress(self) -> Path:
        return self.folder / "progress.json"

    @property
    def attempts(self) -> Path:
        return self.folder / "attempts.json"

    @property
    def best(self) -> Path:
        return self.folder / "best.pt"

    @property
    def state(self) -> Path:
        return self.folder / "state.pt"

    @property
    def state_prev(self) -> Path:
        return self.folder / "state.prev.pt"

    @property
    def state_next(self) -> Path:
        return self.folder / "state.next.pt"

    def resume_checkpoints(self) -> list[Path]:
        """The files a run resumes from, which a completed run no longer needs (one set aside as damaged,
        state.pt.damaged-TIME, stays: it is the evidence of what went wrong). Files only: the harness writes
        no folder of these names, and clean deletes none (a link is removed, never followed)."""
        return [path for path in (self.state, self.state_prev, self.state_next) if path.is_symlink() or path.is_file()]

    @property
    def test_scores(self) -> Path:
        return self.folder / "test_scores.npy"

    @property
    def lock(self) -> Path:
        return self.folder / ".run.lock"

    @property
    def worker(self) -> Path:
        """The process id of the local worker that took the run (a pool's workers share its runs)."""
        return self.folder / ".holder"


@dataclass(frozen=True)
class SweepPaths:
    folder: Path

    def __post_init__(self) -> None:
        # absolute once: the jobs and the local workers start in other folders (the sweep's own)
        object.__setattr__(self, "folder", Path(os.path.abspath(self.folder)))

    @classmethod
    def of(cls, results: Path, sweep_id: str) -> "SweepPaths":
        return cls(Path(results) / check_sweep_name(sweep_id))

    @property
    def sweep_id(self) -> str:
        return self.folder.name

    @property
    def results(self) -> Path:
        return self.folder.parent

    @property
    def spec(self) -> Path:
        return self.folder / SPEC_FILE

    @property
    def jobs(self) -> Path:
        return self.folder / JOBS_FILE

    @property
    def jobs_lock(self) -> Path:
        return self.folder / ".jobs.lock"

    @property
    def logs(self) -> Path:
        return self.folder / "logs"

    def local_log(self, name: str) -> Path:
        """On the local backend, a run's log (name: its run id, every attempt in it) or a worker's own
        (name: its process id; the preprocessing step)."""
        return self.logs / f"local-{name}.log"

    @property
    def preprocess_progress(self) -> Path:
        return self.folder / "preprocess" / "progress.json"

    @property
    def code(self) -> Path:
        """The harness's source as it was at submission: the jobs import this copy."""
        return self.folder / "code"

    @property
    def figures(self) -> Path:
        return self.folder / "figures"

    def report(self, fmt: str) -> Path:
        """report.html, or report.md for the markdown format."""
        return self.folder / f"report.{'md' if fmt == 'markdown' else fmt}"

    def run(self, run_id: str) -> RunPaths:
        if not is_run_id(run_id):
            raise UserError(f"{run_id!r} is not a run id (letters, digits, '.', '_', '-')")
        return RunPaths(self.folder / "runs" / run_id, self.folder)


def perflog(results: Path) -> Path:
    """The performance log of a results folder: one JSON line per completed run, across sweeps (store.perflog)."""
    return Path(results) / PERFLOG_FILE


def perflog_lock(results: Path) -> Path:
    """The lock held while a line is appended to perflog(results)."""
    return Path(results) / ".perflog.lock"


def perflog_index(results: Path) -> Path:
    """The index the reading commands query instead of perflog(results), a cache of it (store.perflog_index)."""
    return Path(results) / ".perflog.index.sqlite"


def cache_root(results: Path) -> Path:
    """The uint8 image caches, shared by the sweeps of one results folder."""
    return Path(results) / "cache"


# A cache's folder name under cache_root (data.cache.cache_key): manifest digest, size, interpolation, crop
CACHE_NAME = re.compile(r"[0-9a-f]{16}-[0-9]+px-[a-z]+-crop[0-9.e+-]+")


def list_sweeps(results: Path) -> list[SweepPaths]:
    """Sweeps under results, oldest first (by the time their spec was written)."""
    if not Path(results).is_dir():
        return []
    found = [p for p in Path(results).iterdir() if (p / SPEC_FILE).is_file() and SWEEP_NAME.fullmatch(p.name)]
    return [SweepPaths(p) for p in sorted(found, key=lambda p: ((p / SPEC_FILE).stat().st_mtime, p.name))]


def find_sweep(results: Path, sweep: str | None) -> SweepPaths:
    """A sweep by id, unique prefix or path; the latest one when sweep is None."""
    sweeps = list_sweeps(results)
    given_as_path = bool(sweep) and (Path(str(sweep)) / SPEC_FILE).is_file()
    if not sweeps and not given_as_path and (Path(results) / SPEC_FILE).exists():  # a sweep's folder as the folder of sweeps
        raise UserError(f"{results} is a sweep's folder, not a folder of sweeps: give --results {Path(results).parent} "
                        f"and the sweep {Path(results).name}")
    if sweep is None:
        if not sweeps:
            raise UserError(f"no sweep under {results}; start one with: python -m harness sweep")
        # a sweep.json dated in the future (a clock set wrong, a copy, a touch) would stay "the latest" for good
        written = [s for s in sweeps if s.spec.stat().st_mtime <= time.time() + CLOCK_SKEW_S]
        if not written:
            raise UserError(f"every sweep under {results} is dated in the future (its sweep.json modified after now): "
                            f"name the one you mean ({', '.join(s.sweep_id for s in sweeps[-5:])})")
        return written[-1]
    if not sweep:
        raise UserError(f"no sweep '' under {results}: give a sweep id, or none for the latest")
    if given_as_path:
        return SweepPaths(Path(sweep))
    exact = [p for p in sweeps if p.sweep_id == sweep]
    matches = exact or [p for p in sweeps if p.sweep_id.startswith(sweep)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        known = f"; sweeps there: {', '.join(p.sweep_id for p in sweeps[-5:])}" if sweeps else ""
        raise UserError(f"no sweep {sweep!r} under {results}{known}")
    raise UserError(f"sweep {sweep!r} is ambiguous under {results}: {', '.join(p.sweep_id for p in matches)}")
