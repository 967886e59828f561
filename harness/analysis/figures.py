"""PNG figures of a sweep under results/<sweep>/figures/: training curves (the paper's Figure 5), ROC
curves, accuracy against training speed, confusion matrices, robustness as a heat map."""
import functools
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; compute nodes have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harness.analysis.colours import LINE_STYLES, MARKERS, architecture_colours, variant_numbers  # noqa: E402
from harness.analysis.load import SweepResults  # noqa: E402
from harness.analysis.scaling import scaling_rows, with_dle
from harness.data.perturb import PERTURBATIONS  # noqa: E402
from harness.stats.metrics import roc_points  # noqa: E402
from harness.store.atomic import refuse_symlink, write_atomic  # noqa: E402
from harness.store.figures import FIGURES  # noqa: E402
from harness.store.paths import SweepPaths  # noqa: E402
from harness.store.records import RunRecord  # noqa: E402
from harness.store.run_files import read_history, read_test_scores  # noqa: E402

Runs = dict[str, list[tuple[str, RunRecord]]]


def png_bytes(fig: plt.Figure) -> bytes:
    """The figure as PNG bytes: every figure of a report is drawn before any file is written."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=120)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def completed_runs(results: SweepResults) -> Runs:
    """Completed runs by leaderboard row (architecture and variant): [(run id, record)], in the spec's order;
    a row without one is left out."""
    return {label: [(r.run_id, r) for r in records] for label, records in results.completed().items() if records}


NOTE_STYLE: dict[str, Any] = {"ha": "center", "va": "center", "fontsize": 9, "color": "0.25", "wrap": True,
                              "bbox": {"boxstyle": "round", "facecolor": "0.95", "edgecolor": "0.7"}}


def note(ax: plt.Axes, text: str, y: float = 0.5) -> None:
    """Say in the figure why it shows little or nothing, rather than leave an empty frame."""
    ax.text(0.5, y, text, transform=ax.transAxes, **NOTE_STYLE)


def unit_limits(values: "list[float] | np.ndarray", margin: float = 0.05) -> tuple[float, float]:
    """Limits for a quantity in [0, 1] (an accuracy) from its data's range, with a margin, never beyond [0, 1]."""
    data = np.asarray([v for v in np.ravel(np.asarray(values, dtype=float)) if np.isfinite(v)])
    if data.size == 0:
        return (0.0, 1.0)
    low, high = float(data.min()), float(data.max())
    pad = max(margin, 0.1 * (high - low))
    return (max(0.0, low - pad), min(1.0, high + pad))


def plain_number(value: float, _position: object = None) -> str:
    """A tick label as a plain number: 20, 150, 1,200, 0.5 (never 10^2)."""
    if value <= 0 or not np.isfinite(value):
        return ""
    return f"{value:,.0f}" if value >= 10 else f"{value:g}"


def plain_log_axis(axis: "matplotlib.axis.Axis", low: float, high: float) -> None:
    """Label a log axis with plain numbers: the decades, and within a short span some minor ticks
    (2 and 5, or 2, 3 and 5), so that a range inside one decade still has labelled ticks."""
    decades = np.log10(high / low) if low > 0 and high > low else 0.0
    keep = (2, 3, 5) if decades < 1 else (2, 5) if decades < 2 else ()

    def minor(value: float, _position: object = None) -> str:
        if value <= 0:
            return ""
        lead = round(value / 10 ** np.floor(np.log10(value) + 1e-9))
        return plain_number(value) if lead in keep else ""

    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(plain_number))
    axis.set_minor_formatter(matplotlib.ticker.FuncFormatter(minor))


def mean_histories(sweep: SweepPaths, runs: Runs) -> dict[str, pd.DataFrame]:
    """Per leaderboard row: train/val accuracy and loss per epoch, the mean over its seeds."""
    histories = {model: [pd.DataFrame(read_history(sweep.run(rid).history) or []) for rid, _ in model_runs]
                 for model, model_runs in runs.items()}
    return {model: pd.concat(frames).groupby("epoch").mean() for model, frames in histories.items()
            if any(not frame.empty for frame in frames)}


