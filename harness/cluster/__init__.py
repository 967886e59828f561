"""Cluster backends behind one interface (base.Backend), registered by name."""
from collections.abc import Callable
from typing import Any

from harness.cluster.base import Backend
from harness.errors import UserError


def _slurm(**_: Any) -> Backend:
    from harness.cluster.slurm import SlurmBackend
    return SlurmBackend()


def _local(max_parallel: int | None = None, **_: Any) -> Backend:
    from harness.cluster.local import LocalBackend
    return LocalBackend(max_parallel)


BACKENDS: dict[str, Callable[..., Backend]] = {"slurm": _slurm, "local": _local}


def get_backend(name: str, **options: Any) -> Backend:
    """The backend registered under name; options go to its constructor (local: max_parallel)."""
    try:
        return BACKENDS[name](**options)
    except KeyError:
        raise UserError(f"unknown cluster {name!r}; choose from {', '.join(BACKENDS)}") from None
