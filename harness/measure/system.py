"""A completed run's line in its results folder's performance log (store.perflog), with what only
the job can see: the GPUs it was given, the NVIDIA driver."""
import logging
from pathlib import Path
from typing import Any

from harness.store.paths import RunPaths, SweepPaths
from harness.store.perflog import append_entry, entry_from_record
from harness.store.records import RunRecord, read_spec

log = logging.getLogger("harness.measure")


def nvidia_driver() -> str | None:
    try:
        import pynvml
        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # no NVML, no GPU: no driver to name
        return None


def collect_system(device: str | None) -> dict[str, Any]:
    """The GPUs visible to the job and the driver."""
    found: dict[str, Any] = {"gpu_count": 0, "driver": None}
    if device == "cuda":
        import torch
        found.update(gpu_count=torch.cuda.device_count(), driver=nvidia_driver())
    return found


def log_performance(record: RunRecord, paths: RunPaths) -> Path | None:
    """Append a completed run's figures to results/perflog.jsonl; returns the log's path. Only runs of a
    sweep (results/<sweep>/runs/<run>) are logged, and a failure here is a warning: the run's record is
    already written and stays its result."""
    if not record.completed or paths.sweep_folder is None:
        return None
    sweep = SweepPaths(paths.sweep_folder)
    if not sweep.spec.is_file():
        return None
    try:
        spec = read_spec(sweep)
        entry = entry_from_record(record, spec, collect_system((record.environment or {}).get("device")))
        return append_entry(sweep.results, entry)
    except Exception as err:
        log.warning("%s: its figures were not added to the performance log: %s", paths.run_id, err)
        return None
