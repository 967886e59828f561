"""Inside a Slurm job: the other jobs Slurm runs on the job's node while a run is measured, as squeue
lists them (running or completing on the node at each look, the job itself left out)."""
import subprocess

from harness.cluster.base import NodeWatch

SQUEUE_TIMEOUT_S = 20


class SqueueWatch(NodeWatch):
    """`squeue -w NODE` at each look: the jobs seen besides this one, by id, name and user. Where the site
    hides other users' jobs (PrivateData=jobs), squeue shows only what the user may see."""

    def __init__(self, node: str, job_id: str) -> None:
        super().__init__(None if node else "the job's node is not known (SLURMD_NODENAME unset)")
        self.node, self.job_id = node, job_id
        self.source = f"squeue -w {node}"
        self.seen: dict[str, str] = {}

    def sample(self) -> None:
        if self.reason is not None:
            return
        try:
            done = subprocess.run(["squeue", "-h", "-w", self.node, "-t", "RUNNING,COMPLETING", "-o", "%A|%i|%j|%u"],
                                  capture_output=True, text=True, timeout=SQUEUE_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as err:
            self.reason = f"{self.source} failed: {err}"
            return
        if done.returncode != 0:
            self.reason = f"{self.source} failed: {(done.stderr.strip().splitlines() or ['no reason given'])[-1]}"
            return
        for line in done.stdout.splitlines():
            parts = line.split("|", 3)
            if len(parts) == 4 and parts[0] != self.job_id:
                self.seen[parts[0]] = f"job {parts[1]} {parts[2]} ({parts[3]})"

    def others(self) -> list[str] | None:
        return None if self.reason is not None else [self.seen[job] for job in sorted(self.seen)]
