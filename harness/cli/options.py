"""Option types and the options several commands share: a value typed on the command line is
checked, and a path made absolute, where it is parsed."""
import argparse
import copy
import math
import os
from pathlib import Path
from typing import Any


def user_path(text: str) -> Path:
    """A path as typed, made absolute here, once: sweeps, jobs and workers run in other folders."""
    return Path(os.path.abspath(os.path.expanduser(text)))


def dataset_path(text: str) -> str:
    """--dataset: 'demo', or a folder made absolute (user_path)."""
    return text if text == "demo" else str(user_path(text))


def profile_name_or_path(text: str) -> str:
    """--profile: a packaged profile's name, or a file (it has a suffix, as load_profile reads it) made absolute."""
    return str(user_path(text)) if Path(text).suffix else text


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def world_sizes(text: str) -> list[int]:
    """--scaling 1,2,4,8: distinct rank counts, 1 among them (the baseline of every speedup), ascending."""
    sizes = [positive_int(part.strip()) for part in text.split(",")] if text.strip() else []
    if 1 not in sizes or len(set(sizes)) != len(sizes) or len(sizes) < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: give distinct rank counts, 1 among them (the baseline), e.g. 1,2,4")
    return sorted(sizes)


def non_negative_int(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else None
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def add_interval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interval", type=positive_float, metavar="SECONDS",
                        help="with --wait or --watch: seconds between two looks at the sweep (default: 2, growing to 60 "
                        "where a scheduler is asked: sites ask not to poll its accounting in tight loops)")


ROW_FORMATS = ("table", "csv", "json", "markdown")


def add_format(parser: argparse.ArgumentParser, *more: str, meta: bool = False, more_help: str = "") -> None:
    """--format, the same words on every command that prints rows (more: a command's own, such as png, and
    more_help what it gives); meta: --meta, JSON with what the rows are of."""
    parser.add_argument("--format", choices=[*ROW_FORMATS, *more], default="table",
                        help="table on a terminal; csv and json (a list of rows) for a program; markdown for a page"
                        + (f"; {more_help}" if more_help else ""))
    parser.add_argument("--wide", action="store_true",
                        help="table: every column, however wide (by default those the terminal cannot hold make way)")
    if meta:
        parser.add_argument("--meta", action="store_true",
                            help="with --format json: an object of what the rows are of, with the rows under \"rows\"")


RESULTS_VARIABLE = "HARNESS_RESULTS"


def add_results(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=user_path, default=os.environ.get(RESULTS_VARIABLE) or "results",
                        help=f"the folder of sweeps, read and written (default: ${RESULTS_VARIABLE}, else ./results)")


def add_sweep(parser: argparse.ArgumentParser) -> None:
    """The sweep a reading command reads: SWEEP (default: the latest) under --results."""
    parser.add_argument("sweep", nargs="?", help="sweep id or unique prefix (default: the latest)")
    add_results(parser)


class HelpFormatter(argparse.HelpFormatter):
    """Each option's help ends with its default, where it has one its help does not already state (an
    option without help shows its default alone)."""

    def _format_action(self, action: argparse.Action) -> str:
        if not action.help and shows_default(action):
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        return f"{text} (default: %(default)s)" if shows_default(action) and "default" not in text else text


def shows_default(action: argparse.Action) -> bool:
    return bool(action.option_strings) and action.default not in (None, False, [], argparse.SUPPRESS)


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (what is wrong and where), not a usage block."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog.removeprefix('python -m ')}: {message} (see --help)\n")
