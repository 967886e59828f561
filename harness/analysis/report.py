"""`report`: one self-contained file (HTML, figures embedded; or Markdown beside its figures/) with a
sweep's settings, leaderboard with intervals, the paper's Table 2, robustness, and every figure."""
import base64
import html
import json
from pathlib import Path

import pandas as pd

from harness.analysis.figures import completed_runs, cross_generator_tables, make_figures, robustness_table
from harness.analysis.leaderboard import leaderboard, with_paper
from harness.render import interval
from harness.errors import UserError
from harness.store.atomic import refuse_symlink, write_text_atomic
from harness.store.paths import SweepPaths
from harness.store.records import read_spec
from harness.zoo import PAPER_PROBABLE_MODE

FIGURE_CAPTIONS = {
    "training_curves": "Training and validation accuracy and loss per epoch (the paper's Figure 5).",
    "roc": "ROC curves on the test split.",
    "accuracy_vs_speed": "Test accuracy against training throughput, one point per architecture.",
    "confusion": "Confusion matrices on the test split (seeds summed).",
    "robustness": "Test accuracy under JPEG compression, downscaling and blur of both classes.",
    "cross_generator": "Test AUC of each architecture trained on one generator's fakes and tested on each generator's.",
}


def _percent(value: object) -> str:
    return "-" if value is None or pd.isna(value) else f"{100 * float(value):.2f}"


def _with_interval(row: pd.Series, metric: str) -> str:
    if pd.isna(row.get(metric)):
        return "-"
    low, high = row.get(f"{metric}_lo"), row.get(f"{metric}_hi")
    return _percent(row[metric]) + ("" if pd.isna(low) or pd.isna(high) else f" {interval(low, high)}")


def sections(sweep: SweepPaths) -> list[tuple[str, str, object]]:
    """(title, kind, content) in report order; kind is text, table or figure."""
    spec = read_spec(sweep)
    rows = with_paper(leaderboard(sweep))
    board = pd.DataFrame(rows)
    ranked = pd.DataFrame({
        "model": board["model"], "seeds": board["seeds"],
        "accuracy % (95% CI)": [_with_interval(r, "accuracy") for _, r in board.iterrows()],
        "AUC % (95% CI)": [_with_interval(r, "auc") for _, r in board.iterrows()],
        "AP %": board["average_precision"].map(_percent), "EER %": board["eer"].map(_percent),
        "acc. at val threshold %": board["accuracy_at_threshold"].map(_percent),
        "F1 %": board["f1"].map(_percent), "train img/s": board["train_images_per_s"].map(lambda v: "-" if pd.isna(v) else f"{v:,.1f}"),
        "overlaps with": board["overlaps"], "status": board["status"],
    })
    paper = pd.DataFrame({
        "model": board["model"], "params": board["params"], "paper params": board["paper_params"],
        **{f"{m} %": board[m].map(_percent) for m in ("accuracy", "loss", "precision", "recall", "f1")},
        **{f"paper {m} %": board[f"paper_{m}"].map(_percent) for m in ("accuracy", "loss", "precision", "recall", "f1")},
    })
    runs = completed_runs(sweep)
    out: list[tuple[str, str, object]] = [
        ("Settings", "text", "```\n" + json.dumps({k: getattr(spec, k) for k in ("sweep_id", "created", "dataset", "models", "seeds", "train", "cluster")},
                                                  indent=2) + "\n```"),
        ("Leaderboard", "text", "Mean over seeds with a 95% Student-t interval; 'overlaps with' names the architectures "
                                "whose accuracy interval overlaps this one's (ranks the data cannot separate)."),
        ("", "table", ranked),
        ("Beside the paper's Table 2", "table", paper),
    ]
    if runs:
        robust = robustness_table(runs).map(_percent).reset_index(names="model")
        out.append(("Robustness (test accuracy %)", "table", robust))
    if board["variant"].ne("").any():
        by_variant = board.pivot_table(index="architecture", columns="variant", values="accuracy", sort=False).map(_percent)
        title = ("The paper's question: each architecture with its own preprocessing and with Keras' caffe mode "
                 "(the paper's likely input for all eight); test accuracy %") if PAPER_PROBABLE_MODE in by_variant.columns \
            else "Test accuracy % by variant"
        out.append((title, "table", by_variant.reset_index()))
    for model, table in cross_generator_tables(sweep).items():
        out.append((f"{model}: test AUC % across generators (rows: trained on, columns: tested on)", "table",
                    table.map(_percent).reset_index()))
    for path in make_figures(sweep, rows):
        out.append((FIGURE_CAPTIONS[path.stem], "figure", path))
    return out


def check_report_targets(sweep: SweepPaths, path: Path) -> None:
    """Before anything is written: no link planted where the report or a figure goes, and a run to report."""
    refuse_symlink(path)
    refuse_symlink(sweep.figures)
    if sweep.figures.is_dir():
        for planted in sweep.figures.iterdir():
            refuse_symlink(planted)
    rows = leaderboard(sweep)
    if not any(row["seeds"] for row in rows):
        states = "; ".join(f"{row['model']}: {row['status']}" for row in rows)
        raise UserError(f"sweep {sweep.sweep_id} has no completed run: nothing to report ({states}); "
                        f"python -m harness status {sweep.sweep_id} shows where its runs stand")


def write_report(sweep: SweepPaths, fmt: str = "html") -> Path:
    """Write report.html (self-contained) or report.md (beside figures/); returns its path."""
    path = sweep.report(fmt)
    check_report_targets(sweep, path)
    parts = sections(sweep)
    if fmt == "md":
        lines = [f"# Sweep {sweep.sweep_id}"]
        for title, kind, content in parts:
            if kind == "figure":
                lines += [f"![{title}](figures/{content.name})", f"*{title}*"]
            else:
                lines += [f"## {title}" if title else "", content.to_markdown(index=False) if kind == "table" else content]
        write_text_atomic(path, "\n\n".join(line for line in lines if line) + "\n")
        return path
    body = [f"<h1>Sweep {html.escape(sweep.sweep_id)}</h1>"]
    for title, kind, content in parts:
        if kind == "figure":
            data = base64.b64encode(content.read_bytes()).decode()
            body.append(f'<figure><img src="data:image/png;base64,{data}" style="max-width:100%"><figcaption>{html.escape(title)}</figcaption></figure>')
        else:
            if title:
                body.append(f"<h2>{html.escape(title)}</h2>")
            body.append(content.to_html(index=False, border=0) if kind == "table" else
                        f"<pre>{html.escape(content.strip('`'))}</pre>" if content.startswith("```") else f"<p>{html.escape(content)}</p>")
    style = "body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}"
    write_text_atomic(path, f"<!doctype html><html><head><meta charset='utf-8'><title>Sweep {html.escape(sweep.sweep_id)}</title>"
                            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")
    return path
