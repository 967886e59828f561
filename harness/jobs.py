"""What a sweep's jobs run, on whichever backend: the preprocessing step and a run's training, as the
callables the use cases hand a backend (work()), and this module as a process, which a backend that
starts processes itself runs by its name, and a person runs by hand:

    python -m harness.jobs preprocess SWEEP_DIR        build the sweep's image caches, in this process
    python -m harness.jobs train SWEEP_DIR RUN_ID...   train and evaluate these runs, one after another
    python -m harness.jobs worker SWEEP_DIR RUN_ID...  a worker of a pool: the preprocessing step, then each
                                                       run no other worker has taken, its output in the run's log
    python -m harness.jobs rank R SWEEP_DIR RUN_ID     rank R of a run whose rank 0 runs on this machine

Each job reads its orders from the sweep's sweep.json; its pickle carries only the sweep folder. Where
it runs (its CPUs, its ranks, its system) it asks its backend (cluster.job_environment), as a submitit
job asks submitit's JobEnvironment. Training is imported inside the calls: the use cases import this
module to hand the work over, not to train.
"""
import logging
import os
import signal
import socket
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from harness.cluster import job_environment
from harness.cluster.base import STOP_RUN, JobEnvironment, Work
from harness.errors import UserError
from harness.store.atomic import locked_or_none, write_json_atomic, write_text_atomic
from harness.store.paths import SweepPaths, cache_root, check_inside
from harness.store.records import RunRecord, read_spec, record_or_damage, write_record

log = logging.getLogger("harness.jobs")
LOG_EVERY = 0.1  # the preprocessing job logs a line every 10% of the images
EARLIER_ATTEMPT_WAIT_S = 120.0  # how long a requeued job waits for its own earlier attempt to let go of the run
MODULE = "harness.jobs"  # this module, as `python -m` runs it
RANK_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "RANK", "LOCAL_RANK")  # torch's env://


def work(sweep_dir: Path, synthetic: bool = False) -> Work:
    """What a sweep's jobs run, for its backend to submit: a sweep of synthetic inputs has no preprocessing
    step (no dataset)."""
    return Work(preprocess=None if synthetic else Preprocess(sweep_dir), train=Train(sweep_dir), module=MODULE)


