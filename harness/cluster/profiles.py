"""Cluster profiles: a site's partitions, GPU type, CPUs, memory and time per job, as a small TOML file.

`--profile NAME` reads the packaged profile NAME (harness/resources/profiles/NAME.toml: `local` is the
local test cluster, `marwan` an HPC-MARWAN-like site); `--profile PATH` reads that file. Command-line
options override the profile's values.
"""
import math
import re
import tomllib
import typing
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.errors import UserError

SLURM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # always re.fullmatch: `$` would let a trailing newline by
PROFILE_DIR = Path(__file__).resolve().parent.parent / "resources" / "profiles"


@dataclass(frozen=True)
class Profile:
    cpu_partition: str = "compute"
    gpu_partition: str = "gpu"
    gpu_type: str | None = None
    preprocess_cpus: int = 2
    preprocess_mem_gb: float = 4
    preprocess_time_min: int = 60
    cpus_per_task: int = 2
    mem_gb: float = 8
    time_min: int = 240
    array_parallelism: int = 8
    # submitit's checkpoint signal comes this long before a training task's time limit
    # (Slurm may send it up to a minute earlier still).
    signal_delay_s: int = 120
    account: str | None = None
    qos: str | None = None

    def override(self, **values: Any) -> "Profile":
        """The profile with every option the user gave (not None) in place of its value."""
        return self._override(values, lambda name: OPTIONS.get(name, f"--{name.replace('_', '-')}"))

    def _override(self, values: dict[str, Any], spelled: Callable[[str], str]) -> "Profile":
        """override(), each refusal naming the setting as spelled(name) (an option, or a file's key)."""
        chosen = {k: v for k, v in values.items() if v is not None}
        for name in ("cpu_partition", "gpu_partition", "gpu_type", "account", "qos"):
            # these land in #SBATCH lines of a bash script: nothing there may start a new line or a command
            if name in chosen and not SLURM_NAME.fullmatch(str(chosen[name])):
                raise UserError(f"{spelled(name)} {chosen[name]!r} is not a Slurm name (letters, digits, '.', '_', '-', "
                                "not starting with '-')")
        for name in ("preprocess_cpus", "preprocess_time_min", "cpus_per_task", "time_min", "array_parallelism", "signal_delay_s"):
            if name in chosen and chosen[name] < 1:
                raise UserError(f"{spelled(name)} must be at least 1, got {chosen[name]}")
        for name in ("preprocess_mem_gb", "mem_gb"):
            if name in chosen and not (chosen[name] > 0 and math.isfinite(chosen[name])):
                raise UserError(f"{spelled(name)} must be a positive number, got {chosen[name]}")
        return replace(self, **chosen)


# How the command line spells each setting it can override (the others come from profiles only).
OPTIONS = {"gpu_partition": "--partition", "time_min": "--time", "mem_gb": "--mem"}


def profile_from(values: Any, source: str) -> Profile:
    """A profile from settings read from a file (a profile's TOML, a sweep's sweep.json): every key known,
    every value of its type, then checked as the command line's options are. Refusals name the source."""
    if not isinstance(values, dict):
        raise UserError(f"{source}: expected a table of settings, found {type(values).__name__}")
    hints = typing.get_type_hints(Profile)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise UserError(f"{source}: unknown keys {', '.join(map(str, unknown))}; known keys: {', '.join(hints)}")
    for key, value in values.items():
        kinds = typing.get_args(hints[key]) or (hints[key],)
        if value is None and type(None) in kinds:
            continue
        if int in kinds and float not in kinds:
            ok, what = isinstance(value, int), "a whole number"
        elif float in kinds:
            ok, what = isinstance(value, (int, float)), "a number"
        else:
            ok, what = isinstance(value, str), "a string"
        if not ok or isinstance(value, bool):
            raise UserError(f"{source}: {key} = {value!r:.60} is not {what}")
    return Profile()._override(values, lambda name: f"{source}: {name}")


def load_profile(name_or_path: str) -> Profile:
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.toml")))
        raise UserError(f"no profile {name_or_path!r} (profiles in {PROFILE_DIR}: {known})")
    try:
        values = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"profile {path} is not valid TOML: {err}") from None
    except OSError as err:
        raise UserError(f"profile {path} cannot be read: {err.strerror}") from None
    return profile_from(values, f"profile {path}")
