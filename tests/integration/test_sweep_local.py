"""One sweep end to end on this machine, through submitit's local executor."""

import torch

from harness.zoo.models import build_model

UNIT_INTERVAL = ["accuracy", "loss", "precision", "recall", "f1", "auc"]


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
