"""The interface every cluster backend offers (as submitit's executors share one): its options and the
settings they make, whether it is there, a check before anything is written, submission of the work
the use cases hand it, the batch scripts, the states of jobs and runs, their logs, cancel; and, inside
a job, where the job runs (JobEnvironment). Code outside cluster/ asks a backend; it never names one."""
import pwd
import re
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from harness.store.paths import SweepPaths
from harness.store.regular import Unreadable, read_regular
from harness.store.submissions import Submission

# States in which a job will not change any more.
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
                          "BOOT_FAIL", "DEADLINE", "REVOKED"})
# States in which a job is queued or running: a resume leaves its run alone (unless forced).
ALIVE_STATES = frozenset({"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING",
                          "REQUEUE_HOLD", "REQUEUE_FED"})


LOG_TAIL_BYTES = 4096  # where a log's last line is looked for


def user_name(uid: int) -> str:
    """The name of the user with this uid, else the uid itself (a user the system does not name)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def last_line(path: Path | None) -> str:
    """The last non-blank line of a log ('' when there is none, or where the log is no regular file): where
    a job that ended says why."""
    try:
        tail = read_regular(Path(path or ""), LOG_TAIL_BYTES, whole=False, offset=-LOG_TAIL_BYTES)
    except (OSError, Unreadable):
        return ""
    lines = [line.strip() for line in tail.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


@dataclass(frozen=True)
class Placement:
    """Where one run's ranks go: this many nodes, this many tasks (one per GPU, where the run uses GPUs) on
    each; node: the one node it is pinned to (sweep --every-node), '' where the scheduler chooses."""

    nodes: int = 1
    tasks_per_node: int = 1
    node: str = ""
    gpus: bool = True  # a --device cpu run holds no GPU: it may go to a node without one

    @property
    def ranks(self) -> int:
        return self.nodes * self.tasks_per_node


# To a worker of Work.worker_command: stop the run you train where its record says CANCELLED (`cancel --runs`),
# and go on with your next. The worker alone gets it, not its process group: a run's other ranks are its children.
STOP_RUN = signal.SIGUSR1


@dataclass(frozen=True)
class Work:
    """What a sweep's jobs run, handed to a backend by the use cases (as submitit is handed callables):
    the preprocessing step (None where the sweep has none: synthetic inputs), one run's training (called
    with the run id; called again on a requeue), and the module that runs them as a process, for a backend
    that starts processes itself:
    `python -m MODULE worker SWEEP RUN...` (the preprocessing step, then each run no other worker has
    taken; STOP_RUN stops the run it trains) and, for a run's further ranks on the same machine,
    `python -m MODULE rank R SWEEP RUN`."""

    preprocess: Callable[[], Any] | None
    train: Callable[[str], Any]
    module: str

    def worker_command(self, python: str, sweep: SweepPaths, run_ids: list[str]) -> list[str]:
        return [python, "-m", self.module, "worker", str(sweep.folder), *run_ids]


@dataclass
class JobState:
    job_id: str  # "123", "124_3" for an array task, a local worker's token (pid@start time)
    state: str
    partition: str = ""
    node: str = ""
    elapsed: str = ""  # as the scheduler prints it, for a person
    start: str = ""  # ISO 8601 dates ('' where unknown): when the job (its current attempt) started and ended,
    end: str = ""
    submit: str = ""  # and was queued
    restarts: int = 0
    reason: str = ""  # why the state is what it is, where the scheduler or the backend says
    energy_j: float | None = None  # what the scheduler accounted (Slurm's ConsumedEnergy), where the site accounts energy
    elapsed_s: float | None = None  # the job's run time so far, in seconds, where the scheduler keeps it
    gpus: int | None = None  # the GPUs the scheduler allocated to the job; None where it names none

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def gpu_hours(self) -> float | None:
        """The GPU-hours the job held, from the scheduler's own accounting; None where it keeps either figure."""
        return self.elapsed_s * self.gpus / 3600.0 if self.elapsed_s is not None and self.gpus else None


@dataclass(frozen=True)
class Option:
    """A `sweep` option of one backend's own: the command line adds it in the backend's group, and refuses
    it, in one line, on a sweep that goes to another backend."""

    flag: str  # --partition
    field: str  # the name the backend's settings() reads it under
    help: str | None = None
    # a count is a whole number >= 1; a switch is --FLAG (true) or --no-FLAG (false), None where neither is given
    kind: Literal["text", "count", "name_or_file", "repeated", "switch"] = "text"
    metavar: str | None = None


@dataclass(frozen=True)
class SiteView:
    """What `harness cluster` shows of a scheduler's site: its partitions as rows, and the settings a sweep
    would use there, each with where it came from (and the same as a profile to keep)."""

    title: str
    partitions: list[dict[str, Any]]
    meta: dict[str, Any]
    settings: list[tuple[str, str, str]]  # (setting, value, source)
    profile_text: str
    notes: tuple[str, ...] = ()  # lines under the partitions: what a column cannot say (why a GPU cannot be used)


class NodeWatch:
    """What else runs on a job's node while it is measured, as its backend sees it: sampled at the edges of
    a run's timed windows (sample), then the other work seen across the samples, one line each (others).
    This one knows nothing (a backend that cannot tell): others() is None, and reason says why."""

    source = ""  # how the backend looks, for a person ("squeue -w gpu01", "this machine's processes")

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason  # why the node's other work is not known

    def sample(self) -> None:
        """Look once, at the edge of a timed window."""

    def others(self) -> list[str] | None:
        """The other work seen on the node across the samples (jobs, processes), one line each; None where it
        cannot be known (reason)."""
        return None