def draw_training_curves(histories: dict[str, pd.DataFrame]) -> plt.Figure:
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    accuracies, losses = [], []
    variants, colours = variant_numbers(histories), architecture_colours(histories)
    for model, mean in histories.items():
        style = {"color": colours[model], "marker": MARKERS[variants[model] % len(MARKERS)], "markersize": 4,
                 "clip_on": False}
        acc.plot(mean.index, mean["train_accuracy"], label=model, **style)  # one entry per colour: the title
        acc.plot(mean.index, mean["val_accuracy"], linestyle="--", **style)  # says which line is which
        loss.plot(mean.index, mean["train_loss"], **style)
        loss.plot(mean.index, mean["val_loss"], linestyle="--", **style)
        accuracies += [*mean["train_accuracy"], *mean["val_accuracy"]]
        losses += [*mean["train_loss"], *mean["val_loss"]]
    acc.set(title="(a) accuracy (solid: train, dashed: validation)", xlabel="epoch", ylabel="accuracy",
            ylim=unit_limits(accuracies))
    loss.set(title="(b) loss (solid: train, dashed: validation)", xlabel="epoch", ylabel="BCE loss")
    finite = [v for v in losses if np.isfinite(v)]
    if finite:
        pad = max(0.05, 0.1 * (max(finite) - min(finite)))
        loss.set_ylim(max(0.0, min(finite) - pad), max(finite) + pad)
    acc.legend(fontsize=7, ncol=2, loc="best")
    epochs = max((len(mean) for mean in histories.values()), default=0)
    for ax in (acc, loss):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        if epochs == 1:
            ax.set_xlim(0.5, 1.5)
            ax.set_xticks([1])
            note(ax, "one epoch: one point per run, no curve to draw\n(train with --epochs 2 or more for a curve)", y=0.1)
        elif epochs == 0:
            note(ax, "no epoch recorded")
    fig.tight_layout()
    return fig


def training_curves(sweep: SweepPaths, runs: Runs) -> bytes:
    return png_bytes(draw_training_curves(mean_histories(sweep, runs)))


def roc_curves(sweep: SweepPaths, runs: Runs) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 6))
    variants, colours = variant_numbers(runs), architecture_colours(runs)
    for model, model_runs in runs.items():
        found = [read_test_scores(sweep.run(rid).test_scores) for rid, _ in model_runs]
        scored = [pair for pair in found if pair is not None]
        if not scored:  # runs of a first release, without test_scores.npy
            continue
        labels, scores = np.concatenate([pair[0] for pair in scored]), np.concatenate([pair[1] for pair in scored])
        fpr, tpr, _ = roc_points(labels, scores)
        aucs = [auc for _, r in model_runs if (auc := FIGURES["auc"].value(r)) is not None]  # one class tested: none
        ax.plot(fpr, tpr, color=colours[model], linestyle=LINE_STYLES[variants[model] % len(LINE_STYLES)],
                label=f"{model} (AUC {np.mean(aucs):.3f})" if aucs else model, clip_on=False)
    ax.plot([0, 1], [0, 1], color="0.8", linestyle=":")  # lighter than any architecture's colour
    ax.set(title="ROC on the test split (seeds pooled)", xlabel="false positive rate (real called fake)",
           ylabel="true positive rate (fake caught)", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return png_bytes(fig)


def draw_accuracy_vs_speed(table: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 5))
    needed = {"accuracy", "train_images_per_s"}
    done = table.dropna(subset=list(needed)) if needed <= set(table.columns) else table.iloc[0:0]
    ax.set(title="test accuracy (95% interval) against training speed", xlabel="training images/s (log scale)",
           ylabel="test accuracy")
    if done.empty:
        note(ax, "no completed run recorded both a test accuracy and a training speed\n"
                 "(too few steps for a steady-state timing?)")
        ax.set_xticks([])
        fig.tight_layout()
        return fig
    ends = []
    variants, colours = variant_numbers(done["model"]), architecture_colours(done["model"])
    for row in done.itertuples():
        low, high = getattr(row, "accuracy_lo", None), getattr(row, "accuracy_hi", None)
        spread = None if low is None or high is None or pd.isna(low) or pd.isna(high) else \
            [[row.accuracy - low], [high - row.accuracy]]
        ends += [row.accuracy] + ([low, high] if spread else [])
        ax.errorbar(row.train_images_per_s, row.accuracy, yerr=spread, fmt=MARKERS[variants[row.model] % len(MARKERS)],
                    color=colours[row.model], capsize=3, clip_on=False)
        ax.annotate(row.model, (row.train_images_per_s, row.accuracy), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    speeds = done["train_images_per_s"].to_numpy(dtype=float)
    low, high = speeds.min() / 1.5, speeds.max() * 1.5
    ax.set_xlim(low, high)
    plain_log_axis(ax.xaxis, low, high)
    ax.set_ylim(unit_limits(ends))
    fig.tight_layout()
    return fig


def accuracy_vs_speed(table: pd.DataFrame) -> bytes:
    return png_bytes(draw_accuracy_vs_speed(table))


def confusion_matrices(runs: Runs) -> bytes | None:
    """Per architecture, its runs' test confusion matrices summed; None where no record holds one."""
    found = {model: [r.test["confusion_matrix"] for _, r in model_runs if r.test and r.test.get("confusion_matrix")]
             for model, model_runs in runs.items()}
    summed = {model: np.sum(matrices, axis=0) for model, matrices in found.items() if matrices}
    if not summed:
        return None
    n = len(summed)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (model, matrix) in zip(axes.flat, summed.items()):
        ax.imshow(matrix, cmap="Blues", vmin=0)
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > matrix.max() / 2 else "black")
        ax.set(title=f"{model} (images)", xticks=[0, 1], yticks=[0, 1], xticklabels=["real", "fake"],
               yticklabels=["real", "fake"], xlabel="predicted", ylabel="true")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return png_bytes(fig)


