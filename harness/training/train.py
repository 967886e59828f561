"""train_run: one architecture, one dataset, one seed: train, keep the best validation epoch,
evaluate it, measure, and write the run's record."""
import copy
import csv
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.cluster import job_environment
from harness.data.cache import CachedSplit, load_split, resplit
from harness.data.manifest import read_manifest
from harness.measure.flops import compute_precision, flops_per_image, model_flops_utilisation
from harness.measure.meters import WARMUP_STEPS, GpuSampler, StepMeter, environment, over_ranks, peak_memory, window_spread
from harness.measure.sharing import SharingMeter
from harness.measure.sharing import over_ranks as sharing_over_ranks
from harness.measure.system import log_performance
from harness.stats.collapse import DIVERGED
from harness.stats.metrics import best_threshold, detection_metrics
from harness.store.atomic import read_json, write_atomic, write_json_atomic
from harness.store.paths import RunPaths
from harness.store.records import RunRecord, write_record
from harness.store.run_files import HISTORY_COLUMNS
from harness.training import distributed
from harness.training.config import TrainConfig
from harness.training.distributed import Ranks
from harness.training.evaluate import cross_generator, image_intervals, robustness, test_groups, timed_test
from harness.training.record import completed_record, now, throughput
from harness.training.trainer import SELECT_BY, DeviceSplit, Trainer, TrainingDiverged, only_generator
from harness.zoo.models import keras_param_count

log = logging.getLogger("harness.training")


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=HISTORY_COLUMNS)
            writer.writeheader()
            writer.writerows(history)
    write_atomic(path, write)


def _count_attempt(paths: RunPaths) -> int:
    """How many times this run has started (a requeued or resumed run starts again)."""
    try:
        attempts = int(read_json(paths.attempts)["attempts"])
    except (OSError, ValueError, KeyError, TypeError):
        attempts = 0
    write_json_atomic(paths.attempts, {"attempts": attempts + 1})
    return attempts + 1


def report_progress(run: Trainer, **fields: Any) -> None:
    if run.ranks.main:
        write_json_atomic(run.paths.progress, {**fields, "updated": now()})


def flop_counts(run: Trainer, train: DeviceSplit) -> tuple[int | None, int | None]:
    sample, labels = train.take(slice(0, 2), run.device), train.labels[:2].to(run.device)
    weights = copy.deepcopy(run.model.state_dict())
    # A deep copy: the optimiser's state dict shares its tensors with the live state, which the
    # counted step would move, and a resumed run would then differ from an uninterrupted one.
    optimizer_state = copy.deepcopy(run.optimizer.state_dict())
    try:
        train_flops = flops_per_image(lambda: run.train_step(sample, labels, flip=None), len(sample))
        infer_flops = flops_per_image(lambda: run.predict(sample), len(sample))
    finally:  # the count must not move the model
        run.model.load_state_dict(weights)
        run.optimizer.load_state_dict(optimizer_state)
    return train_flops, infer_flops


