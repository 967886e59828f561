"""A trained run on its test split: clean, under each perturbation, and per fake generator."""
from dataclasses import replace
from typing import Any

from harness.data.cache import CachedSplit
from harness.data.perturb import PERTURBATIONS, perturb
from harness.measure.meters import StepMeter
from harness.stats.metrics import bootstrap_interval, detection_metrics
from harness.training.trainer import DeviceSplit, Trainer, only_generator


def robustness(run: Trainer, test: CachedSplit, threshold: float) -> dict[str, dict[str, Any]]:
    """The test metrics on perturbed copies of the test split (the same perturbation for both classes)."""
    out = {}
    for name in PERTURBATIONS:
        perturbed = DeviceSplit.load(replace(test, images=perturb(test.images, name)), run.device)
        probs, labels = run.evaluate(perturbed)
        out[name] = detection_metrics(labels, probs, threshold)
    return out


def cross_generator(run: Trainer, test: CachedSplit, threshold: float) -> dict[str, dict[str, Any]]:
    """The test metrics against each generator's fakes alone (with as many reals)."""
    out = {}
    for generator in sorted(set(test.index["generator"]) - {""}):
        probs, labels = run.evaluate(DeviceSplit.load(only_generator(test, generator, run.config.seed), run.device))
        out[generator] = detection_metrics(labels, probs, threshold)
    return out


def image_intervals(labels: Any, probs: Any, index: Any) -> dict[str, Any]:
    """The 95% bootstrap intervals of test accuracy and AUC over the test images, resampling whole
    sources (photographs, identities: the manifest's group column) where the data has them."""
    groups = index["group"].to_numpy() if "group" in index and index["group"].astype(bool).all() else None
    return {"accuracy_interval": list(bootstrap_interval(labels, probs, "accuracy", groups=groups)[1:]),
            "auc_interval": list(bootstrap_interval(labels, probs, "auc", groups=groups)[1:]),
            "interval_resamples": "groups" if groups is not None else "images"}


def timed_test(run: Trainer, test: CachedSplit) -> tuple[Any, Any, StepMeter]:
    """Probabilities and labels of the test split, timed as inference throughput."""
    meter = StepMeter(run.device, warmup=0)  # the model is already warm from the validation passes
    probs, labels = run.evaluate(DeviceSplit.load(test, run.device), meter)
    return probs, labels, meter
