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

    def backend_for(self, submission: Submission) -> Backend:
        """The backend a submission went to."""
        return get_backend(submission.executor)

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
        """The state of every job of the sweep's latest submissions, and of its preprocessing steps: one
        scheduler query, one per backend where a resume went elsewhere."""
        ids: dict[str, set[str]] = {}
        for rid, submission in self.latest.items():
            ids.setdefault(submission.executor, set()).add(submission.tasks[rid])
        for submission in self.submissions:
            if submission.preprocess_job:
                ids.setdefault(submission.executor, set()).add(submission.preprocess_job)
        return _states(ids)

    @functools.cached_property
    def earlier_job_states(self) -> dict[str, JobState]:
        """The states of each run's jobs before its latest, one query per backend: asked only where a run's
        latest job has ended without a record, or waits (current_job)."""
        ids: dict[str, set[str]] = {}
        for submission in self.submissions:
            for rid, job in submission.tasks.items():
                if self.latest[rid] is not submission:
                    ids.setdefault(submission.executor, set()).add(job)
        return _states(ids)

    def current_job(self, run_id: str) -> tuple[Submission, JobState | None]:
        """The submission whose job stands for a submitted run now, and that job's state (None: unknown to the
        scheduler): its latest, unless that job has ended without a record, or waits, while an earlier job
        that holds the run goes on (a `--resume --force`'s new job finds the run held and ends, or waits
        behind its preprocessing step). Asks the scheduler (job_states; the earlier jobs only then)."""
        latest = self.latest[run_id]
        state = self.job_states.get(latest.tasks[run_id])
        if state is not None and (state.final or state.state == "PENDING") and self.checked[run_id].state is None:
            for submission in reversed(self.submissions):
                if run_id in submission.tasks and submission is not latest:
                    earlier = self.earlier_job_states.get(submission.tasks[run_id])
                    if earlier is not None and (earlier.state == "RUNNING" or (state.final and not earlier.final)):
                        return submission, earlier
        return latest, state

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


def _states(jobs: dict[str, set[str]]) -> dict[str, JobState]:
    """The states of these jobs (by the name of the backend they went to), one query per backend."""
    return {job: state for executor, ids in jobs.items() for job, state in get_backend(executor).states(sorted(ids)).items()}
