"""Files the user names (`--out`, `--references`): one is written only where a user could mean it, and read
only where it is a regular file of bounded size.

A command writes the file a user named (dashboard --out, history --out, check --update-references,
data prepare's manifest) after check_output: never through a symbolic link, onto a device, a FIFO or a
folder, never over what the harness keeps (a perflog, a sweep file, a record, jobs.json, anything in a
sweep's folder), and over an existing file only where it is the command's own output, or with --force.
A file read from such a path is opened without blocking and read only where it is a regular file of at
most the size given (a FIFO would hang the reader, /dev/zero fill its memory).
"""
import os
import stat
from pathlib import Path

from harness.errors import UserError
from harness.store.atomic import refuse_symlink
from harness.store.paths import KEPT_NAMES, SPEC_FILE
from harness.store.regular import Unreadable, kind_of, read_regular

HEAD_BYTES = 4096  # how much of an existing file is read to tell whether a command wrote it


def kept_by_harness(path: Path) -> str | None:
    """What the harness keeps at path, in words; None where it keeps nothing there. A file named as a
    results folder's files are (a perflog, sweep.json, jobs.json, result.json), or anything inside a
    sweep's folder (one that holds sweep.json, however reached)."""
    path = Path(os.path.abspath(path))
    if path.name in KEPT_NAMES:
        return f"a file the harness keeps ({path.name})"
    parent = path.parent.resolve()
    sweep = next((folder for folder in [parent, *parent.parents] if (folder / SPEC_FILE).is_file()), None)
    return None if sweep is None else f"inside the folder of sweep {sweep.name}, which the harness keeps"


def check_output_place(path: Path, option: str, folder: bool = False) -> None:
    """UserError, naming option, where a command may not write the file (folder: the folder) a user named
    at path: a link, what the harness keeps (kept_by_harness), or anything but a regular file (a folder)."""
    refuse_symlink(path)
    kept = kept_by_harness(path)
    if kept:
        raise UserError(f"{option} {path} is {kept}: give another path")
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there yet (the write says why it cannot make it)
        return
    if not (stat.S_ISDIR(mode) if folder else stat.S_ISREG(mode)):
        raise UserError(f"{option} {path} is {kind_of(mode)}, not a {'folder' if folder else 'file'} the harness writes")


def check_output(path: Path, option: str, marker: bytes, force: bool = False) -> None:
    """check_output_place, and an existing file replaced only where it is this command's own output (its
    first HEAD_BYTES hold marker), or where force (the user's --force) says so."""
    check_output_place(path, option)
    if not force and Path(path).exists() and marker not in read_user_file(path, option, HEAD_BYTES, whole=False):
        raise UserError(f"{option} {path} exists and is not what this command writes: give another path, or --force "
                        "to replace it")


def read_user_file(path: Path, what: str, limit: int, whole: bool = True) -> bytes:
    """read_regular, with UserError naming what where the path is no regular file of at most limit bytes."""
    try:
        return read_regular(path, limit, whole)
    except Unreadable as err:
        raise UserError(f"{what} {path} {err}") from None
