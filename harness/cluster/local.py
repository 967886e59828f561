"""The local backend: this machine, no scheduler. A bounded number of worker processes, started in
their own session (they outlive the command that started them, so `sweep` returns at once), each
running the shared preprocessing step and then taking the sweep's runs one at a time: a pool, where
whoever is free takes the next run no other worker has taken (`python -m MODULE worker`, the module
the use cases hand it: cluster.base.Work).

A worker is named by its process id and its start time ("4242@918273", worker_token): a process id is
reused once its process ends, and a live process is this sweep's worker only where both match. Only
such a process is signalled. The pool's job id joins its workers' tokens with '+'."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.cluster.base import STOP_RUN, JobEnvironment, JobState, NodeWatch, Option, Placement, SiteView, Work, last_line, user_name
from harness.errors import UserError
from harness.gpus import has_nvidia_gpu, nvidia_gpus
from harness.store.paths import SweepPaths
from harness.store.regular import Unreadable, read_regular
from harness.store.schema import parse_json
from harness.store.submissions import Submission

MAX_CPU_WORKERS = 4  # each worker holds its own torch and its split in memory


def default_parallelism() -> int:
    """Runs at a time: one where an NVIDIA GPU is present (the runs would share it), else one per logical
    CPU up to MAX_CPU_WORKERS. A small CPU run gains more from a worker of its own than from a second
    thread (docs/performance.md)."""
    if has_nvidia_gpu():
        return 1
    return min(len(os.sched_getaffinity(0)), MAX_CPU_WORKERS)


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields from the state on (the 3rd field of proc(5)); None where no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None


def worker_token(pid: int) -> str:
    """A live process named so that no later process can pass for it: its pid and its start time (clock
    ticks after boot, proc(5) field 22)."""
    fields = _stat(pid)
    if fields is None:
        raise ProcessLookupError(pid)
    return f"{pid}@{fields[19]}"


def token_pid(token: str) -> str:
    """The process id of a worker's token (what its log is named after)."""
    return token.split("@")[0]


def worker_alive(token: str) -> bool:
    """Whether the worker of this token still runs: its pid is alive, not a zombie (a finished child not
    yet reaped), and started when the token says. A bare pid (no start time) proves nothing: not ours."""
    pid, _, start = token.partition("@")
    fields = _stat(int(pid)) if pid.isdigit() and start.isdigit() else None
    return fields is not None and fields[0] != "Z" and fields[19] == start


def works_for(token: str, sweep: SweepPaths) -> bool:
    """Whether the process of this token runs this sweep's work: its command line is a worker's (Work.worker_command)
    for this sweep's folder. jobs.json is no proof: a process it names is signalled only where this holds."""
    try:
        words = Path(f"/proc/{token.partition('@')[0]}/cmdline").read_bytes().split(b"\0")
        folder = words[words.index(b"worker") + 1]
        return Path(os.fsdecode(folder)).resolve() == sweep.folder.resolve()
    except (OSError, ValueError, IndexError):
        return False