@dataclass(frozen=True)
class JobEnvironment:
    """Where a job runs, as its backend sees it from inside the job (submitit's JobEnvironment): the system
    a run's record and perflog line name, the CPUs the job was given, and the tasks the scheduler started
    for it (one per rank of a run; 1 where the job starts its ranks itself)."""

    backend: str
    job_id: str  # the job as its backend names it in jobs.json: "123_4", a worker's token
    cluster: str
    partition: str
    node: str
    cpus: int  # the CPUs given to the job's task
    threads: int  # the threads a training task gives torch (its share of those CPUs)
    tasks: int = 1

    def rank_variables(self) -> dict[str, str]:
        """torch's env:// variables of this task, where the scheduler started the run's ranks (tasks > 1);
        none where the job starts its ranks itself."""
        return {}

    def node_watch(self) -> NodeWatch:
        """What watches the job's node for other work while a run is measured (the backend's own view)."""
        return NodeWatch(f"the {self.backend} backend does not say what else runs on its nodes")

    def system(self) -> dict[str, str]:
        """What a run's record keeps of where it ran (its environment): the backend, the job, the cluster,
        the partition and the node."""
        return {"backend": self.backend, "job_id": self.job_id, "cluster": self.cluster, "partition": self.partition,
                "node": self.node}


class Backend(Protocol):
    name: str
    scheduler: bool  # whether it queues jobs through a scheduler that sites rate-limit (its queries are polled slowly)
    job_id: re.Pattern[str]  # the form of its job ids in jobs.json (one that is not is a damaged file)
    options_title: str  # the heading of its options in `sweep --help`

    def options(self) -> list[Option]:
        """Its own `sweep` options."""

    def settings(self, given: dict[str, Any], stored: dict[str, Any] | None = None) -> Any:
        """The settings of a sweep here (anything with to_json()): stored (a sweep's own, from sweep.json:
        checked as untrusted; None: a new sweep) with the options given (its options' fields, None where not
        given) in their place; UserError, naming the option or key, when one is not valid."""

    def environment(self) -> JobEnvironment | None:
        """Inside one of its jobs, where that job runs; None elsewhere."""

    def available(self) -> str | None:
        """None when jobs can be submitted here; otherwise why not, in a few words."""

    def describe(self, partition: str | None, cpu_partition: str | None, profile: str | None = None) -> SiteView:
        """Its site, for `harness cluster` (profile: a sweep's --profile, whose settings the view takes);
        UserError where it has none to show, or it does not answer."""

    def preflight(self, sweep: SweepPaths, settings: Any, runs: dict[str, Placement], devices: set[str],
                  precisions: set[str]) -> None:
        """Everything about the cluster that can be checked before the sweep's folder (sweep) holds these
        runs (run id -> where its ranks go), on `devices` (their --device: auto, cpu, cuda, cuda:N), in
        `precisions` (the arithmetic they ask: fp32, fp16, bf16, tf32): run before anything is written or
        queued, and before --dry-run and --check show anything."""

    def resolve(self, settings: Any) -> Any:
        """The settings a sweep will use here: those given, the rest read from the cluster; checked."""

    def nodes(self, settings: Any, gpus: bool) -> list[str]:
        """The nodes a sweep's training jobs may go to (sweep --every-node pins a run to each): with GPUs where its
        runs use them (gpus), else any; UserError, in one line, where the backend has no nodes to pin to."""

    def submit(self, sweep: SweepPaths, settings: Any, runs: dict[str, Placement], work: Work) -> Iterator[Submission]:
        """Queue the preprocessing step and one job per run (run id -> where its ranks go), each running
        `work`, without waiting for them; yields the submission as it grows, so that the caller records
        every job as soon as it is queued."""

    def scripts(self, sweep: SweepPaths, settings: Any, runs: dict[str, Placement], work: Work) -> list[str]:
        """What a submission would run, as text (the batch scripts of a scheduler)."""

    def check(self, sweep: SweepPaths, settings: Any, runs: dict[str, Placement], work: Work) -> list[str]:
        """The scheduler's own word on a submission, without submitting (one line per job, "ok: ..." where
        the job would run)."""

    def states(self, job_ids: list[str]) -> dict[str, JobState]:
        """The state of each job (array tasks expanded), in as few scheduler queries as possible."""

    def run_state(self, sweep: SweepPaths, run_id: str, job: JobState) -> JobState:
        """The state of a run whose latest job is in the state `job` (a job may hold several runs)."""

    def log_path(self, sweep: SweepPaths, run_id: str, submission: Submission, stream: str) -> Path:
        """The log of the run's job in that submission: stdout ("out") or stderr ("err")."""

    def preprocess_log(self, sweep: SweepPaths, submission: Submission) -> Path | None:
        """The log that ends with the preprocessing step's error, if it failed."""

    def check_may_cancel(self, sweep: SweepPaths, job_ids: list[str]) -> None:
        """UserError, before cancel writes any record, where this user may not stop one of these jobs (a
        shared results folder, another user's sweep)."""

    def cancel(self, sweep: SweepPaths, job_ids: list[str]) -> None:
        """Stop these jobs of the sweep (queued or running); a job that is not provably the sweep's (an id
        reused, a jobs.json edited) is left alone."""

    def cancel_runs(self, sweep: SweepPaths, jobs: dict[str, str]) -> None:
        """Stop these runs (run id -> its latest job) and no other run of the sweep."""

