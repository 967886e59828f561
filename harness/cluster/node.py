"""What runs on the nodes: the preprocessing job and the training tasks, as submitit callables, and
the local worker (`python -m harness.cluster.node SWEEP RUN...`) that runs both in turn.

Each job reads its orders from the sweep's sweep.json; its pickle carries only the sweep folder.
Training is imported inside the calls: the backends import this module to submit, not to train.
"""
import logging
import os
import socket
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import submitit

from harness.cluster.base import NODE_MODULE
from harness.cluster.local import worker_token
from harness.errors import UserError
from harness.store.atomic import locked_or_none, write_json_atomic, write_text_atomic
from harness.store.paths import SweepPaths, cache_root, check_inside
from harness.store.records import read_spec, write_record

log = logging.getLogger("harness.node")
LOG_EVERY = 0.1  # the preprocessing job logs a line every 10% of the images


def available_cpus() -> int:
    """The CPUs Slurm gave this job (its cgroup may not say so), else the ones this process may use."""
    return int(os.environ.get("SLURM_CPUS_PER_TASK") or len(os.sched_getaffinity(0)))


def training_threads() -> int:
    """The threads a training task gives torch: the CPUs Slurm gave it, else OMP_NUM_THREADS (a local
    worker's share of the cores, set by the local backend), else every CPU this process may use."""
    for value in (os.environ.get("SLURM_CPUS_PER_TASK"), os.environ.get("OMP_NUM_THREADS")):
        if value and value.isdigit() and int(value) > 0:
            return int(value)
    return len(os.sched_getaffinity(0))


def configure_logging() -> None:
    """One timestamped line per event in the job's log (submitit captures stdout and stderr)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("submitit").propagate = False  # submitit prints its lines itself: not a second time


def error_line(err: Exception) -> str:
    """What a job records of its error: a UserError's own words, else the exception's type and message."""
    return str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"


class Preprocess:
    """The preprocessing job (CPU partition): decode and resize every image once into the sweep's caches."""

    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir = Path(sweep_dir)

    def __call__(self) -> list[str]:
        configure_logging()
        sweep = SweepPaths(self.sweep_dir)
        write_json_atomic(sweep.preprocess_progress, {"state": "running"})
        try:
            return self._build(sweep)
        except Exception as err:
            # status shows the step FAILED with this reason, on every backend, and cancels the runs behind it
            write_json_atomic(sweep.preprocess_progress, {"state": "failed", "error": error_line(err)})
            raise

    def _build(self, sweep: SweepPaths) -> list[str]:
        from harness.data.cache import build_cache, cache_header
        from harness.training.config import config_for

        spec = read_spec(sweep)
        workers = available_cpus()
        keys = sorted({config_for(spec, run).resolved_preprocessing().resize_key for run in spec.runs})
        built, headers = [], []
        for number, key in enumerate(keys, 1):
            report = _progress_reporter(sweep, number, len(keys), key)
            folder = build_cache(Path(spec.dataset), key, cache_root(sweep.results), workers, report)
            header = cache_header(folder)
            for skipped in header["skipped"]:
                log.warning("skipped %s: %s", skipped["path"], skipped["reason"])
            built.append(str(folder))
            headers.append(header)
        write_json_atomic(sweep.preprocess_progress, {"state": "done", "caches": built, "workers": workers,
                                                      "images_per_s": [h["images_per_s"] for h in headers],
                                                      "skipped": sum(len(h["skipped"]) for h in headers)})
        return built


def _progress_reporter(sweep: SweepPaths, number: int, caches: int, key: tuple) -> Callable[[int, int, float], None]:
    """The preprocessing job's progress: progress.json at every report, a log line every LOG_EVERY."""
    next_log = 0.0

    def report(done: int, total: int, rate: float) -> None:
        nonlocal next_log
        write_json_atomic(sweep.preprocess_progress, {"state": "running", "cache": number, "caches": caches,
                                                      "done": done, "total": total, "images_per_s": rate})
        if done / total >= next_log or done == total:
            log.info("cache %d/%d %s: %d/%d images, %.0f images/s", number, caches, key, done, total, rate)
            next_log += LOG_EVERY
    return report


class RunTaken(RuntimeError):
    """Another copy of the run holds it or has finished it: this copy leaves it alone."""


