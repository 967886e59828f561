"""Building a run's RunRecord (store.records): a completed run's figures, or a failed run's reason."""
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from harness.store.records import RunRecord
from harness.training.config import TrainConfig


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


def failed_record(sweep_id: str, run_id: str, config: TrainConfig, message: str, status: str = "FAILED") -> RunRecord:
    """The record of a run that ended without a result: FAILED (or CANCELLED), its identity, its whole
    config (variant included) and why."""
    return RunRecord(sweep_id=sweep_id, run_id=run_id, model=config.model, seed=config.seed, status=status,
                     error=message, config=asdict(config), finished_at=now())


def throughput(train: dict[str, Any], infer: dict[str, Any], data_wait: float | None,
               copy_wait: tuple[float | None, str | None], steady_steps: int, train_flops: int | None,
               infer_flops: int | None, mfu: dict[str, Any], float32_matmul: dict[str, str]) -> dict[str, Any]:
    """Images/s (train, infer: the timed windows' spread, meters.window_spread; the figure is their median),
    the waits for data (the host's fetch; the GPU's wait on copies, or why there is none), FLOPs per image,
    and achieved TFLOP/s and MFU against the peak of the precision used (flops.model_flops_utilisation:
    null with its reason where unknown)."""
    return {
        "train_images_per_s": train["median"],
        "train_spread": train,
        "infer_images_per_s": infer["median"],
        "infer_spread": infer,
        "data_wait_fraction": data_wait,
        "gpu_copy_wait_fraction": copy_wait[0],
        "gpu_copy_wait_reason": copy_wait[1],
        "steady_train_steps": steady_steps,
        "train_flops_per_image": train_flops,
        "infer_flops_per_image": infer_flops,
        **mfu,
        "float32_matmul": float32_matmul,
    }


def completed_record(sweep_id: str, run_id: str, config: TrainConfig, **figures: Any) -> RunRecord:
    """figures: the RunRecord fields a completed run measures (preprocessing, params, val, test, ...)."""
    return RunRecord(sweep_id=sweep_id, run_id=run_id, model=config.model, seed=config.seed, status="COMPLETED",
                     config=asdict(config), finished_at=now(), **figures)