def _fit(run: Trainer, splits: dict[str, DeviceSplit], meter: StepMeter, sampler: GpuSampler) -> tuple[Any, Any] | None:
    """The epochs not yet done: train, validate, keep the best epoch's weights, checkpoint. Returns the kept
    epoch's validation scores (probabilities, labels) where this attempt trained it, else None (an earlier
    attempt kept it: its scores are not in memory)."""
    config, paths = run.config, run.paths
    kept_val = None
    for epoch in range(run.start_epoch, config.epochs):
        report_progress(run, state="training", epoch=epoch + 1, epochs=config.epochs,
                  val_accuracy=run.history[-1]["val_accuracy"] if run.history else None)
        with sampler.measuring("train", images=distributed.usable(len(splits["train"]), run.ranks) // run.ranks.world_size):
            stats = run.train_epoch(splits["train"], epoch, meter)
        val_probs, val_labels = run.evaluate(splits["val"])
        if not math.isfinite(stats["train_loss"]) or not np.isfinite(val_probs).all():
            raise TrainingDiverged(f"{DIVERGED}: the training loss was {stats['train_loss']:.4g} in epoch {epoch + 1}"
                                   f"{'' if np.isfinite(val_probs).all() else ' and the validation scores not finite'}; "
                                   "a lower --lr or some --warmup-epochs may keep it finite")
        val = detection_metrics(val_labels, val_probs)
        row = {"epoch": epoch + 1, **stats, "val_loss": val["loss"], "val_accuracy": val["accuracy"]}
        run.history.append(row)
        rank = SELECT_BY[config.select_by](val)
        if run.best.get("rank") is None or rank < run.best["rank"]:
            run.best = {"epoch": epoch + 1, "rank": rank}
            kept_val = (val_probs, val_labels)
        if run.ranks.main:
            _write_history(paths.history, run.history)
        # The checkpoint first, then best.pt: best.pt never holds an epoch its checkpoint does not, which a
        # resumed run would train again (on a GPU, not bit for bit) and might not keep; a kill between the two
        # leaves a checkpoint whose best is its own epoch, and restore_state writes best.pt from it (where
        # state.pt is lost and state.prev.pt is taken, best.pt may be an epoch ahead: restore_state says so).
        run.save_state(epoch + 1)
        if run.best["epoch"] == epoch + 1 and run.ranks.main:
            write_atomic(paths.best, lambda tmp: torch.save(run.model.state_dict(), tmp))
        report_progress(run, state="training", epoch=epoch + 1, epochs=config.epochs, val_accuracy=val["accuracy"])
        log.info("%s epoch %d/%d: train loss %.4f, val loss %.4f, val accuracy %.4f", config.model, epoch + 1,
                 config.epochs, row["train_loss"], row["val_loss"], row["val_accuracy"])
    return kept_val


def _save_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:  # a handle: given a name, np.save would add ".npy" to it
        np.save(handle, array)


def _rank_figures(meter: StepMeter, infer_meter: StepMeter) -> dict[str, Any]:
    copy_wait, copy_wait_reason = meter.gpu_copy_wait()
    return {"host": os.uname().nodename, "train_images": meter.images, "train_seconds": meter.seconds,
            "train_images_per_s": meter.images_per_s(), "train_windows": [w.as_dict() for w in meter.timed_windows()],
            "data_wait_fraction": meter.data_wait_fraction(),
            "gpu_copy_wait_fraction": copy_wait, "gpu_copy_wait_reason": copy_wait_reason,
            "infer_images": infer_meter.images, "infer_seconds": infer_meter.seconds,
            "infer_images_per_s": infer_meter.images_per_s(), "infer_windows": [w.as_dict() for w in infer_meter.timed_windows()]}


def slowest_waits(ranks: list[dict[str, Any]]) -> tuple[float | None, tuple[float | None, str | None]]:
    """The slowest rank's waits for data, the host's fetch and the GPU's wait on copies (with its reason):
    the other ranks wait for it at the gradients' all-reduce."""
    fetch, copies = [r["data_wait_fraction"] for r in ranks], [r["gpu_copy_wait_fraction"] for r in ranks]
    reason = next((r["gpu_copy_wait_reason"] for r in ranks if r["gpu_copy_wait_reason"]), None)
    return None if None in fetch else max(fetch), (None if None in copies else max(copies), reason)


def global_windows(ranks: list[dict[str, Any]], phase: str) -> dict[str, Any]:
    """The images/s of all ranks together in each timed window (their images over the longest rank's time in
    it: the training steps' windows are timed between the same barriers, so their times differ by the
    barrier's own latency), and their spread (meters.window_spread: the median is the run's figure)."""
    count = min(len(r[f"{phase}_windows"]) for r in ranks)
    return window_spread([{"images": sum(r[f"{phase}_windows"][i]["images"] for r in ranks),
                           "seconds": max(r[f"{phase}_windows"][i]["seconds"] for r in ranks)} for i in range(count)])


def _distributed_figures(config: TrainConfig, ranks: Ranks, per_rank: list[dict[str, Any]]) -> dict[str, Any]:
    return {"world_size": ranks.world_size, "nodes": ranks.nodes, "ranks_per_node": ranks.world_size // ranks.nodes,
            "backend": ranks.backend, "lr_scaling": config.lr_scaling, "lr": config.scaled_lr, "sync_bn": config.sync_bn,
            "per_rank": [{"rank": rank, **figures} for rank, figures in enumerate(per_rank)] if ranks.world_size > 1 else []}


def sharing_meter(run: Trainer, sampler: GpuSampler) -> SharingMeter:
    """What watches, during the run's timed windows, whether this rank's node and GPU are shared: the node is
    watched by the first rank on it (with the CPUs all the run's ranks there hold), the GPU by each rank."""
    where, ranks = job_environment(), run.ranks
    run_pids = set(distributed.gather(ranks, os.getpid()))  # the run's own processes on a GPU are no other work
    here = ranks.world_size // ranks.nodes
    return SharingMeter(where.node_watch() if ranks.local_rank == 0 else None, where.node, sampler,
                        min(os.cpu_count() or where.cpus, where.cpus * here), run_pids)


def measured_fields(run: Trainer, meters: tuple[StepMeter, StepMeter], sampler: GpuSampler, sharing: SharingMeter,
                    flops: tuple[int | None, int | None], compiled: dict[str, Any]) -> dict[str, Any] | None:
    """What every rank measured (meters: training's and inference's), gathered: the record's throughput
    (images/s, the median of the timed windows with their spread; waits; FLOPs and MFU; compiled: what
    Trainer.compile_step said), memory, GPU figures, ranks, environment and sharing, on the main rank; None
    on the others."""
    (meter, infer_meter), ranks = meters, run.ranks
    per_rank = distributed.gather(ranks, _rank_figures(meter, infer_meter))
    rank_parts = distributed.gather(ranks, {"train": sampler.summary("train"), "infer": sampler.energy("infer"),
                                            "memory": peak_memory(run.device), "sharing": sharing.summary()})
    if not ranks.main:
        return None
    parts = {name: [part[name] for part in rank_parts] for name in rank_parts[0]}
    env = environment(run.device)
    train, infer = global_windows(per_rank, "train"), global_windows(per_rank, "infer")
    mfu = model_flops_utilisation(flops[0], train["median"], env["device_name"] if run.device.type == "cuda" else None,
                                  compute_precision(run.config.precision, run.float32_matmul), devices=ranks.world_size)
    memories = parts["memory"]
    return {
        "throughput": throughput(train, infer, *slowest_waits(per_rank), sum(w.steps for w in meter.timed_windows()), *flops, mfu,
                                 run.float32_matmul) | compiled,
        "memory": memories[0] if len(memories) == 1 else {
            "peak_host_rss_bytes": max(m["peak_host_rss_bytes"] for m in memories),
            "peak_gpu_memory_bytes": max((m["peak_gpu_memory_bytes"] for m in memories), key=lambda v: v or 0),
            "peak_gpu_memory_reason": memories[0]["peak_gpu_memory_reason"]},
        "gpu": {**over_ranks(parts["train"]), "infer": over_ranks(parts["infer"])},
        "distributed": _distributed_figures(run.config, ranks, per_rank),
        "environment": env,
        "sharing": sharing_over_ranks(parts["sharing"]),
    }


def _load_splits(run: Trainer) -> tuple[dict[str, CachedSplit], dict[str, DeviceSplit]]:
    """Once the ranks agree on the epoch they resume from: the cached splits (redrawn under --resplit),
    and train and val on the device (the training generator's fakes alone where one is named)."""
    config = run.config
    resumed = distributed.gather(run.ranks, run.start_epoch)
    if len(set(resumed)) > 1:
        raise RuntimeError(f"the ranks resumed from different epochs ({resumed}): a checkpoint changed while they read it")
    cached = {name: load_split(run.cache, name) for name in ("train", "val", "test")}
    if config.resplit:
        cached = resplit(cached, config.seed)
    splits = {name: DeviceSplit.load(only_generator(cached[name], config.train_generator, config.seed), run.device)
              for name in ("train", "val")}
    return cached, splits


def _evaluate_best(run: Trainer, val: DeviceSplit, test: CachedSplit, sampler: GpuSampler, sharing: SharingMeter,
                   kept_val: tuple[Any, Any] | None) -> tuple[tuple[Any, Any], float, tuple[Any, Any], StepMeter]:
    """The best epoch's weights back (every rank), the threshold chosen on val (its scores scored again only
    where kept_val, from _fit, does not hold them), the test split scored and timed: ((val labels,
    probabilities), threshold, (test labels, probabilities), the inference meter)."""
    config = run.config
    report_progress(run, state="evaluating", epoch=config.epochs, epochs=config.epochs,
                    val_accuracy=run.history[-1]["val_accuracy"])
    distributed.barrier(run.ranks)  # the main rank has written best.pt
    run.model.load_state_dict(torch.load(run.paths.best, map_location=run.device, weights_only=True))
    val_probs, val_labels = kept_val if kept_val is not None else run.evaluate(val)
    threshold = best_threshold(val_labels, val_probs)
    test_probs, test_labels, infer_meter = timed_test(run, test, sampler, sharing.sample)
    return (val_labels, val_probs), threshold, (test_labels, test_probs), infer_meter


def train_run(config: TrainConfig, dataset: Path, cache_root: Path, paths: RunPaths, sweep_id: str = "",
              ranks: Ranks = Ranks()) -> RunRecord | None:
    """Train, keep the best epoch on val (config.select_by), evaluate it on test, measure; writes and
    returns the run's record. With several ranks (ranks, a process group already joined), every rank
    calls this and trains its share; the main rank writes the run's files and returns the record, the
    others None."""
    started = now()
    attempts = _count_attempt(paths) if ranks.main else 0
    run = Trainer(config, dataset, cache_root, paths, ranks)
    run.restore_state()
    cached, splits = _load_splits(run)
    train_flops, infer_flops = flop_counts(run, splits["train"])
    compiled = run.compile_step(splits["train"])  # --compile: compiled here, timed apart from the steps

    sampler = GpuSampler(run.device)
    sharing = sharing_meter(run, sampler)
    steady = (config.epochs - run.start_epoch) * run.epoch_steps(len(splits["train"])) - WARMUP_STEPS
    meter = StepMeter(run.device, barrier=lambda: distributed.barrier(ranks), steady_steps=max(0, steady), watch=sharing.sample)
    watch = time.perf_counter()
    with sampler.sampling():
        kept_val = _fit(run, splits, meter, sampler)
        train_seconds = time.perf_counter() - watch
        (val_labels, val_probs), threshold, (test_labels, test_probs), infer_meter = _evaluate_best(
            run, splits["val"], cached["test"], sampler, sharing, kept_val)
    robust = robustness(run, cached["test"], test_probs, threshold, read_manifest(dataset))
    across = cross_generator(cached["test"], test_probs, threshold, config.seed)
    measures = measured_fields(run, (meter, infer_meter), sampler, sharing, (train_flops, infer_flops), compiled)
    if measures is None:
        return None
    groups = test_groups(cached["test"].index)
    # labels, probabilities and, where the manifest has groups, each image's group number: the leaderboard pairs on it
    scores = np.stack([test_labels, test_probs, *([] if groups is None else [groups])])
    write_atomic(paths.test_scores, lambda tmp: _save_array(tmp, scores))

    record = completed_record(
        sweep_id, paths.run_id, config,
        preprocessing=run.pre.as_dict(),
        cache=str(run.cache),
        params=keras_param_count(run.model),
        trainable_params=sum(p.numel() for p in run.model.parameters() if p.requires_grad),
        best_epoch=run.best["epoch"],
        epochs_completed=len(run.history),
        val=detection_metrics(val_labels, val_probs, threshold),
        test={**detection_metrics(test_labels, test_probs, threshold),
              **image_intervals(test_labels, test_probs, groups)},
        robustness=robust,
        cross_generator=across,
        **measures,
        requeues=attempts - 1,
        train_seconds_this_attempt=train_seconds,
        started_at=started,
    )
    write_record(paths, record)
    if not config.keep_checkpoints:  # the record, best.pt and the scores are what a completed run is read from
        for checkpoint in paths.resume_checkpoints():
            checkpoint.unlink(missing_ok=True)
    log_performance(record, paths)  # results/perflog.jsonl, after the record: never in its way
    report_progress(run, state="done", epoch=config.epochs, epochs=config.epochs, val_accuracy=run.history[-1]["val_accuracy"])
    return record