def configure_logging() -> None:
    """One timestamped line per event in the job's log (a scheduler captures stdout and stderr)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and logger.handlers:  # (submitit's) prints its lines itself: not a second time
            logger.propagate = False


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
        workers = job_environment().cpus
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


class RunCancelled(BaseException):
    """The run this worker trains was cancelled alone (`cancel --runs`): it stops there. A BaseException, as
    KeyboardInterrupt is: no `except Exception` on its way writes a FAILED record over the CANCELLED one."""


class Train:
    """A training task (GPU partition): one run of the sweep. A backend that requeues it (on a time limit
    or a preemption) calls it again with the same run id: it resumes from the run's last completed epoch
    (state.pt)."""

    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir = Path(sweep_dir)

    def __call__(self, rid: str, started_by_rank_0: bool = False) -> str:
        """started_by_rank_0: this process is a rank the run's rank 0 started on its machine (`rank R ...`), its
        place in the environment rank 0 gave it."""
        import torch

        from harness.training import distributed
        from harness.training.config import config_for

        configure_logging()
        where = job_environment()
        torch.set_num_threads(where.threads)  # the task's CPUs (a local worker's share), not the whole node's
        sweep = SweepPaths(self.sweep_dir)
        spec = read_spec(sweep)
        paths = sweep.run(rid)
        check_inside(paths.result, sweep.folder)  # every file of the run is written beside its record
        paths.folder.mkdir(parents=True, exist_ok=True)
        config = config_for(spec, spec.run(rid))
        scheduled = scheduler_ranks(where, config.world_size)
        if not (scheduled or started_by_rank_0):  # a job of one task: torch's variables left in the shell that
            for name in RANK_VARIABLES:           # submitted it (a torchrun session's) are no run's
                os.environ.pop(name, None)
        main = int(os.environ.get("RANK") or 0) == 0
        # This job's own earlier attempt may hold the run a while yet: requeued off a node taken down, its process
        # there dies within the scheduler's kill wait (Slurm's KillWait, 30 s by default) after this one starts.
        own = main and paths.worker.exists() and paths.worker.read_text().strip() == where.job_id
        if own:
            log.info("%s: taken before by this job (%s); waiting up to %.0f s for that attempt to let go of it", rid,
                     where.job_id, EARLIER_ATTEMPT_WAIT_S)
        with locked_or_none(paths.lock, EARLIER_ATTEMPT_WAIT_S if own else 0) if main else nullcontext(True) as held:
            # A second copy of this run (a resubmission racing a requeue, a local worker of the same pool)
            # must not write it; the main rank holds the lock, and the other ranks follow its word.
            free = bool(held) and not (main and paths.result.exists())
            started_here = free and main and not scheduled
            with local_ranks(sweep, rid, config.world_size if started_here else 1, where.threads):
                try:
                    return self._train(sweep, spec, rid, config, free, where.job_id if main else None)
                finally:
                    distributed.stop()

    def _train(self, sweep: SweepPaths, spec: Any, rid: str, config: Any, free: bool, job_id: str | None) -> str:
        """The run on this rank; job_id: the job that took it, on the main rank (None on the others)."""
        from harness.measure.meters import resolve_device
        from harness.training import distributed
        from harness.training.record import failed_record
        from harness.training.synthetic import synthetic_run
        from harness.training.train import train_run

        paths, main = sweep.run(rid), job_id is not None
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
            write_text_atomic(paths.worker, job_id or "")  # which job took it (a local pool's: which worker)
        else:
            log.info("%s: rank %d of %d on %s", rid, ranks.rank, ranks.world_size, os.uname().nodename)
        try:
            record = synthetic_run(config, paths, spec.sweep_id, ranks) if config.synthetic else \
                train_run(config, Path(spec.dataset), cache_root(sweep.results), paths, spec.sweep_id, ranks)
        except Exception as err:
            message = error_line(err)
            log.error("%s failed on rank %d: %s\n%s", rid, ranks.rank, message, traceback.format_exc())
            if main:  # a failed run still leaves a record, so the leaderboard shows it with its reason
                write_record(paths, failed_record(spec.sweep_id, rid, config, message))
            raise
        return record.status if record is not None else f"RANK {ranks.rank}"


def scheduler_ranks(where: JobEnvironment, world_size: int) -> bool:
    """Where the scheduler started the run's ranks, a task each: torch's env:// variables of this task
    exported, as its backend gives them; True there. False where this job starts its ranks itself."""
    if where.tasks == 1:
        return False
    if where.tasks != world_size:
        raise UserError(f"the job has {where.tasks} tasks but the run trains on {world_size} ranks")
    os.environ.update(where.rank_variables())
    return True


def free_port() -> int:
    """A TCP port no process on this machine listens on now (the system picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def local_ranks(sweep: SweepPaths, rid: str, world_size: int, threads: int) -> Iterator[None]:
    """On this machine, a run of several ranks: this process becomes rank 0 and starts the others, each
    `python -m harness.jobs rank R SWEEP RUN` with the worker's threads shared among them, its
    output where this process's goes. The worker's environment is its own again afterwards (it goes on
    with other runs), and the ranks it started have ended."""
    if world_size == 1:
        yield
        return
    import torch

    threads = max(1, threads // world_size)
    ranks_env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(world_size),
                 "LOCAL_WORLD_SIZE": str(world_size), "RANK": "0", "LOCAL_RANK": "0", "OMP_NUM_THREADS": str(threads)}
    saved, saved_threads = {name: os.environ.get(name) for name in ranks_env}, torch.get_num_threads()
    os.environ.update(ranks_env)
    torch.set_num_threads(threads)
    sys.stdout.flush()
    sys.stderr.flush()
    others = [subprocess.Popen([sys.executable, "-m", MODULE, "rank", str(rank), str(sweep.folder), rid],
                               env={**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank)}, stdin=subprocess.DEVNULL)
              for rank in range(1, world_size)]
    try:
        yield
    except RunCancelled:  # the others, mid-run, would wait for this rank in their next collective
        for process in others:
            process.terminate()
        raise
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
    """A worker of a pool: the preprocessing step (shared, idempotent; none for synthetic inputs), then, one
    after another, each run that no other worker has taken, its output in the run's own log
    (SweepPaths.local_log). Returns the outcome of each run this worker ran."""
    sweep = SweepPaths(sweep_dir)
    training: list[str] = []  # the run this worker trains, until STOP_RUN has stopped it

    def stop_if_cancelled(signum: int, frame: Any) -> None:
        """STOP_RUN: the run being trained stops where it was cancelled (the signal may come late, when this
        worker is on its next run, which goes on); at most once a run, so that its own cleanup runs whole."""
        record = record_or_damage(sweep.run(training[0])) if training else None
        if isinstance(record, RunRecord) and record.status == "CANCELLED":
            training.clear()
            raise RunCancelled(record.run_id)

    signal.signal(STOP_RUN, stop_if_cancelled)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {STOP_RUN})
    if not read_spec(sweep).synthetic:
        Preprocess(sweep_dir)()
    sweep.logs.mkdir(exist_ok=True)
    outcomes = {}
    for rid in [*rids, *rids]:  # the second round takes up a run whose worker died (or that no one could take)
        if sweep.run(rid).result.exists():  # finished by another worker (Train checks again, under the run's lock)
            continue
        check_inside(sweep.local_log(rid), sweep.folder)
        with output_to(sweep.local_log(rid)):
            try:
                training[:] = [rid]
                outcomes[rid] = Train(sweep_dir)(rid)
            except RunTaken:
                continue
            except RunCancelled:
                log.info("%s: cancelled; this worker goes on with its next run", rid)
                outcomes[rid] = "CANCELLED"
            except Exception:  # recorded in the run's result.json; the worker goes on with its next run
                outcomes[rid] = "FAILED"
            finally:
                training.clear()
    return outcomes


