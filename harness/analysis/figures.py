"""PNG figures of a sweep under results/<sweep>/figures/: training curves (the paper's Figure 5), ROC
curves, accuracy against training speed, confusion matrices, robustness as a heat map."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; compute nodes have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from harness.analysis.leaderboard import leaderboard  # noqa: E402
from harness.perturb import PERTURBATIONS  # noqa: E402
from harness.store.atomic import refuse_symlink, write_atomic  # noqa: E402
from harness.store.paths import SweepPaths  # noqa: E402
from harness.store.records import RunRecord, read_record, read_spec  # noqa: E402
from harness.store.schema import DamagedFile  # noqa: E402

Runs = dict[str, list[tuple[str, RunRecord]]]


def _save(fig: plt.Figure, path: Path) -> None:
    """Written whole or not at all, never through a link planted where the figure goes."""
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def completed_runs(sweep: SweepPaths) -> Runs:
    """Completed runs by leaderboard row (architecture and variant): [(run id, record)], in the spec's order."""
    runs: Runs = {}
    for run in read_spec(sweep).runs:
        try:
            record = read_record(sweep.run(run.run_id))
        except DamagedFile:
            continue
        if record is not None and record.completed:
            runs.setdefault(run.label, []).append((run.run_id, record))
    return runs


def training_curves(sweep: SweepPaths, runs: Runs, path: Path) -> None:
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, (model, model_runs) in enumerate(runs.items()):
        history = pd.concat([pd.read_csv(sweep.run(rid).history) for rid, _ in model_runs])
        mean = history.groupby("epoch").mean()
        colour = f"C{i % 10}"
        acc.plot(mean.index, mean["train_accuracy"], color=colour, label=f"{model} train")
        acc.plot(mean.index, mean["val_accuracy"], color=colour, linestyle="--", label=f"{model} val")
        loss.plot(mean.index, mean["train_loss"], color=colour)
        loss.plot(mean.index, mean["val_loss"], color=colour, linestyle="--")
    acc.set(title="(a) accuracy (solid: train, dashed: validation)", xlabel="epoch", ylabel="accuracy")
    loss.set(title="(b) loss (solid: train, dashed: validation)", xlabel="epoch", ylabel="BCE loss")
    acc.legend(fontsize=7, ncol=2)
    for ax in (acc, loss):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    fig.tight_layout()
    _save(fig, path)


