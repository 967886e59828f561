"""The Slurm backend: what the harness asks a Slurm cluster (is it there, its partitions and GPU
types, job states) and how it submits a sweep through submitit.

A sweep is one preprocessing job on the CPU partition, then one job array on the GPU partition (a
task per run, afterok on the preprocessing job): two sbatch calls however many runs. Every command
is an argument list, never a shell string, so user input never reaches a shell. submitit is imported
only to submit: reading states costs one sacct call and no heavy import.
"""
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from harness.cluster.accounting import job_states
from harness.cluster.base import JobState
from harness.cluster.profiles import Profile
from harness.errors import UserError
from harness.store.paths import SweepPaths
from harness.store.submissions import Submission

MAX_TIMEOUTS = 10  # how many times a task may run into its time limit and requeue


def _run(args: list[str], timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def slurm_answers() -> str | None:
    """None when a Slurm controller answers; otherwise why not, in a few words."""
    if shutil.which("sinfo") is None:
        return "sinfo is not on PATH"
    try:
        done = _run(["sinfo", "-h", "-o", "%R"], timeout=15)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 15 s"
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or ["sinfo failed"])[-1]
    return None


@dataclass(frozen=True)
class Partition:
    name: str
    gres: frozenset[str]  # e.g. {"gpu:p100:2"}

    @property
    def gpu_types(self) -> set[str]:
        types = set()
        for gres in self.gres:
            parts = gres.split("(")[0].split(":")
            if parts[0] == "gpu" and len(parts) == 3:
                types.add(parts[1])
        return types


def partitions() -> dict[str, Partition]:
    done = _run(["sinfo", "-h", "-o", "%R|%G"])
    found: dict[str, set[str]] = {}
    for line in done.stdout.splitlines():
        name, _, gres = line.partition("|")
        found.setdefault(name.strip(), set()).update(g for g in gres.split(",") if g and g != "(null)")
    return {name: Partition(name, frozenset(gres)) for name, gres in found.items()}


def check_partition(name: str, gpu_type: str | None = None, needs_gpu: bool = False) -> None:
    """One clear line when a partition or GPU type does not exist on this cluster."""
    known = partitions()
    if name not in known:
        raise UserError(f"unknown partition {name!r}; this cluster has: {', '.join(sorted(known)) or 'none'}")
    types = known[name].gpu_types
    if needs_gpu and not known[name].gres:
        with_gpus = ", ".join(sorted(p for p, v in known.items() if v.gres)) or "none"
        raise UserError(f"partition {name!r} has no GPUs; partitions with GPUs: {with_gpus}")
    if gpu_type and gpu_type not in types:
        raise UserError(f"unknown GPU type {gpu_type!r} in partition {name!r}; it has: {', '.join(sorted(types)) or 'untyped GPUs'}")


def _executors(sweep: SweepPaths, profile: Profile, n_runs: int) -> tuple[Any, Any]:
    """submitit's Slurm executors for the preprocessing job and the training array."""
    import submitit

    common: dict[str, Any] = {k: v for k, v in {"account": profile.account, "qos": profile.qos}.items() if v}
    # quoted: a results path with a space or a `$(...)` must stay a path in this bash line
    setup = [f"export PYTHONPATH={shlex.quote(str(sweep.code))}${{PYTHONPATH:+:$PYTHONPATH}}"] if sweep.code.is_dir() else []
    pre = submitit.SlurmExecutor(folder=sweep.logs)
    pre.update_parameters(job_name=f"{sweep.sweep_id}-preprocess", partition=profile.cpu_partition,
                          cpus_per_task=profile.preprocess_cpus, mem=f"{profile.preprocess_mem_gb:g}GB",
                          time=profile.preprocess_time_min, setup=setup, **common)
    train = submitit.SlurmExecutor(folder=sweep.logs, max_num_timeout=MAX_TIMEOUTS)
    train.update_parameters(job_name=f"{sweep.sweep_id}-train", partition=profile.gpu_partition,
                            gres=f"gpu:{profile.gpu_type}:1" if profile.gpu_type else "gpu:1",
                            cpus_per_task=profile.cpus_per_task, mem=f"{profile.mem_gb:g}GB", time=profile.time_min,
                            array_parallelism=min(profile.array_parallelism, n_runs),
                            signal_delay_s=profile.signal_delay_s, setup=setup, **common)
    return pre, train


def batch_script(executor: Any, **extra: Any) -> str:
    """The batch script submitit writes for executor. submitit has no public call for it: this is the
    one place that uses its private API, pinned by setup.cfg's submitit range and by a unit test."""
    from submitit.slurm.slurm import _make_sbatch_string

    parameters = {**executor.parameters, **extra}
    return _make_sbatch_string(command=executor._submitit_command_str, folder=executor.folder, **parameters)


class SlurmBackend:
    name = "slurm"

    def available(self) -> str | None:
        return slurm_answers()

    def preflight(self, profile: Profile) -> None:
        reason = slurm_answers()
        if reason:
            raise UserError(f"--cluster slurm, but no Slurm answers here ({reason}); "
                            "start one with slurm/local-cluster up, or use --cluster local")
        check_partition(profile.cpu_partition)
        check_partition(profile.gpu_partition, profile.gpu_type, needs_gpu=True)

    def submit(self, sweep: SweepPaths, profile: Profile, run_ids: list[str]) -> Submission:
        from harness.cluster.jobs import Preprocess, Train

        pre, train = _executors(sweep, profile, len(run_ids))
        pre_job = pre.submit(Preprocess(sweep.folder))
        train.update_parameters(additional_parameters={"dependency": f"afterok:{pre_job.job_id}"})
        jobs = train.map_array(Train(sweep.folder), run_ids)
        return Submission(self.name, pre_job.job_id, {rid: job.job_id for rid, job in zip(run_ids, jobs)})

    def scripts(self, sweep: SweepPaths, profile: Profile, run_ids: list[str]) -> list[str]:
        pre, train = _executors(sweep, profile, len(run_ids))
        dependency = {"additional_parameters": {"dependency": "afterok:<preprocess job id>"}}
        return [batch_script(pre), batch_script(train, map_count=len(run_ids), **dependency)]

    def states(self, job_ids: list[str]) -> dict[str, JobState]:
        return job_states(job_ids)[0]

    def cancel(self, job_ids: list[str]) -> None:
        if job_ids:
            _run(["scancel", *job_ids])
