"""Where every run of a sweep stands: its result record first, then its job's state, then its progress.

Success is judged by the result record, not by the scheduler's state alone. `run_status` is pure
(records and job states in, a row out); `sweep_status` reads the files and asks the sweep's backend
for its jobs' states in one query. Imports neither torch nor submitit.
"""
from dataclasses import asdict, dataclass
from typing import Any

from harness.cluster import get_backend
from harness.cluster.base import FINAL_STATES, JobState
from harness.store.paths import SweepPaths
from harness.store.records import RunRecord, RunSpec, read_progress, read_record, read_spec
from harness.store.schema import DamagedFile, load_json
from harness.store.submissions import Submission, read_submissions

DAMAGED = "DAMAGED"


@dataclass
class RunStatus:
    run_id: str
    model: str
    seed: int
    state: str
    job_id: str | None = None
    partition: str = ""
    node: str = ""
    elapsed: str = ""
    epoch: int | None = None
    epochs: int | None = None
    val_accuracy: float | None = None
    requeues: int | None = None
    energy_j: float | None = None  # what Slurm accounted (ConsumedEnergy), where the site accounts energy
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_status(run: RunSpec, record: RunRecord | DamagedFile | None, progress: dict[str, Any], job_id: str | None,
               job: JobState | None, preprocess: JobState | None, executor: str) -> RunStatus:
    """One run's row, from what is known of it."""
    status = RunStatus(run.run_id, run.model, run.seed, "NOT SUBMITTED", job_id=job_id,
                       epoch=progress.get("epoch"), epochs=progress.get("epochs"), val_accuracy=progress.get("val_accuracy"))
    if job:
        status.partition, status.node, status.elapsed, status.requeues = job.partition, job.node, job.elapsed, job.restarts
        status.energy_j = job.energy_j
    if isinstance(record, DamagedFile):
        status.state, status.reason = DAMAGED, f"{record.reason}; sweep --resume reruns it"
    elif record is not None and record.completed:
        status.state, status.requeues = "COMPLETED", record.requeues
    elif record is not None:
        status.state, status.reason = record.status, record.error or ""
    elif job_id is None:
        pass
    elif job is None:
        status.state = "UNKNOWN"
        status.reason = f"job {job_id} is unknown to the scheduler (accounting off, or the job purged)"
    elif executor == "local" and job.state == "RUNNING" and not progress:
        status.state, status.reason = "PENDING", "waiting for its worker"
    elif job.state == "COMPLETED":
        status.state, status.reason = "FAILED", "the job completed without writing a result"
    else:
        status.state, status.reason = job.state, job.reason
        if job.state == "PENDING" and preprocess and preprocess.final and preprocess.state != "COMPLETED":
            status.reason = f"preprocessing job {preprocess.job_id} {preprocess.state}: this task will not run"
    return status


def _record(sweep: SweepPaths, rid: str) -> RunRecord | DamagedFile | None:
    try:
        return read_record(sweep.run(rid))
    except DamagedFile as damaged:
        return damaged


def _preprocess_status(sweep: SweepPaths, job: str | None, state: JobState | None) -> dict[str, Any]:
    try:
        progress = load_json(sweep.preprocess_progress) if sweep.preprocess_progress.exists() else {}
    except DamagedFile:
        progress = {}
    progress = progress if isinstance(progress, dict) else {}
    done = progress.get("state") == "done"
    shown = "COMPLETED" if done else state.state if state else str(progress.get("state", "PENDING" if job else "NOT SUBMITTED")).upper()
    return {"job_id": job, "state": shown, "node": state.node if state else "",
            **{k: v for k, v in progress.items() if k != "state"}}


def sweep_status(sweep: SweepPaths) -> tuple[list[RunStatus], dict[str, Any]]:
    """The status of each run (in the spec's order) and of the preprocessing step."""
    spec = read_spec(sweep)
    submissions = read_submissions(sweep)
    latest: dict[str, tuple[str, Submission]] = {}
    for submitted in submissions:
        for rid, job in submitted.tasks.items():
            latest[rid] = (job, submitted)
    executor = submissions[-1].executor if submissions else spec.executor
    pre_job = submissions[-1].preprocess_job if submissions else None
    ids = sorted({job for job, _ in latest.values()} | {s.preprocess_job for s in submissions if s.preprocess_job})
    states = get_backend(executor).states(ids) if ids else {}
    statuses = []
    for run in spec.runs:
        job_id, submission = latest[run.run_id] if run.run_id in latest else (None, None)
        pre = states.get(submission.preprocess_job or "") if submission is not None else None
        state = states.get(job_id or "")
        if executor == "local" and state is not None:  # a pool's job: the run's own worker, where one took it
            from harness.cluster.local import run_state

            state = run_state(sweep, run.run_id, state)
            job_id = state.job_id
        statuses.append(run_status(run, _record(sweep, run.run_id), read_progress(sweep.run(run.run_id)), job_id,
                                   state, pre, executor))
    return statuses, _preprocess_status(sweep, pre_job, states.get(pre_job or ""))


def is_final(status: RunStatus) -> bool:
    """True when a run will not change any more without the user (done, failed, never submitted, blocked)."""
    return (status.state in FINAL_STATES or status.state == DAMAGED or status.job_id is None
            or "will not run" in status.reason)
