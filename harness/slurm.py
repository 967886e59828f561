"""What the harness asks a Slurm cluster: is it there, which partitions and GPU types, and job states.

Every call is an argument list (never a shell string), so user input never reaches a shell.
"""
import shutil
import subprocess
from dataclasses import dataclass

from harness.errors import UserError

# States in which a job will not change any more.
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}


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


def require_slurm() -> None:
    reason = slurm_answers()
    if reason:
        raise UserError(f"--cluster slurm, but no Slurm answers here ({reason}); start one with slurm/local-cluster up, or use --cluster local")


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
        raise UserError(f"partition {name!r} has no GPUs; partitions with GPUs: {', '.join(sorted(p for p, v in known.items() if v.gres)) or 'none'}")
    if gpu_type and gpu_type not in types:
        raise UserError(f"unknown GPU type {gpu_type!r} in partition {name!r}; it has: {', '.join(sorted(types)) or 'untyped GPUs'}")


@dataclass
class JobState:
    job_id: str  # "123" or "124_3" for an array task
    state: str
    partition: str = ""
    node: str = ""
    elapsed: str = ""
    start: str = ""
    end: str = ""
    alloc_tres: str = ""
    restarts: int = 0


SACCT_FIELDS = ["JobID", "State", "Partition", "NodeList", "Elapsed", "Start", "End", "AllocTRES"]


def sacct(job_ids: list[str]) -> dict[str, JobState] | None:
    """All jobs (array tasks expanded) in one sacct call; None when accounting is unavailable."""
    if not job_ids:
        return {}
    try:
        done = _run(["sacct", "-X", "-P", "-n", "--duplicates", "-j", ",".join(job_ids), "-o", ",".join(SACCT_FIELDS)])
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    states: dict[str, JobState] = {}
    for line in done.stdout.splitlines():
        values = line.split("|")
        if len(values) != len(SACCT_FIELDS):
            continue
        job = JobState(values[0], values[1].split()[0], *values[2:])
        previous = states.get(job.job_id)
        # --duplicates lists every requeued attempt; the last row is the current one.
        job.restarts = previous.restarts + 1 if previous else 0
        states[job.job_id] = job
    return states


def squeue(job_ids: list[str]) -> dict[str, JobState] | None:
    """The fallback when accounting is off: only jobs still queued or running are known."""
    try:
        done = _run(["squeue", "-h", "-r", "-j", ",".join(job_ids), "-o", "%i|%T|%P|%N|%M"])
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    states = {}
    for line in done.stdout.splitlines():
        job_id, state, partition, node, elapsed = (line.split("|") + [""] * 5)[:5]
        states[job_id] = JobState(job_id, state, partition, node, elapsed)
    return states
