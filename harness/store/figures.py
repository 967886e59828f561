"""The registry of figures: the one place a figure is defined. Each says its name, its unit, whether
higher is better, its short label, the tolerance `check --update-references` gives it, and how it is
read from a run's record. The leaderboard, the perflog, `check`, `compare`, `history`, the report, the
dashboard, the tables' labels and percentages, and the perflog's JSON Schema all derive from it: a new
figure is one entry here, and its measurement in the record (docs/results.md, "Figures").

Plain Python, standard library only (the store is read by everything).
"""
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.store.records import RunRecord

Tolerance = tuple[float | None, float | None]  # (lower, upper), fractions of a reference's value; None: no bound
Reader = tuple[str, ...] | Callable[["RunRecord"], Any]  # a key path into the record, or a function of it
FRACTION = "fraction"  # a share in [0, 1], shown as a percentage


@dataclass(frozen=True)
class Figure:
    name: str
    unit: str
    higher_is_better: bool
    label: str  # a table's header (a percentage's gets " %")
    read: Reader
    tolerance: Tolerance | None = None  # None: --update-references does not write it
    detection: bool = False  # a test metric: the leaderboard gives its 95% interval over seeds, separability may test it
    # A time, a rate, a utilisation or an energy: other work on the run's node or GPU moves it, so `check` calls
    # it not comparable where the run shared them (accuracy and memory are the run's own whoever shares).
    contended: bool = False
    spread: tuple[str, ...] | None = None  # the key path of its timed windows' spread (meters.window_spread), if any
    why: tuple[str, ...] | None = None  # the key path of the record's reason where it is null ("no NVIDIA GPU in use")

    @property
    def percent(self) -> bool:
        return self.unit == FRACTION

    @property
    def source(self) -> str:
        """Where the record holds it: its key path (`gpu.util_mean`), or what its reader says."""
        return ".".join(self.read) if isinstance(self.read, tuple) else (self.read.__doc__ or "").strip()

    def value(self, record: "RunRecord") -> float | int | None:
        """The run's figure: a finite number, else None (not measured, or not a number)."""
        found = self.read(record) if callable(self.read) else _at(record, self.read)
        return found if _finite(found) else None

    def why_missing(self, record: "RunRecord") -> str | None:
        """Why the run has no figure, as its record says (None where it has one, or says nothing)."""
        found = _at(record, self.why) if self.why and self.value(record) is None else None
        return found if isinstance(found, str) and found else None

    def spread_of(self, record: "RunRecord") -> dict[str, float] | None:
        """The run's spread of the figure over its timed windows (q1, q3, min, max: numbers), where it has one."""
        found = _at(record, self.spread) if self.spread else None
        keys = ("q1", "q3", "min", "max")
        if not isinstance(found, dict) or not all(_finite(found.get(key)) for key in keys):
            return None
        return {key: float(found[key]) for key in keys}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _at(record: "RunRecord", path: tuple[str, ...]) -> Any:
    found = getattr(record, path[0])
    for key in path[1:]:
        found = found.get(key) if isinstance(found, dict) else None
    return found


def _wall_time(record: "RunRecord") -> float | None:
    """finished_at - started_at"""
    try:
        return (datetime.fromisoformat(record.finished_at) - datetime.fromisoformat(record.started_at or "")).total_seconds()
    except ValueError:
        return None


ACCURACY_BAND: Tolerance = (-0.05, 0.05)  # a jump is as suspect as a drop
SLOWER: Tolerance = (-0.10, None)  # faster is no failure
COSTLIER: Tolerance = (None, 0.10)  # cheaper is no failure

