"""Cluster profiles: a site's partitions, GPU type, CPUs, memory and time per job, as a small TOML file.

`--profile NAME` reads the packaged profile NAME (harness/resources/profiles/NAME.toml: `local` is the
local test cluster, `marwan` an HPC-MARWAN-like site); `--profile PATH` reads that file. Command-line
options override the profile's values.
"""
import re
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from harness.errors import UserError

SLURM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
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
        chosen = {k: v for k, v in values.items() if v is not None}
        for name in ("cpu_partition", "gpu_partition", "gpu_type", "account", "qos"):
            # these land in #SBATCH lines of a bash script: nothing there may start a new line or a command
            if name in chosen and not SLURM_NAME.fullmatch(str(chosen[name])):
                raise UserError(f"--{name.replace('_', '-')} {chosen[name]!r} is not a Slurm name (letters, digits, '.', '_', '-')")
        for name in ("preprocess_cpus", "preprocess_time_min", "cpus_per_task", "time_min", "array_parallelism", "signal_delay_s"):
            if name in chosen and chosen[name] < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {chosen[name]}")
        for name in ("preprocess_mem_gb", "mem_gb"):
            if name in chosen and not chosen[name] > 0:
                raise UserError(f"--{name.replace('_', '-')} must be positive, got {chosen[name]}")
        return replace(self, **chosen)


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
    types = {f.name: f.type for f in fields(Profile)}
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise UserError(f"profile {path} has unknown keys {', '.join(unknown)}; known keys: {', '.join(types)}")
    for key, value in values.items():
        expected = {int: int, float: (int, float)}.get(types[key], str)
        if not isinstance(value, expected) or isinstance(value, bool):
            raise UserError(f"profile {path}: {key} = {value!r} is not {'a number' if expected != str else 'a string'}")
    return Profile().override(**values)