class Train(submitit.helpers.Checkpointable):
    """A training task (GPU partition): one run of the sweep. On a time limit or preemption submitit
    calls checkpoint(): the task requeues with the same run id and resumes from the run's last
    completed epoch (state.pt)."""

    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir = Path(sweep_dir)

    def __call__(self, rid: str) -> str:
        import torch

        from harness.training import distributed
        from harness.training.config import config_for

        configure_logging()
        torch.set_num_threads(training_threads())  # the task's CPUs (a local worker's share), not the whole node's
        sweep = SweepPaths(self.sweep_dir)
        spec = read_spec(sweep)
        paths = sweep.run(rid)
        check_inside(paths.result, sweep.folder)  # every file of the run is written beside its record
        paths.folder.mkdir(parents=True, exist_ok=True)
        config = config_for(spec, spec.run(rid))
        slurm_ranks = export_slurm_ranks(config.world_size)
        main = int(os.environ.get("RANK") or 0) == 0
        with locked_or_none(paths.lock) if main else nullcontext(True) as held:
            # A second copy of this run (a resubmission racing a requeue, a local worker of the same pool)
            # must not write it; the main rank holds the lock, and the other ranks follow its word.
            free = bool(held) and not (main and paths.result.exists())
            started_here = free and main and not slurm_ranks
            with local_ranks(sweep, rid, config.world_size if started_here else 1):
                try:
                    return self._train(sweep, spec, rid, config, free, main)
                finally:
                    distributed.stop()

    def _train(self, sweep: SweepPaths, spec: Any, rid: str, config: Any, free: bool, main: bool) -> str:
        from harness.measure.meters import resolve_device
        from harness.training import distributed
        from harness.training.record import failed_record
        from harness.training.train import train_run

        paths = sweep.run(rid)
        try:
            ranks = distributed.start(resolve_device(config.device).type)
            go = distributed.all_agree(ranks, free)
        except Exception as err:
            if main and free:
                write_record(paths, failed_record(spec.sweep_id, rid, config, f"the ranks could not meet: {error_line(err)}"))
            raise
        if not go:
            if main:
                raise RunTaken(f"run {rid} is being written by another worker or has a result; this copy stops")
            return "TAKEN"
        if main:
            log.info("%s: taken by process %d on %s", rid, os.getpid(), os.uname().nodename)  # marks each attempt
            write_text_atomic(paths.worker, worker_token(os.getpid()))
        else:
            log.info("%s: rank %d of %d on %s", rid, ranks.rank, ranks.world_size, os.uname().nodename)
        try:
            record = train_run(config, Path(spec.dataset), cache_root(sweep.results), paths, spec.sweep_id, ranks)
        except Exception as err:
            message = error_line(err)
            log.error("%s failed on rank %d: %s\n%s", rid, ranks.rank, message, traceback.format_exc())
            if main:  # a failed run still leaves a record, so the leaderboard shows it with its reason
                write_record(paths, failed_record(spec.sweep_id, rid, config, message))
            raise
        return record.status if record is not None else f"RANK {ranks.rank}"


def job_port(job_id: int) -> int:
    """The rendezvous port of a Slurm job's ranks: from its job id, so that two runs sharing a node (their
    ids differ, by less than the span, among the jobs running at once) never pick the same one."""
    return 20_000 + job_id % 40_000


def export_slurm_ranks(world_size: int) -> bool:
    """In a Slurm job of several tasks that submitit started, torch's env:// variables from Slurm's (submitit's
    TorchDistributedEnvironment: rank 0's node is the rendezvous, every task uses the GPUs the job was
    given, by its local rank); True there. False outside one: the caller starts its ranks itself."""
    tasks = int(os.environ.get("SLURM_NTASKS") or 1)
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm" or tasks == 1:  # (a local sweep inside an allocation is not one)
        return False
    if tasks != world_size:
        raise UserError(f"the job has {tasks} tasks but the run trains on {world_size} ranks")
    os.environ["MASTER_PORT"] = str(job_port(int(os.environ["SLURM_JOB_ID"])))
    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    return True


def free_port() -> int:
    """A TCP port no process on this machine listens on now (the system picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def local_ranks(sweep: SweepPaths, rid: str, world_size: int) -> Iterator[None]:
    """On this machine, a run of several ranks: this process becomes rank 0 and starts the others, each
    `python -m harness.cluster.node --rank R SWEEP RUN` with the worker's threads shared among them, its
    output where this process's goes. The worker's environment is its own again afterwards (it goes on
    with other runs), and the ranks it started have ended."""
    if world_size == 1:
        yield
        return
    import torch

    threads = max(1, training_threads() // world_size)
    ranks_env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(world_size),
                 "LOCAL_WORLD_SIZE": str(world_size), "RANK": "0", "LOCAL_RANK": "0", "OMP_NUM_THREADS": str(threads)}
    saved, saved_threads = {name: os.environ.get(name) for name in ranks_env}, torch.get_num_threads()
    os.environ.update(ranks_env)
    torch.set_num_threads(threads)
    sys.stdout.flush()
    sys.stderr.flush()
    others = [subprocess.Popen([sys.executable, "-m", NODE_MODULE, "--rank", str(rank), str(sweep.folder), rid],
                               env={**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank)}, stdin=subprocess.DEVNULL)
              for rank in range(1, world_size)]
    try:
        yield
    finally:
        for process in others:
            try:
                process.wait(timeout=60)  # a rank ends with the run; one that lingers is ended
            except subprocess.TimeoutExpired:
                process.terminate()
                process.wait()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        torch.set_num_threads(saved_threads)


@contextmanager
def output_to(path: Path) -> Iterator[None]:
    """This process's stdout and stderr appended to path: the file descriptors, so that what torch's C++
    or a crashing library writes lands there too."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o666)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (target, *saved):
            os.close(fd)


def run_in_turn(sweep_dir: Path, rids: list[str]) -> dict[str, str]:
    """A local worker of a pool: the preprocessing step (shared, idempotent), then, one after another,
    each run that no other worker has taken, its output in the run's own log. Returns the outcome of
    each run this worker ran."""
    Preprocess(sweep_dir)()
    sweep = SweepPaths(sweep_dir)
    outcomes = {}
    for rid in [*rids, *rids]:  # the second round takes up a run whose worker died (or that no one could take)
        if sweep.run(rid).result.exists():  # finished by another worker (Train checks again, under the run's lock)
            continue
        check_inside(sweep.local_log(rid), sweep.folder)
        with output_to(sweep.local_log(rid)):
            try:
                outcomes[rid] = Train(sweep_dir)(rid)
            except RunTaken:
                continue
            except Exception:  # recorded in the run's result.json; the worker goes on with its next run
                outcomes[rid] = "FAILED"
    return outcomes


def main(argv: list[str]) -> None:
    """`SWEEP RUN...`: a local worker of a pool; `--rank R SWEEP RUN`: rank R of a run a worker trains."""
    if argv[:1] == ["--rank"]:
        Train(Path(argv[2]))(argv[3])
    else:
        run_in_turn(Path(argv[0]), argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
