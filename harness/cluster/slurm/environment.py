"""Inside a Slurm job that the harness submitted (through submitit): where it runs, from Slurm's variables,
and, in a job of several tasks, torch's env:// variables of each (submitit's TorchDistributedEnvironment,
at the address of rank 0's node as Slurm knows it; every task uses the GPUs the job was given, by its
local rank)."""
import os
from dataclasses import dataclass

from harness.cluster.base import JobEnvironment, NodeWatch
from harness.cluster.slurm.neighbours import SqueueWatch


def job_port(job_id: int) -> int:
    """The rendezvous port of a Slurm job's ranks: from its job id, so that two runs sharing a node (their
    ids differ, by less than the span, among the jobs running at once) never pick the same one."""
    return 20_000 + job_id % 40_000


def _count(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() and int(value) > 0 else None


@dataclass(frozen=True)
class SlurmJobEnvironment(JobEnvironment):
    def node_watch(self) -> NodeWatch:
        """The other jobs on the node, as squeue lists them (this job by its own id, SLURM_JOB_ID: an array
        task's too)."""
        return SqueueWatch(self.node, os.environ.get("SLURM_JOB_ID", ""))

    def rank_variables(self) -> dict[str, str]:
        if self.tasks == 1:
            return {}
        import submitit

        ranks = submitit.helpers.TorchDistributedEnvironment()
        port = job_port(int(os.environ["SLURM_JOB_ID"]))
        # Rank 0 runs on the node that launched the job's tasks (its batch host, the first node): Slurm gives
        # its address, which reaches it where node names resolve nowhere (NodeName apart from NodeAddr).
        address = os.environ.get("SLURM_LAUNCH_NODE_IPADDR") or ranks.master_addr
        return {"MASTER_ADDR": address, "MASTER_PORT": str(port), "RANK": str(ranks.rank),
                "WORLD_SIZE": str(ranks.world_size), "LOCAL_RANK": str(ranks.local_rank),
                "LOCAL_WORLD_SIZE": str(ranks.local_world_size)}


def slurm_environment() -> SlurmJobEnvironment | None:
    """The job's environment where this process is a task of a job submitit started on Slurm; None elsewhere
    (a local sweep started inside an allocation is no such job)."""
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm" or "SLURM_JOB_ID" not in os.environ:
        return None
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    given = _count("SLURM_CPUS_PER_TASK")  # the job's CPUs (its cgroup may not say so)
    cpus = given or len(os.sched_getaffinity(0))
    return SlurmJobEnvironment(backend="slurm", job_id=f"{array}_{task}" if array and task else os.environ["SLURM_JOB_ID"],
                               cluster=os.environ.get("SLURM_CLUSTER_NAME", ""), partition=os.environ.get("SLURM_JOB_PARTITION", ""),
                               node=os.environ.get("SLURMD_NODENAME", ""), cpus=cpus,
                               threads=given or _count("OMP_NUM_THREADS") or cpus,
                               tasks=_count("SLURM_NTASKS") or 1)
