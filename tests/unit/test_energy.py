"""Energy of the GPU per phase: NVML's counter where it has one, else the integral of its power readings."""
import time
from types import SimpleNamespace

import pytest
import torch

from harness.measure import meters
from harness.measure.meters import GpuSampler, energy_per_image, power_integral


@pytest.fixture
def nvml(monkeypatch):
    """NVML as a GPU answers it (the one part that cannot exist here): 250 W, 1 GiB used, no
    utilisation sample yet, and an energy counter that tests set (a list of readings, or an error)."""
    import pynvml
    fake = SimpleNamespace(counter=[], power_mw=250_000, calls=0)

    def energy(handle):
        fake.calls += 1
        if isinstance(fake.counter, Exception):
            raise fake.counter
        return fake.counter.pop(0)

    def power(handle):
        if isinstance(fake.power_mw, Exception):
            raise fake.power_mw
        return fake.power_mw

    def no_sample_yet(handle, kind, since):
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)

    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(uuid="GPU-fake"))
    monkeypatch.setattr(pynvml, "nvmlInit", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByUUID", lambda uuid: uuid)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetSamples", no_sample_yet)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetMemoryInfo", lambda handle: SimpleNamespace(used=2 ** 30))
    monkeypatch.setattr(pynvml, "nvmlDeviceGetPowerUsage", power)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetTotalEnergyConsumption", energy)
    return fake


def train_then_infer(sampler: GpuSampler) -> None:
    with sampler.sampling():
        for _ in range(2):
            with sampler.measuring("train", images=100):
                time.sleep(0.05)
            time.sleep(0.02)  # evaluation, checkpoints: not counted
        with sampler.measuring("infer", images=40):
            time.sleep(0.11)  # longer than NVML's update period (a shorter block: the test below)


def test_without_a_gpu_the_energy_is_null_with_its_reason():
    sampler = GpuSampler(torch.device("cpu"))
    train_then_infer(sampler)
    for phase in ("train", "infer"):
        energy = sampler.summary(phase)
        assert energy["energy_j"] is None and energy["energy_source"] is None and energy["energy_per_image_j"] is None
        assert "no NVIDIA GPU" in energy["energy_reason"]
    assert sampler.energy("train")["images"] == 200 and sampler.energy("infer")["images"] == 40


def test_nvmls_energy_counter_gives_the_joules_of_each_phase_with_their_uncertainty(nvml, monkeypatch):
    clock = {"us": 1_000_000}  # a faked clock: each train block lasts 1.2 s, the infer block 2 s
    monkeypatch.setattr(meters, "_now_us", lambda: clock["us"])
    # millijoules since the driver loaded, read at the edges of each block, in order
    nvml.counter = [5_000_000, 5_120_500, 5_130_000, 5_250_000, 5_260_000, 5_262_000]
    sampler = GpuSampler(torch.device("cuda"), interval_s=0.01)
    with sampler.sampling():
        for _ in range(2):
            with sampler.measuring("train", images=100):
                clock["us"] += 1_200_000
            clock["us"] += 300_000  # evaluation, checkpoints: not counted
        with sampler.measuring("infer", images=40):
            clock["us"] += 2_000_000
    train, infer = sampler.summary("train"), sampler.energy("infer")
    assert train["energy_j"] == pytest.approx(120.5 + 120.0) and train["energy_source"] == "nvml_counter"
    # one ~100 ms update period over each block's span: 120.5 J x 0.1 / 1.2 + 120 J x 0.1 / 1.2
    assert train["energy_uncertainty_j"] == pytest.approx(240.5 / 12) and train["energy_reason"] is None
    assert train["energy_per_image_j"] == pytest.approx(240.5 / 200)
    assert infer["energy_j"] == pytest.approx(2.0) and infer["energy_uncertainty_j"] == pytest.approx(0.1)
    assert infer["energy_per_image_j"] == pytest.approx(2.0 / 40)
    assert train["power_mean_w"] == 250.0 and train["memory_used_max_bytes"] == 2 ** 30
    assert nvml.calls == 6  # read at the edges only, never by the sampling thread


