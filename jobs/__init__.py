"""What runs on the cluster's nodes: the preprocessing job and the training tasks, as submitit callables.

Each job reads its orders from the sweep's sweep.json; its pickle carries only the sweep folder.
"""
import logging
import os
import sys


def available_cpus() -> int:
    """The CPUs Slurm gave this job (its cgroup may not say so), else the ones this process may use."""
    return int(os.environ.get("SLURM_CPUS_PER_TASK") or len(os.sched_getaffinity(0)))


def configure_logging() -> None:
    """One timestamped line per event in the job's log (submitit captures stdout and stderr)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
