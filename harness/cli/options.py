"""Option types and the options several commands share: a value typed on the command line is
checked, and a path made absolute, where it is parsed."""
import argparse
import copy
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.inert import for_terminal


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


def whole_number_within(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from low to high."""
    def parse(text: str) -> int:
        shown = text if len(text) <= 40 else f"a text of {len(text):,} characters"
        try:
            value = int(text)
        except ValueError:  # not a number, or over Python's 4,300 digits
            raise argparse.ArgumentTypeError(f"must be a whole number from {low:,} to {high:,}, got {shown}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low:,} to {high:,}, got {shown}")
        return value
    return parse


def world_sizes(text: str) -> list[int]:
    """--scaling 1,2,4,8: distinct rank counts, 1 among them (the baseline of every speedup), ascending."""
    sizes = [positive_int(part.strip()) for part in text.split(",")] if text.strip() else []
    if 1 not in sizes or len(set(sizes)) != len(sizes) or len(sizes) < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: give distinct rank counts, 1 among them (the baseline), e.g. 1,2,4")
    return sorted(sizes)


def non_negative_int(text: str) -> int:
    value = int(text) if text.lstrip("-").isdecimal() else None
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


INTERVAL_SECONDS = (1.0, 86_400.0)  # a look a second at most (sacct is a scheduler's query), at least one a day


def interval_seconds(text: str) -> float:
    """--interval: seconds within INTERVAL_SECONDS."""
    low, high = INTERVAL_SECONDS
    value = positive_float(text)
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g} seconds, got {text}")
    return value


def add_interval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interval", type=interval_seconds, metavar="SECONDS",
                        help="with --wait or --watch: seconds between two looks at the sweep, from 1 to 86400 (default: 2, "
                        "growing to 60 where a scheduler is asked: sites ask not to poll its accounting in tight loops)")


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


def add_force(parser: argparse.ArgumentParser, what: str) -> None:
    """--force: replace an existing file at --out that this command did not write (never a device, a FIFO,
    or a file the harness keeps: store.user_files)."""
    parser.add_argument("--force", action="store_true",
                        help=f"write {what} over an existing file that this command did not write")


def check_option_pairs(args: argparse.Namespace) -> None:
    """An option the command would ignore beside the others given, refused in one line, on every command that
    has it: --meta and --wide where the format asked has no use for them (add_format), --interval without
    --watch or --wait to set the pace of, --watch with a format, --wide or --all it does not follow in, --out
    and --force where the format asked writes no figure (history)."""
    shown = getattr(args, "format", None)
    if getattr(args, "interval", None) is not None and not (getattr(args, "watch", False) or getattr(args, "wait", False)):
        raise UserError("--interval sets how often --watch (or sweep's --wait) looks at the sweep: give it with one of them")
    if getattr(args, "watch", False) and shown not in (None, "table"):
        raise UserError(f"--watch follows the sweep in a table (plain lines where the output is no terminal); --format {shown} "
                        "lists it once: give one of them")
    if getattr(args, "watch", False) and (getattr(args, "wide", False) or getattr(args, "all", False)):
        raise UserError(f"--{'wide' if args.wide else 'all'} shapes the table status prints once; --watch follows the sweep "
                        "in a table of its own: give one of them")
    if shown not in (None, "png") and (getattr(args, "out", None) is not None or getattr(args, "force", False)):
        raise UserError(f"--{'out' if getattr(args, 'out', None) is not None else 'force'} is for the figure of --format png; "
                        f"--format {shown} prints its rows (redirect them to a file: > FILE)")
    if getattr(args, "meta", False) and shown != "json":
        raise UserError(f"--meta puts what the rows are of beside them in --format json; --format {shown} has no place for it")
    if getattr(args, "wide", False) and shown != "table":
        raise UserError(f"--wide shows every column of a --format table; --format {shown} shows every column already")


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
    """argparse, but a bad argument is one line (what is wrong and where), not a usage block. declare: a
    command's options, declared when the command is parsed or its help shown, not before: those of `sweep`
    import its backends and training options, which no other command needs at its start (20 ms:
    `status` on an empty folder 0.13 s before, 0.11 s after)."""

    def __init__(self, *args: Any, declare: Callable[["Parser"], None] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self._declare = declare

    def declared(self) -> "Parser":
        """This parser with its options declared."""
        declare, self._declare = self._declare, None
        if declare is not None:
            declare(self)
        return self

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        return super(Parser, self.declared()).parse_known_args(args, namespace)

    def format_help(self) -> str:
        return super(Parser, self.declared()).format_help()

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, for_terminal(f"error: {self.prog.removeprefix('python -m ')}: {message} (see --help)") + "\n")
