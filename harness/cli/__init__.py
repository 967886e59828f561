"""The command line: parse, call one use case, render. Bad input ends in one line and exit code 2.

Each command group is a module that declares its commands' options beside their handlers
(`add_commands`). Nothing heavy is imported at module level: each command imports what it needs,
so `status` and `--help` start without torch, timm or submitit.
"""
import argparse
import os
import re
import shutil
import sys

from harness.cli import results, setup, sweep, track
from harness.cli.options import Parser, check_option_pairs
from harness.errors import UserError
from harness.inert import for_terminal
from harness.version import __version__

COMMAND_GROUPS = (setup, sweep, track, results)  # in the order --help lists them


def build_parser() -> argparse.ArgumentParser:
    # `harness` where the console script was typed, `python -m harness` otherwise
    prog = "harness" if os.path.basename(sys.argv[0]) == "harness" else "python -m harness"
    parser = Parser(prog=prog, description="Benchmark deep-fake face detectors on a cluster or this machine.")
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in COMMAND_GROUPS:
        group.add_commands(commands)
    return parser


def os_error_line(error: OSError) -> str:
    """What the system refused, and where: 'No space left on device: results/x/code/harness/sweeps.py'."""
    if isinstance(error, shutil.Error) and error.args and isinstance(error.args[0], list) and error.args[0]:
        return re.sub(r"^\[Errno \d+\] ", "", str(error.args[0][0][2]))  # a tree's copy: (src, dst, why) per file
    where = " -> ".join(str(name) for name in (error.filename, error.filename2) if name is not None)
    return f"{error.strerror or type(error).__name__}{f': {where}' if where else ''}"


def missing_module_line(error: ModuleNotFoundError) -> str:
    """A dependency this Python lacks (harness run from a checkout it was not installed from), and the fix.
    `--help` needs none of them: the commands import theirs when they run."""
    return (f"this Python ({sys.executable}) has no module {error.name!r}, which harness needs: install harness and "
            "its dependencies into it with `python -m pip install -e '.[demo]'` in the checkout, as the README's first "
            "command does (README, \"The two commands\")")


def drop_unreadable_sizes() -> None:
    """COLUMNS or LINES that int() cannot read is dropped, and the terminal's own size holds: rich reads
    them where str.isdigit() accepts them, as it does '²' and '①'."""
    for name in ("COLUMNS", "LINES"):
        if not os.environ.get(name, "0").isdecimal():
            del os.environ[name]


def main(argv: list[str] | None = None) -> int:
    if sys.stdout is None or sys.stderr is None:  # started with it closed (`>&-`): what it says would go nowhere,
        if sys.stderr is not None:                # or into the next file opened, which takes its descriptor
            print("error: standard output is closed (`>&-`): send it somewhere, `> /dev/null` to drop it", file=sys.stderr)
        return 2
    drop_unreadable_sizes()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a bad argument already explained in one line
        return int(stop.code or 0)
    try:
        check_option_pairs(args)
        code = int(args.func(args))
        sys.stdout.flush()  # here, not at exit: a reader that has gone (`| head`) is met inside this try
        return code
    except BrokenPipeError:
        # The reader of stdout went away (`status --format json | head -1`): stop quietly as a killed
        # writer would, with 141 (128 + SIGPIPE) as the shell reports one; stdout to /dev/null, so that
        # the interpreter's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (UserError, OSError, ModuleNotFoundError) as error:  # OSError: the disk refused (read-only, full, failing)
        if isinstance(error, ModuleNotFoundError) and (error.name or "harness").partition(".")[0] == "harness":
            raise  # a module of harness's own is missing: a damaged checkout, whose traceback says where
        reason = os_error_line(error) if isinstance(error, OSError) else \
            missing_module_line(error) if isinstance(error, ModuleNotFoundError) else str(error)
        print(f"error: {for_terminal(' '.join(reason.split()))}", file=sys.stderr)  # a NUL from a path shown as \x00, an ESC as \x1b
        return 2
    except KeyboardInterrupt:
        return 130
