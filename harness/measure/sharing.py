"""Whether a run had its node and its GPU to itself, from looks taken at the edges of its timed windows
(StepMeter's watch): the other work its backend sees on the node (cluster.base.NodeWatch: the jobs the
scheduler runs there, or this machine's other busy processes), the other processes NVML lists on its GPU,
and the host's load (the 1-minute load average) against the CPUs the run holds there.

A part that cannot be known is null with its reason; a run without a GPU has no GPU to share (its GPU part
is null, "no NVIDIA GPU in use"). The record's `sharing` says alone (true), shared (false, and shared_by
names what shared it, one line each), or not known (null).
"""
import os
import statistics
from dataclasses import dataclass, field
from typing import Any

from harness.cluster.base import NodeWatch
from harness.measure.meters import GpuSampler

# The host counts as loaded by other work where its load average exceeds the CPUs the run holds by half: the
# run's own threads keep it near their count, and the 1-minute average lags a change by tens of seconds.
LOAD_LIMIT = 1.5


@dataclass
class SharingMeter:
    """One rank's looks. node: the backend's watch of this rank's node, None where another rank of the run
    watches it (the first rank of each node does, and reads its load); run_pids: the processes of the run's
    ranks, which are not other work on the GPU."""

    node: NodeWatch | None
    node_name: str
    sampler: GpuSampler  # the GPU in use (its NVML handle, while it samples)
    cpus: int  # the CPUs the run holds on this node
    run_pids: set[int]
    loads: list[float] = field(default_factory=list)
    gpu_pids: set[int] = field(default_factory=set)
    gpu_unlisted: bool = False  # NVML could not list the GPU's processes at a look

    def sample(self, last: bool = False) -> None:
        """A look at a window's edge (last: the last window's end). The node is looked at the first time and
        at the end of a phase's windows (a scheduler is asked no more than that); the load and the GPU's
        processes at every edge (cheap: the time between windows is not measured, but a GPU block's energy
        and utilisation run on)."""
        if self.node is not None:
            if not self.loads or last:
                self.node.sample()
            self.loads.append(os.getloadavg()[0])
        pids = self.sampler.compute_pids()
        self.gpu_unlisted |= pids is None
        self.gpu_pids |= pids or set()

    def _gpu(self) -> dict[str, Any]:
        """The other processes on the GPU, or null with the reason they cannot be known."""
        if self.sampler.reason is not None:  # no GPU in use, or NVML failed
            return {"others": None, "reason": self.sampler.reason}
        if self.gpu_unlisted:
            return {"others": None, "reason": "NVML could not list the GPU's processes"}
        if not self.gpu_pids:
            return {"others": None, "reason": "NVML listed no process on the GPU, not even this run's: it cannot see them here"}
        if self.run_pids & self.gpu_pids:
            return {"others": [f"process {pid}" for pid in sorted(self.gpu_pids - self.run_pids)], "reason": None}
        # NVML numbers processes as the host's kernel does: inside a container this run's own is not told apart
        extra = len(self.gpu_pids) - 1
        return {"others": [f"{extra} other process{'es' if extra > 1 else ''} (NVML's process ids are another pid "
                           "namespace's)"] if extra else [], "reason": None}

    def _load(self) -> dict[str, Any] | None:
        if self.node is None:
            return None
        mean = statistics.fmean(self.loads) if self.loads else None
        return {"mean": mean, "max": max(self.loads, default=None), "cpus": self.cpus, "limit": LOAD_LIMIT,
                "samples": len(self.loads), "reason": None if self.loads else "the load was never read"}

    def summary(self) -> dict[str, Any]:
        """This rank's part: alone, shared_by, and the node's, the GPU's and the load's own figures."""
        node: dict[str, Any] | None = None if self.node is None else {"source": self.node.source, "others": self.node.others(),
                                                              "reason": self.node.reason}
        gpu, load = self._gpu(), self._load()
        shared_by = []
        if node is not None and node["others"]:
            shared_by.append(f"node {self.node_name}: {first_of(node['others'])}")
        if gpu["others"]:
            shared_by.append(f"GPU: {first_of(gpu['others'])}")
        if load is not None and load["mean"] is not None and load["mean"] > LOAD_LIMIT * self.cpus:
            shared_by.append(f"host load {load['mean']:.2f} over the run's {self.cpus} CPU{'s' if self.cpus > 1 else ''}")
        unknown = (node is not None and node["others"] is None) or (load is not None and load["mean"] is None) \
            or (gpu["others"] is None and self.sampler.device.type == "cuda")
        alone = False if shared_by else None if unknown else True
        return {"alone": alone, "shared_by": shared_by, "node": node, "gpu": gpu, "load": load}


def first_of(others: list[str]) -> str:
    """The first of what shared a node or a GPU, and how many more (the record's part lists them all)."""
    return others[0] + (f" and {len(others) - 1} more" if len(others) > 1 else "")


def over_ranks(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """A run's sharing from its ranks' own: the first rank's alone for a run of one; else shared where any
    rank's node, GPU or host was (each line named by its rank), not known where any rank could not tell,
    each rank's part kept under per_rank."""
    if len(parts) == 1:
        return parts[0]
    shared_by = [f"rank {rank}: {line}" for rank, part in enumerate(parts) for line in part["shared_by"]]
    alone = False if shared_by else None if any(part["alone"] is None for part in parts) else True
    return {**parts[0], "alone": alone, "shared_by": shared_by, "per_rank": parts}
