"""A trained run on its test split: clean, under each perturbation, and per fake generator."""
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from harness.data.cache import CachedSplit
from harness.data.perturb import PERTURBATIONS, perturbed_copies
from harness.measure.meters import GpuSampler, StepMeter, synchronize
from harness.stats.crossed import UNITS_AS_TRIALS
from harness.stats.metrics import accuracy_interval, auc_interval, detection_metrics
from harness.training import distributed
from harness.training.trainer import EVAL_BATCH, DeviceSplit, Trainer, generator_subset

log = logging.getLogger("harness.training")


def robustness_positions(labels: np.ndarray, most: int | None) -> np.ndarray:
    """The positions of the test images the perturbed passes score, in the split's order: all of them, or at
    most `most`, as many of each class, drawn with a fixed seed (every run on one split scores the same)."""
    if most is None or most >= len(labels):
        return np.arange(len(labels))
    draw = np.random.default_rng(0)
    return np.sort(np.concatenate([draw.choice(members, min(len(members), most // 2), replace=False)
                                   for members in (np.flatnonzero(labels == label) for label in (0, 1))]))


def robustness(run: Trainer, test: CachedSplit, probs: np.ndarray, threshold: float,
               manifest: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The test metrics on perturbed copies of the test images robustness_positions keeps (at most the run's
    robustness_images), and under "none" on those images as tested (probs: the test split's), so that each
    perturbation is set beside the same images: each perturbation applied to the original files (checked
    against the manifest's sha256), the run's preprocessing after it, the same for both classes. Empty where
    the originals no longer read or match their manifest (logged)."""
    keep = robustness_positions(test.labels, run.config.robustness_images)
    if len(keep) < len(test.labels):
        test = CachedSplit(images=np.asarray(test.images[keep]), labels=test.labels[keep],
                           index=test.index.iloc[keep].reset_index(drop=True))
    digests = dict(zip(manifest["path"], manifest["sha256"]))
    paths = test.index["path"].tolist()
    workers = max(1, len(os.sched_getaffinity(0)) * run.ranks.nodes // run.ranks.world_size)  # each rank makes its own
    copies = perturbed_copies(paths, [digests.get(p) for p in paths], PERTURBATIONS, run.pre.resize_key, workers)
    if isinstance(copies, str):
        log.warning("no robustness figures: %s", copies)
        return {}
    out = {"none": detection_metrics(test.labels, probs[keep], threshold)}
    for name, images in copies.items():
        perturbed, labels = run.evaluate(DeviceSplit.load(replace(test, images=images), run.device))
        out[name] = detection_metrics(labels, perturbed, threshold)
    return out


def cross_generator(test: CachedSplit, probs: np.ndarray, threshold: float, seed: int) -> dict[str, dict[str, Any]]:
    """The test metrics against each generator's fakes alone (with as many reals), and their intervals over
    the subset's independent units: from the test split's probabilities, each image scored once."""
    out = {}
    for generator in sorted(set(test.index["generator"]) - {""}):
        keep = generator_subset(test, generator, seed)
        labels, scores = test.labels[keep], probs[keep]
        out[generator] = {**detection_metrics(labels, scores, threshold),
                          **image_intervals(labels, scores, test_groups(test.index.iloc[keep]))}
    return out


def test_groups(index: Any) -> np.ndarray | None:
    """Each test image's group (photograph, identity: the manifest's group column) numbered 0..G-1, where
    every image has one; None where they are not all given (images are then the independent unit)."""
    if "group" not in index or not index["group"].astype(bool).all():
        return None
    return np.unique(index["group"].to_numpy(), return_inverse=True)[1]


def image_intervals(labels: Any, probs: Any, groups: np.ndarray | None) -> dict[str, Any]:
    """The 95% intervals of test accuracy and AUC of one run over the test split's independent units (its
    groups where the manifest has them, else its images), each with the method that made it, or null with
    the reason there is none. One run: seed variance is not counted (the leaderboard counts it)."""
    units = groups if groups is not None else np.arange(len(labels))
    unit = "groups" if groups is not None else "images"
    count = int(units.max()) + 1
    accuracy, auc = accuracy_interval(labels, probs, units), auc_interval(labels, probs, units)

    def method(name: str, found: Any) -> str | None:
        if found.df is None:
            return None
        trials = "; " + UNITS_AS_TRIALS.format(unit=unit) if found.units_as_trials else ""
        return f"{name} over {count} {unit} (t, {found.df:.1f} df){trials}; 1 run: seed variance not counted"

    return {"accuracy_interval": None if accuracy.low is None else [accuracy.low, accuracy.high],
            "accuracy_interval_method": method("Wilson with a design effect", accuracy),
            "accuracy_interval_reason": accuracy.reason,
            "auc_interval": None if auc.low is None else [auc.low, auc.high],
            "auc_interval_method": method("DeLong clustered by unit (Obuchowski), logit scale", auc),
            "auc_interval_reason": auc.reason,
            "interval_unit": unit, "interval_units": count}


def timed_test(run: Trainer, test: CachedSplit, sampler: GpuSampler,
               watch: Callable[[bool], None] | None = None) -> tuple[Any, Any, StepMeter]:
    """Probabilities and labels of the test split, timed as inference throughput (its batches in timed
    windows, watch called at their edges) and measured as the sampler's "infer" phase. The split is on the
    device before the block starts: it times inference alone, not the copy."""
    data = DeviceSplit.load(test, run.device)
    synchronize(run.device)
    share = distributed.shard(len(data), run.ranks)  # the images this rank scores
    batches = -(-(share.stop - share.start) // EVAL_BATCH)
    # the model is already warm from the validation passes
    meter = StepMeter(run.device, warmup=0, steady_steps=batches, watch=watch)
    with sampler.measuring("infer", images=share.stop - share.start):
        probs, labels = run.evaluate(data, meter)
    return probs, labels, meter