def roc_curves(sweep: SweepPaths, runs: Runs, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 6))
    for i, (model, model_runs) in enumerate(runs.items()):
        labels, scores = np.concatenate([np.load(sweep.run(rid).test_scores) for rid, _ in model_runs], axis=1)
        fpr, tpr, _ = roc_curve(labels, scores)
        auc = np.mean([r.test["auc"] for _, r in model_runs])
        ax.plot(fpr, tpr, color=f"C{i % 10}", label=f"{model} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(title="ROC on the test split (seeds pooled)", xlabel="false positive rate (real called fake)",
           ylabel="true positive rate (fake caught)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    _save(fig, path)


def accuracy_vs_speed(table: pd.DataFrame, path: Path) -> None:
    done = table.dropna(subset=["accuracy", "train_images_per_s"])
    fig, ax = plt.subplots(figsize=(7, 5))
    for i, row in enumerate(done.itertuples()):
        spread = None if pd.isna(row.accuracy_lo) else [[row.accuracy - row.accuracy_lo], [row.accuracy_hi - row.accuracy]]
        ax.errorbar(row.train_images_per_s, row.accuracy, yerr=spread, fmt="o", color=f"C{i % 10}", capsize=3)
        ax.annotate(row.model, (row.train_images_per_s, row.accuracy), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set(title="test accuracy (95% interval over seeds) against training speed", xlabel="training images/s (log)",
           ylabel="test accuracy")
    fig.tight_layout()
    _save(fig, path)


def confusion_matrices(runs: Runs, path: Path) -> None:
    n = len(runs)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (model, model_runs) in zip(axes.flat, runs.items()):
        matrix = np.sum([np.array(r.test["confusion_matrix"]) for _, r in model_runs], axis=0)
        ax.imshow(matrix, cmap="Blues")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > matrix.max() / 2 else "black")
        ax.set(title=model, xticks=[0, 1], yticks=[0, 1], xticklabels=["real", "fake"], yticklabels=["real", "fake"],
               xlabel="predicted", ylabel="true")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    _save(fig, path)


def robustness_table(runs: Runs) -> pd.DataFrame:
    """Test accuracy (mean over seeds) per architecture, clean and under each perturbation."""
    rows = {}
    for model, model_runs in runs.items():
        row = {"clean": np.mean([r.test["accuracy"] for _, r in model_runs])}
        for name in PERTURBATIONS:
            values = [r.robustness[name]["accuracy"] for _, r in model_runs if name in r.robustness]
            row[name] = np.mean(values) if values else np.nan
        rows[model] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def robustness_heatmap(table: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(1.3 * len(table.columns) + 2, 0.5 * len(table) + 1.5))
    image = ax.imshow(table.to_numpy(dtype=float), cmap="RdYlGn", vmin=0.5, vmax=1.0, aspect="auto")
    for (i, j), value in np.ndenumerate(table.to_numpy(dtype=float)):
        ax.text(j, i, "-" if np.isnan(value) else f"{100 * value:.1f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(table)), table.index)
    ax.set_title("test accuracy (%) under perturbations of both classes")
    fig.colorbar(image, ax=ax, fraction=0.03)
    fig.tight_layout()
    _save(fig, path)


def cross_generator_tables(sweep: SweepPaths) -> dict[str, pd.DataFrame]:
    """Per architecture: test AUC (mean over seeds) by training generator (rows) and test generator (columns)."""
    cells: dict[str, dict[tuple[str, str], list[float]]] = {}
    for model_runs in completed_runs(sweep).values():
        for _, record in model_runs:
            trained_on = record.config.get("train_generator")
            for tested_on, metrics in (record.cross_generator.items() if trained_on else ()):
                cells.setdefault(record.model, {}).setdefault((trained_on, tested_on), []).append(metrics["auc"])
    tables = {}
    for model, values in cells.items():
        table = pd.Series({key: np.mean(v) for key, v in values.items()}).unstack()
        table.index.name, table.columns.name = "trained on", "tested on"
        tables[model] = table
    return tables


def cross_generator_heatmaps(tables: dict[str, pd.DataFrame], path: Path) -> None:
    cols = min(4, len(tables))
    rows = (len(tables) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 3.4 * rows), squeeze=False)
    for ax, (model, table) in zip(axes.flat, tables.items()):
        values = table.to_numpy(dtype=float)
        ax.imshow(values, cmap="RdYlGn", vmin=0.5, vmax=1.0)
        for (i, j), value in np.ndenumerate(values):
            ax.text(j, i, "-" if np.isnan(value) else f"{100 * value:.0f}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(table.columns)), table.columns, rotation=30, ha="right", fontsize=7)
        ax.set_yticks(range(len(table.index)), table.index, fontsize=7)
        ax.set(title=model, xlabel="tested on", ylabel="trained on")
    for ax in list(axes.flat)[len(tables):]:
        ax.axis("off")
    fig.suptitle("test AUC (%) across generators")
    fig.tight_layout()
    _save(fig, path)


def make_figures(sweep: SweepPaths, board: list[dict] | None = None) -> list[Path]:
    """Write every figure the sweep's completed runs allow; returns their paths. board: the sweep's
    leaderboard, when the caller has it already (it costs a scheduler query)."""
    folder = sweep.figures
    refuse_symlink(folder)
    folder.mkdir(exist_ok=True)
    runs = completed_runs(sweep)
    if not runs:
        return []
    paths = {name: folder / f"{name}.png" for name in ("training_curves", "roc", "accuracy_vs_speed", "confusion", "robustness")}
    training_curves(sweep, runs, paths["training_curves"])
    roc_curves(sweep, runs, paths["roc"])
    accuracy_vs_speed(pd.DataFrame(leaderboard(sweep) if board is None else board), paths["accuracy_vs_speed"])
    confusion_matrices(runs, paths["confusion"])
    robustness_heatmap(robustness_table(runs), paths["robustness"])
    tables = cross_generator_tables(sweep)
    if tables:
        paths["cross_generator"] = folder / "cross_generator.png"
        cross_generator_heatmaps(tables, paths["cross_generator"])
    return list(paths.values())
