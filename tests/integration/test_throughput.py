"""The lean GPU input path and honest GPU figures: what a step asks of the host, and which NVML samples count.

The CUDA cases run where torch sees a GPU (benchmarks/gpu_check.sh runs this file on a lent one).
"""
import contextlib
import math
import time
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from harness.data.cache import load_split
from harness.measure.meters import GpuSampler, StepMeter, samples_inside
from harness.store.paths import RunPaths
from harness.training.config import TrainConfig
from harness.training.trainer import DeviceSplit, PinnedStaging, Trainer

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
# Where a split is held: on the device, or (a split too large for the GPU) pinned on the host.
PLACES = ["cpu", pytest.param("cuda", marks=CUDA), pytest.param("cuda-host", marks=CUDA)]
# What makes the host wait for the device: a read of a value (item, float, bool), a data-dependent
# shape (nonzero), and a tensor built from Python data, which on a GPU is a blocking copy.
HOST_WAITS = {"aten._local_scalar_dense.default", "aten.is_nonzero.default", "aten.nonzero.default",
              "aten.lift_fresh.default"}


def asynchronous(func, args, kwargs) -> bool:
    """A copy the host does not wait for: from pinned host memory, non-blocking."""
    source = args[0] if func is torch.ops.aten._to_copy.default else args[1]
    non_blocking = kwargs.get("non_blocking", args[2] if func is torch.ops.aten.copy_.default and len(args) > 2 else False)
    return bool(non_blocking) and source.device.type == "cpu" and source.is_pinned()


class HostWaits(TorchDispatchMode):
    """Counts the operations that make the host wait for the device: reads of values, and copies
    between host and device other than asynchronous ones."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        values = (*args, *kwargs.values())
        devices = {v.device.type for v in values if isinstance(v, torch.Tensor)}
        devices |= {v.type for v in values if isinstance(v, torch.device)}
        copies_across = func in (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default) and len(devices) > 1
        self.count += str(func) in HOST_WAITS or (copies_across and not asynchronous(func, args, kwargs))
        return func(*args, **kwargs)


def load_train(run: Trainer, place: str) -> DeviceSplit:
    split = load_split(run.cache, "train")
    if place == "cuda-host":
        return DeviceSplit.on_host(torch.from_numpy(np.array(split.images)), torch.tensor(split.labels, dtype=torch.float32), run.device)
    return DeviceSplit.load(split, run.device)


@pytest.mark.parametrize("place", PLACES)
def test_a_training_step_never_waits_for_the_device(tiny_demo, tmp_path, place):
    run = Trainer(TrainConfig(model="MobileNetV2", image_size=32, batch_size=4, device=place.split("-")[0]), tiny_demo,
                  tmp_path / "cache", RunPaths(tmp_path / "run"))
    data = load_train(run, place)
    run.train_epoch(data, 0, StepMeter(run.device))  # the first epoch makes what later ones reuse
    waits = {}
    for steps in (2, 6):
        part = replace(data, images=data.images[:steps * 4], labels=data.labels[:steps * 4])
        with HostWaits() as counter:
            stats = run.train_epoch(part, 1, StepMeter(run.device))
        waits[steps] = counter.count
        assert 0 <= stats["train_accuracy"] <= 1 and stats["train_loss"] > 0
    assert waits[6] == waits[2], f"host waits per epoch grow with its steps: {waits}"


@CUDA
def test_on_a_gpu_the_wait_on_copies_is_timed_where_batches_come_from_the_host(tiny_demo, tmp_path):
    """The GPU's wait on copies, from CUDA events, where the split is held on the host; where it is in GPU
    memory there is no copy to wait on, said so. The host's fetch time is measured in both."""
    run = Trainer(TrainConfig(model="MobileNetV2", image_size=32, batch_size=4, device="cuda"), tiny_demo,
                  tmp_path / "cache", RunPaths(tmp_path / "run"))
    for place in ("cuda-host", "cuda"):
        meter = StepMeter(run.device)
        run.train_epoch(load_train(run, place), 0, meter)
        share, reason = meter.gpu_copy_wait()
        assert 0 <= meter.data_wait_fraction() < 1
        if place == "cuda-host":
            assert 0 <= share < 1 and reason is None and meter.copies > 0
        else:
            assert share is None and "in GPU memory" in reason


