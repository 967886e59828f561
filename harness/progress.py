"""Progress bars (rich) that stay quiet when nobody watches a terminal."""
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

console = Console(stderr=True)


def progress_bar() -> Progress:
    """A rich progress bar on stderr; disabled when stderr is not a terminal (batch logs stay readable)."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, disable=not sys.stderr.isatty(), transient=False,
    )
