"""Showing results: rich tables on a terminal, csv, markdown and json, with one formatter for
percentages and intervals shared by every command (the report lays out its own HTML and Markdown)."""
import csv
import io
import json
import math
import os
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

PIPED_WIDTH = 250  # piped output is not cut to 80 columns: a table in a log or a file keeps every column whole


def console(stderr: bool) -> Console:
    """A console as wide as COLUMNS says, else the terminal (on a terminal) or PIPED_WIDTH. It writes to
    whatever sys.stdout (sys.stderr) is when it prints, as rich's default console does."""
    columns = os.environ.get("COLUMNS", "")
    terminal = (sys.stderr if stderr else sys.stdout).isatty()
    width = int(columns) if columns.isdigit() and int(columns) > 0 else None if terminal else PIPED_WIDTH
    return Console(stderr=stderr, width=width)


out, err = console(stderr=False), console(stderr=True)

PERCENT = {"p_fake", "accuracy", "loss", "precision", "recall", "f1", "auc", "average_precision", "eer",
           "accuracy_at_threshold", "gpu_util_mean", "gpu_util_median", "val_accuracy", "mfu", "data_wait_fraction"}
LABELS = {"accuracy": "acc", "precision": "prec", "recall": "recall", "f1": "F1", "auc": "AUC", "loss": "loss",
          "train_images_per_s": "train img/s", "infer_images_per_s": "infer img/s", "gpu_util_mean": "GPU util",
          "val_accuracy": "val acc", "paper_params": "paper params", "input_size": "input", "keras_mode": "keras mode",
          "not_separable_from": "not separable from (5%)", "not_tested_against": "not tested against",
          "timm_weights": "timm weights"}
LEFT = {"model", "status", "run_id", "reason", "node", "timm", "timm_weights", "kind", "label", "image", "verdict", "item",
        "this sweep", "paper", "partition", "setting", "source", "state", "gpu types", "not_separable_from",
        "not_tested_against"}


def fmt(column: str, value: Any) -> str:
    """One cell: percentages for the [0, 1] metrics, thousands separators, '-' for what is unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, str):  # already formatted ("91.2 [99.3]")
        return value
    if column in PERCENT or column.removeprefix("paper_") in PERCENT:
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
    text = LABELS.get(column) or (f"paper {LABELS.get(base, base)}" if column.startswith("paper_") else column)
    return text + (" %" if base in PERCENT else "")


def table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None, caption: str | None = None,
          compact: bool = False) -> Table:
    """compact: no outer frame, no padding at the edges (4 columns fewer)."""
    shown = Table(title=title and escape(title), caption=caption and escape(caption), caption_justify="left",
                  show_edge=not compact, pad_edge=not compact)
    for column in columns:
        shown.add_column(escape(label(column)), justify="left" if column in LEFT else "right")
    for row in rows:
        shown.add_row(*(escape(fmt(c, row.get(c))) for c in columns))  # "ResNet50 [caffe]" is not markup
    return shown


def print_table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None, caption: str | None = None,
                compact: bool = False) -> None:
    out.print(table(rows, columns, title, caption, compact))


def as_csv(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(c for row in rows for c in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def as_markdown(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(label(c) for c in columns) + " |",
             "|" + "|".join(":---" if c in LEFT else "---:" for c in columns) + "|"]
    lines += ["| " + " | ".join(fmt(c, row.get(c)).replace("|", "\\|") for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def as_json(data: Any) -> str:
    """JSON any reader takes: what is read is checked finite where it enters (store.schema.parse_json), so
    a NaN or an infinity here is a bug, refused rather than printed as JSON no other reader accepts."""
    return json.dumps(data, indent=2, default=str, allow_nan=False)
