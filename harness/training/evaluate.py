"""A trained run on its test split: clean, under each perturbation, and per fake generator."""
from dataclasses import replace
from typing import Any

from harness.data.cache import CachedSplit
from harness.measure import StepMeter
from harness.metrics import detection_metrics
from harness.perturb import PERTURBATIONS, perturb
from harness.training.run import DeviceSplit, Run, only_generator


def robustness(run: Run, test: CachedSplit, threshold: float) -> dict[str, dict[str, Any]]:
    """The test metrics on perturbed copies of the test split (the same perturbation for both classes)."""
    out = {}
    for name in PERTURBATIONS:
        perturbed = DeviceSplit.load(replace(test, images=perturb(test.images, name)), run.device)
        probs, labels = run.evaluate(perturbed)
        out[name] = detection_metrics(labels, probs, threshold)
    return out


def cross_generator(run: Run, test: CachedSplit, threshold: float) -> dict[str, dict[str, Any]]:
    """The test metrics against each generator's fakes alone (with as many reals)."""
    out = {}
    for generator in sorted(set(test.index["generator"]) - {""}):
        probs, labels = run.evaluate(DeviceSplit.load(only_generator(test, generator, run.config.seed), run.device))
        out[generator] = detection_metrics(labels, probs, threshold)
    return out


def timed_test(run: Run, test: CachedSplit) -> tuple[Any, Any, StepMeter]:
    """Probabilities and labels of the test split, timed as inference throughput."""
    meter = StepMeter(run.device, warmup=0)  # the model is already warm from the validation passes
    probs, labels = run.evaluate(DeviceSplit.load(test, run.device), meter)
    return probs, labels, meter
