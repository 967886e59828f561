"""The interface every cluster backend offers (as submitit's executors share one): whether it is
there, a check before anything is written, submission, the batch scripts, the states of jobs and
runs, their logs, cancel. Code outside cluster/ asks a backend; it never names one."""
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.cluster.profiles import Profile
from harness.store.paths import SweepPaths
from harness.store.submissions import Submission

# What every backend runs on a node, imported there from the sweep's code snapshot.
NODE_MODULE = "harness.cluster.node"
# States in which a job will not change any more.
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
                          "BOOT_FAIL", "DEADLINE", "REVOKED"})
# States in which a job is queued or running: a resume leaves its run alone (unless forced).
ALIVE_STATES = frozenset({"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING",
                          "REQUEUE_HOLD", "REQUEUE_FED"})


def last_line(path: Path | None) -> str:
    """The last non-blank line of a log ('' when there is none): where a job that ended says why."""
    try:
        with open(path or "", "rb") as handle:
            handle.seek(max(0, handle.seek(0, 2) - 4096))
            lines = [line.strip() for line in handle.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


@dataclass(frozen=True)
class Placement:
    """Where one run's ranks go: this many nodes, this many tasks (one per GPU) on each."""

    nodes: int = 1
    tasks_per_node: int = 1


@dataclass
class JobState:
    job_id: str  # "123", "124_3" for an array task, a local worker's token (pid@start time)
    state: str
    partition: str = ""
    node: str = ""
    elapsed: str = ""
    start: str = ""
    end: str = ""
    submit: str = ""  # when the job (its current attempt) was queued, as sacct prints it
    alloc_tres: str = ""
    restarts: int = 0
    reason: str = ""  # why the state is what it is, where the scheduler or the backend says
    energy_j: float | None = None  # sacct's ConsumedEnergy, where the site accounts energy

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


class Backend(Protocol):
    name: str
    scheduler: bool  # whether it queues jobs through Slurm (and so uses the sweep command's Slurm options)

    def available(self) -> str | None:
        """None when jobs can be submitted here; otherwise why not, in a few words."""

    def preflight(self, profile: Profile, runs: dict[str, Placement], devices: set[str]) -> None:
        """Everything about the cluster that can be checked before a sweep of these runs (run id -> where its
        ranks go), on `devices` (their --device: auto, cpu, cuda, cuda:N), writes its first file or queues
        its first job (the site's limits among it)."""

    def resolve(self, profile: Profile) -> Profile:
        """The settings a sweep will use here: the profile's, the rest read from the cluster; checked."""

    def submit(self, sweep: SweepPaths, profile: Profile, runs: dict[str, Placement]) -> Iterator[Submission]:
        """Queue the preprocessing step and one job per run (run id -> where its ranks go), without waiting
        for them; yields the submission as it grows, so that the caller records every job as soon as it
        is queued."""

    def scripts(self, sweep: SweepPaths, profile: Profile, runs: dict[str, Placement]) -> list[str]:
        """What a submission would run, as text (the batch scripts on Slurm)."""

    def check(self, sweep: SweepPaths, profile: Profile, runs: dict[str, Placement]) -> list[str]:
        """The scheduler's own word on a submission, without submitting (one line per job)."""

    def states(self, job_ids: list[str]) -> dict[str, JobState]:
        """The state of each job (array tasks expanded), in as few scheduler queries as possible."""

    def run_state(self, sweep: SweepPaths, run_id: str, job: JobState) -> JobState:
        """The state of a run whose latest job is in the state `job` (a job may hold several runs)."""

    def log_path(self, sweep: SweepPaths, run_id: str, submission: Submission, stream: str) -> Path:
        """The log of the run's job in that submission: stdout ("out") or stderr ("err")."""

    def preprocess_log(self, sweep: SweepPaths, submission: Submission) -> Path | None:
        """The log that ends with the preprocessing step's error, if it failed."""

    def cancel(self, sweep: SweepPaths, job_ids: list[str]) -> None:
        """Stop these jobs of the sweep (queued or running); a job that is not provably the sweep's (an id
        reused, a jobs.json edited) is left alone."""

    def cancel_runs(self, sweep: SweepPaths, jobs: dict[str, str]) -> None:
        """Stop these runs (run id -> its latest job) and no other run of the sweep."""
