"""A run on synthetic inputs (sweep --synthetic): the speed of an architecture's training step and of its
inference, in seconds, without a dataset (a GPU's acceptance test, as timm's benchmark.py times one).

The inputs are random uint8 images of the run's batch and image size with random labels, on the device,
normalised there as a real batch is (Trainer.inputs); the steps are the training run's own
(Trainer.train_step, Trainer.predict). Each phase warms up for WARMUP_STEPS steps, the last one timed to
set how many steps a window holds (about WINDOW_SECONDS), then times WINDOWS windows: the record holds their
median and spread, with the GPU figures, the FLOPs and MFU and whether the node and GPU were shared, as
a training run's record does, and no val or test (null, test_reason "synthetic inputs").
"""
import time
from collections.abc import Callable
from dataclasses import replace

import torch

from harness.data import DEMO_IMAGE_SIZE
from harness.measure.meters import WARMUP_STEPS, WINDOWS, GpuSampler, StepMeter, resolve_device, synchronize
from harness.measure.sharing import SharingMeter
from harness.measure.system import log_performance
from harness.store.paths import RunPaths
from harness.store.records import RunRecord, write_record
from harness.training import distributed
from harness.training.config import TrainConfig
from harness.training.distributed import Ranks
from harness.training.record import completed_record, now
from harness.training.train import flop_counts, measured_fields, report_progress, sharing_meter
from harness.training.trainer import DeviceSplit, Trainer
from harness.zoo.models import keras_param_count

SYNTHETIC = "synthetic inputs"  # why a synthetic run has no val, no test and no accuracy
WINDOW_SECONDS = 0.5  # a window's length: long against the device's synchronisation, short enough for seconds a job
MAX_WINDOW_STEPS = 50


def image_size(config: TrainConfig, device: torch.device) -> int | None:
    """The inputs' side: the sweep's --image-size where given; else the architecture's own (None) on a GPU,
    and on a CPU the demo's (DEMO_IMAGE_SIZE, or the architecture's minimum), as a sweep on the demo takes:
    an architecture's own size would take seconds to minutes a step there."""
    if config.image_size is not None or device.type == "cuda":
        return config.image_size
    from harness.zoo.lookup import spec_of
    from harness.zoo.registry import nearest_image_size

    return nearest_image_size(spec_of(config.model), DEMO_IMAGE_SIZE)


def random_batch(batch: int, side: int, device: torch.device, seed: int) -> DeviceSplit:
    """One batch of random uint8 RGB images (NHWC, as the image cache holds them) and labels, on the device."""
    draw = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch, side, side, 3), dtype=torch.uint8, generator=draw)
    labels = torch.randint(0, 2, (batch,), generator=draw).float()
    return DeviceSplit(images.to(device), labels.to(device))


def window_steps(step: Callable[[], object], device: torch.device, ranks: Ranks) -> int:
    """Warm up (WARMUP_STEPS steps, the last one timed): the steps a window of about WINDOW_SECONDS holds
    (from the slowest rank's step, so that every rank times as many)."""
    for _ in range(WARMUP_STEPS - 1):
        step()
    synchronize(device)
    start = time.perf_counter()
    step()
    synchronize(device)
    seconds = max(distributed.gather(ranks, time.perf_counter() - start))
    return max(1, min(MAX_WINDOW_STEPS, round(WINDOW_SECONDS / seconds)))


def timed_phase(run: Trainer, step: Callable[[], object], sampler: GpuSampler, sharing: SharingMeter, phase: str) -> StepMeter:
    """The phase's steps after warm-up, in WINDOWS timed windows, measured as the sampler's phase."""
    batch, steps = run.config.batch_size, WINDOWS * window_steps(step, run.device, run.ranks)
    meter = StepMeter(run.device, warmup=0, barrier=lambda: distributed.barrier(run.ranks), steady_steps=steps,
                      watch=sharing.sample)
    with sampler.measuring(phase, images=steps * batch), meter.timing():
        for _ in range(steps):
            step()
            meter.step(batch, 0.0)
    return meter


def synthetic_run(config: TrainConfig, paths: RunPaths, sweep_id: str = "", ranks: Ranks = Ranks()) -> RunRecord | None:
    """Time the run's training step and inference on synthetic inputs; writes and returns its record (on the
    main rank; None on the others). Every rank of a run of several times its own share, as in training."""
    started, clock = now(), time.perf_counter()
    config = replace(config, image_size=image_size(config, resolve_device(config.device)))
    run = Trainer(config, None, None, paths, ranks)
    report_progress(run, state="timing")
    data = random_batch(config.batch_size, run.pre.image_size, run.device, config.seed * 1000 + ranks.rank)
    images = data.take(slice(None), run.device)
    flops = flop_counts(run, data)
    compiled = run.compile_step(data)
    sampler = GpuSampler(run.device)
    sharing = sharing_meter(run, sampler)
    with sampler.sampling():
        run.set_train_mode()
        train = timed_phase(run, lambda: run.train_step(images, data.labels, None), sampler, sharing, "train")
        run.model.eval()
        infer = timed_phase(run, lambda: run.predict(images), sampler, sharing, "infer")
    measures = measured_fields(run, (train, infer), sampler, sharing, flops, compiled)
    if measures is None:
        return None
    record = completed_record(
        sweep_id, paths.run_id, config, preprocessing=run.pre.as_dict(), params=keras_param_count(run.model),
        trainable_params=sum(p.numel() for p in run.model.parameters() if p.requires_grad), **measures,
        test_reason=SYNTHETIC, train_seconds_this_attempt=time.perf_counter() - clock, started_at=started)
    write_record(paths, record)
    log_performance(record, paths)
    report_progress(run, state="done")
    return record
