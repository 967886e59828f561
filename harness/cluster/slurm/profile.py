"""A Slurm sweep's settings (the Profile): what it asks of the site (partitions, GRES, CPUs, memory, time, ...).

With no profile the settings are read from the site itself (slurm.site); a profile overrides them,
and command-line options override the profile. `--profile NAME` reads a packaged profile
(harness/resources/profiles/NAME.toml: `local` is the local test cluster, `marwan` an HPC-MARWAN-like
site); `--profile PATH` reads that file; `python -m harness cluster --format toml` writes one for the
site at hand. Options follow sbatch's own conventions (slurm.sbatch): `--time 4:00:00`, `--mem 16G`.
"""
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from harness.cluster.slurm.sbatch import (
    CONTROL,
    check_constraint,
    check_node_list,
    check_sbatch_options,
    check_slurm_name,
    format_gres,
    format_mem,
    format_time,
    parse_gres,
    parse_mem,
    parse_time,
)
from harness.errors import UserError
from harness.gpus import capability_text, parse_capability
from harness.store.schema import parse_toml

PROFILE_DIR = Path(__file__).resolve().parents[2] / "resources" / "profiles"
NAMES = ("cpu_partition", "gpu_partition", "account", "qos", "reservation")
COUNTS = ("cpus_per_task", "preprocess_cpus", "array_parallelism", "max_array_size", "signal_delay_s")
COUNT_MOST = {"signal_delay_s": 65_535}  # sbatch's --signal time; the others, what Slurm's 32-bit counts hold
# Keys of profiles and sweeps written before the settings followed sbatch (minutes and gigabytes).
LEGACY = {"gpu_type": "gres", "mem_gb": "mem", "time_min": "time", "preprocess_mem_gb": "preprocess_mem",
          "preprocess_time_min": "preprocess_time"}


@dataclass(frozen=True)
class Profile:
    """Every value may be None: not set here (the site's derived value, or the default, applies)."""

    cpu_partition: str | None = None
    gpu_partition: str | None = None
    gres: str | None = None  # gpu:TYPE:N
    cpus_per_task: int | None = None
    mem: str | None = None  # sbatch text: 8000M, 16G
    time: str | None = None  # sbatch text: 04:00:00
    preprocess_cpus: int | None = None
    preprocess_mem: str | None = None
    preprocess_time: str | None = None
    array_parallelism: int | None = None
    max_array_size: int | None = None  # the site's MaxArraySize: larger sweeps are split into several arrays
    # submitit's checkpoint signal comes this long before a training task's time limit
    # (Slurm may send it up to a minute earlier still).
    signal_delay_s: int | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    exclude: str | None = None
    reservation: str | None = None
    # the training tasks take their nodes whole (sbatch --exclusive): a benchmark's runs share them with no job
    exclusive: bool | None = None
    setup: tuple[str, ...] = ()  # shell lines each job runs first (module load ..., source venv/bin/activate)
    # the command that runs Python in a job, as the shell reads it (apptainer exec image.sif python);
    # None: the interpreter that submitted the sweep
    python: str | None = None
    # the compute capability of the GPU partition's GPUs ("6.0"), where their GRES type and features name no
    # model the harness knows (slurm.gpus): the check before a sweep is queued reads it
    gpu_capability: str | None = None
    # further sbatch options, (long option without --, value; True for one that takes none): --wckey among them
    sbatch: tuple[tuple[str, str | bool], ...] = ()

    def override(self, **values: Any) -> "Profile":
        """The profile with every value given (not None) in its place, each checked as sbatch reads it."""
        chosen = {LEGACY.get(k, k): v for k, v in _upgrade(values).items() if v is not None}
        unknown = sorted(set(chosen) - {f.name for f in fields(Profile)})
        if unknown:
            raise UserError(f"unknown keys {', '.join(unknown)}; known: {', '.join(f.name for f in fields(Profile))}")
        return replace(self, **{name: _checked(name, value) for name, value in chosen.items()})

    def filled(self, defaults: "Profile") -> "Profile":
        """This profile, with defaults' values where it sets none."""
        return replace(defaults, **{f.name: getattr(self, f.name) for f in fields(self)
                                    if getattr(self, f.name) not in (None, ())})

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["setup"], values["sbatch"] = list(self.setup), dict(self.sbatch)
        return values

    @property
    def time_min(self) -> int:
        return parse_time(self.time or "")

    @property
    def gpu_type(self) -> str | None:
        return parse_gres(self.gres)[0] if self.gres else None


