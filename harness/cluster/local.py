"""The local backend: this machine, no scheduler. A bounded number of worker processes, started in
their own session (they outlive the command that started them, so `sweep` returns at once), each
running the shared preprocessing step and then taking the sweep's runs one at a time: a pool, where
whoever is free takes the next run no other worker has taken (cluster.node.run_in_turn). The pool's
job id joins the workers' process ids with '+'."""
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from harness.cluster.base import NODE_MODULE, JobState
from harness.cluster.profiles import Profile
from harness.store.paths import SweepPaths
from harness.store.records import read_completed, read_progress, read_spec, write_record
from harness.store.submissions import Submission

MAX_CPU_WORKERS = 4  # each worker holds its own torch and its split in memory


def default_parallelism() -> int:
    """Runs at a time: one where an NVIDIA GPU is present (the runs would share it), else one per logical
    CPU up to MAX_CPU_WORKERS. A small CPU run gains more from a worker of its own than from a second
    thread (README, "Performance")."""
    if any(Path("/proc/driver/nvidia/gpus").glob("*")):
        return 1
    return min(len(os.sched_getaffinity(0)), MAX_CPU_WORKERS)


def pid_alive(pid: str) -> bool:
    try:
        fields = Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError):
        return False
    return fields[0] != "Z"  # a finished child not yet reaped is a zombie, not a worker


def worker_pids(job_id: str) -> list[str]:
    return job_id.split("+")


def preprocessing_failed(sweep: SweepPaths) -> bool:
    try:
        progress = json.loads(sweep.preprocess_progress.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(progress, dict) and progress.get("state") == "failed"


def worker_of_run(sweep: SweepPaths, rid: str, job_id: str) -> str | None:
    """The worker of the pool job_id that took the run, if one did (an earlier pool's worker is not it)."""
    try:
        pid = sweep.run(rid).worker.read_text().strip()
    except OSError:
        return None
    return pid if pid in worker_pids(job_id) else None


def pool_run_state(sweep: SweepPaths, rid: str, pool: JobState) -> JobState:
    """A run's job in its pool: the worker that took it while that worker lives; else the pool, PENDING
    where the run's worker died but others live on (a worker's second round takes such a run up)."""
    worker = worker_of_run(sweep, rid, pool.job_id)
    if worker is None:
        return pool
    if pid_alive(worker):
        return JobState(worker, "RUNNING")
    if pool.state == "RUNNING":
        return JobState(pool.job_id, "PENDING", reason=f"its worker {worker} died; another worker of the pool takes it up")
    return JobState(pool.job_id, "FAILED", reason=f"its worker {worker} died, and the pool's other workers ended")


class LocalBackend:
    name = "local"

    def __init__(self, max_parallel: int | None = None) -> None:
        self.max_parallel = max_parallel or default_parallelism()

    def available(self) -> str | None:
        return None

    def preflight(self, profile: Profile, runs: int) -> None:
        return None

    def resolve(self, profile: Profile) -> Profile:
        return profile

    def check(self, sweep: SweepPaths, profile: Profile, run_ids: list[str]) -> list[str]:
        return [f"ok: {len(run_ids)} runs start at once on this machine, {self.max_parallel} at a time"]

    def _command(self, sweep: SweepPaths, run_ids: list[str]) -> list[str]:
        return [sys.executable, "-m", NODE_MODULE, str(sweep.folder), *run_ids]

    def submit(self, sweep: SweepPaths, profile: Profile, run_ids: list[str]) -> Iterator[Submission]:
        workers = min(self.max_parallel, len(run_ids))
        sweep.logs.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # the jobs import the source as it was at submission
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(sweep.code), env.get("PYTHONPATH")]))
        # Threads per worker: its share of the cores, so workers do not thrash each other.
        env.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // workers)))
        pids = []
        for number in range(workers):
            log = sweep.logs / f"local-starting-{os.getpid()}-{number}.log"
            with open(log, "ab") as out:
                # In the sweep's folder: `python -m` puts the working directory first on sys.path, and a
                # checkout there would shadow the code snapshot.
                process = subprocess.Popen(self._command(sweep, run_ids), stdin=subprocess.DEVNULL, stdout=out,
                                           stderr=subprocess.STDOUT, env=env, cwd=sweep.folder, start_new_session=True)
            log.rename(sweep.local_log(str(process.pid)))
            pids.append(str(process.pid))
        yield Submission(self.name, None, dict.fromkeys(run_ids, "+".join(pids)))

    def scripts(self, sweep: SweepPaths, profile: Profile, run_ids: list[str]) -> list[str]:
        workers = min(self.max_parallel, len(run_ids))
        return [" ".join(self._command(sweep, run_ids))] * workers

    def states(self, job_ids: list[str]) -> dict[str, JobState]:
        return {job: JobState(job, "RUNNING") if any(pid_alive(pid) for pid in worker_pids(job)) else
                JobState(job, "FAILED", reason="the local workers ended without a result for this run")
                for job in set(job_ids)}

    def run_state(self, sweep: SweepPaths, run_id: str, job: JobState) -> JobState:
        """The run's worker's state (pool_run_state); PENDING while no worker has started it. Not where the
        preprocessing step failed: every worker runs the step first, and one still running may yet get
        past it and take the run, so the run is not CANCELLED (final) while its pool lives."""
        state = pool_run_state(sweep, run_id, job)
        if state.state == "RUNNING" and not read_progress(sweep.run(run_id)) and not preprocessing_failed(sweep):
            return JobState(state.job_id, "PENDING", reason="waiting for its worker")
        return state

    def log_path(self, sweep: SweepPaths, run_id: str, submission: Submission, stream: str) -> Path:
        """The run's own log (stdout and stderr together, every attempt in it); before a worker took the
        run, the log of the pool's first worker (its preprocessing step)."""
        path = sweep.local_log(run_id)
        return path if path.exists() else sweep.local_log(worker_pids(submission.tasks[run_id])[0])

    def preprocess_log(self, sweep: SweepPaths, submission: Submission) -> Path | None:
        pools = list(submission.tasks.values())
        return sweep.local_log(worker_pids(pools[0])[0]) if pools else None  # every worker runs the step first

    def cancel(self, job_ids: list[str]) -> None:
        for pid in {pid for job in job_ids for pid in worker_pids(job)}:
            if pid_alive(pid):
                try:
                    os.killpg(int(pid), signal.SIGTERM)  # the worker and anything it started
                except ProcessLookupError:
                    pass

    def cancel_runs(self, sweep: SweepPaths, jobs: dict[str, str]) -> None:
        """The pool's workers share the sweep's runs, so a run is cancelled alone: it gets a FAILED record
        saying so (no worker takes a run with a record), then the worker that took it, if one did, is
        stopped; the pool's other workers go on with the rest."""
        from harness.training.config import config_for
        from harness.training.record import failed_record

        spec = read_spec(sweep)
        for rid, job in jobs.items():
            if read_completed(sweep.run(rid)):
                continue
            write_record(sweep.run(rid), failed_record(spec.sweep_id, rid, config_for(spec, spec.run(rid)),
                                                       "cancelled by `harness cancel`"))
            worker = worker_of_run(sweep, rid, job)
            if worker:
                self.cancel([worker])
