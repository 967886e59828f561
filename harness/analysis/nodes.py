"""Every node of a partition checked (sweep --every-node): per architecture, each node's figure against the
spread of all of them. A node whose figure lies below the median by more than MAD_TIMES median absolute
deviations is named an outlier. Plain Python: nodes are names and figures numbers, whatever ran them.
"""
import statistics
from dataclasses import dataclass
from typing import Any

from harness.analysis.load import SweepResults
from harness.store.records import RunRecord

FIGURE = "train_images_per_s"  # the figure compared: a slow node trains slowly, on data or synthetic inputs
MAD_TIMES = 3
# The least deviation counted, as a share of the median: where the nodes agree closely (MAD near 0, identical
# figures), a timing noise of a few percent would otherwise be an outlier. So an outlier is at least 15% below.
MAD_FLOOR = 0.05
MIN_NODES = 3  # of two nodes, neither is the odd one out: the spread needs a majority


@dataclass(frozen=True)
class NodeSpread:
    """The nodes' figures of one architecture: their median, MAD, the line below which a node is an outlier
    (None where none can be named: reason says why), and the outliers, slowest first."""

    figures: dict[str, float | None]  # node -> its figure; None: not measured (its run failed or is to come)
    median: float | None
    mad: float | None
    threshold: float | None
    outliers: list[str]
    reason: str = ""


def node_spread(figures: dict[str, float | None]) -> NodeSpread:
    """The outliers among the nodes' figures (node -> figure, higher is better): those below
    median - MAD_TIMES x max(MAD, MAD_FLOOR x median), with MIN_NODES measured or more."""
    measured = {node: value for node, value in figures.items() if value is not None}
    if not measured:
        return NodeSpread(figures, None, None, None, [], "no node measured")
    median = statistics.median(measured.values())
    mad = statistics.median(abs(value - median) for value in measured.values())
    if len(measured) < MIN_NODES:
        return NodeSpread(figures, median, mad, None, [],
                          f"{len(measured)} nodes measured: no outlier can be named with fewer than {MIN_NODES}")
    threshold = median - MAD_TIMES * max(mad, MAD_FLOOR * median)
    outliers = sorted((node for node, value in measured.items() if value < threshold), key=lambda node: measured[node])
    return NodeSpread(figures, median, mad, threshold, outliers)


def node_figures(results: SweepResults) -> dict[str, dict[str, float | None]]:
    """Per architecture, each node's figure (the node each run was pinned to, which Slurm's --nodelist held it
    to): the median of its completed runs' (several seeds), None where none completed."""
    found: dict[str, dict[str, list[float]]] = {}
    for run in results.spec.runs:
        record = results.records[run.run_id]
        values = found.setdefault(run.model, {}).setdefault(run.node, [])
        figure = (record.throughput or {}).get(FIGURE) if isinstance(record, RunRecord) and record.completed else None
        if figure is not None:
            values.append(float(figure))
    return {model: {node: statistics.median(values) if values else None for node, values in nodes.items()}
            for model, nodes in found.items()}


def node_rows(results: SweepResults) -> list[dict[str, Any]]:
    """The per-node table of an every-node sweep: one row per (architecture, node), its figure, the
    architecture's median and outlier line, and its verdict (outlier, ok, or - where none can be named)."""
    rows = []
    for model, figures in node_figures(results).items():
        spread = node_spread(figures)
        for node, value in figures.items():
            verdict = ("not measured" if value is None else "-" if spread.threshold is None else
                       "OUTLIER" if node in spread.outliers else "ok")
            rows.append({"model": model, "node": node, FIGURE: value, "median": spread.median, "mad": spread.mad,
                         "threshold": spread.threshold, "verdict": verdict, "reason": spread.reason})
    return rows


def is_every_node(results: SweepResults) -> bool:
    return any(run.node for run in results.spec.runs)


def outlier_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The outliers of a per-node table, one line each: `gpu02: MobileNetV2 at 12.3 images/s, below 85.0`."""
    return [f"{row['node']}: {row['model']} at {row[FIGURE]:,.1f} images/s, below {row['threshold']:,.1f} (median "
            f"{row['median']:,.1f})" for row in rows if row["verdict"] == "OUTLIER"]