def _upgrade(values: dict[str, Any]) -> dict[str, Any]:
    """Legacy keys (minutes, gigabytes, a bare GPU type) as today's sbatch text."""
    out = dict(values)
    if out.get("gpu_type") is not None:
        out["gpu_type"] = format_gres(check_slurm_name("gpu_type", str(out["gpu_type"])))
    for key in ("mem_gb", "preprocess_mem_gb"):
        if out.get(key) is not None:
            if isinstance(out[key], bool) or not isinstance(out[key], (int, float)) or not out[key] > 0:
                raise UserError(f"{key} = {out[key]!r} must be a positive number of gigabytes")
            out[key] = f"{max(1, round(out[key] * 1024))}M"
    for key in ("time_min", "preprocess_time_min"):
        if out.get(key) is not None:
            out[key] = str(out[key])
    return out


def _checked(name: str, value: Any) -> Any:
    option = {"gpu_partition": "--partition"}.get(name, f"--{name.replace('_', '-')}")  # as the command line spells it
    if name in NAMES:
        return check_slurm_name(option, _text(option, value))
    if name == "exclude":
        return check_node_list(option, _text(option, value))
    if name == "constraint":
        return check_constraint(option, _text(option, value))
    if name == "gres":
        return format_gres(*parse_gres(_text(option, value), option))
    if name in ("mem", "preprocess_mem"):
        return format_mem(parse_mem(_text(option, value), option))
    if name in ("time", "preprocess_time"):
        return format_time(parse_time(_text(option, value), option))
    if name in COUNTS:
        most = COUNT_MOST.get(name, 2**31 - 1)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
            raise UserError(f"{option} must be a whole number from 1 to {most:,}, got {value!r:.40}")
        return value
    if name == "exclusive":
        if not isinstance(value, bool):
            raise UserError(f"exclusive = {value!r:.40} must be true or false")
        return value
    if name == "python":
        command = _text(option, value)
        if not command.strip() or CONTROL.search(command):
            raise UserError(f"python {command!r} is not a command line (the Python a job runs, e.g. \"apptainer exec image.sif python\")")
        return command
    if name == "gpu_capability":
        try:
            return capability_text(parse_capability(_text(option, value)))
        except ValueError as err:
            raise UserError(f"gpu_capability: {err}") from None
    if name == "setup":
        lines = value if isinstance(value, (list, tuple)) else None
        if lines is None or not all(isinstance(line, str) and not CONTROL.search(line) for line in lines):
            raise UserError("setup must be a list of shell lines, each a single line of text")
        return tuple(lines)
    if name == "sbatch":
        if not isinstance(value, dict) and not (isinstance(value, (list, tuple)) and all(
                isinstance(item, (list, tuple)) and len(item) == 2 for item in value)):
            raise UserError(f"sbatch {value!r:.60} is not a table of sbatch options (KEY = VALUE)")
        items = list(value.items() if isinstance(value, dict) else value)
        odd = next((f"{k} = {v!r:.40}" for k, v in items if not (isinstance(v, str) or v is True)), None)
        if odd:
            raise UserError(f"sbatch {odd}: give an option's value as text, or true for an option that takes none")
        return tuple(check_sbatch_options([(str(k), v) for k, v in items]).items())
    raise AssertionError(name)


def _text(option: str, value: Any) -> str:
    if not isinstance(value, str):
        raise UserError(f"{option} {value!r} is not text")
    return value


def load_profile(name_or_path: str) -> Profile:
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.toml")))
        raise UserError(f"no profile {name_or_path!r} (packaged profiles: {known}; or give a .toml path)")
    try:
        values = parse_toml(path.read_text())
    except ValueError as err:  # not TOML, not UTF-8, nested too deep, or an integer over Python's 4,300 digits
        raise UserError(f"profile {path} is not valid TOML: {err}") from None
    try:
        return Profile().override(**values)
    except UserError as err:
        raise UserError(f"profile {path}: {err}") from None