def robustness_table(runs: Runs, metric: str = "accuracy") -> pd.DataFrame:
    """A test metric (mean over seeds) per architecture, clean and under each perturbation: clean on the images
    the perturbed passes scored (the record's robustness "none"; before it was recorded, the test split's)."""
    rows = {}
    for model, model_runs in runs.items():
        clean = [(r.robustness.get("none") or r.test or {}).get(metric) for _, r in model_runs]
        row = {"clean": np.mean([v for v in clean if v is not None]) if any(v is not None for v in clean) else np.nan}
        for name in PERTURBATIONS:
            found = [r.robustness[name].get(metric) for _, r in model_runs if name in r.robustness]
            values = [v for v in found if v is not None]
            row[name] = np.mean(values) if values else np.nan
        rows[model] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def robustness_scope(runs: Runs) -> str:
    """The test images the perturbed passes scored, in words ("50 of 400 test images": each record's robustness
    "none" count against its test count, a range where runs differ); "" where a run perturbed images without
    recording which (a record before 1.6: its clean column is its whole test split's)."""
    scored: list[int] = []
    tested: list[int] = []
    for record in (record for model_runs in runs.values() for _, record in model_runs if record.robustness):
        count, whole = (record.robustness.get("none") or {}).get("count"), (record.test or {}).get("count")
        if not (isinstance(count, int) and isinstance(whole, int)):
            return ""
        scored.append(count)
        tested.append(whole)
    if not scored:
        return ""

    def span(values: list[int]) -> str:
        return f"{min(values)}" if min(values) == max(values) else f"{min(values)}-{max(values)}"

    return f"all {span(tested)} test images" if scored == tested else f"{span(scored)} of {span(tested)} test images"


def percent_range(values: np.ndarray) -> tuple[float, float]:
    """A heat map's colour range in %: 50 (chance) to 100, reaching lower where the data does."""
    finite = values[np.isfinite(values)]
    low = min(50.0, float(np.floor(finite.min() / 10) * 10)) if finite.size else 50.0
    return (low, 100.0)