def train_by_hand(sweep_dir: Path, rids: list[str]) -> None:
    """These runs, one after another, in this process; a run that a job holds, or that has a result, is
    said so, and the next one goes on."""
    for rid in rids:
        try:
            Train(sweep_dir)(rid)
        except RunTaken as taken:
            print(taken, file=sys.stderr)


def end_on_sigterm() -> None:
    """SIGTERM ends this process (cancel's signal, a lingering rank's end), as a scheduler starts its jobs,
    whatever the process that started it did: an ignored or blocked signal stays so across exec, and some
    runners (a CI's) start their commands with SIGTERM ignored."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def main(argv: list[str]) -> None:
    """The commands of the module's docstring."""
    end_on_sigterm()
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "preprocess" and len(args) == 1:
        Preprocess(Path(args[0]))()
    elif command == "train" and len(args) >= 2:
        train_by_hand(Path(args[0]), args[1:])
    elif command == "worker" and len(args) >= 2:
        run_in_turn(Path(args[0]), args[1:])
    elif command == "rank" and len(args) == 3:  # its rank is in the environment its rank 0 gave it
        Train(Path(args[1]))(args[2], started_by_rank_0=True)
    else:
        raise SystemExit(f"usage: python -m {MODULE} preprocess SWEEP_DIR | train SWEEP_DIR RUN_ID... | "
                         "worker SWEEP_DIR RUN_ID... | rank R SWEEP_DIR RUN_ID")


if __name__ == "__main__":
    main(sys.argv[1:])
