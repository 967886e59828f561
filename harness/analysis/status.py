"""Where every run of a sweep stands: its result record first, then its job's state, then its progress.

Success is judged by the result record, not by the scheduler's state alone. `run_status` is pure
(records and job states in, a row out); `sweep_status` takes a sweep as read once (load.SweepResults),
whose backend says each run's state in one query: `status`, `--wait`/`--watch`, `cancel`, `--resume` and
`logs` ask it. The commands that read results (leaderboard, report, compare, check, dashboard,
harness.load) take a run's state from what is on disk alone (`recorded_state`). Imports neither torch
nor submitit.
"""
import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.analysis.load import SweepResults
from harness.cluster.base import FINAL_STATES, JobState, last_line
from harness.errors import UserError
from harness.stats.collapse import RunScore, collapsed_runs
from harness.store.paths import SweepPaths
from harness.store.record_checks import DAMAGED, Checked, view_of
from harness.store.records import RunSpec, read_advisory, read_progress
from harness.store.schema import Amount, Count, DamagedFile, Keys
from harness.store.user_files import read_user_file

NOT_SUBMITTED = "NOT SUBMITTED"
NO_RESULT = "no result yet"  # submitted, without a record: where it stands is the scheduler's to say (status)
MAX_MANIFEST_BYTES = 1 << 30  # a manifest of millions of images
# What the preprocessing step writes (harness.jobs): its state, and while it runs how far it is.
PREPROCESS_PROGRESS = Keys({"state": str, "error": str | None, "cache": Count, "caches": Count | list[str],
                            "done": Count, "total": Count, "images_per_s": Amount | list[Amount], "skipped": Count,
                            "workers": Count})


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
        return dict(vars(self))  # its fields, in order (every one a plain value: asdict's deep copy is not needed)


def run_status(run: RunSpec, checked: Checked, progress: dict[str, Any], job_id: str | None, job: JobState | None,
               preprocess: dict[str, Any], sweep_id: str) -> RunStatus:
    """One run's row, from what is known of it: what the checks of its record found, its progress (a
    completed run's as its record says it), its job (preprocess: the step's row, from preprocess_status)."""
    status = RunStatus(run.run_id, run.model, run.seed, NOT_SUBMITTED, job_id=job_id,
                       epoch=progress.get("epoch"), epochs=progress.get("epochs"), val_accuracy=progress.get("val_accuracy"))
    if job:
        status.partition, status.node, status.elapsed, status.requeues = job.partition, job.node, job.elapsed, job.restarts
        status.energy_j = job.energy_j
    if checked.damage is not None:
        status.state, status.reason = DAMAGED, f"{checked.damage.path.name}: {checked.damage.reason}; sweep --resume reruns it"
    elif checked.state == "COMPLETED":
        status.state, status.requeues = "COMPLETED", checked.requeues
    elif checked.state is not None:
        status.state, status.reason = checked.state, checked.error or ""
    elif job_id is None:
        pass
    elif job is None:
        status.state = "UNKNOWN"
        status.reason = f"job {job_id} is unknown to the scheduler (accounting off, or the job purged)"
    elif preprocess["state"] == "FAILED" and (job.final or job.state == "PENDING"):
        # its job never started (Slurm cancels it: --kill-on-invalid-dep), or the local pool ended
        status.state, status.reason = "CANCELLED", f"the preprocessing step FAILED ({preprocess.get('reason', '')})"
    elif job.state == "COMPLETED":
        status.state, status.reason = "FAILED", "the job completed without writing a result"
    else:
        status.state, status.reason = job.state, job.reason
    if checked.state is None and job_id is not None and status.state in FINAL_STATES:
        status.reason = f"{status.reason}; python -m harness logs {sweep_id}/{run.run_id} shows its log".lstrip("; ")
    return status


def preprocess_status(sweep: SweepPaths, job: str | None, state: JobState | None, submitted: bool,
                      log: Path | None, jobs_ended: bool = False) -> dict[str, Any]:
    """The preprocessing step's row: its job's state (where a scheduler has one), else what the step wrote
    in its progress file; FAILED with a reason (the step's own error, else the last line of its log), where
    it failed or where every job of the sweep has ended (jobs_ended) while it was running."""
    damage = None
    try:
        progress = read_advisory(sweep.preprocess_progress, PREPROCESS_PROGRESS)
    except DamagedFile as damaged:
        progress, damage = {}, damaged
    written = DAMAGED if damage else str(progress.get("state", "pending" if submitted else "not submitted")).upper()
    if state is None and jobs_ended and written == "RUNNING":  # a local pool's workers, cancelled or killed mid-build
        written, progress = "FAILED", {**progress, "error": "the workers that ran it ended before it finished"}
    shown = "COMPLETED" if written == "DONE" else state.state if state else written
    row = {"job_id": job, "state": shown, "node": state.node if state else "",
           **{k: v for k, v in progress.items() if k not in ("state", "error")}}
    if damage:
        row["reason"] = f"{damage.path.name}: {damage.reason}"
    elif shown not in ("COMPLETED", "PENDING", "RUNNING", "NOT SUBMITTED"):
        row["reason"] = str(progress.get("error") or last_line(log) or (state.reason if state else "") or "no reason given")
    return row


def recorded_state(results: SweepResults, run_id: str) -> str:
    """A run's state as the sweep's files say it, no scheduler asked: its record's status (COMPLETED, FAILED,
    CANCELLED), DAMAGED, "no result yet" where its job was submitted, else NOT SUBMITTED."""
    state = results.checked[run_id].state
    if state is not None:
        return state
    return NO_RESULT if results.job_of(run_id) is not None else NOT_SUBMITTED


