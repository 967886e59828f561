"""Two sweeps side by side, per architecture: each figure's mean over seeds in A and in B, the ratio
B/A, and whether the difference exceeds the runs' own spread (a partition against another, a site
before and after an upgrade).

The spread test is Welch's t-test at 5% (two-sided), where both sweeps have two seeds or more of the
architecture. With one seed on either side, a figure timed in windows (images/s) is judged by the runs'
own timed windows: "yes" where the ranges of A's and B's windows do not overlap, "no" where they do (the
difference is within the timing's own noise; seed-to-seed variance is not counted); any other figure is
"unknown": one run says nothing of how much it moves from seed to seed. A time, rate or energy of a run
that shared its node or GPU says so in the row's note. GPU-hours per run come from its record (wall time
x the GPUs it used, one per rank), null with a reason for a run that used no GPU: compare reads what is on
disk and asks no scheduler (`status` shows the sweep's GPU-hours as the scheduler accounted them). Plain
Python (no pandas, no scipy), like the leaderboard.
"""
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from harness.analysis.load import SweepResults
from harness.stats.intervals import t_cdf
from harness.store.figures import FIGURES, figures_of
from harness.store.records import RunRecord

ALPHA = 0.05
# What compare adds to the registry's figures, and their units.
ACCOUNTED = {"gpu_hours": "GPU-h", "accuracy_per_gpu_hour": "fraction/GPU-h"}


@dataclass
class RunFigures:
    run_id: str
    record: RunRecord
    values: dict[str, float | None]
    notes: dict[str, str] = field(default_factory=dict)  # figure -> why it is null


def gpu_hours(record: RunRecord) -> tuple[float | None, str | None]:
    """(GPU-hours, the reason when null): the record's wall time x the GPUs it used (one per rank)."""
    env = record.environment or {}
    if env.get("device") != "cuda":
        return None, f"no GPU in use (device: {env.get('device') or 'unknown'})"
    wall = FIGURES["wall_time_s"].value(record)
    if wall is None:
        return None, "the record has no start time to measure its wall time"
    ranks = int((record.distributed or {}).get("world_size") or 1)  # one GPU per rank
    return wall * ranks / 3600.0, None


def sweep_figures(results: SweepResults) -> dict[str, list[RunFigures]]:
    """Every completed run's figures, GPU-hours and accuracy per GPU-hour included, by leaderboard row."""
    rows: dict[str, list[RunFigures]] = {}
    for label, records in results.completed().items():
        rows[label] = []
        for record in records:
            values: dict[str, float | None] = dict(figures_of(record))
            hours, reason = gpu_hours(record)
            values["gpu_hours"] = hours
            accuracy = values.get("accuracy")
            values["accuracy_per_gpu_hour"] = accuracy / hours if hours and accuracy is not None else None
            notes = {"gpu_hours": reason, "accuracy_per_gpu_hour": reason} if reason else {}
            rows[label].append(RunFigures(record.run_id, record, values, notes))
    return rows


def welch(a: list[float], b: list[float]) -> tuple[float | None, str]:
    """Welch's two-sided t-test of equal means: (p, how it was decided); p None with one value on a side."""
    if len(a) < 2 or len(b) < 2:
        return None, "one seed" if min(len(a), len(b)) == 1 else "no value"
    mean_a, mean_b = statistics.fmean(a), statistics.fmean(b)
    var_a, var_b = statistics.variance(a), statistics.variance(b)
    se2 = var_a / len(a) + var_b / len(b)
    if se2 == 0:  # every seed gave the same figure on both sides
        return (0.0 if mean_a != mean_b else 1.0), "no spread"
    t = (mean_b - mean_a) / math.sqrt(se2)
    df = se2 ** 2 / ((var_a / len(a)) ** 2 / (len(a) - 1) + (var_b / len(b)) ** 2 / (len(b) - 1))
    p = 2.0 * (1.0 - t_cdf(abs(t), df))
    return max(0.0, min(1.0, p)), f"Welch p={p:.3g}"


Extent = tuple[float, float]  # the lowest and the highest images/s of a run's timed windows


