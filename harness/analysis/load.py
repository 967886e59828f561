"""One sweep, read once per command: its spec, its submissions and each run's latest job, its records
(damaged ones marked), and the states of its jobs, asked of its backend in one query when first
needed. Status, leaderboard, figures, report and compare all read a sweep through this."""
import functools

from harness.cluster import get_backend
from harness.cluster.base import Backend, JobState
from harness.store.paths import SweepPaths
from harness.store.records import RunRecord, read_spec, record_or_damage
from harness.store.schema import DamagedFile
from harness.store.submissions import Submission, latest_submissions, read_submissions


class SweepResults:
    def __init__(self, sweep: SweepPaths) -> None:
        self.sweep = sweep
        self.spec = read_spec(sweep)
        self.submissions = read_submissions(sweep)
        self.latest: dict[str, Submission] = latest_submissions(self.submissions)  # run id -> its latest submission
        get_backend(self.spec.executor, recorded_in=sweep.spec)  # every name recorded is a backend's
        for submission in self.submissions:
            get_backend(submission.executor, recorded_in=sweep.jobs)
        # the latest submission's backend answers for the sweep (a resume may go to another cluster)
        self.backend: Backend = get_backend(self.submissions[-1].executor if self.submissions else self.spec.executor)

    def job_of(self, run_id: str) -> str | None:
        """The run's latest job id; None when it was never submitted."""
        submission = self.latest.get(run_id)
        return submission.tasks[run_id] if submission else None

    @functools.cached_property
    def records(self) -> dict[str, RunRecord | DamagedFile | None]:
        """Each run's record (None: none yet; DamagedFile: unreadable), in the spec's order."""
        return {run.run_id: record_or_damage(self.sweep.run(run.run_id)) for run in self.spec.runs}

    @functools.cached_property
    def job_states(self) -> dict[str, JobState]:
        """The state of every job of the sweep's latest submissions, from one scheduler query."""
        ids = {s.tasks[rid] for rid, s in self.latest.items()} | {s.preprocess_job for s in self.submissions if s.preprocess_job}
        return self.backend.states(sorted(ids)) if ids else {}

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
