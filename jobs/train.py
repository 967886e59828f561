"""A training task (GPU partition): one run of the sweep, checkpointable and resumable."""
import logging
import traceback
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import submitit
import torch

from harness.atomic import write_json_atomic
from harness.errors import UserError
from harness.results import RESULT_SCHEMA, read_sweep, run_dir
from harness.sweep import train_config
from harness.training import TrainConfig, train_run
from jobs import available_cpus, configure_logging

log = logging.getLogger("jobs.train")


class Train(submitit.helpers.Checkpointable):
    """On a time limit or preemption submitit calls checkpoint(): the task requeues with the same run id,
    and train_run resumes from the run's last completed epoch (state.pt)."""

    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir = Path(sweep_dir)

    def __call__(self, rid: str) -> str:
        configure_logging()
        torch.set_num_threads(available_cpus())  # the task's CPUs, not the whole node's
        spec = read_sweep(self.sweep_dir)
        folder = run_dir(self.sweep_dir, rid)
        config = train_config(spec, rid)
        try:
            record = train_run(config, Path(spec["dataset"]), Path(spec["cache_root"]), folder, spec["sweep_id"])
        except Exception as err:
            # A failed run still leaves a record, so the leaderboard shows it with its reason.
            message = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
            log.error("%s failed: %s\n%s", rid, message, traceback.format_exc())
            write_json_atomic(folder / "result.json", failed_record(spec["sweep_id"], rid, config, message))
            raise
        return record["status"]


def failed_record(sweep_id: str, rid: str, config: TrainConfig, message: str) -> dict[str, Any]:
    """The record of a run that failed: its identity, its whole config (variant included) and why."""
    return {"schema_version": RESULT_SCHEMA, "sweep_id": sweep_id, "run_id": rid, "model": config.model,
            "seed": config.seed, "status": "FAILED", "error": message, "config": asdict(config),
            "finished_at": datetime.now(timezone.utc).isoformat()}


def run_in_turn(sweep_dir: Path, rids: list[str]) -> list[str]:
    """A local worker: the preprocessing step (shared, idempotent), then its runs one after another."""
    from jobs.preprocess import Preprocess

    Preprocess(sweep_dir)()
    outcomes = []
    for rid in rids:
        try:
            outcomes.append(Train(sweep_dir)(rid))
        except Exception:  # recorded in the run's result.json; the worker goes on with its next run
            outcomes.append("FAILED")
    return outcomes
