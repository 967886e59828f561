"""Showing results: rich tables on a terminal, csv, markdown and json, each cell and header as every
table shows it (analysis.cells: percentages, intervals, labels; the report lays out its own HTML and
Markdown)."""
from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from harness.analysis.cells import fmt, label
from harness.inert import for_markdown, for_markup, for_terminal

# rich is imported where a table or a message is drawn: its import is 40 ms of a command's start, and JSON, CSV
# and Markdown output need none of it (`status --format json` of 10,000 runs on a sweep, say).
if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

PIPED_WIDTH = 250  # piped output is not cut to 80 columns: a table in a log or a file keeps every column whole


def console(stderr: bool) -> Console:
    """A console as wide as COLUMNS says, else the terminal (on a terminal) or PIPED_WIDTH. It writes to
    whatever sys.stdout (sys.stderr) is when it prints, as rich's default console does."""
    from rich.console import Console

    columns = os.environ.get("COLUMNS", "")
    terminal = (sys.stderr if stderr else sys.stdout).isatty()
    width = int(columns) if columns.isdecimal() and int(columns) > 0 else None if terminal else PIPED_WIDTH
    return Console(stderr=stderr, width=width)


@cache
def _console_of(stream: str) -> Console:
    return console(stderr=stream == "err")


def __getattr__(name: str) -> Console:
    """`out` and `err`, the consoles of stdout and stderr, each made where it is first used."""
    if name in ("out", "err"):
        return _console_of(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

LEFT = {"model", "status", "run_id", "reason", "node", "timm", "timm_weights", "kind", "label", "image", "verdict", "item",
        "this sweep", "paper", "partition", "setting", "source", "state", "gpu_types", "gpu_model", "capability",
        "torch_runs_it", "not_separable_from", "not_tested_against", "figure", "note", "test", "beyond_spread", "group",
        "system", "settings", "sweep"}

# Columns of words (reasons, notes, sources, lists of names, a sweep's settings): they wrap at their spaces,
# each word whole. Every other cell (a number, an identifier, a name, an interval) stands whole on one line.
PROSE = {"reason", "note", "caption", "separability_reason", "tags", "source", "system", "settings", "status", "item",
         "this sweep", "paper", "gpu_types", "not_separable_from", "not_tested_against", "test"}
PROSE_LEAST = 16  # a prose column is not narrowed below this (or its longest word): columns make way first


@dataclass(frozen=True)
class Shape:
    """A column as a terminal can show it: its header, its cells' text, and whether they wrap at their spaces."""

    name: str
    header: str
    cells: list[str]
    prose: bool

    @property
    def least(self) -> int:
        """The narrowest it can be: its widest cell (a prose cell's longest word), its header's longest word."""
        cells = _widths(word for cell in self.cells for word in cell.split()) if self.prose else _widths(self.cells)
        return max([1, *_widths(self.header.split()), *cells])

    @property
    def most(self) -> int:
        """Every cell and its header on one line."""
        return max([1, *_widths([self.header, *self.cells])])


def _widths(texts: Iterable[str]) -> list[int]:
    """The width each line of the texts takes on a terminal."""
    from rich.cells import cell_len

    return [cell_len(line) for text in texts for line in text.splitlines()]


def shape(column: str, rows: list[dict[str, Any]]) -> Shape:
    return Shape(column, label(column), [for_terminal(fmt(column, row.get(column))) for row in rows], column in PROSE)


def prose_floor(shapes: list[Shape]) -> int:
    """How narrow rich may make a prose column: PROSE_LEAST, or the longest word of any prose column."""
    return max([PROSE_LEAST, *(s.least for s in shapes if s.prose)])


def frame(columns: int, compact: bool) -> int:
    """The characters a table's frame and padding take on a line: 3 a column, and 1 (compact: 4 fewer)."""
    return 3 * columns + (-3 if compact else 1)


def needed(shapes: list[Shape], compact: bool, whole_headers: bool) -> int:
    """The width a table of these columns needs: every whole column as wide as its widest cell (or its header,
    with whole_headers), every prose column as wide as prose_floor or its text (rich levels the prose columns,
    narrowing the widest first), and its frame."""
    floor = prose_floor(shapes)
    return sum(min(s.most, floor) if s.prose else s.most if whole_headers else s.least for s in shapes) + frame(len(shapes), compact)


def fit(shapes: list[Shape], optional: tuple[str, ...], width: int, compact: bool) -> list[Shape]:
    """The columns that fit in width, each cell whole: the optional ones (first listed, first dropped), then
    any but the first from the right, make way until the rest fit."""
    kept = list(shapes)
    by_name = {s.name: s for s in shapes}
    for name in [*(c for c in optional if c in by_name), *(s.name for s in reversed(shapes[1:]) if s.name not in optional)]:
        if needed(kept, compact, whole_headers=False) <= width:
            break
        kept.remove(by_name[name])
    return kept


def _column(column: Shape, floor: int, whole_headers: bool, room: int | None) -> dict[str, Any]:
    """rich's settings for a column: a whole column neither wraps nor shrinks, as wide as its widest cell (or its
    header), its header wrapping at its spaces. A prose column wraps at its spaces, and rich narrows it, down to
    prose_floor, where the table is too wide for the console. A cell wider than the console's room (a long path,
    alone in the table) folds rather than runs off the screen. (No ratio: rich shares room by ratio only in a
    table expanded to the console's width, and a table here is as wide as its cells.)"""
    from rich.text import Text

    justify = "left" if column.name in LEFT else "right"
    width = column.most if whole_headers else column.least
    if column.prose or (room is not None and width > room):
        return {"header": Text(column.header), "justify": justify, "overflow": "fold",
                "min_width": min(column.most, floor, room or floor), "max_width": room}
    return {"header": Text(column.header, no_wrap=False), "justify": justify, "no_wrap": True, "overflow": "fold",
            "min_width": width, "max_width": width}


def table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None, caption: str | None = None,
          compact: bool = False, optional: tuple[str, ...] = (), width: int | None = None) -> Table:
    """A rich table whose cells are never cut: where width is given, the columns that do not fit (optional first,
    first listed first) make way, and the caption names them; whole headers where every one fits. compact: no
    outer frame, no padding at the edges (4 columns fewer)."""
    from rich.table import Table
    from rich.text import Text

    shapes = [shape(c, rows) for c in columns]
    shown = fit(shapes, optional, width, compact) if width else shapes
    dropped = [s.header for s in shapes if s not in shown]
    if dropped:
        more = f"{len(dropped)} more column{'s' if len(dropped) > 1 else ''}"
        caption = (caption + "\n" if caption else "") + f"--wide for {more}: {', '.join(dropped)}"
    whole_headers = width is None or needed(shown, compact, whole_headers=True) <= width
    floor = prose_floor(shown)
    made = Table(title=title and Text(for_terminal(title)), caption=caption and Text(for_terminal(caption)),
                 caption_justify="left", show_edge=not compact, pad_edge=not compact)
    for column in shown:
        made.add_column(**_column(column, floor, whole_headers, width and width - frame(1, compact)))
    for index in range(len(rows)):
        made.add_row(*(Text(column.cells[index]) for column in shown))  # Text: "ResNet50 [caffe]" is no markup
    return made


