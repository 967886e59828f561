"""jobs.json: each submission of a sweep's jobs (a resumed sweep has several; a run's latest counts). The
form of a job id is its backend's to check (cluster.check_submission), where the sweep is read."""
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from harness.store.atomic import locked, write_json_atomic
from harness.store.paths import SweepPaths, is_run_id
from harness.store.schema import DamagedFile, from_fields, load_json


@dataclass(frozen=True)
class Submission:
    executor: str
    preprocess_job: str | None
    tasks: dict[str, str]  # run id -> job id
    submitted: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())


@dataclass(frozen=True)
class Submissions:
    submissions: list[Submission]


def latest_submissions(submissions: list[Submission]) -> dict[str, Submission]:
    """The submission that holds each run's latest job (its id: `submission.tasks[run_id]`)."""
    return {rid: submission for submission in submissions for rid in submission.tasks}


def read_submissions(sweep: SweepPaths) -> list[Submission]:
    if not sweep.jobs.is_file():
        return []
    data: Any = load_json(sweep.jobs)
    jobs = from_fields(Submissions, data, sweep.jobs)
    for submission in jobs.submissions:
        if not submission.executor:
            raise DamagedFile(sweep.jobs, "a submission names no executor")
        if not all(is_run_id(rid) for rid in submission.tasks):
            raise DamagedFile(sweep.jobs, "a run id is not of the form ARCH-sSEED")
    return jobs.submissions


def record_submission(sweep: SweepPaths, submission: Submission, lock_held: bool = False) -> None:
    """Add a submission to jobs.json, or replace the one it grew from (the same `submitted` stamp): a
    submission is recorded after each of its sbatch calls. Under the sweep's jobs lock (lock_held: this
    process holds it already, a resume from choosing its runs on; taking it again, on another descriptor,
    would let it go when that one closes, as POSIX record locks do)."""
    with nullcontext() if lock_held else locked(sweep.jobs_lock):
        previous = [s for s in read_submissions(sweep) if s.submitted != submission.submitted]
        write_json_atomic(sweep.jobs, {"submissions": [asdict(s) for s in [*previous, submission]]})
