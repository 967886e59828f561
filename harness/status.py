"""Where every run of a sweep stands: its result record first, then its job's state, then its progress.

Success is judged by the result record, not by the scheduler's state alone. Slurm states come from
one sacct call for the whole sweep (squeue when accounting is off); local workers are checked by pid.
"""
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.atomic import read_json
from harness.launch import read_submissions
from harness.results import read_progress, read_result, read_sweep
from harness.slurm import FINAL_STATES, JobState, sacct, squeue


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
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pid_alive(pid: str) -> bool:
    try:
        fields = Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError):
        return False
    return fields[0] != "Z"  # a finished child not yet reaped is a zombie, not a worker


def _latest_tasks(submissions: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, str | None]]:
    tasks, preprocess_of = {}, {}
    for submission in submissions:
        for rid, job in submission["tasks"].items():
            tasks[rid], preprocess_of[rid] = job, submission["preprocess_job"]
    return tasks, preprocess_of


def slurm_states(submissions: list[dict[str, Any]]) -> tuple[dict[str, JobState], str]:
    """Every job of the sweep in one sacct call; squeue when accounting is unavailable."""
    ids = sorted({s["preprocess_job"] for s in submissions if s.get("preprocess_job")}
                 | {job.split("_")[0] for s in submissions for job in s["tasks"].values()})
    states = sacct(ids)
    if states is not None:
        return states, "sacct"
    return squeue(ids) or {}, "squeue"


def preprocess_status(sweep: Path, submissions: list[dict[str, Any]], states: dict[str, JobState]) -> dict[str, Any]:
    job = submissions[-1]["preprocess_job"] if submissions else None
    progress_file = sweep / "preprocess" / "progress.json"
    progress = read_json(progress_file) if progress_file.exists() else {}
    slurm_job = states.get(job) if job else None
    state = slurm_job.state if slurm_job else progress.get("state", "UNKNOWN").upper()
    return {"job_id": job, "state": "COMPLETED" if progress.get("state") == "done" else state,
            "node": slurm_job.node if slurm_job else "", **{k: v for k, v in progress.items() if k != "state"}}


def sweep_status(sweep: Path) -> tuple[list[RunStatus], dict[str, Any]]:
    """The status of each run (in the spec's order) and of the preprocessing step."""
    spec = read_sweep(sweep)
    submissions = read_submissions(sweep)
    tasks, preprocess_of = _latest_tasks(submissions)
    executor = submissions[-1]["executor"] if submissions else None
    states, source = slurm_states(submissions) if executor == "slurm" else ({}, "")
    statuses = []
    for run in spec["runs"]:
        rid = run["run_id"]
        status = RunStatus(rid, run["model"], run["seed"], "NOT SUBMITTED", job_id=tasks.get(rid))
        progress = read_progress(sweep, rid) or {}
        status.epoch, status.epochs, status.val_accuracy = progress.get("epoch"), progress.get("epochs"), progress.get("val_accuracy")
        job = states.get(status.job_id or "")
        if job:
            status.partition, status.node, status.elapsed, status.requeues = job.partition, job.node, job.elapsed, job.restarts
        result = read_result(sweep, rid)
        if result and result.get("status") == "COMPLETED":
            status.state, status.requeues = "COMPLETED", result.get("requeues")
        elif result:
            status.state, status.reason = result.get("status", "FAILED"), result.get("error") or ""
        elif status.job_id is None:
            pass
        elif executor == "local":
            alive = _pid_alive(status.job_id)
            status.state = ("RUNNING" if progress else "PENDING") if alive else "FAILED"
            status.reason = "" if alive else "the local worker ended without a result for this run"
        elif job is None:
            status.state = "UNKNOWN"
            status.reason = f"no record of job {status.job_id} in {source}" if source else ""
        else:
            status.state = job.state
            pre = states.get(preprocess_of.get(rid) or "")
            if job.state == "PENDING" and pre and pre.state in FINAL_STATES and pre.state != "COMPLETED":
                status.reason = f"preprocessing job {pre.job_id} {pre.state}: this task will not run"
            elif job.state == "COMPLETED":
                status.state, status.reason = "FAILED", "the job completed without writing a result"
        statuses.append(status)
    return statuses, preprocess_status(sweep, submissions, states)


def is_final(status: RunStatus) -> bool:
    """True when a run will not change any more without the user (done, failed, never submitted, blocked)."""
    return status.state in FINAL_STATES or status.job_id is None or "will not run" in status.reason
