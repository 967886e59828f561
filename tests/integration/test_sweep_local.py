"""One sweep end to end on this machine, through submitit's local executor."""

import torch

from harness.zoo.models import build_model

UNIT_INTERVAL = ["accuracy", "loss", "precision", "recall", "f1", "auc"]


def test_a_failed_run_is_a_row_with_its_status(cli, results, tiny_demo, tmp_path):
    weights = tmp_path / "mobilenet.pt"
    torch.save(build_model("MobileNetV2").backbone.state_dict(), weights)  # fits MobileNetV2 only
    sweep = cli("sweep", "--cluster", "local", "--max-parallel", "1", "--dataset", tiny_demo, "--models", "MobileNetV2,ResNet50",
                "--weights", weights, "--epochs", "1", "--image-size", "32", "--results", results, "--wait")
    assert sweep.code == 1 and "ResNet50-s0" in sweep.err
    board = {row["model"]: row for row in cli("leaderboard", "--format", "json", "--results", results).json()}
    assert board["MobileNetV2"]["status"] == "COMPLETED"
    assert board["ResNet50"]["status"] == "1 FAILED" and board["ResNet50"]["accuracy"] is None
    status = {r["run_id"]: r for r in cli("status", "--format", "json", "--results", results).json()}
    assert "does not fit ResNet50" in status["ResNet50-s0"]["reason"]


def test_clean_frees_what_a_finished_sweep_no_longer_needs(cli, results, tiny_demo):
    sweep = cli("sweep", "--cluster", "local", "--dataset", tiny_demo, "--models", "MobileNetV2", "--epochs", "2",
                "--image-size", "32", "--keep-checkpoints", "--results", results, "--wait")
    assert sweep.code == 0, sweep.err
    (folder,) = [p.parent for p in results.glob("*/sweep.json")]
    run = folder / "runs" / "MobileNetV2-s0"
    kept = sum(p.stat().st_size for p in run.glob("state*.pt"))
    assert {p.name for p in run.glob("state*.pt")} == {"state.pt", "state.prev.pt"}
    size = cli("status", "--format", "json", "--meta", "--results", results).json()["bytes"]
    assert size == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())

    cleaned = cli("clean", "--results", results)
    assert cleaned.code == 0 and cleaned.out.startswith("freed ") and "2 resume checkpoints" in cleaned.out, cleaned.err
    assert not list(run.glob("state*")) and (run / "best.pt").is_file()
    assert cli("status", "--format", "json", "--meta", "--results", results).json()["bytes"] == size - kept
    assert cli("clean", "--results", results).out.startswith("freed 0 B: 0 resume checkpoints")

    caches = results / "cache"
    assert caches.is_dir()
    cleaned = cli("clean", "--cache", "--results", results)
    assert cleaned.code == 0 and "image caches" in cleaned.out and not caches.exists(), cleaned.err
    board = cli("leaderboard", "--format", "json", "--results", results).json()
    assert board[0]["status"] == "COMPLETED"  # read from the records, not the caches
