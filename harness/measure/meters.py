"""Honest measurements: steady-state throughput, data wait, memory, GPU use and energy (pynvml), environment.

A GPU figure that cannot be measured is None with a reason beside it, never zero.
"""
import platform
import resource
import statistics
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import timm
import torch

from harness.cluster import job_environment
from harness.errors import UserError
from harness.gpus import arch_range, capability_text, install_fix, runs_on

WARMUP_STEPS = 3


def check_gpu_arch(name: str, capability: tuple[int, int], arch_list: list[str]) -> None:
    """Fail at once, in one line, when this torch build has no kernels for the GPU (e.g. a P100, sm_60):
    the rule a sweep meets before it is queued (harness.gpus.runs_on), met again on the GPU the job got."""
    if not runs_on(capability, arch_list):
        raise UserError(f"this torch {torch.__version__} build has {arch_range(arch_list)} but the GPU {name} is "
                        f"compute capability {capability_text(capability)}; {install_fix(capability)}")


def resolve_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda was asked for but no CUDA GPU is visible to torch")
        index = device.index if device.index is not None else torch.cuda.current_device()
        check_gpu_arch(torch.cuda.get_device_name(index), torch.cuda.get_device_capability(index), torch.cuda.get_arch_list())
    return device


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {
        "host": platform.node(),
        "device": device.type,
        "device_name": platform.processor() or platform.machine(),
        "compute_capability": None,
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "cuda": torch.version.cuda,
        # where the job ran, as its backend says (cluster, partition, node: with the GPU, a reference's system)
        **job_environment().system(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(device_name=props.name, compute_capability=f"{props.major}.{props.minor}",
                   gpu_memory_bytes=props.total_memory)
    return env


CopyWait = tuple[Any, Any]  # two CUDA events with timing, on the step's stream, around its wait on a batch's copy
WINDOWS = 5  # the timed windows a run's steady-state steps are split into: its throughput is their median


@dataclass
class Window:
    """One timed window: the images its steps processed and the time they took (only time inside timed passes)."""

    images: int = 0
    seconds: float = 0.0
    steps: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"images": self.images, "seconds": self.seconds}


def window_ends(steady_steps: int, windows: int = WINDOWS) -> list[int]:
    """Where each window ends, counted in steady-state steps: up to `windows` windows of (nearly) equal
    steps, each of one step at least."""
    count = min(windows, steady_steps)
    return [round((number + 1) * steady_steps / count) for number in range(count)]


@dataclass
class StepMeter:
    """Images/s over steady-state steps (the first `warmup` excluded), and two waits for data, each named
    for what it is: the share of that time the host spent obtaining its batches (data_wait_fraction: the
    gather, and a copy's queueing or its pinned buffer), and the share the GPU stood waiting for a batch's
    copy from the host (gpu_copy_wait_fraction: CUDA events around the step stream's wait, where batches
    are copied from the host). The device is synchronised only where the steady state starts, at the end
    of each timed pass and at the edges of the timed windows, never inside a step, so the measurement does
    not slow what it measures.

    The steady-state steps (steady_steps, where the caller knows how many there will be) are split into
    WINDOWS windows of consecutive steps, each timed on its own (a window may span two passes: only the
    time inside them counts): the throughput is the median of the windows' images/s, and their spread
    (window_spread) says how steady it was. Where steady_steps is not given, every timed step is one
    window. watch, where given, is called at each window's edges, off the clock, with True at the last one
    (it looks at what else runs on the node: measure.sharing)."""

    device: torch.device
    warmup: int = WARMUP_STEPS
    # Called after the device is synchronised at every edge: with several ranks, a barrier, so that all
    # of them are timed from the same moment to the same moment (their images over one span).
    barrier: Callable[[], None] | None = None
    steady_steps: int | None = None
    watch: Callable[[bool], None] | None = None
    seen: int = 0
    images: int = 0
    seconds: float = 0.0
    data_seconds: float = 0.0
    copy_wait_seconds: float = 0.0
    copies: int = 0  # timed steps whose batch was copied from the host
    windows: list[Window] = field(default_factory=list)  # those closed, in order
    _open: Window | None = None
    _mark: float | None = None
    _waits: list[CopyWait] = field(default_factory=list)

    def _edge(self) -> float:
        synchronize(self.device)
        if self.barrier is not None:
            self.barrier()
        return time.perf_counter()

    def _ends(self) -> list[int]:
        return window_ends(self.steady_steps) if self.steady_steps else []

    def _count(self, now: float) -> None:
        """The time since the last mark, to the meter and its open window."""
        if self._mark is not None and self._open is not None:
            self.seconds += now - self._mark
            self._open.seconds += now - self._mark

    def _start_window(self) -> None:
        if self.watch is not None:
            self.watch(False)
        self._open, self._mark = Window(), self._edge()

    def _close_window(self) -> None:
        self._count(self._edge())
        assert self._open is not None
        self.windows.append(self._open)
        self._open = self._mark = None
        more = len(self.windows) < len(self._ends())
        if self.watch is not None:
            self.watch(not more)
        if more:
            self._start_window()

    @contextmanager
    def timing(self) -> Iterator[None]:
        """One timed pass (an epoch): time outside it (evaluation, checkpoints) is not counted."""
        if self._open is not None:  # a window goes on from the pass before
            self._mark = self._edge()
        elif self.seen >= self.warmup and not self.windows:
            self._start_window()
        yield
        if self._mark is not None:
            self._count(self._edge())
            self._mark = None
        # the pass has ended synchronised: its events are complete and read now, off the steps
        self.copy_wait_seconds += sum(waits.elapsed_time(resumes) for waits, resumes in self._waits) / 1000.0
        self._waits.clear()

    def step(self, batch: int, data_seconds: float, copy_wait: CopyWait | None = None) -> None:
        self.seen += 1
        if self._mark is not None and self._open is not None:
            self.images += batch
            self._open.images += batch
            self._open.steps += 1
            self.data_seconds += data_seconds
            if copy_wait is not None:
                self._waits.append(copy_wait)
                self.copies += 1
            ends = self._ends()
            if ends and sum(w.steps for w in self.windows) + self._open.steps == ends[len(self.windows)]:
                self._close_window()
        elif self.seen == self.warmup and not self.windows:  # the steady state starts once the warm-up steps are done
            self._start_window()

    def timed_windows(self) -> list[Window]:
        """The windows timed so far, the one still open included where it holds a step."""
        return [*self.windows, *([self._open] if self._open is not None and self._open.steps else [])]

    def images_per_s(self) -> float | None:
        """The median of the windows' images/s; None, never zero, when no steady-state step was timed."""
        return window_spread([w.as_dict() for w in self.timed_windows()])["median"]

    def data_wait_fraction(self) -> float | None:
        """The host's fetch time over the timed steps' time."""
        return self.data_seconds / self.seconds if self.seconds > 0 else None

    def gpu_copy_wait(self) -> tuple[float | None, str | None]:
        """The GPU's wait on copies from the host over the timed steps' time, or None with the reason."""
        if self.device.type != "cuda":
            return None, f"no GPU in use (device: {self.device.type})"
        if self.seconds <= 0:
            return None, "no steady-state step was timed"
        if not self.copies:
            return None, "no batch was copied from the host: the split is in GPU memory"
        return self.copy_wait_seconds / self.seconds, None


def window_spread(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """The throughput of timed windows ({"images", "seconds"} each): every window's images/s, their median,
    quartiles (inclusive method; one window is its own quartiles) and extremes; the figures None where no
    window holds a timed image."""
    rates = [w["images"] / w["seconds"] for w in windows if w["images"] and w["seconds"] > 0]
    if not rates:
        return {"images_per_s": [], "median": None, "q1": None, "q3": None, "min": None, "max": None}
    q1, median, q3 = statistics.quantiles(rates, n=4, method="inclusive") if len(rates) > 1 else rates * 3
    return {"images_per_s": rates, "median": median, "q1": q1, "q3": q3, "min": min(rates), "max": max(rates)}


def samples_inside(samples: list[tuple[int, float]], windows: list[tuple[int, int]]) -> list[float]:
    """The values of NVML's timestamped samples whose whole sampling period lies inside one window.

    samples: (timestamp, value) in time order, each covering the time since the sample before it
    (the first, whose start is unknown, is never kept); windows: (start, end). Times in microseconds.
    """
    return [value for (before, _), (stamp, value) in zip(samples, samples[1:])
            if any(start <= before and stamp <= end for start, end in windows)]


def _now_us() -> int:
    return int(time.time() * 1e6)  # NVML stamps its samples with the host's clock, in microseconds


# NVML refreshes its energy counter and power reading in steps of the order of 100 ms (NVIDIA documents
# no period): over a shorter span, a difference of the counter cannot be told from zero, and over any span
# it can be off by up to one period's energy. A block's energy is reported where the block spans at least
# MIN_UPDATE_PERIODS of them (an error of at most a tenth), with that error as its uncertainty.
ENERGY_UPDATE_PERIOD_US = 100_000
MIN_UPDATE_PERIODS = 10


def energy_per_image(joules: float | None, images: int) -> float | None:
    """Joules per image of a pass; None where the energy is unknown or no image was processed."""
    return joules / images if joules is not None and images > 0 else None


def power_integral(readings: list[tuple[int, float]], start_us: int, end_us: int) -> float | None:
    """Joules over [start_us, end_us]: the trapezoid rule over the timestamped power readings (µs, W)
    inside it; None with fewer than two."""
    inside = sorted((stamp, watts) for stamp, watts in readings if start_us <= stamp <= end_us)
    if len(inside) < 2:
        return None
    return sum((t1 - t0) / 1e6 * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(inside, inside[1:]))


@dataclass
class Block:
    """One measuring() block: its phase, its span (µs), the images it processed, and NVML's energy
    counter (mJ) read at its edges, where the GPU has one."""

    phase: str
    start_us: int
    end_us: int
    images: int
    energy_mj: float | None


@dataclass
class GpuSampler:
    """Utilisation, memory, power and energy of the GPU in use, read with pynvml in a background thread.

    Utilisation comes from NVML's own timestamped samples, each the share of its sampling period (1/6 s
    to 1 s, by GPU) in which a kernel ran. Only samples whose whole period lies inside a measuring()
    block count: a reading that straddles an evaluation or a checkpoint would charge their idle time
    to training. Memory and power are read while a measuring() block runs, and at its edges.

    Each block belongs to a phase ("train", "infer"): the figures of one phase never mix with the
    other's. Energy is the difference of NVML's total energy counter (Volta and later) across each
    block, else the integral of the power readings over it.
    """

    device: torch.device
    interval_s: float = 0.2
    utilisation: list[tuple[int, float]] = field(default_factory=list)  # (NVML timestamp µs, percent)
    blocks: list[Block] = field(default_factory=list)
    readings: list[tuple[int, float, float | None]] = field(default_factory=list)  # (µs, memory used bytes, power W)
    reason: str | None = None
    counter_reason: str | None = None  # why NVML's energy counter could not be read
    _handle: Any = None
    _started_us: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _measuring: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _open(self) -> None:
        if self.device.type != "cuda":
            self.reason = f"no NVIDIA GPU in use (device: {self.device.type})"
            return
        try:
            import pynvml
            pynvml.nvmlInit()
            uuid = str(torch.cuda.get_device_properties(self.device).uuid)
            self._handle = pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
        except Exception as err:  # NVML missing or the GPU not found: say so, do not invent numbers
            self.reason = f"pynvml unavailable: {err}"

    def _new_utilisation(self) -> list[tuple[int, float]]:
        import pynvml
        since = self.utilisation[-1][0] if self.utilisation else self._started_us
        try:
            _, samples = pynvml.nvmlDeviceGetSamples(self._handle, pynvml.NVML_GPU_UTILIZATION_SAMPLES, since)
        except pynvml.NVMLError_NotFound:  # no sample newer than `since` yet
            return []
        return sorted((s.timeStamp, float(s.sampleValue.uiVal)) for s in samples if s.timeStamp > since)

    def _take_reading(self, stamp: int) -> None:
        import pynvml
        try:
            power = pynvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0
        except pynvml.NVMLError:
            power = None
        self.readings.append((stamp, float(pynvml.nvmlDeviceGetMemoryInfo(self._handle).used), power))

    def _read(self) -> bool:
        """Take NVML's new utilisation samples, and memory and power inside a measuring() block;
        False, with the reason kept, once NVML fails."""
        try:
            self.utilisation.extend(self._new_utilisation())
            if self._measuring.is_set():
                self._take_reading(_now_us())
        except Exception as err:
            self.reason = f"pynvml sampling failed: {err}"
            return False
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s) and self._read():
            pass

    def compute_pids(self) -> set[int] | None:
        """The processes holding a compute context on the GPU in use, as NVML lists them (process ids as the
        host's kernel numbers them); None where NVML is not open or cannot list them."""
        if self._handle is None or self.reason is not None:
            return None
        import pynvml
        try:
            return {int(p.pid) for p in pynvml.nvmlDeviceGetComputeRunningProcesses(self._handle)}
        except pynvml.NVMLError:
            return None

    def _energy_counter_mj(self) -> float | None:
        """NVML's energy counter (mJ since the driver loaded); None, once and for all, where it fails."""
        if self._handle is None or self.counter_reason is not None:
            return None
        import pynvml
        try:
            return float(pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except pynvml.NVMLError as err:  # not supported before Volta, nor on some boards
            self.counter_reason = f"NVML's energy counter: {err}"
            return None

    def _edge(self) -> tuple[int, float | None]:
        """The time, the energy counter and a power reading at the edge of a block."""
        stamp, energy = _now_us(), self._energy_counter_mj()
        if self._handle is not None and self.reason is None:
            try:
                self._take_reading(stamp)
            except Exception as err:
                self.reason = f"pynvml sampling failed: {err}"
        return stamp, energy

    @contextmanager
    def sampling(self) -> Iterator["GpuSampler"]:
        self._open()
        self._started_us = _now_us()
        if self._handle is not None:
            self._thread = threading.Thread(target=self._run, name="gpu-sampler", daemon=True)
            self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            if self._thread:
                self._thread.join()
                if self.reason is None:
                    self._read()  # the samples of the last moments

    @contextmanager
    def measuring(self, phase: str = "train", images: int = 0) -> Iterator[None]:
        """Count what happens inside this block, as part of phase: the training steps ("train", not
        evaluation or checkpoints) or a timed inference pass ("infer"); images, those it processes.
        The work inside should end synchronised (as StepMeter.timing() and a copy to the host do), so
        that the block's energy is that of its own kernels."""
        start, energy_start = self._edge()
        self._measuring.set()
        try:
            yield
        finally:
            self._measuring.clear()
            end, energy_end = self._edge()
            energy = energy_end - energy_start if energy_start is not None and energy_end is not None else None
            self.blocks.append(Block(phase, start, end, images, energy))

    def energy(self, phase: str = "train") -> dict[str, Any]:
        """Joules the GPU drew during the phase's blocks, their source, their uncertainty (one update period
        of the source over each block's span, summed) and joules per image. None with energy_reason where
        they cannot be measured, or where a block spans fewer than MIN_UPDATE_PERIODS periods: a reading
        refreshed every period can be off by up to one over a block, which must be short against it."""
        blocks = [b for b in self.blocks if b.phase == phase]
        images = sum(b.images for b in blocks)
        found: tuple[list[float], str, float] | str
        if self._handle is None:
            found = self.reason or "NVML was not opened (measuring outside sampling())"
        elif not blocks:
            found = f"no {phase} block was measured"
        else:
            found = self._block_energies(blocks, phase)
        joules = uncertainty = None
        if isinstance(found, tuple):
            parts, source, period = found
            spans = [b.end_us - b.start_us for b in blocks]
            short = [span for span in spans if span < MIN_UPDATE_PERIODS * period]
            if short:
                found = (f"{len(short)} of the {len(blocks)} {phase} blocks lasted {min(short) / 1000:.0f}-{max(short) / 1000:.0f} ms, "
                         f"under the {MIN_UPDATE_PERIODS} update periods ({MIN_UPDATE_PERIODS * period / 1000:.0f} ms) each must span: "
                         f"{source}, refreshed every ~{period / 1000:.0f} ms, could be off by a period's energy in each")
            else:
                joules = sum(parts)
                uncertainty = sum(part * period / span for part, span in zip(parts, spans))
        return {"energy_j": joules, "energy_uncertainty_j": uncertainty,
                "energy_source": found[1] if isinstance(found, tuple) else None, "images": images,
                "energy_per_image_j": energy_per_image(joules, images), "energy_reason": None if joules is not None else found}

    def _block_energies(self, blocks: list[Block], phase: str) -> tuple[list[float], str, float] | str:
        """Each block's joules, their source and its update period (µs): NVML's counter where every block
        read it, else the integral of the power readings; or why neither holds."""
        if all(b.energy_mj is not None for b in blocks):
            if sum(b.energy_mj or 0.0 for b in blocks) <= 0:
                return f"NVML's energy counter did not advance over the {phase} blocks"
            return [(b.energy_mj or 0.0) / 1000.0 for b in blocks], "nvml_counter", ENERGY_UPDATE_PERIOD_US
        power = [(stamp, watts) for stamp, _, watts in self.readings if watts is not None]
        parts = [power_integral(power, b.start_us, b.end_us) for b in blocks]
        if any(p is None for p in parts):
            return f"{self.counter_reason}; and too few power readings to integrate"
        return [p or 0.0 for p in parts], "power_integral", self.interval_s * 1e6

    def summary(self, phase: str = "train") -> dict[str, Any]:
        """Utilisation, memory, power and energy during the phase's blocks."""
        windows = [(b.start_us, b.end_us) for b in self.blocks if b.phase == phase]
        util = samples_inside(self.utilisation, windows)
        readings = [(memory, power) for stamp, memory, power in self.readings
                    if any(start <= stamp <= end for start, end in windows)]
        stamps = [stamp for stamp, _ in self.utilisation]
        period = statistics.median(b - a for a, b in zip(stamps, stamps[1:])) / 1e6 if len(stamps) > 1 else None
        reason = self.reason
        if reason is None and not util:
            reason = (f"no NVML utilisation sample (one per {period:.2f} s) lay wholly inside the measured {phase} "
                      "passes: they were too short" if period else "NVML returned no utilisation samples")
        power = [p for _, p in readings if p is not None]
        if reason is None and not power:
            reason = "power readings not supported by this GPU"
        return {
            "util_mean": statistics.fmean(util) / 100.0 if util else None,
            "util_median": statistics.median(util) / 100.0 if util else None,
            "util_period_s": period,
            "samples": len(util),
            "memory_used_max_bytes": int(max(m for m, _ in readings)) if readings else None,
            "power_mean_w": statistics.fmean(power) if power else None,
            "reason": reason,
            **self.energy(phase),
        }


def over_ranks(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's GPU figures from its ranks' own (each rank reads its own device): the first rank's
    alone for a run of one; else energy and images summed (energy per image over them all, null where
    one rank's energy is), utilisation and power the ranks' mean, memory their largest, and each rank's
    figures kept under per_rank."""
    if len(parts) == 1:
        return parts[0]

    def known(name: str) -> list[Any]:
        return [p.get(name) for p in parts if p.get(name) is not None]

    combined: dict[str, Any] = {"reason": next((p["reason"] for p in parts if p.get("reason")), None)} if "reason" in parts[0] else {}
    for name in ("util_mean", "util_median", "power_mean_w"):
        if name in parts[0]:
            values = known(name)
            combined[name] = statistics.fmean(values) if len(values) == len(parts) else None
    if "memory_used_max_bytes" in parts[0]:
        combined["memory_used_max_bytes"] = max(known("memory_used_max_bytes"), default=None)
    for name in ("util_period_s", "energy_source"):
        if name in parts[0]:
            combined[name] = parts[0][name]
    if "samples" in parts[0]:
        combined["samples"] = sum(p["samples"] for p in parts)
    images, joules, uncertain = sum(p["images"] for p in parts), known("energy_j"), known("energy_uncertainty_j")
    energy = sum(joules) if len(joules) == len(parts) else None
    reasons = [f"rank {rank}: {p['energy_reason']}" for rank, p in enumerate(parts) if p.get("energy_reason")]
    combined.update(energy_j=energy, energy_uncertainty_j=sum(uncertain) if energy is not None and len(uncertain) == len(parts) else None,
                    images=images, energy_per_image_j=energy_per_image(energy, images),
                    energy_reason="; ".join(reasons) or None, per_rank=parts)
    return combined


def peak_memory(device: torch.device) -> dict[str, Any]:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    if device.type == "cuda":
        return {"peak_host_rss_bytes": rss, "peak_gpu_memory_bytes": int(torch.cuda.max_memory_allocated(device)),
                "peak_gpu_memory_reason": None}
    return {"peak_host_rss_bytes": rss, "peak_gpu_memory_bytes": None,
            "peak_gpu_memory_reason": f"no GPU in use (device: {device.type})"}