_FIGURES = [
    Figure("accuracy", FRACTION, True, "acc", ("test", "accuracy"), ACCURACY_BAND, detection=True),
    Figure("loss", "nats", False, "loss (BCE)", ("test", "loss"), detection=True),
    Figure("precision", FRACTION, True, "prec", ("test", "precision"), detection=True),
    Figure("recall", FRACTION, True, "recall", ("test", "recall"), detection=True),
    Figure("f1", FRACTION, True, "F1", ("test", "f1"), detection=True),
    Figure("auc", FRACTION, True, "AUC", ("test", "auc"), ACCURACY_BAND, detection=True),
    Figure("average_precision", FRACTION, True, "AP", ("test", "average_precision"), detection=True),
    Figure("eer", FRACTION, False, "EER", ("test", "eer"), detection=True),
    Figure("accuracy_at_threshold", FRACTION, True, "acc at val threshold", ("test", "accuracy_at_threshold"), detection=True),
    Figure("train_images_per_s", "images/s", True, "train img/s", ("throughput", "train_images_per_s"), SLOWER,
           contended=True, spread=("throughput", "train_spread")),
    Figure("infer_images_per_s", "images/s", True, "infer img/s", ("throughput", "infer_images_per_s"), SLOWER,
           contended=True, spread=("throughput", "infer_spread")),
    Figure("data_wait_fraction", FRACTION, False, "data wait", ("throughput", "data_wait_fraction"), contended=True),
    Figure("achieved_tflops", "TFLOP/s", True, "TFLOP/s", ("throughput", "achieved_tflops"), contended=True),
    Figure("mfu", FRACTION, True, "MFU", ("throughput", "mfu"), SLOWER, contended=True, why=("throughput", "mfu_reason")),
    # The mean, not the median, of NVML's utilisation samples: each sample is the share of one equal
    # sampling period in which a kernel ran, so their mean is the share of the training time the GPU was
    # busy, a time average like data wait, MFU and energy per image. A median hides the periods in which
    # the GPU starved (idle one period in three reads 100%), which is what this figure exists to show.
    Figure("gpu_util_mean", FRACTION, True, "GPU util", ("gpu", "util_mean"), SLOWER, contended=True, why=("gpu", "reason")),
    Figure("energy_per_image_j", "J/image", False, "train J/image", ("gpu", "energy_per_image_j"), COSTLIER, contended=True,
           why=("gpu", "energy_reason")),
    Figure("infer_energy_per_image_j", "J/image", False, "infer J/image", ("gpu", "infer", "energy_per_image_j"),
           contended=True, why=("gpu", "infer", "energy_reason")),
    Figure("peak_gpu_memory_bytes", "bytes", False, "peak GPU memory (bytes)", ("memory", "peak_gpu_memory_bytes"), COSTLIER,
           why=("memory", "peak_gpu_memory_reason")),
    Figure("peak_host_rss_bytes", "bytes", False, "peak host memory (bytes)", ("memory", "peak_host_rss_bytes")),
    Figure("wall_time_s", "s", False, "wall time (s)", _wall_time, contended=True),
    Figure("train_seconds", "s", False, "training time (s)", ("train_seconds_this_attempt",), contended=True),
    Figure("compile_seconds", "s", False, "compile time (s)", ("throughput", "compile_seconds"), contended=True),
]
FIGURES: dict[str, Figure] = {figure.name: figure for figure in _FIGURES}


def figures_of(record: "RunRecord") -> dict[str, float | int | None]:
    """A run's every figure, by name (None where it has none)."""
    return {name: figure.value(record) for name, figure in FIGURES.items()}


def doc_table() -> str:
    """The figures as docs/results.md lists them (a test holds the doc to this)."""
    def tolerance(band: Tolerance | None) -> str:
        return "not written" if band is None else ", ".join("none" if side is None else f"{side:+.0%}" for side in band)

    def spread(figure: Figure) -> str:
        return f" (spread: `{'.'.join(figure.spread)}`)" if figure.spread else ""

    lines = ["| figure | unit | better | label | `--update-references` tolerance (lower, upper) | shared node: `check` says "
             "| read from the record |", "|---|---|---|---|---|---|---|"]
    lines += [f"| `{f.name}` | {f.unit} | {'higher' if f.higher_is_better else 'lower'} | {f.label}{' %' if f.percent else ''} "
              f"| {tolerance(f.tolerance)} | {'not comparable' if f.contended else 'checked'} "
              f"| `{f.source}`{spread(f)} |" for f in FIGURES.values()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(doc_table(), end="")