def windows_apart(a: list[Extent], b: list[Extent]) -> tuple[str, str]:
    """One seed on a side: whether the timed windows' images/s of A's runs and of B's runs lie apart ("yes":
    their ranges do not overlap) or not ("no": the difference is within the runs' own timing noise)."""
    low_a, high_a = min(low for low, _ in a), max(high for _, high in a)
    low_b, high_b = min(low for low, _ in b), max(high for _, high in b)
    apart = high_a < low_b or high_b < low_a
    return ("yes" if apart else "no"), (f"one seed: the windows' ranges {low_a:,.1f}-{high_a:,.1f} and {low_b:,.1f}-{high_b:,.1f} "
                                        f"{'do not overlap' if apart else 'overlap'} (within-run spread; seeds' not counted)")


def beyond_spread(a: list[float], b: list[float], alpha: float = ALPHA,
                  extents: tuple[list[Extent], list[Extent]] = ([], [])) -> tuple[str, str]:
    """("yes" | "no" | "unknown" | "-", the test): whether B's mean differs from A's by more than the
    seeds' spread explains; with one seed on a side, by more than the runs' own timed windows spread
    (extents: each run's windows' lowest and highest images/s, where every run of both sides has them:
    windows_apart), else unknown."""
    if not a or not b:
        return "-", "no value"
    p, how = welch(a, b)
    if p is None:
        if len(extents[0]) == len(a) and len(extents[1]) == len(b):
            return windows_apart(*extents)
        return "unknown", f"{how}: needs 2 seeds or more on each side"
    return ("yes" if p < alpha else "no"), how


def _extents(runs: list[RunFigures], figure: str) -> list[Extent]:
    """Each run's lowest and highest images/s over its timed windows, where the figure has windows."""
    found = FIGURES[figure].spread_of if figure in FIGURES else (lambda record: None)
    return [(s["min"], s["max"]) for r in runs if (s := found(r.record)) is not None]


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def compare_figures(a: dict[str, list[RunFigures]], b: dict[str, list[RunFigures]],
                    figures: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per (architecture, figure): A's and B's means, seeds, B/A, and whether the difference
    exceeds the spread. Architectures in one sweep only have a row with the other side empty. figures:
    default every figure of the registry, then GPU-hours and accuracy per GPU-hour."""
    units = {**{name: figure.unit for name, figure in FIGURES.items()}, **ACCOUNTED}
    rows = []
    for label in [*a, *(label for label in b if label not in a)]:
        runs_a, runs_b = a.get(label, []), b.get(label, [])
        for figure in figures or list(units):
            values_a = [v for r in runs_a if (v := r.values.get(figure)) is not None]
            values_b = [v for r in runs_b if (v := r.values.get(figure)) is not None]
            mean_a, mean_b = _mean(values_a), _mean(values_b)
            verdict, test = beyond_spread(values_a, values_b, extents=(_extents(runs_a, figure), _extents(runs_b, figure)))
            notes = sorted({r.notes[figure] for r in [*runs_a, *runs_b] if figure in r.notes})
            if figure in FIGURES and FIGURES[figure].contended:
                notes += [f"{side} {r.run_id} shared its node or GPU ({'; '.join(r.record.shared_by)})"
                          for side, runs in (("A", runs_a), ("B", runs_b)) for r in runs if r.record.shared_by]
            if label not in a or label not in b:
                notes.insert(0, f"only in sweep {'B' if label not in a else 'A'}")
            rows.append({"model": label, "figure": figure, "unit": units[figure],
                         "a": mean_a, "a_seeds": len(values_a), "b": mean_b, "b_seeds": len(values_b),
                         "ratio": mean_b / mean_a if mean_a and mean_b is not None else None,
                         "beyond_spread": verdict, "test": test, "note": "; ".join(notes)})
    return rows


def compare_sweeps(sweep_a: SweepResults, sweep_b: SweepResults) -> list[dict[str, Any]]:
    return compare_figures(sweep_figures(sweep_a), sweep_figures(sweep_b))


def shown(unit: str, value: float | None) -> str:
    """A figure for a table, in its unit."""
    if value is None:
        return "-"
    if unit == "fraction":
        return f"{100 * value:.2f}%"
    if unit == "bytes":  # three digits, as a narrow column has room for
        return f"{value / 2 ** 30:.3g} GiB" if value >= 2 ** 30 else f"{value / 2 ** 20:.3g} MiB"
    if unit in ("GPU-h", "J/image", "fraction/GPU-h", "nats"):
        return f"{value:.4g}"
    return f"{value:,.1f}"
