"""Showing results: rich tables on a terminal, csv, markdown and json, each cell and header as every
table shows it (analysis.cells: percentages, intervals, labels; the report lays out its own HTML and
Markdown)."""
import csv
import io
import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.analysis.cells import fmt, label
from harness.inert import for_markdown, for_markup, for_terminal

PIPED_WIDTH = 250  # piped output is not cut to 80 columns: a table in a log or a file keeps every column whole


def console(stderr: bool) -> Console:
    """A console as wide as COLUMNS says, else the terminal (on a terminal) or PIPED_WIDTH. It writes to
    whatever sys.stdout (sys.stderr) is when it prints, as rich's default console does."""
    columns = os.environ.get("COLUMNS", "")
    terminal = (sys.stderr if stderr else sys.stdout).isatty()
    width = int(columns) if columns.isdecimal() and int(columns) > 0 else None if terminal else PIPED_WIDTH
    return Console(stderr=stderr, width=width)


out, err = console(stderr=False), console(stderr=True)

LEFT = {"model", "status", "run_id", "reason", "node", "timm", "timm_weights", "kind", "label", "image", "verdict", "item",
        "this sweep", "paper", "partition", "setting", "source", "state", "gpu_types", "not_separable_from",
        "not_tested_against", "figure", "note", "test", "beyond_spread", "group", "system", "settings", "sweep"}

# Columns of prose: they wrap within PROSE_WIDTH rather than widen the table (every other cell stays whole).
PROSE = {"reason", "note", "caption", "separability_reason", "tags"}
PROSE_WIDTH = 28


def cell_width(column: str, rows: list[dict[str, Any]]) -> int:
    """The width a column needs: its widest cell (a prose column's up to PROSE_WIDTH), and its header's
    longest word (a header wraps at its spaces)."""
    cells = max((len(fmt(column, row.get(column))) for row in rows), default=1)
    header = max(len(word) for word in label(column).split() or [""])
    return max(header, min(cells, PROSE_WIDTH) if column in PROSE else cells)


def fit(rows: list[dict[str, Any]], columns: list[str], optional: list[str], width: int) -> list[str]:
    """The columns that fit in width, each cell whole: the optional ones (first listed, first dropped)
    go until the rest fit (a frame of 3 characters a column and 1)."""
    kept, needed = list(columns), {c: cell_width(c, rows) for c in columns}
    for column in [c for c in optional if c in columns]:
        if sum(needed[c] + 3 for c in kept) + 1 <= width:
            break
        kept.remove(column)
    return kept


def table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None, caption: str | None = None,
          compact: bool = False, optional: tuple[str, ...] = (), width: int | None = None) -> Table:
    """A rich table whose cells are never cut: where width is given, optional columns (first listed,
    first dropped) make way until the table fits, and the caption names them. compact: no outer frame,
    no padding at the edges (4 columns fewer)."""
    shown_columns = fit(rows, columns, list(optional), width) if width else columns
    dropped = [label(c) for c in columns if c not in shown_columns]
    if dropped:
        caption = (caption + "\n" if caption else "") + f"--wide for {len(dropped)} more columns: {', '.join(dropped)}"
    shown = Table(title=title and escape(for_terminal(title)), caption=caption and escape(for_terminal(caption)), caption_justify="left",
                  show_edge=not compact, pad_edge=not compact)
    # a column exactly as wide as its widest cell, or its header where the line has room for every header
    # whole (else the header wraps at its spaces); prose takes what is left
    widths = {c: cell_width(c, rows) for c in shown_columns}
    whole_headers = {c: max(widths[c], len(label(c))) for c in shown_columns}
    if width is None or sum(whole_headers.values()) + 3 * len(shown_columns) + 1 <= width:
        widths = whole_headers
    for column in shown_columns:
        shown.add_column(escape(label(column)), justify="left" if column in LEFT else "right",
                         width=None if column in PROSE else widths[column], overflow="fold")
    for row in rows:
        shown.add_row(*(escape(for_terminal(fmt(c, row.get(c)))) for c in shown_columns))  # "ResNet50 [caffe]" is not markup
    return shown


def print_table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None, caption: str | None = None,
                compact: bool = False, optional: tuple[str, ...] = (), wide: bool = False) -> None:
    """The table at the console's width (optional columns dropped to fit), or with wide every column, the
    console widened to hold them."""
    if wide:  # a console of its own (rich clamps a print's width to its console's), as wide as whole headers need
        needed = sum(max(cell_width(c, rows), len(label(c))) + 3 for c in columns) + 1
        Console(width=max(out.width, needed)).print(table(rows, columns, title, caption, compact))
    else:
        out.print(table(rows, columns, title, caption, compact, optional, out.width))


def as_csv(rows: list[dict[str, Any]]) -> str:
    """Every key of the rows a column; a list is one cell, its items joined by ';'."""
    columns = list(dict.fromkeys(c for row in rows for c in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: for_terminal(";".join(map(str, v))) if isinstance(v, list) else for_terminal(v) if isinstance(v, str) else v
                      for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def as_markdown(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(label(c) for c in columns) + " |",
             "|" + "|".join(":---" if c in LEFT else "---:" for c in columns) + "|"]
    lines += ["| " + " | ".join(for_markdown(for_terminal(fmt(c, row.get(c)))) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def print_rows(fmt: str, rows: list[dict[str, Any]], columns: list[str], title: str | None = None,
               caption: str | None = None, meta: dict[str, Any] | None = None, shown: list[dict[str, Any]] | None = None,
               optional: tuple[str, ...] = (), wide: bool = False) -> None:
    """A command's rows in the format asked (ROW_FORMATS): json is a list of row objects (pandas.read_json
    reads it as is), or with meta (--meta) an object of meta's keys and "rows"; csv has every field of the
    rows; table and markdown show columns of shown (the rows as a table shows them; default rows), with the
    caption under them; a table drops optional columns to fit the console, unless wide (print_table)."""
    if fmt == "json":
        print(as_json(rows if meta is None else {**meta, "rows": rows}))
    elif fmt == "csv":
        print(as_csv(rows), end="")
    elif fmt == "markdown":
        print(as_markdown(rows if shown is None else shown, columns) + (f"\n{for_markdown(for_terminal(caption))}\n" if caption else ""),
              end="")
    else:
        print_table(rows if shown is None else shown, columns, title, caption, optional=optional, wide=wide)


def as_json(data: Any) -> str:
    """JSON any reader takes: what is read is checked finite where it enters (store.schema.parse_json), so
    a NaN or an infinity here is a bug, refused rather than printed as JSON no other reader accepts."""
    return json.dumps(data, indent=2, default=str, allow_nan=False)


def say(message: str, warning: bool = False) -> None:
    """A line for the user on stderr, shown as written: its control characters as escapes, its brackets
    not read as markup; warning: marked as one."""
    text = for_markup(for_terminal(message))
    err.print(f"[yellow]warning:[/yellow] {text}" if warning else text, highlight=False)
