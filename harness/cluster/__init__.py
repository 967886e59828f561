"""Cluster backends behind one interface (base.Backend), registered by name: the one list of them."""
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.cluster.base import Backend
from harness.errors import UserError
from harness.store.schema import DamagedFile


def _slurm(**_: Any) -> Backend:
    from harness.cluster.slurm import SlurmBackend
    return SlurmBackend()


def _local(max_parallel: int | None = None, **_: Any) -> Backend:
    from harness.cluster.local import LocalBackend
    return LocalBackend(max_parallel)


BACKENDS: dict[str, Callable[..., Backend]] = {"slurm": _slurm, "local": _local}


def check_backend_name(name: str, recorded_in: Path, field: str = "executor") -> None:
    """A backend's name read from a results file: one that no backend has makes the file damaged."""
    if name not in BACKENDS:
        raise DamagedFile(recorded_in, f"{field} {name!r} is not one of {', '.join(BACKENDS)}")


def get_backend(name: str, **options: Any) -> Backend:
    """The backend registered under name; options go to its constructor (local: max_parallel)."""
    if name not in BACKENDS:
        raise UserError(f"unknown cluster {name!r}; choose from {', '.join(BACKENDS)}")
    return BACKENDS[name](**options)


def chosen_backend(requested: str, scheduler_options: bool, recorded: str | None = None) -> str:
    """The backend a sweep goes to: the one requested, unless 'auto'; then Slurm where scheduler options
    (a partition, a profile) are given, else the one a resumed sweep ran on (recorded), else Slurm
    where a controller answers, else this machine."""
    if requested != "auto":
        return requested
    if scheduler_options:
        return "slurm"
    if recorded:
        return recorded
    from harness.cluster.slurm import slurm_answers

    return "slurm" if slurm_answers() is None else "local"
