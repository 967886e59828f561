"""The SQLite caches beside results files (the perflog's index, a sweep's checked records): where one may be
kept, the locks that guard it, and how it is opened.

A cache is written only under its lock file held exclusive and read under it held shared: POSIX record
locks (fcntl), which NFS serves through its lock manager. SQLite keeps its rollback journal, never WAL,
whose shared-memory file does not work across NFS clients. Where this user cannot write beside the
results, a cache lives in the user's cache folder ($XDG_CACHE_HOME/harness, else ~/.cache/harness).
"""
import fcntl
import hashlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.store.atomic import current_umask


class Unusable(Exception):
    """This place cannot hold the cache for this user (read-only, not ours, full): the next one is tried."""


def user_cache(kind: str, source: Path) -> Path:
    """In the user's cache folder, the name (without suffix) of the cache of kind made from source."""
    given = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(given) if os.path.isabs(given) else Path.home() / ".cache"  # a relative one is ignored, as XDG says
    folder = base / "harness" / kind
    return folder / hashlib.sha256(str(Path(source).resolve()).encode()).hexdigest()[:24]


class FileLock:
    """A POSIX record lock (fcntl) on a lock file: exclusive or shared, as NFS's lock manager supports it."""

    def __init__(self, path: Path | None, writable: bool) -> None:
        self.fd: int | None = None
        if path is None:
            return
        try:
            if writable:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666 & ~current_umask())
            else:
                self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as err:
            if writable:
                raise Unusable(f"{path}: {err.strerror}") from None
            return  # no lock file, so no writer: what is there is read as it stands
        if not stat.S_ISREG(os.fstat(self.fd).st_mode):
            os.close(self.fd)
            raise Unusable(f"lock file {path} is not a regular file")

    def hold(self, exclusive: bool) -> None:
        if self.fd is not None:
            fcntl.lockf(self.fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.lockf(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)


@contextmanager
def shared(path: Path | None) -> Iterator[None]:
    """A lock held shared while what it guards is read (none where there is no lock to take, or it is held
    already: path None)."""
    lock = FileLock(path, writable=False)
    try:
        lock.hold(exclusive=False)
        yield
    finally:
        lock.close()


def connect(index: Path, read_only: bool) -> sqlite3.Connection:
    """A cache file (read-only: never created, never written); rollback journal, never WAL."""
    mode = "ro" if read_only else "rw"
    connection = sqlite3.connect(f"{index.absolute().as_uri()}?mode={mode}", uri=True, timeout=60, isolation_level="DEFERRED")
    if not read_only:
        connection.execute("PRAGMA journal_mode = DELETE")
    return connection