def draw_robustness_heatmap(table: pd.DataFrame, scope: str = "") -> plt.Figure:
    """scope: the test images scored (robustness_scope), named in the title: the clean column is on them."""
    fig, ax = plt.subplots(figsize=(1.3 * len(table.columns) + 2.5, 0.5 * len(table) + 1.8))
    values = 100 * table.to_numpy(dtype=float)
    vmin, vmax = percent_range(values)
    image = ax.imshow(values, cmap="RdYlGn", vmin=vmin, vmax=vmax, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        ax.text(j, i, "-" if np.isnan(value) else f"{value:.1f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(table)), table.index)
    ax.set_title("test accuracy (%) under perturbations of both classes" + (f"\n(on {scope})" if scope else ""))
    fig.colorbar(image, ax=ax, fraction=0.03).set_label("test accuracy (%)")
    if not np.isfinite(values).any():
        note(ax, "no run was evaluated under a perturbation")
    fig.tight_layout()
    return fig


def robustness_heatmap(table: pd.DataFrame, scope: str = "") -> bytes:
    return png_bytes(draw_robustness_heatmap(table, scope))


def cross_generator_tables(results: SweepResults) -> dict[str, pd.DataFrame]:
    """Per architecture: test AUC (mean over seeds) by training generator (rows) and test generator (columns)."""
    cells: dict[str, dict[tuple[str, str], list[float]]] = {}
    for model_runs in completed_runs(results).values():
        for _, record in model_runs:
            trained_on = record.config.get("train_generator")
            if not trained_on:
                continue
            for tested_on, metrics in record.cross_generator.items():
                cells.setdefault(record.model, {}).setdefault((trained_on, tested_on), []).append(metrics["auc"])
    tables = {}
    for model, values in cells.items():
        table = pd.Series({key: np.mean(v) for key, v in values.items()}).unstack()
        table.index.name, table.columns.name = "trained on", "tested on"
        tables[model] = table
    return tables


def draw_cross_generator_heatmaps(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    cols = min(4, len(tables))
    rows = (len(tables) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols + 0.8, 3.4 * rows + 0.4), squeeze=False)
    everything = np.concatenate([100 * t.to_numpy(dtype=float).ravel() for t in tables.values()])
    vmin, vmax = percent_range(everything)
    image = None
    for ax, (model, table) in zip(axes.flat, tables.items()):
        values = 100 * table.to_numpy(dtype=float)
        image = ax.imshow(values, cmap="RdYlGn", vmin=vmin, vmax=vmax)
        for (i, j), value in np.ndenumerate(values):
            ax.text(j, i, "-" if np.isnan(value) else f"{value:.0f}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(table.columns)), table.columns, rotation=30, ha="right", fontsize=7)
        ax.set_yticks(range(len(table.index)), table.index, fontsize=7)
        ax.set(title=model, xlabel="tested on", ylabel="trained on")
    for ax in list(axes.flat)[len(tables):]:
        ax.axis("off")
    fig.suptitle("test AUC (%) across generators")
    fig.tight_layout()
    if image is not None:
        fig.colorbar(image, ax=list(axes.flat), fraction=0.03).set_label("test AUC (%)")
    return fig


def cross_generator_heatmaps(tables: dict[str, pd.DataFrame]) -> bytes:
    return png_bytes(draw_cross_generator_heatmaps(tables))


def draw_scaling(rows: list[dict]) -> plt.Figure:
    """Speedup against ranks per architecture (scaling.scaling_rows), each with its interval over seeds,
    beside the ideal (speedup = ranks) and NVIDIA's published figure where one matches."""
    fig, ax = plt.subplots(figsize=(7, 5))
    top = max(row["ranks"] for row in rows)
    ax.plot([1, top], [1, top], color="grey", linestyle=":", label="ideal (speedup = ranks)")
    colours = architecture_colours(row["architecture"] for row in rows)
    for architecture, group in pd.DataFrame(rows).groupby("architecture", sort=False):
        colour = colours[architecture]
        group = group.dropna(subset=["speedup"])
        low = (group["speedup"] - group["speedup_lo"]).fillna(0).clip(lower=0)
        high = (group["speedup_hi"] - group["speedup"]).fillna(0).clip(lower=0)
        ax.errorbar(group["ranks"], group["speedup"], yerr=[low, high], fmt="o-", color=colour, capsize=3, label=architecture)
        published = group.dropna(subset=["dle_speedup"]) if "dle_speedup" in group else group.iloc[0:0]
        if not published.empty:
            ax.plot(published["ranks"], published["dle_speedup"], "x", color=colour, markersize=9,
                    label=f"{architecture}: NVIDIA, {published['dle_gpu'].iloc[0]}")
    ax.set(title="training speedup against one rank (batch per rank fixed)", xlabel="ranks (GPUs; CPU processes on a CPU)",
           ylabel="speedup (images/s over one rank's)", xlim=(0.8, top * 1.1), ylim=(0, top * 1.1))
    ax.set_xticks(sorted({row["ranks"] for row in rows}))
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def make_figures(results: SweepResults, board: list[dict]) -> dict[Path, bytes]:
    """Every figure the sweep's completed runs allow, drawn (PNG bytes), by the path it goes to under the
    sweep's figures/; nothing is written (write_figures). board: its leaderboard. A sweep of synthetic
    inputs has no training curve, test or robustness to draw."""
    sweep = results.sweep
    runs = completed_runs(results)
    if not runs:
        return {}
    figures = {} if results.spec.synthetic else {
        "training_curves": training_curves(sweep, runs), "roc": roc_curves(sweep, runs),
        "accuracy_vs_speed": accuracy_vs_speed(pd.DataFrame(board)), "confusion": confusion_matrices(runs),
        "robustness": robustness_heatmap(robustness_table(runs), robustness_scope(runs))}
    tables = cross_generator_tables(results)
    if tables:
        figures["cross_generator"] = cross_generator_heatmaps(tables)
    scaling = with_dle(scaling_rows(results.completed()))
    if scaling:
        figures["scaling"] = png_bytes(draw_scaling(scaling))
    return {sweep.figures / f"{name}.png": data for name, data in figures.items() if data is not None}


def write_figures(sweep: SweepPaths, figures: dict[Path, bytes]) -> None:
    """Each figure written whole, never through a link planted where the folder or a figure goes."""
    refuse_symlink(sweep.figures)
    for path, data in figures.items():
        write_atomic(path, functools.partial(Path.write_bytes, data=data))
