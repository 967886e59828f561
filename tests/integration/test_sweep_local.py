"""One sweep end to end on this machine, through submitit's local executor."""
import json

import pandas as pd
import torch

from harness.store.paths import list_sweeps
from harness.zoo.models import build_model

UNIT_INTERVAL = ["accuracy", "loss", "precision", "recall", "f1", "auc"]


def test_two_architectures_on_the_demo(cli, results):
    sweep = cli("sweep", "--cluster", "local", "--dataset", "demo", "--models", "ResNet50,MobileNetV2", "--epochs", "1",
                "--image-size", "32", "--max-parallel", "2", "--results", results, "--wait")
    assert sweep.code == 0, sweep.err
    board = cli("leaderboard", "--format", "json", "--results", results).json()
    assert sorted(row["model"] for row in board) == ["MobileNetV2", "ResNet50"]
    for row in board:
        for metric in UNIT_INTERVAL:
            assert 0 <= row[metric] <= 1, (row["model"], metric)
        assert row["train_images_per_s"] > 0 and row["infer_images_per_s"] > 0
        assert row["params"] > 0 and row["status"] == "COMPLETED"
        assert row["gpu_util_mean"] is None and "no NVIDIA GPU" in row["gpu_reason"]
    status = cli("status", "--format", "json", "--results", results).json()
    assert [run["state"] for run in status["runs"]] == ["COMPLETED", "COMPLETED"]

    folder = list_sweeps(results)[-1].folder
    record = json.loads((folder / "runs" / "ResNet50-s0" / "result.json").read_text())
    assert record["schema_version"] == 1 and record["config"]["image_size"] == 32 and record["config"]["epochs"] == 1
    assert record["test"]["confusion_matrix"] and sum(map(sum, record["test"]["confusion_matrix"])) == record["test"]["count"]
    assert record["memory"]["peak_gpu_memory_bytes"] is None and record["memory"]["peak_gpu_memory_reason"]
    assert record["environment"]["torch"] == torch.__version__
    # one pool of two workers shared the runs: each run trained once, its output in its own log
    tasks = json.loads((folder / "jobs.json").read_text())["submissions"][0]["tasks"]
    assert len(set(tasks.values())) == 1 and len(tasks["ResNet50-s0"].split("+")) == 2
    for model, other in (("ResNet50", "MobileNetV2"), ("MobileNetV2", "ResNet50")):
        assert json.loads((folder / "runs" / f"{model}-s0" / "result.json").read_text())["requeues"] == 0
        log = cli("logs", f"{folder.name}/{model}-s0", "--results", results)
        assert f"{model} epoch 1/1" in log.out and f"{other} epoch" not in log.out, log.err
    history = pd.read_csv(folder / "runs" / "ResNet50-s0" / "history.csv")
    assert list(history.columns) == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]
    assert (folder / "runs" / "ResNet50-s0" / "best.pt").is_file()
    # every format of the leaderboard, and the paper beside ours
    csv = cli("leaderboard", "--format", "csv", "--results", results)
    assert csv.code == 0 and csv.out.startswith("model,")
    compared = cli("leaderboard", "--format", "json", "--compare", "paper", "--results", results).json()
    assert {row["paper_accuracy"] for row in compared} == {0.9934, 0.74}
    markdown = cli("leaderboard", "--format", "markdown", "--results", results)
    assert markdown.code == 0 and "| MobileNetV2 |" in markdown.out
    # a resume's dry run shows what would run: the runs without a result, on the sweep's own cluster
    (folder / "runs" / "MobileNetV2-s0" / "result.json").unlink()
    submissions = json.loads((folder / "jobs.json").read_text())["submissions"]
    shown = cli("sweep", "--resume", folder.name, "--dry-run", "--force", "--results", results)
    assert shown.code == 0 and "harness.cluster.jobs" in shown.out and "MobileNetV2-s0" in shown.out, shown.err
    assert "ResNet50-s0" not in shown.out
    assert json.loads((folder / "jobs.json").read_text())["submissions"] == submissions


def test_a_failed_run_is_a_row_with_its_status(cli, results, tiny_demo, tmp_path):
    weights = tmp_path / "mobilenet.pt"
    torch.save(build_model("MobileNetV2").backbone.state_dict(), weights)  # fits MobileNetV2 only
    sweep = cli("sweep", "--cluster", "local", "--dataset", tiny_demo, "--models", "MobileNetV2,ResNet50",
                "--weights", weights, "--epochs", "1", "--image-size", "64", "--results", results, "--wait")
    assert sweep.code == 1 and "ResNet50-s0" in sweep.err
    board = {row["model"]: row for row in cli("leaderboard", "--format", "json", "--results", results).json()}
    assert board["MobileNetV2"]["status"] == "COMPLETED"
    assert board["ResNet50"]["status"] == "1 FAILED" and board["ResNet50"]["accuracy"] is None
    status = {r["run_id"]: r for r in cli("status", "--format", "json", "--results", results).json()["runs"]}
    assert "does not fit ResNet50" in status["ResNet50-s0"]["reason"]
