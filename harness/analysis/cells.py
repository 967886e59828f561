"""How a value shows in a table's cell and a column in its header, for every table: the terminal's
(cli.render), the report's and the dashboard's. A figure's label and whether it is a percentage come
from the registry (store.figures); the other columns' are here. Plain Python."""
import math
from typing import Any

from harness.store.figures import FIGURES

# Columns that are no figure of a run (the registry says the figures'): percentages, and short headers.
PERCENT = {"p_fake", "val_accuracy", "efficiency", "dle_efficiency"}
LABELS = {"val_accuracy": "val acc", "paper_params": "paper params", "input_size": "input", "keras_mode": "keras mode",
          "not_separable_from": "not separable from (5%)", "not_tested_against": "not tested against",
          "timm_weights": "timm weights", "cpus_per_node": "cpus/node", "mem_mb_per_node": "mem MB/node",
          "gpus_per_node": "gpus/node", "gpu_types": "gpu types", "gpu_model": "gpu model",
          "torch_runs_it": "torch runs it", "max_time_min": "max time", "default_time_min": "default time",
          "efficiency": "efficiency", "dle_speedup": "NVIDIA speedup", "dle_efficiency": "NVIDIA efficiency",
          "beyond_spread": "beyond spread", "a_seeds": "a seeds", "b_seeds": "b seeds"}

DECIMALS = {"nats": 4, "bytes": 0}  # a cross-entropy is no share; a byte is whole


def is_percent(column: str) -> bool:
    """A share in [0, 1], shown in % (Table 2's `paper_<figure>` as ours)."""
    base = column.removeprefix("paper_")
    return base in PERCENT or (base in FIGURES and FIGURES[base].percent)


def fmt(column: str, value: Any) -> str:
    """One cell: percentages for the [0, 1] metrics, thousands separators, '-' for what is unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, str):  # already formatted ("91.2 [99.3]")
        return value
    if isinstance(value, list):  # names: "VGG16, VGG19"
        return ", ".join(map(str, value)) or "-"
    figure = FIGURES.get(column.removeprefix("paper_"))
    if figure is not None and figure.unit in DECIMALS:
        return f"{value:,.{DECIMALS[figure.unit]}f}"
    if column in ("speedup", "dle_speedup"):
        return f"{value:.2f}x"
    if column == "gpu_hours":  # a small sweep's share of one GPU-hour
        return f"{value:,.3f}"
    if is_percent(column):
        return f"{100 * value:.2f}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def interval(low: float | None, high: float | None) -> str:
    """A percentage interval, '[91.20, 95.40]'; '-' where there is none (fewer than two seeds)."""
    return "-" if low is None or high is None else f"[{100 * low:.2f}, {100 * high:.2f}]"


def label(column: str) -> str:
    """A short column header; percentages say so."""
    base = column.removeprefix("paper_")
    named = {**{name: figure.label for name, figure in FIGURES.items()}, **LABELS}
    text = named.get(column) or (f"paper {named.get(base, base)}" if column.startswith("paper_") else column)
    return text + (" %" if is_percent(column) else "")
