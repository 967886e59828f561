"""Building a run's RunRecord (store.records): a completed run's figures, or a failed run's reason."""
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from harness.store.records import RunRecord
from harness.training.config import TrainConfig


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


def failed_record(sweep_id: str, run_id: str, config: TrainConfig, message: str) -> RunRecord:
    """The record of a run that failed: its identity, its whole config (variant included) and why."""
    return RunRecord(sweep_id=sweep_id, run_id=run_id, model=config.model, seed=config.seed, status="FAILED",
                     error=message, config=asdict(config), finished_at=now())


def throughput(train_ips: float | None, infer_ips: float | None, data_wait: float | None, steady_steps: int,
               train_flops: int | None, infer_flops: int | None, peak: float | None, peak_reason: str | None) -> dict[str, Any]:
    """Images/s, FLOPs per image, achieved TFLOP/s and MFU (null with its reason where unknown)."""
    achieved = train_flops * train_ips / 1e12 if train_flops and train_ips else None
    return {
        "train_images_per_s": train_ips,
        "infer_images_per_s": infer_ips,
        "data_wait_fraction": data_wait,
        "steady_train_steps": steady_steps,
        "train_flops_per_image": train_flops,
        "infer_flops_per_image": infer_flops,
        "achieved_tflops": achieved,
        "mfu": achieved / peak if achieved and peak else None,
        "mfu_reason": None if achieved and peak else (peak_reason or "no steady-state training step was timed"),
    }


def completed_record(sweep_id: str, run_id: str, config: TrainConfig, **figures: Any) -> RunRecord:
    """figures: the RunRecord fields a completed run measures (preprocessing, params, val, test, ...)."""
    return RunRecord(sweep_id=sweep_id, run_id=run_id, model=config.model, seed=config.seed, status="COMPLETED",
                     config=asdict(config), finished_at=now(), **figures)
