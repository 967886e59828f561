"""One sweep, read once per command: its spec, its submissions and each run's latest job, its records
(damaged ones marked), and the states of its jobs, asked of its backend in one query. Each part is
read when first needed, so a command that needs no job (compare's records) does not fail on jobs.json.
Status, leaderboard, figures, report, compare and check all read a sweep through this; only the
commands that follow jobs (status, --wait/--watch, cancel, --resume, logs) ask for job_states, and so
the scheduler: the others read what is on disk (status.recorded_state)."""
import functools

from harness.cluster import check_backend_name, check_submission, get_backend
from harness.cluster.base import Backend, JobState
from harness.store.paths import SweepPaths
from harness.store.record_checks import Checked, check_records, read_checked, read_checked_spec, records_of
from harness.store.records import RunRecord
from harness.store.schema import DamagedFile, from_checked_fields
from harness.store.submissions import Submission, Submissions, latest_submissions, read_submissions


class SweepResults:
    def __init__(self, sweep: SweepPaths) -> None:
        self.sweep = sweep
        self.spec = read_checked_spec(sweep)
        check_backend_name(self.spec.executor, recorded_in=sweep.spec, field="cluster.executor")

    @functools.cached_property
    def submissions(self) -> list[Submission]:
        submissions = read_checked(self.sweep, self.sweep.jobs, lambda: read_submissions(self.sweep),
                                   lambda data: from_checked_fields(Submissions, data).submissions)
        for submission in submissions:  # its backend known (among those registered now), each job id of its form
            check_submission(submission, recorded_in=self.sweep.jobs)
        return submissions

    @functools.cached_property
    def latest(self) -> dict[str, Submission]:
        """Each submitted run's latest submission (its job: `latest[run_id].tasks[run_id]`)."""
        return latest_submissions(self.submissions)

    @functools.cached_property
    def backend(self) -> Backend:
        """The backend of the latest submission: it answers for the sweep's jobs (a resume may go elsewhere)."""
        return get_backend(self.submissions[-1].executor if self.submissions else self.spec.executor)

    def backend_of(self, run_id: str) -> Backend:
        """The backend of the run's latest job."""
        return get_backend(self.latest[run_id].executor)

    def job_of(self, run_id: str) -> str | None:
        """The run's latest job id; None when it was never submitted."""
        submission = self.latest.get(run_id)
        return submission.tasks[run_id] if submission else None

    @functools.cached_property
    def checked(self) -> dict[str, Checked]:
        """What the checks of each run's record found, in the spec's order: its state, error, requeues and
        damage, without the record itself (store.record_checks: checked once per change of its files)."""
        return check_records(self.sweep, [run.run_id for run in self.spec.runs])

    @functools.cached_property
    def records(self) -> dict[str, RunRecord | DamagedFile | None]:
        """Each run's record (None: none yet; DamagedFile: unreadable), in the spec's order."""
        return records_of(self.sweep, self.checked)

    @functools.cached_property
    def job_states(self) -> dict[str, JobState]:
        """The state of every job of the sweep's latest submissions, from one scheduler query."""
        ids = {s.tasks[rid] for rid, s in self.latest.items()} | {s.preprocess_job for s in self.submissions if s.preprocess_job}
        return self.backend.states(sorted(ids)) if ids else {}

    @functools.cached_property
    def earlier_job_states(self) -> dict[str, JobState]:
        """The states of each run's jobs before its latest, one query per backend: asked only where a run's
        latest job has ended without a record (earlier_live_job)."""
        ids: dict[str, set[str]] = {}
        for submission in self.submissions:
            for rid, job in submission.tasks.items():
                if self.latest[rid] is not submission:
                    ids.setdefault(submission.executor, set()).add(job)
        return {job: state for executor, jobs in ids.items() for job, state in get_backend(executor).states(sorted(jobs)).items()}

    def earlier_live_job(self, run_id: str) -> tuple[Backend, JobState] | None:
        """The run's latest earlier job that has not ended, with its backend: one that a `--resume --force`
        left running holds the run, and the new job, finding it held, ends without a record."""
        for submission in reversed(self.submissions):
            if run_id in submission.tasks and submission is not self.latest[run_id]:
                state = self.earlier_job_states.get(submission.tasks[run_id])
                if state is not None and not state.final:
                    return get_backend(submission.executor), state
        return None

    def completed(self) -> dict[str, list[RunRecord]]:
        """The completed records by leaderboard row (the architecture, and its variant), in the spec's
        order; a row whose runs have none is there, empty."""
        groups: dict[str, list[RunRecord]] = {}
        for run in self.spec.runs:
            record = self.records[run.run_id]
            groups.setdefault(run.label, [])
            if isinstance(record, RunRecord) and record.completed:
                groups[run.label].append(record)
        return groups
