"""The Slurm backend's own `sweep` options, and how they make a sweep's Profile: a profile (--profile, or a
resumed sweep's own settings), then each option given in its place, checked as sbatch reads it."""
from typing import Any

from harness.cluster.base import Option
from harness.cluster.slurm.profile import Profile, load_profile
from harness.cluster.slurm.sbatch import check_slurm_name, format_gres, parse_gres, parse_sbatch_extra
from harness.errors import UserError

TITLE = "Slurm (defaults read from the site: see `harness cluster`; a profile overrides them)"
OPTIONS = [
    Option("--profile", "profile", "a packaged profile name (local, marwan) or a .toml path (default: none; with "
           "--resume, the sweep's own settings)", kind="name_or_file"),
    Option("--partition", "gpu_partition", "GPU partition of the training tasks"),
    Option("--cpu-partition", "cpu_partition", "CPU partition of the preprocessing job"),
    Option("--gres", "gres", "the GPUs' GRES: gpu or gpu:TYPE (a node's count is its ranks of the run)"),
    Option("--gpu-type", "gpu_type", "GPU type in --gres=gpu:TYPE"),
    Option("--time", "time", "time limit of a training task, as sbatch reads it: MIN, HH:MM:SS, D-HH:MM, ..."),
    Option("--mem", "mem", "memory of a training task, as sbatch reads it: 8000 (MB), 16G, ..."),
    Option("--cpus-per-task", "cpus_per_task", kind="count"),
    Option("--array-parallelism", "array_parallelism", "training tasks running at once", kind="count"),
    Option("--account", "account"),
    Option("--qos", "qos"),
    Option("--constraint", "constraint", "node features, as sbatch --constraint"),
    Option("--exclude", "exclude", "nodes to avoid, as sbatch --exclude"),
    Option("--reservation", "reservation"),
    Option("--exclusive", "exclusive", "whole nodes for the training tasks (sbatch --exclusive): no other job shares a run's "
           "node, its idle GPUs included; --no-exclusive where the profile asks for it", kind="switch"),
    Option("--sbatch", "sbatch", "any other sbatch option (repeatable), e.g. --sbatch mail-type=END, --sbatch wckey=myproj, "
           "--sbatch hold", kind="repeated", metavar="KEY=VALUE"),
]


def profile_of(given: dict[str, Any], stored: dict[str, Any] | None = None) -> Profile:
    """The profile a sweep uses: --profile's where given, else the stored one (a resumed sweep's), with the
    options given in place of its values."""
    base = load_profile(given["profile"]) if given.get("profile") else Profile().override(**(stored or {}))
    gres = given.get("gres")
    if gres is not None and parse_gres(gres)[1] > 1:
        raise UserError(f"--gres {gres}: a run has one GPU per rank, and --gpus-per-run sets the ranks; give gpu or gpu:TYPE")
    if given.get("gpu_type") is not None:  # refused as --gpu-type, not as the --gres it becomes
        gres = format_gres(check_slurm_name("--gpu-type", given["gpu_type"]))
    extra = dict(base.sbatch) | parse_sbatch_extra(given["sbatch"]) if given.get("sbatch") else None
    named = {key: given.get(key) for key in ("cpu_partition", "gpu_partition", "time", "mem", "cpus_per_task", "account",
                                             "qos", "array_parallelism", "constraint", "exclude", "reservation", "exclusive")}
    return base.override(gres=gres, sbatch=extra, **named)
