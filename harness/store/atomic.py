"""Safe writes: a reader sees the old file or the new one, never half of one; nothing is written
through a symbolic link; new files and folders honour the user's umask (a results folder shared by a
group stays readable by the group), a file replaced keeps its mode."""
import errno
import fcntl
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.store.schema import parse_json


def current_umask() -> int:
    """The process's umask, read without changing it (Linux reports it in /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def refuse_symlink(path: Path) -> None:
    """A planted link (report.html -> ~/.bashrc) must not redirect a write elsewhere."""
    if Path(path).is_symlink():
        raise UserError(f"{path} is a symbolic link; the harness does not write through links: remove it first")


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, write: Callable[[Path], object], replace: bool = True) -> bool:
    """Call write(tmp_path) on a temporary file beside path, flush it to disk, then rename it over path. The
    file keeps the mode of the one it replaces (a references file kept 600 stays 600), a new one takes the
    umask's. replace=False: written only where path does not exist yet, at once (a link, not a rename);
    returns whether it was written."""
    path = Path(path)
    refuse_symlink(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~current_umask()  # mkstemp makes 0600: a shared folder must stay readable
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        elif not _link_new(tmp, path):
            return False
        _fsync_folder(path.parent)
        return True
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _link_new(tmp: Path, path: Path) -> bool:
    """Give tmp's file the name path where no file has it yet, at once (a hard link; tmp's name goes);
    whether it was given. On NFS a link retried after a lost reply says "exists" though it was made: the
    file's link count tells. Where the file system has no hard links, a rename where path is absent (two
    writers at once could then both write)."""
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            return os.stat(tmp).st_nlink > 1
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP):
                raise
            if path.exists():
                return False
            os.replace(tmp, path)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str, replace: bool = True) -> bool:
    return write_atomic(path, lambda tmp: tmp.write_text(text), replace)


def write_json_atomic(path: Path, data: Any, replace: bool = True) -> bool:
    return write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n", replace)


def read_json(path: Path) -> Any:
    """The JSON in path; ValueError (with the reason) when it is not whole JSON, or nests too deep."""
    return parse_json(Path(path).read_bytes())


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on a lock file beside the data (held by this process only: fcntl.lockf is not
    shared with forked children, so a killed holder always releases it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UserError(f"lock file {path} is not a regular file")
        fcntl.lockf(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def locked_or_none(path: Path, wait_s: float = 0.0) -> Iterator[bool]:
    """Like locked, waiting at most wait_s: yields False when another process still holds the lock then."""
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(min(1.0, wait_s))
        yield True
    finally:
        os.close(fd)
