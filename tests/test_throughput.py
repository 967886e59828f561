"""The lean GPU input path and honest GPU figures: what a step asks of the host, and which NVML samples count.

The CUDA cases run where torch sees a GPU (benchmarks/gpu_check.sh runs this file on a lent one).
"""
import time

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from harness.data.cache import load_split
from harness.measure import GpuSampler, StepMeter, samples_inside
from harness.training import DeviceSplit, Run, TrainConfig

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"))]
# What makes the host wait for the device: a read of a value (item, float, bool), a data-dependent
# shape (nonzero), and a tensor built from Python data, which on a GPU is a blocking copy.
HOST_WAITS = {"aten._local_scalar_dense.default", "aten.is_nonzero.default", "aten.nonzero.default",
              "aten.lift_fresh.default"}


class HostWaits(TorchDispatchMode):
    """Counts the operations that make the host wait for the device, and copies between host and device."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        values = (*args, *(kwargs or {}).values())
        devices = {v.device.type for v in values if isinstance(v, torch.Tensor)}
        devices |= {v.type for v in values if isinstance(v, torch.device)}
        copies_across = func in (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default) and len(devices) > 1
        self.count += str(func) in HOST_WAITS or copies_across
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("device", DEVICES)
def test_a_training_step_never_waits_for_the_device(tiny_demo, tmp_path, device):
    run = Run(TrainConfig(model="MobileNetV2", image_size=32, batch_size=4, device=device), tiny_demo,
              tmp_path / "cache", tmp_path / "run")
    data = DeviceSplit.load(load_split(run.cache, "train"), run.device)
    run.train_epoch(data, 0, StepMeter(run.device))  # the first epoch makes what later ones reuse
    waits = {}
    for steps in (2, 6):
        part = DeviceSplit(data.images[:steps * 4], data.labels[:steps * 4])
        with HostWaits() as counter:
            stats = run.train_epoch(part, 1, StepMeter(run.device))
        waits[steps] = counter.count
        assert 0 <= stats["train_accuracy"] <= 1 and stats["train_loss"] > 0
    assert waits[6] == waits[2], f"host waits per epoch grow with its steps: {waits}"


def test_utilisation_counts_only_samples_whose_period_lies_inside_the_training_steps():
    # NVML samples every 100 µs here; training ran from 150 to 420, an evaluation after it.
    samples = [(100, 5.0), (200, 60.0), (300, 97.0), (400, 99.0), (500, 10.0), (600, 0.0)]
    assert samples_inside(samples, [(150, 420)]) == [97.0, 99.0]
    assert samples_inside(samples, [(150, 420), (500, 650)]) == [97.0, 99.0, 0.0]
    assert samples_inside(samples, [(150, 250)]) == []  # shorter than one sampling period
    assert samples_inside(samples[:1], [(0, 1000)]) == []  # one sample: its period's start is unknown


def test_without_an_nvidia_gpu_the_utilisation_is_null_with_its_reason():
    sampler = GpuSampler(torch.device("cpu"))
    with sampler.sampling(), sampler.measuring():
        pass
    summary = sampler.summary()
    assert summary["util_median"] is None and summary["power_mean_w"] is None and summary["samples"] == 0
    assert "no NVIDIA GPU" in summary["reason"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_a_busy_gpu_reads_busy_and_idle_time_outside_the_steps_is_not_counted():
    device = torch.device("cuda")
    a = torch.randn(4096, 4096, device=device)
    sampler = GpuSampler(device)
    with sampler.sampling():
        time.sleep(1.5)  # idle, outside any measuring block
        with sampler.measuring():
            end = time.perf_counter() + 3
            while time.perf_counter() < end:
                for _ in range(20):
                    a = (a @ a).clamp_(-1, 1)
                torch.cuda.synchronize()
        time.sleep(1.5)
    summary = sampler.summary()
    assert summary["samples"] >= 1 and summary["util_period_s"] > 0, summary
    assert summary["util_median"] >= 0.9 and summary["memory_used_max_bytes"] > 0, summary
