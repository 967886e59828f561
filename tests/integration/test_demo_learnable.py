"""The demo, rid of its shortcuts (tests/unit/test_demo_shortcuts.py), still holds something to learn:
MobileNetV2 trained from scratch finds the upsampler's fingerprint well above chance.

40 px images trained at 35 px: 35 / 0.875 (timm's crop fraction) is 40, so the cache's resize is the
identity and the fingerprint reaches the network intact. One thread: on a shared two-core machine
two threads wait on each other more than they compute.
"""
import time

import torch

from harness.data.demo import make_demo
from harness.training.config import TrainConfig
from harness.training.train import train_run

MIN_TEST_AUC = 0.70  # measured 0.80, 0.81, 0.75 for seeds 0, 1, 2 (test accuracy 0.69, 0.61, 0.68); chance is 0.5


def test_mobilenetv2_learns_the_demo_fingerprint_well_above_chance(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        started = time.perf_counter()
        dataset = make_demo(tmp_path / "demo", per_class=600, size=40, seed=0).parent
        config = TrainConfig(model="MobileNetV2", epochs=12, image_size=35, batch_size=16, seed=0)
        result = train_run(config, dataset, tmp_path / "cache", tmp_path / "run")
    finally:
        torch.set_num_threads(threads)
    test = result["test"]
    print(f"\nMobileNetV2 on the demo: test accuracy {test['accuracy']:.3f}, AUC {test['auc']:.3f}, "
          f"best epoch {result['best_epoch']}, {time.perf_counter() - started:.0f} s")
    assert test["auc"] >= MIN_TEST_AUC