@CUDA
def test_on_a_gpu_a_host_resident_split_gives_the_batches_a_resident_one_gives(tiny_demo, tmp_path):
    run = Trainer(TrainConfig(model="MobileNetV2", image_size=32, batch_size=4, device="cuda"), tiny_demo,
                  tmp_path / "cache", RunPaths(tmp_path / "run"))
    resident, host = load_train(run, "cuda"), load_train(run, "cuda-host")
    assert host.staging is not None and host.images.is_pinned() and resident.images.is_cuda
    order = torch.randperm(len(host))
    batches = [host.take(order[start:start + 4], run.device) for start in range(0, len(order), 4)]  # all queued first
    for start, batch in zip(range(0, len(order), 4), batches):
        assert torch.equal(batch, resident.take(order[start:start + 4].cuda(), run.device))
    assert torch.equal(host.take(slice(3, 9), run.device), resident.take(slice(3, 9), run.device))


class FakeCuda:
    """CUDA's streams, events and pinned memory, for the one part that cannot exist here: a log of what
    the staging asks of them, in order, each event named by the copy that recorded it."""

    def __init__(self, monkeypatch) -> None:
        self.log, self.pinned, self.copies = [], [], 0
        fake = self

        class Event:
            def __init__(self, enable_timing=False):
                self.timing = enable_timing

            def record(self, stream):
                if self.timing:  # the marks around the step stream's wait, timed on the GPU
                    fake.log.append(f"{stream.name} marks")
                    return
                self.name = f"copy{fake.copies}"
                fake.copies += 1

            def synchronize(self):
                fake.log.append(f"wait {self.name}")

        class Stream:
            def __init__(self, name="copies"):
                self.name = name

            def wait_event(self, event):
                fake.log.append(f"{self.name} waits {event.name}")

        empty = torch.empty

        def pinned_empty(*shape, pin_memory=False, **kwargs):
            buffer = empty(*shape, **kwargs)
            if pin_memory:
                fake.pinned.append(buffer.data_ptr())
                fake.log.append(f"pin buffer {len(fake.pinned) - 1}")
            return buffer

        def copy(tensor, *args, **kwargs):
            fake.log.append(f"copy from buffer {fake.pinned.index(tensor.data_ptr())}" if tensor.data_ptr() in fake.pinned
                            else "copy from the split")
            return tensor.clone()

        monkeypatch.setattr(torch.cuda, "Stream", Stream)
        monkeypatch.setattr(torch.cuda, "Event", Event)
        monkeypatch.setattr(torch.cuda, "current_stream", lambda device: Stream("step"))
        monkeypatch.setattr(torch.cuda, "stream", lambda stream: contextlib.nullcontext())
        monkeypatch.setattr(torch, "empty", pinned_empty)
        monkeypatch.setattr(torch.Tensor, "to", copy)
        monkeypatch.setattr(torch.Tensor, "record_stream", lambda tensor, stream: None)


def test_a_host_resident_split_is_gathered_into_pinned_buffers_each_reused_only_after_its_copy(monkeypatch):
    cuda = FakeCuda(monkeypatch)
    images = torch.arange(10 * 3 * 2 * 2, dtype=torch.uint8).reshape(10, 3, 2, 2)
    staging = PinnedStaging(torch.device("cuda"))
    batches = [torch.tensor([7, 2, 9]), torch.tensor([0, 1, 4]), torch.tensor([5, 3]), torch.tensor([8, 6, 1, 0])]
    for index in batches:
        assert torch.equal(staging.copy(images, index), images[index])
    assert torch.equal(staging.copy(images, slice(4, 6)), images[4:6])
    waited = ["step marks", "step waits copy{}", "step marks"]  # the step's wait on each copy, between two timed marks
    assert cuda.log == [
        "pin buffer 0", "copy from buffer 0", *(w.format(0) for w in waited),
        "pin buffer 1", "copy from buffer 1", *(w.format(1) for w in waited),
        "wait copy0", "copy from buffer 0", *(w.format(2) for w in waited),  # buffer 0 again, once its copy is done
        "wait copy1", "pin buffer 2", "copy from buffer 2", *(w.format(3) for w in waited),  # larger: a new one in its place
        "copy from the split", *(w.format(4) for w in waited),  # a slice is pinned already: no gather, no buffer
    ]
    assert staging.last_wait is not None


