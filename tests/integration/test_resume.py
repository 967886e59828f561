"""A run stopped after an epoch and resumed is the uninterrupted run, bit for bit (on CPU)."""
import pandas as pd
import pytest
import torch

from harness.store.paths import RunPaths
from harness.training.config import TrainConfig
from harness.training.train import train_run
from harness.training.trainer import Trainer

TIMINGS = {"throughput", "gpu", "memory", "environment", "requeues", "train_seconds_this_attempt", "started_at",
           "finished_at", "cache", "sharing"}  # what a run measured or where it ran, not what it learnt


class Stopped(Exception):
    """What a time limit or a kill does to a run, at the end of an epoch's checkpoint."""


def test_a_resumed_run_equals_the_uninterrupted_one(tiny_demo, tmp_path, monkeypatch):
    config = TrainConfig(model="MobileNetV2", epochs=2, image_size=32, batch_size=8, device="cpu", keep_checkpoints=True)
    whole = train_run(config, tiny_demo, tmp_path / "cache", RunPaths(tmp_path / "whole" / "MobileNetV2-s0"))

    save_state = Trainer.save_state

    def stop_after_first_epoch(run: Trainer, epoch: int) -> None:
        save_state(run, epoch)
        if epoch == 1:
            raise Stopped

    monkeypatch.setattr(Trainer, "save_state", stop_after_first_epoch)
    with pytest.raises(Stopped):
        train_run(config, tiny_demo, tmp_path / "cache", RunPaths(tmp_path / "resumed" / "MobileNetV2-s0"))
    monkeypatch.setattr(Trainer, "save_state", save_state)
    resumed = train_run(config, tiny_demo, tmp_path / "cache", RunPaths(tmp_path / "resumed" / "MobileNetV2-s0"))

    assert resumed.requeues == 1 and whole.requeues == 0
    assert {k: v for k, v in resumed.to_json().items() if k not in TIMINGS} == \
        {k: v for k, v in whole.to_json().items() if k not in TIMINGS}
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "whole" / "MobileNetV2-s0" / "history.csv"),
                                  pd.read_csv(tmp_path / "resumed" / "MobileNetV2-s0" / "history.csv"), check_exact=True)
    for name in ("best.pt", "state.pt"):
        a = torch.load(tmp_path / "whole" / "MobileNetV2-s0" / name, weights_only=True)
        b = torch.load(tmp_path / "resumed" / "MobileNetV2-s0" / name, weights_only=True)
        weights_a, weights_b = (a["model"], b["model"]) if name == "state.pt" else (a, b)
        assert weights_a.keys() == weights_b.keys()
        assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a), name


def test_a_kill_between_the_checkpoint_and_best_pt_leaves_best_pt_to_the_checkpoint(tiny_demo, tmp_path, monkeypatch):
    """best.pt follows the epoch's checkpoint: a kill between the two leaves a checkpoint whose best epoch is its
    own, whose weights the resumed run writes as best.pt (here its last epoch: nothing is trained again)."""
    config = TrainConfig(model="MobileNetV2", epochs=1, image_size=32, batch_size=8, device="cpu", keep_checkpoints=True)
    paths = RunPaths(tmp_path / "killed" / "MobileNetV2-s0")
    save_state = Trainer.save_state

    def killed_once_saved(run: Trainer, epoch: int) -> None:
        save_state(run, epoch)
        raise Stopped

    monkeypatch.setattr(Trainer, "save_state", killed_once_saved)
    with pytest.raises(Stopped):
        train_run(config, tiny_demo, tmp_path / "cache", paths)
    assert paths.state.exists() and not paths.best.exists()
    monkeypatch.setattr(Trainer, "save_state", save_state)
    resumed = train_run(config, tiny_demo, tmp_path / "cache", paths)
    assert resumed.status == "COMPLETED" and resumed.requeues == 1 and resumed.best_epoch == 1
    best, state = torch.load(paths.best, weights_only=True), torch.load(paths.state, weights_only=True)["model"]
    assert best.keys() == state.keys() and all(torch.equal(best[k], state[k]) for k in best)