# The preprocessing step's row of a sweep that has none
NO_PREPROCESSING = {"job_id": None, "state": "NONE", "reason": "synthetic inputs: no dataset to prepare"}


def sweep_status(results: SweepResults) -> tuple[list[RunStatus], dict[str, Any]]:
    """The status of each run (in the spec's order) and of the preprocessing step. Once every job has ended,
    the rows are kept in the records' check cache with the scheduler's answer they were made from
    (store.record_checks.view_of), where every run completed: a completed run's row depends on its files and
    its job's state alone, so a finished sweep of 10,000 runs is not made again while neither changes."""
    sweep, submissions, states = results.sweep, results.submissions, results.job_states
    preprocess_job = submissions[-1].preprocess_job if submissions else None
    ended = bool(states) and all(state.final for state in states.values())
    preprocess = dict(NO_PREPROCESSING) if results.spec.synthetic else preprocess_status(
        sweep, preprocess_job, states.get(preprocess_job or ""), bool(submissions),
        results.backend.preprocess_log(sweep, submissions[-1]) if submissions else None, ended)
    if not ended:  # runs going on: no view kept
        return run_statuses(results, preprocess), preprocess
    answer = hashlib.sha256(repr((sorted(states.items()), sorted(preprocess.items()))).encode()).hexdigest()
    state = list(RunStatus.__dataclass_fields__).index("state")
    rows = view_of(sweep, [run.run_id for run in results.spec.runs], [], "status",  # rows of values: JSON 2x smaller
                   lambda: [list(vars(status).values()) for status in run_statuses(results, preprocess)], answer,
                   keep=lambda made: all(row[state] == "COMPLETED" for row in made))
    return [RunStatus(*row) for row in rows], preprocess


def run_statuses(results: SweepResults, preprocess: dict[str, Any]) -> list[RunStatus]:
    """Each run's status, in the spec's order (preprocess: the step's row)."""
    sweep = results.sweep
    statuses = []
    for run in results.spec.runs:
        checked, job_id, state = results.checked[run.run_id], None, None
        completed = checked.state == "COMPLETED"
        if run.run_id in results.latest:
            submission, state = results.current_job(run.run_id)
            job_id = submission.tasks[run.run_id]
            if state is not None and not completed:  # the run's own state, where its job holds several runs
                state = results.backend_for(submission).run_state(sweep, run.run_id, state)
                job_id = state.job_id
        progress = checked.progress if completed else read_progress(sweep.run(run.run_id))
        statuses.append(run_status(run, checked, progress, job_id, state, preprocess, results.spec.sweep_id))
    flag_collapsed(statuses, results)
    return statuses


def flag_collapsed(statuses: list[RunStatus], results: SweepResults) -> None:
    """A completed run at chance while its sibling seeds learnt: its reason names it, as the leaderboard
    leaves it out (a run whose training diverged is FAILED, its error saying so). From the scores the
    checks of the records found: no record is read."""
    scores: dict[str, dict[str, RunScore]] = {}
    for run in results.spec.runs:
        checked = results.checked[run.run_id]
        if checked.state == "COMPLETED" and checked.score is not None:
            scores.setdefault(run.label, {})[run.run_id] = checked.score
    named = {run: why for group in scores.values() if len(group) > 1 for run, why in collapsed_runs(group).items()}
    for status in statuses:
        if status.run_id in named:
            status.reason = f"collapsed, {named[status.run_id]}: left out of the leaderboard's means and intervals"


def needs_attention(status: RunStatus) -> bool:
    """A run the user may have to act on: not completed, or completed with a reason (collapsed)."""
    return status.state != "COMPLETED" or bool(status.reason)


def state_counts(statuses: list[RunStatus]) -> list[dict[str, Any]]:
    """How many runs of each architecture are in each state (COMPLETED first, the others as they first
    appear; None for none), and a last row of the whole sweep."""
    states = list(dict.fromkeys(["COMPLETED", *(s.state for s in statuses)]))
    counts: dict[str, Counter[str]] = {}
    for status in statuses:
        counts.setdefault(status.model, Counter())[status.state] += 1
    counts["all"] = sum(counts.values(), Counter())
    return [{"model": model, "runs": sum(found.values()), **{state: found[state] or None for state in states}}
            for model, found in counts.items()]


def is_final(status: RunStatus) -> bool:
    """True when a run will not change any more without the user (done, failed, never submitted, blocked)."""
    return status.state in FINAL_STATES or status.state == DAMAGED or status.job_id is None


def manifest_rows(dataset: str) -> tuple[list[dict[str, str]] | None, str | None]:
    """The rows of a dataset's manifest (dataset: its folder, or the manifest itself); None, with why, where
    it cannot be read now (gone, no regular file, too large, not UTF-8, not CSV)."""
    path = Path(dataset) if Path(dataset).is_file() else Path(dataset) / "manifest.csv"
    try:
        text = read_user_file(path, "the dataset's manifest", MAX_MANIFEST_BYTES).decode("utf-8")
        return list(csv.DictReader(io.StringIO(text, newline=""))), None
    except (OSError, UnicodeDecodeError, csv.Error, UserError) as err:
        return None, f"the dataset's manifest {path} cannot be read now ({getattr(err, 'strerror', None) or err})"


def dataset_groups(dataset: str) -> tuple[int | None, str | None]:
    """How many groups (people, source photographs) the sweep's dataset holds, from its manifest's group
    column: None where an image has none, with the reason (then every test and interval counts images as
    independent), or where the manifest cannot be read now."""
    rows, why = manifest_rows(dataset)
    if rows is None:
        return None, why
    groups = [row.get("group") for row in rows]
    if not groups or not all(groups):
        return None, (f"the dataset {dataset} has no groups (data prepare --groups): every test and interval counts its "
                      "images as independent")
    return len(set(groups)), None
