"""Putting a sweep's jobs on an executor through submitit: Slurm, or this machine.

Knows nothing of training: it submits the callables in jobs/ with a sweep folder and run ids.
Slurm: one preprocessing job on the CPU partition, then one job array on the GPU partition (a task
per run, afterok on the preprocessing job): two sbatch calls however many runs.
Local: a bounded number of worker processes, each running the preprocessing step (shared and
idempotent) then its share of the runs in turn.
"""
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import submitit
from submitit.slurm.slurm import _make_sbatch_string

from harness.atomic import read_json, write_json_atomic
from harness.errors import UserError
from harness.profiles import Profile
from harness.slurm import check_partition, require_slurm
from jobs.preprocess import Preprocess
from jobs.train import Train, run_in_turn

JOBS_FILE = "jobs.json"
MAX_TIMEOUTS = 10  # how many times a task may run into its time limit and requeue


@dataclass(frozen=True)
class Submission:
    executor: str
    preprocess_job: str | None
    tasks: dict[str, str]  # run id -> job id ("123_4" for an array task, the worker's pid locally)


def gpu_count() -> int:
    """GPUs on this machine, asked of NVML (cheap, and CUDA stays uninitialised in this process)."""
    try:
        import pynvml
        pynvml.nvmlInit()
        return int(pynvml.nvmlDeviceGetCount())
    except Exception:  # no driver, no NVML: no GPU
        return 0


def default_local_parallelism() -> int:
    # A training run uses every core torch is given; more than one per 4 cores only thrashes.
    return max(1, len(os.sched_getaffinity(0)) // 4)


def _slurm_executors(sweep: Path, profile: Profile, n_runs: int) -> tuple[submitit.AutoExecutor, submitit.AutoExecutor]:
    logs = sweep / "logs"
    common = {"slurm_account": profile.account, "slurm_qos": profile.qos}
    common = {k: v for k, v in common.items() if v}
    pre = submitit.AutoExecutor(folder=logs, cluster="slurm")
    pre.update_parameters(name=f"{sweep.name}-preprocess", slurm_partition=profile.cpu_partition,
                          cpus_per_task=profile.preprocess_cpus, mem_gb=profile.preprocess_mem_gb,
                          timeout_min=profile.preprocess_time_min, **common)
    train = submitit.AutoExecutor(folder=logs, cluster="slurm", slurm_max_num_timeout=MAX_TIMEOUTS)
    gres = f"gpu:{profile.gpu_type}:1" if profile.gpu_type else "gpu:1"
    train.update_parameters(name=f"{sweep.name}-train", slurm_partition=profile.gpu_partition, slurm_gres=gres,
                            cpus_per_task=profile.cpus_per_task, mem_gb=profile.mem_gb, timeout_min=profile.time_min,
                            slurm_array_parallelism=min(profile.array_parallelism, n_runs),
                            slurm_signal_delay_s=profile.signal_delay_s, **common)
    return pre, train


def dry_run_scripts(sweep: Path, profile: Profile, run_ids: list[str]) -> list[str]:
    """The two batch scripts a Slurm submission would send, as submitit writes them."""
    pre, train = _slurm_executors(sweep, profile, len(run_ids))
    scripts = []
    for executor, extra in ((pre, {}), (train, {"map_count": len(run_ids), "dependency": "afterok:<preprocess job id>"})):
        inner = executor._executor  # submitit's SlurmExecutor behind the AutoExecutor
        parameters = {**inner.parameters, **extra}
        if "dependency" in extra:
            parameters["additional_parameters"] = {**parameters.get("additional_parameters", {}), "dependency": extra["dependency"]}
            del parameters["dependency"]
        scripts.append(_make_sbatch_string(command=inner._submitit_command_str, folder=inner.folder, **parameters))
    return scripts


def preflight(cluster: str, profile: Profile, results: Path) -> None:
    """Everything that can be checked before a sweep writes its first file."""
    try:
        Path(results).mkdir(parents=True, exist_ok=True)
        probe = Path(results) / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise UserError(f"cannot write the results folder {results}: {err.strerror}") from None
    if cluster == "slurm":
        require_slurm()
        check_partition(profile.cpu_partition)
        check_partition(profile.gpu_partition, profile.gpu_type, needs_gpu=True)


def submit_slurm(sweep: Path, profile: Profile, run_ids: list[str]) -> Submission:
    pre, train = _slurm_executors(sweep, profile, len(run_ids))
    pre_job = pre.submit(Preprocess(sweep))
    train.update_parameters(slurm_additional_parameters={"dependency": f"afterok:{pre_job.job_id}"})
    jobs = train.map_array(Train(sweep), run_ids)
    return Submission("slurm", pre_job.job_id, {rid: job.job_id for rid, job in zip(run_ids, jobs)})


def submit_local(sweep: Path, run_ids: list[str], parallelism: int, timeout_min: int) -> Submission:
    executor = submitit.AutoExecutor(folder=sweep / "logs", cluster="local")
    # submitit's local executor hides every GPU (CUDA_VISIBLE_DEVICES="") unless asked for some.
    executor.update_parameters(gpus_per_node=gpu_count())
    workers = min(parallelism, len(run_ids))
    shares = [run_ids[i::workers] for i in range(workers)]
    tasks = {}
    for share in shares:
        executor.update_parameters(timeout_min=timeout_min * (len(share) + 1))
        job = executor.submit(run_in_turn, sweep, share)
        tasks.update(dict.fromkeys(share, job.job_id))
    return Submission("local", None, tasks)


def record_submission(sweep: Path, submission: Submission) -> None:
    """Append a submission to jobs.json (a resumed sweep has several; the latest task of a run counts)."""
    path = sweep / JOBS_FILE
    jobs = read_json(path) if path.exists() else {"submissions": []}
    jobs["submissions"].append({"submitted": datetime.now(timezone.utc).isoformat(), "executor": submission.executor,
                                "preprocess_job": submission.preprocess_job, "tasks": submission.tasks})
    write_json_atomic(path, jobs)


def read_submissions(sweep: Path) -> list[dict[str, Any]]:
    path = sweep / JOBS_FILE
    return read_json(path)["submissions"] if path.exists() else []