def stop_group(pid: int, how: signal.Signals = signal.SIGTERM) -> None:
    """A signal to the process group this process leads, then SIGCONT, as kill(1) and scancel do: a stopped
    process (^Z, kill -STOP) acts on SIGTERM only once it runs again."""
    try:
        os.killpg(pid, how)
        os.killpg(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def _signalled(sweep: SweepPaths, tokens: set[str]) -> list[str]:
    """Those of the tokens that name a live worker of this sweep (worker_alive and works_for): the only
    processes cancel signals, whatever jobs.json names."""
    return [token for token in tokens if worker_alive(token) and works_for(token, sweep)]


def _may_signal(pid: int) -> bool:
    """Whether this user may signal the process (signal 0 asks without sending); True where it has ended."""
    try:
        os.kill(pid, 0)
    except PermissionError:
        return False
    except ProcessLookupError:
        pass
    return True


def worker_tokens(job_id: str) -> list[str]:
    """The worker tokens of a pool's job id."""
    return job_id.split("+")


PROGRESS_BYTES = 1 << 20  # a progress file or a run's holder: a few bytes, as the workers write them


def preprocessing_failed(sweep: SweepPaths) -> bool:
    try:
        progress = parse_json(read_regular(sweep.preprocess_progress, PROGRESS_BYTES))
    except (OSError, ValueError):  # absent, no regular file (Unreadable), or not JSON: not known to have failed
        return False
    return isinstance(progress, dict) and progress.get("state") == "failed"


def worker_of_run(sweep: SweepPaths, rid: str, job_id: str) -> str | None:
    """The worker of the pool job_id that took the run, if one did (an earlier pool's worker is not it)."""
    try:
        pid = read_regular(sweep.run(rid).worker, PROGRESS_BYTES).decode(errors="replace").strip()
    except (OSError, Unreadable):
        return None
    return pid if pid in worker_tokens(job_id) else None


def pool_run_state(pool: JobState, worker: str | None) -> JobState:
    """A run's job in its pool: the worker of the pool that took it (worker_of_run) while that worker lives;
    else the pool, PENDING where the run's worker died but others live on (a worker's second round takes
    such a run up)."""
    if worker is None:
        return pool
    if worker_alive(worker):
        return JobState(worker, "RUNNING")
    if pool.state == "RUNNING":
        return JobState(pool.job_id, "PENDING", reason=f"its worker {worker} died; another worker of the pool takes it up")
    return JobState(pool.job_id, "FAILED", reason=f"its worker {worker} died, and the pool's other workers ended")


@dataclass(frozen=True)
class LocalSettings:
    max_parallel: int | None = None  # runs at a time; None: default_parallelism() of the machine the pool starts on

    def to_json(self) -> dict[str, Any]:
        return {"max_parallel": self.max_parallel}

    @property
    def workers(self) -> int:
        return self.max_parallel or default_parallelism()


def _max_parallel(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise UserError(f"--max-parallel must be a whole number of at least 1, got {value!r:.40}")
    return value


def rank_limit(devices: set[str]) -> tuple[int, str]:
    """How many ranks of one run this machine can hold, and why: one per NVIDIA GPU where the runs use one
    (--device cuda, or auto where a GPU is present), else one per CPU this process may use."""
    if has_nvidia_gpu() and any(d == "auto" or d.startswith("cuda") for d in devices):
        return nvidia_gpus(), "one per GPU"
    return len(os.sched_getaffinity(0)), "one per CPU"


# A process counts as other work on this machine where it used at least this share of one CPU between the
# first and the last look: the daemons of an idle machine stay well below it.
MIN_CPU_SHARE = 0.1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def processes() -> dict[int, tuple[int, str, int]]:
    """Every process of this machine: pid -> (its parent's pid, its start time, the CPU ticks it has used:
    user and system, proc(5) fields 4, 22, 14 and 15)."""
    found = {}
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and len(fields) > 19:
            found[int(entry.name)] = (int(fields[1]), fields[19], int(fields[11]) + int(fields[12]))
    return found


def command_line(pid: int) -> str:
    """A process's command line, short ('' where it has none: a kernel thread, or it has ended)."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    return " ".join(w.decode(errors="replace") for w in words if w)[:80]


def descendants(pid: int, table: dict[int, tuple[int, str, int]]) -> set[int]:
    """The processes started by pid, and theirs (a run's other ranks, started by its first)."""
    children: dict[int, list[int]] = {}
    for child, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


class ProcessWatch(NodeWatch):
    """On this machine: the other processes (another sweep's local workers among them) that used CPU between
    the first and the last look, this process and those it started left out."""

    source = "this machine's processes"

    def __init__(self) -> None:
        super().__init__()
        self.looks: list[tuple[float, dict[int, tuple[int, str, int]]]] = []

    def sample(self) -> None:
        self.looks[1:] = []  # the first look and the latest are what count
        self.looks.append((time.monotonic(), processes()))

    def others(self) -> list[str] | None:
        """The other busy processes, the busiest first."""
        if len(self.looks) < 2 or self.looks[-1][0] <= self.looks[0][0]:
            self.reason = "this machine's processes were not looked at twice"
            return None
        (start, before), (end, after) = self.looks[0], self.looks[-1]
        mine = {os.getpid(), *descendants(os.getpid(), after)}
        busy = []
        for pid, (_, started, ticks) in after.items():
            earlier = before.get(pid)
            used = ticks - (earlier[2] if earlier and earlier[1] == started else 0)  # one started since: all it used
            share = used / CLOCK_TICKS / (end - start)
            if pid not in mine and share >= MIN_CPU_SHARE:
                busy.append((share, pid))
        return [f"process {pid} ({command_line(pid) or 'a kernel thread'}): {share:.0%} of a CPU"
                for share, pid in sorted(busy, reverse=True)]  # the busiest first


@dataclass(frozen=True)
class LocalJobEnvironment(JobEnvironment):
    def node_watch(self) -> NodeWatch:
        return ProcessWatch()


def local_environment() -> JobEnvironment:
    """A job on this machine: its worker names it (worker_token), the host is its node, and its threads are
    the share of the cores the local backend gave it (OMP_NUM_THREADS), else every CPU it may use."""
    cpus = len(os.sched_getaffinity(0))
    threads = os.environ.get("OMP_NUM_THREADS", "")
    return LocalJobEnvironment(backend="local", job_id=worker_token(os.getpid()), cluster="local", partition="local",
                               node=socket.gethostname(), cpus=cpus,
                               threads=int(threads) if threads.isdigit() and int(threads) > 0 else cpus)


class LocalBackend:
    name = "local"
    scheduler = False
    job_id = re.compile(r"[0-9]+@[0-9]+(\+[0-9]+@[0-9]+)*")  # a pool: each worker's pid and start time
    options_title = "this machine (--cluster local)"

    def options(self) -> list[Option]:
        return [Option("--max-parallel", "max_parallel", f"local runs at a time (default here: {default_parallelism()})",
                       kind="count")]

    def settings(self, given: dict[str, Any], stored: dict[str, Any] | None = None) -> LocalSettings:
        """Its one setting, max_parallel; a stored sweep's other keys (an older harness wrote the Slurm
        profile's, empty, for every sweep) must be empty."""
        stored = dict(stored or {})
        other = sorted(key for key, value in stored.items() if key != "max_parallel" and value not in (None, [], {}))
        if other:
            raise UserError(f"unknown keys {', '.join(other)} for the local backend; known: max_parallel")
        chosen = given.get("max_parallel") if given.get("max_parallel") is not None else stored.get("max_parallel")
        return LocalSettings(_max_parallel(chosen))

    def environment(self) -> JobEnvironment:
        return local_environment()

    def available(self) -> str | None:
        return None

    def describe(self, partition: str | None, cpu_partition: str | None, profile: str | None = None) -> SiteView:
        raise UserError("the local backend runs the jobs on this machine: it has no site to describe")

    def preflight(self, sweep: SweepPaths, settings: LocalSettings, runs: dict[str, Placement], devices: set[str],
                  precisions: set[str]) -> None:
        """A run asking for CUDA would fail in its worker where this machine has no NVIDIA GPU, one on
        several nodes cannot run on one machine, and one of more ranks than it holds would start that many
        processes here: refused now."""
        nodes = max(p.nodes for p in runs.values())
        if nodes > 1:
            raise UserError(f"--nodes-per-run {nodes}, but the local backend runs on this one machine: "
                            "use --cluster slurm, or one node per run")
        cuda = sorted(d for d in devices if d.startswith("cuda"))
        if cuda and not has_nvidia_gpu():
            raise UserError(f"--device {cuda[0]}, but this machine has no NVIDIA GPU (the local workers run here): "
                            "use --device auto or cpu, or a GPU partition with --cluster slurm")
        ranks, (limit, each) = max(p.ranks for p in runs.values()), rank_limit(devices)
        if ranks > limit:
            raise UserError(f"--gpus-per-run {ranks}, but the local backend starts every rank of a run on this machine, "
                            f"which holds {limit} ({each}): use --gpus-per-run {limit} or fewer, or --cluster slurm")

    def resolve(self, settings: LocalSettings) -> LocalSettings:
        return settings

    def nodes(self, settings: LocalSettings, gpus: bool) -> list[str]:
        raise UserError("--every-node pins one job to each node of a scheduler's partition, and --cluster local runs on "
                        "this machine alone: use --cluster slurm")

    def check(self, sweep: SweepPaths, settings: LocalSettings, runs: dict[str, Placement], work: Work) -> list[str]:
        return [f"ok: {len(runs)} runs start at once on this machine, {settings.workers} at a time"]

    def submit(self, sweep: SweepPaths, settings: LocalSettings, runs: dict[str, Placement], work: Work) -> Iterator[Submission]:
        """A pool of workers on this machine, each `python -m` the work's module; a run of several ranks is
        started by the worker that takes it, all of them here: more than one node is refused (preflight)."""
        run_ids = list(runs)
        workers = min(settings.workers, len(run_ids))
        sweep.logs.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # the jobs import the source as it was at submission
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(sweep.code), env.get("PYTHONPATH")]))
        # Threads per worker: its share of the cores, so workers do not thrash each other.
        env.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // workers)))
        pids: list[str] = []
        try:
            for number in range(workers):
                log = sweep.logs / f"local-starting-{os.getpid()}-{number}.log"
                with open(log, "ab") as out:
                    # In the sweep's folder: `python -m` puts the working directory first on sys.path, and a
                    # checkout there would shadow the code snapshot.
                    process = subprocess.Popen(work.worker_command(sys.executable, sweep, run_ids), stdin=subprocess.DEVNULL,
                                               stdout=out, stderr=subprocess.STDOUT, env=env, cwd=sweep.folder,
                                               start_new_session=True)
                pids.append(worker_token(process.pid))  # not yet reaped: a worker that ended at once is a zombie still
                log.rename(sweep.local_log(str(process.pid)))
        except BaseException:  # Ctrl-C, or a worker the system would not start: none left untracked in jobs.json
            for token in pids:  # killed: just started, they have nothing to save, and may not yet heed SIGTERM
                stop_group(int(token_pid(token)), signal.SIGKILL)
            raise
        yield Submission(self.name, None, dict.fromkeys(run_ids, "+".join(pids)))

    def scripts(self, sweep: SweepPaths, settings: LocalSettings, runs: dict[str, Placement], work: Work) -> list[str]:
        workers = min(settings.workers, len(runs))
        return [" ".join(work.worker_command(sys.executable, sweep, list(runs)))] * workers

    def states(self, job_ids: list[str]) -> dict[str, JobState]:
        return {job: JobState(job, "RUNNING") if any(worker_alive(pid) for pid in worker_tokens(job)) else
                JobState(job, "FAILED", reason="the local workers ended without a result for this run")
                for job in set(job_ids)}

    def run_state(self, sweep: SweepPaths, run_id: str, job: JobState) -> JobState:
        """The run's worker's state (pool_run_state); PENDING while no worker of the pool has taken it (its
        .holder, not its progress file, which an earlier attempt's may be). Not where the preprocessing step
        failed: every worker runs the step first, and one still running may yet get past it and take the
        run, so the run is not CANCELLED (final) while its pool lives."""
        worker = worker_of_run(sweep, run_id, job.job_id)
        state = pool_run_state(job, worker)
        if worker is None and state.state == "RUNNING" and not preprocessing_failed(sweep):
            return JobState(state.job_id, "PENDING", reason="waiting for its worker")
        said = last_line(self._log(sweep, run_id, job.job_id)) if state.final else ""
        return replace(state, reason=f"{state.reason}; its log ends: {said:.300}") if said else state

    def _log(self, sweep: SweepPaths, run_id: str, pool: str) -> Path:
        """The run's own log; before a worker took the run, the log of the pool's first worker."""
        path = sweep.local_log(run_id)
        return path if path.exists() else sweep.local_log(token_pid(worker_tokens(pool)[0]))

    def log_path(self, sweep: SweepPaths, run_id: str, submission: Submission, stream: str) -> Path:
        """The run's own log (stdout and stderr together, every attempt in it); before a worker took the
        run, the log of the pool's first worker (its preprocessing step)."""
        return self._log(sweep, run_id, submission.tasks[run_id])

    def preprocess_log(self, sweep: SweepPaths, submission: Submission) -> Path | None:
        pools = list(submission.tasks.values())
        return sweep.local_log(token_pid(worker_tokens(pools[0])[0])) if pools else None  # every worker runs the step first

    def check_may_cancel(self, sweep: SweepPaths, job_ids: list[str]) -> None:
        """Each live worker of these pools is one this user may signal (signal 0 asks without sending)."""
        for token in _signalled(sweep, {token for job in job_ids for token in worker_tokens(job)}):
            pid = token_pid(token)
            if _may_signal(int(pid)):
                continue
            try:
                owner = user_name(os.stat(f"/proc/{pid}").st_uid)
            except OSError:  # ended meanwhile
                continue
            raise UserError(f"sweep {sweep.sweep_id}: its worker, process {pid}, is user {owner}'s, which user "
                            f"{user_name(os.getuid())} may not signal: nothing cancelled (that user, or root, can cancel it)")

    def cancel(self, sweep: SweepPaths, job_ids: list[str]) -> None:
        """SIGTERM to each worker of these pools that is provably one (_signalled), and to what it started: a
        worker leads its own session and process group (start_new_session)."""
        for token in _signalled(sweep, {token for job in job_ids for token in worker_tokens(job)}):
            stop_group(int(token_pid(token)))

    def cancel_runs(self, sweep: SweepPaths, jobs: dict[str, str]) -> None:
        """The pool's workers share the sweep's runs, so a run is stopped alone: the worker that took it, if
        one did, is asked to stop it (STOP_RUN) and goes on with its next run, as the pool's other workers
        do; the run's CANCELLED record, written before, keeps every worker from taking it again."""
        for token in _signalled(sweep, {worker for rid, job in jobs.items() if (worker := worker_of_run(sweep, rid, job))}):
            try:
                os.kill(int(token_pid(token)), STOP_RUN)
                os.kill(int(token_pid(token)), signal.SIGCONT)
            except ProcessLookupError:
                pass