def test_without_the_counter_the_power_readings_are_integrated(nvml):
    import pynvml
    nvml.counter = pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)  # a P100, for one
    assert isinstance(nvml.counter, pynvml.NVMLError_NotSupported)
    sampler = GpuSampler(torch.device("cuda"), interval_s=0.004)  # ten readings' periods: 40 ms, under each block's span
    train_then_infer(sampler)
    seconds = {phase: sum(b.end_us - b.start_us for b in sampler.blocks if b.phase == phase) / 1e6
               for phase in ("train", "infer")}
    train, infer = sampler.energy("train"), sampler.energy("infer")
    assert train["energy_source"] == infer["energy_source"] == "power_integral"
    assert train["energy_j"] == pytest.approx(250.0 * seconds["train"]) and seconds["train"] >= 0.1
    assert infer["energy_j"] == pytest.approx(250.0 * seconds["infer"])
    assert nvml.calls == 1  # tried once, then left alone


def test_neither_counter_nor_power_leaves_the_energy_null_with_its_reason(nvml):
    import pynvml
    nvml.counter = nvml.power_mw = pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
    sampler = GpuSampler(torch.device("cuda"), interval_s=0.01)
    train_then_infer(sampler)
    energy = sampler.energy("train")
    assert energy["energy_j"] is None and "energy counter" in energy["energy_reason"]


@pytest.mark.parametrize("spans_us, counter, reason", [
    ([20_000], [7_000, 7_001], "1 of the 1 infer blocks lasted 20-20 ms, under the 10 update periods (1000 ms)"),
    ([30_000] * 4, [7_000, 7_900, 8_000, 8_800, 9_000, 9_700, 10_000, 10_500], "4 of the 4 infer blocks lasted 30-30 ms"),
    ([2_000_000, 110_000], [7_000, 9_000, 9_000, 9_500], "1 of the 2 infer blocks lasted 110-110 ms"),  # one short block
    ([500_000], [7_000, 7_000], "did not advance"),  # the counter stood still: never a zero
])
def test_an_energy_from_blocks_shorter_than_ten_counter_periods_is_null_with_its_reason(nvml, monkeypatch, spans_us,
                                                                                       counter, reason):
    """A counter refreshed every ~100 ms: blocks of 23-110 ms read it 30% off in the median (one in four 30 ms
    blocks reads zero). Each block must span ten periods, whatever the blocks add up to."""
    clock = {"us": 1_000_000}  # a faked clock: each block lasts its span
    monkeypatch.setattr(meters, "_now_us", lambda: clock["us"])
    nvml.counter = counter
    sampler = GpuSampler(torch.device("cuda"), interval_s=0.01)
    with sampler.sampling():
        for span in spans_us:
            with sampler.measuring("infer", images=40):
                clock["us"] += span
    infer = sampler.energy("infer")
    assert infer["energy_j"] is None and infer["energy_per_image_j"] is None and infer["energy_uncertainty_j"] is None
    assert reason in infer["energy_reason"]


def test_the_power_integral_is_the_trapezoid_over_the_block():
    readings = [(-1_000_000, 900.0), (0, 100.0), (1_000_000, 200.0), (3_000_000, 200.0), (4_000_000, 900.0)]
    assert power_integral(readings, 0, 3_000_000) == pytest.approx(150.0 + 400.0)  # outside readings left out
    assert power_integral(readings, 500_000, 900_000) is None


def test_energy_per_image():
    assert energy_per_image(300.0, 1000) == 0.3
    assert energy_per_image(None, 1000) is None and energy_per_image(300.0, 0) is None


def test_the_timed_inference_block_holds_inference_alone(monkeypatch):
    """The test split is copied to the device before the "infer" block opens: its throughput and energy
    are those of inference, not of the copy."""
    from contextlib import contextmanager

    from harness.training import evaluate
    from harness.training.distributed import Ranks

    events: list[str] = []
    monkeypatch.setattr(evaluate.DeviceSplit, "load", staticmethod(lambda split, device: events.append("copy") or [0] * 4))

    class Sampler:
        @contextmanager
        def measuring(self, phase, images):
            events.append(f"{phase} block opens ({images} images)")
            yield
            events.append(f"{phase} block closes")

    run = SimpleNamespace(device=torch.device("cpu"), ranks=Ranks(),
                          evaluate=lambda data, meter: events.append("inference") or ([], []))
    evaluate.timed_test(run, SimpleNamespace(), Sampler())
    assert events == ["copy", "infer block opens (4 images)", "inference", "infer block closes"]
