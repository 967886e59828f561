"""The local backend's pool: its workers share the sweep's runs, whoever is free taking the next. One run
is cancelled alone while the others finish; a run whose worker dies is taken up by the worker left."""
import os
import signal

from slurm_helpers import latest_sweep, progress_epoch, result, wait_until

# Small inputs and ten epochs: the runs last long enough to be caught mid-training.
SWEEP = ("--cluster", "local", "--max-parallel", "2", "--epochs", "10", "--image-size", "32")


def _holder(folder, rid: str) -> int:
    """The pid of the worker that took the run (its token: pid@start time)."""
    return int((folder / "runs" / rid / ".holder").read_text().split("@")[0])


def _status(cli, results) -> dict[str, dict]:
    return {row["run_id"]: row for row in cli("status", "--format", "json", "--results", results).json()}


def test_cancelling_one_local_run_leaves_the_pool_to_finish_the_others(cli, results, tiny_demo):
    sweep = cli("sweep", *SWEEP, "--dataset", tiny_demo, "--models", "MobileNetV2,ResNet50,DenseNet121", "--results", results)
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)
    wait_until(lambda: progress_epoch(folder, "ResNet50-s0") >= 1, 300, "ResNet50 to train an epoch")
    cancelled = cli("cancel", folder.name, "--runs", "ResNet50", "--results", results)
    assert cancelled.code == 0, cancelled.err
    wait_until(lambda: all(result(folder, f"{m}-s0") for m in ("MobileNetV2", "DenseNet121")), 600, "the other runs")
    rows = _status(cli, results)
    assert rows["ResNet50-s0"]["state"] == "CANCELLED" and "cancelled" in rows["ResNet50-s0"]["reason"]
    assert rows["MobileNetV2-s0"]["state"] == rows["DenseNet121-s0"]["state"] == "COMPLETED"
    # the worker that held ResNet50 was stopped; the other one took the run it would have taken
    assert _holder(folder, "DenseNet121-s0") != _holder(folder, "ResNet50-s0")


def test_a_run_whose_worker_dies_is_taken_up_by_the_worker_left(cli, results, tiny_demo):
    # VGG16, slow, keeps one worker busy while the other's MobileNetV2 is killed after its first epoch
    sweep = cli("sweep", *SWEEP, "--dataset", tiny_demo, "--models", "VGG16,MobileNetV2", "--results", results)
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)
    wait_until(lambda: progress_epoch(folder, "MobileNetV2-s0") >= 1, 300, "MobileNetV2 to train an epoch")
    dead = _holder(folder, "MobileNetV2-s0")
    survivor = _holder(folder, "VGG16-s0")
    os.kill(dead, signal.SIGKILL)  # as the kernel's OOM killer would
    waited = cli("status", folder.name, "--watch", "--results", results)
    assert waited.code == 0, waited.out
    record = result(folder, "MobileNetV2-s0")
    assert record["status"] == "COMPLETED" and record["requeues"] == 1  # a second attempt, from its checkpoint
    assert _holder(folder, "MobileNetV2-s0") == survivor != dead
