"""Cluster backends behind one interface (base.Backend), registered by name: the one list of them.

A backend is registered with `register_backend(name, factory)`, here for the two the harness ships and
by anyone else for their own (a test registers a third): nothing else in the harness changes."""
from collections.abc import Callable
from pathlib import Path

from harness.cluster.base import Backend, JobEnvironment
from harness.errors import UserError
from harness.store.schema import DamagedFile
from harness.store.submissions import Submission


def _slurm() -> Backend:
    from harness.cluster.slurm.backend import SlurmBackend
    return SlurmBackend()


def _local() -> Backend:
    from harness.cluster.local import LocalBackend
    return LocalBackend()


# In the order --cluster auto tries them, and job_environment asks them (the local one answers last, always).
BACKENDS: dict[str, Callable[[], Backend]] = {"slurm": _slurm, "local": _local}


def register_backend(name: str, factory: Callable[[], Backend]) -> None:
    """Make a backend known by name (`sweep --cluster NAME`, the sweeps that ran on it); `--cluster auto` picks
    it only where its own options are given."""
    if name in BACKENDS or name == "auto":
        raise ValueError(f"a backend named {name!r} is registered already")
    BACKENDS[name] = factory


def get_backend(name: str) -> Backend:
    """The backend registered under name."""
    if name not in BACKENDS:
        raise UserError(f"unknown cluster {name!r}; choose from {', '.join(BACKENDS)}")
    return BACKENDS[name]()


def check_backend_name(name: str, recorded_in: Path, field: str = "executor") -> None:
    """A backend's name read from a results file: one that no backend has makes the file damaged."""
    if name not in BACKENDS:
        raise DamagedFile(recorded_in, f"{field} {name!r} is not one of {', '.join(BACKENDS)}")


def check_submission(submission: Submission, recorded_in: Path) -> None:
    """A submission read from jobs.json: its backend is known, and each job id is of that backend's form."""
    check_backend_name(submission.executor, recorded_in)
    form = get_backend(submission.executor).job_id
    ids = [*submission.tasks.values(), *([submission.preprocess_job] if submission.preprocess_job else [])]
    bad = [job for job in ids if not form.fullmatch(job)]
    if bad:
        raise DamagedFile(recorded_in, f"job id {bad[0]!r:.40} is not a job id of the {submission.executor!r} executor")


def chosen_backend(requested: str, options_of: set[str], recorded: str | None = None) -> str:
    """The backend a sweep goes to: the one requested, unless 'auto'; then the backend whose own options
    are given (options_of: the names of the backends whose options are), else the one a resumed sweep ran
    on (recorded), else the first, in BACKENDS' order, that answers here."""
    if requested != "auto":
        return requested
    if options_of:
        return next(name for name in BACKENDS if name in options_of)
    if recorded:
        return recorded
    return next((name for name in BACKENDS if get_backend(name).available() is None), "local")


def site_backend() -> Backend:
    """The backend whose site `harness cluster` describes: the first scheduler of BACKENDS."""
    return next(backend for name in BACKENDS if (backend := get_backend(name)).scheduler)


def job_environment() -> JobEnvironment:
    """Inside a job, where it runs, as the backend that started it says (asked in BACKENDS' order: a
    scheduler's job knows it is one; anything else runs on this machine, as the local backend's)."""
    from harness.cluster.local import local_environment

    for name in BACKENDS:
        found = get_backend(name).environment()
        if found is not None:
            return found
    return local_environment()  # (the local backend answers so already: for the type checker)