def print_table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None, caption: str | None = None,
                compact: bool = False, optional: tuple[str, ...] = (), wide: bool = False) -> None:
    """The table at the console's width (columns dropped to fit), or with wide every column, the console
    widened to hold them."""
    from rich.console import Console

    out = _console_of("out")
    if wide:  # a console of its own (rich clamps a print's width to its console's), as wide as whole headers need
        width = max(out.width, needed([shape(c, rows) for c in columns], compact, whole_headers=True))
        Console(width=width).print(table(rows, columns, title, caption, compact, width=width))
    else:
        out.print(table(rows, columns, title, caption, compact, optional, out.width))


def as_csv(rows: list[dict[str, Any]]) -> str:
    """Every key of the rows a column; a list is one cell, its items joined by ';'. Control characters are
    made inert in the text as a whole, once (for_terminal keeps tabs, and the newlines CSV quotes):
    per cell, it was a quarter of `history --format csv` on 100,000 perflog lines."""
    columns = list(dict.fromkeys(c for row in rows for c in row))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([";".join(map(str, v)) if isinstance(v, list) else v for v in (row.get(c) for c in columns)] for row in rows)
    return for_terminal(buffer.getvalue())


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


# What is read is checked finite where it enters (store.schema.parse_json), so a NaN or an infinity here is a
# bug, refused rather than printed as JSON no other reader accepts.
_ENCODER = json.JSONEncoder(default=str, allow_nan=False)


def as_json(data: Any) -> str:
    """JSON any reader takes, one row a line: a list of rows, or an object whose "rows" are one (--meta),
    each row in json's C encoder (an indented dump runs in Python: 80 ms for 10,000 status rows, against 35)."""
    if isinstance(data, dict) and isinstance(data.get("rows"), list):
        head = "".join(_ENCODER.encode({key: value})[1:-1] + ", " for key, value in data.items() if key != "rows")  # keys as JSON has them
        return f'{{{head}"rows": {as_json(data["rows"])}}}'
    if isinstance(data, list) and data:
        return "[\n" + ",\n".join(map(_ENCODER.encode, data)) + "\n]"
    return _ENCODER.encode(data)


def say(message: str, warning: bool = False) -> None:
    """A line for the user on stderr, shown as written: its control characters as escapes, its brackets
    not read as markup; warning: marked as one."""
    text = for_markup(for_terminal(message))
    _console_of("err").print(f"[yellow]warning:[/yellow] {text}" if warning else text, highlight=False)