def test_the_gpus_wait_on_copies_is_timed_apart_from_the_hosts_fetch(monkeypatch):
    """StepMeter: the host's fetch time (data_wait_fraction) and the GPU's wait on each copy from the host,
    read from the CUDA events around it once a timed pass has ended (here events that say how long)."""
    from harness.measure import meters
    from harness.measure.meters import StepMeter

    class Waited:
        def __init__(self, ms):
            self.ms = ms

        def elapsed_time(self, other):
            return self.ms

    clock = iter([0.0, 2.0])  # the pass's edges: two seconds
    monkeypatch.setattr(meters, "synchronize", lambda device: None)
    monkeypatch.setattr(meters.time, "perf_counter", lambda: next(clock))
    meter = StepMeter(torch.device("cuda"), warmup=1)
    with meter.timing():
        meter.step(8, 0.5, (Waited(900.0), None))  # the warm-up step: neither wait counted
        for ms in (100.0, 300.0):
            meter.step(8, 0.25, (Waited(ms), None))
    assert meter.data_wait_fraction() == pytest.approx(0.5 / 2) and meter.gpu_copy_wait() == (pytest.approx(0.4 / 2), None)
    resident = StepMeter(torch.device("cuda"), warmup=0)
    resident.seconds = 1.0
    assert resident.gpu_copy_wait() == (None, "no batch was copied from the host: the split is in GPU memory")
    assert StepMeter(torch.device("cpu")).gpu_copy_wait() == (None, "no GPU in use (device: cpu)")


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


class FakeNvml:
    """NVML as a GPU answers it, for the one part that cannot exist here: a utilisation sample every
    50 ms, 95% while the test says the GPU is busy, 3% otherwise."""

    period_us = 50_000

    def __init__(self) -> None:
        self.started, self.busy = time.time(), []

    def samples(self, handle, kind, since):
        import pynvml
        first = int(self.started * 1e6) // self.period_us * self.period_us + self.period_us
        out = []
        for stamp in range(first, int(time.time() * 1e6), self.period_us):
            busy = any(start <= (stamp - self.period_us) / 1e6 and stamp / 1e6 <= end for start, end in self.busy)
            if stamp > since:
                sample = pynvml.c_nvmlSample_t()
                sample.timeStamp, sample.sampleValue.uiVal = stamp, 95 if busy else 3
                out.append(sample)
        if not out:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return pynvml.NVML_VALUE_TYPE_UNSIGNED_INT, out


def test_the_sampler_polls_nvml_and_keeps_only_the_samples_of_the_training_passes(monkeypatch):
    import pynvml
    nvml = FakeNvml()
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: type("Props", (), {"uuid": "GPU-fake"}))
    monkeypatch.setattr(pynvml, "nvmlInit", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByUUID", lambda uuid: uuid)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetSamples", nvml.samples)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetMemoryInfo", lambda handle: type("Memory", (), {"used": 2 ** 30}))
    monkeypatch.setattr(pynvml, "nvmlDeviceGetPowerUsage", lambda handle: 250_000)
    sampler = GpuSampler(torch.device("cuda"), interval_s=0.05)
    with sampler.sampling():
        for _ in range(2):
            time.sleep(0.3)  # evaluation and checkpoints: the GPU idles
            nvml.busy.append([time.time(), math.inf])  # busy from just before the block to just after it
            with sampler.measuring():
                time.sleep(0.4)
            nvml.busy[-1][1] = time.time()
    summary = sampler.summary()
    assert summary["util_median"] == summary["util_mean"] == 0.95 and summary["samples"] >= 4, summary
    assert summary["util_period_s"] == 0.05 and summary["reason"] is None
    assert summary["memory_used_max_bytes"] == 2 ** 30 and summary["power_mean_w"] == 250.0


@CUDA
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
    assert summary["util_mean"] >= 0.9 and summary["memory_used_max_bytes"] > 0, summary  # the idle 3 s left out
