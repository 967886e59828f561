"""Folders built whole (the demo, a uint8 cache): written in a temporary sibling, then renamed into place.

A builder that dies leaves its temporary behind; the next build of the same folder removes it, and never
a live builder's. A builder locks its temporary's lock file (.<name>.tmp-<pid>.lock) before it creates the
temporary, and holds it until the temporary is renamed or removed (fcntl.lockf: released when the process
dies, however it dies, and never held by a forked child). So a temporary whose lock is free was left by a
builder that is gone, whatever process its pid names now. Only lock files work here, on NFS as well:
no lock on a folder.
"""
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_SUFFIX = ".lock"


def _lock_of(temporary: Path) -> Path:
    return temporary.with_name(temporary.name + LOCK_SUFFIX)


def _lock(path: Path, wait: bool) -> int | None:
    """A descriptor holding the lock of the lock file now at path, or None when another process holds it
    (wait=False). Whoever holds a lock may unlink its file: a lock taken on a file no longer at path guards
    nothing, so the file is opened again (wait) or counted as held (not wait)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                return fd
        except (BlockingIOError, PermissionError):  # held by another process
            pass
        except FileNotFoundError:  # unlinked by its holder since it was opened
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        if not wait:
            return None


def remove_dead_temporaries(target: Path) -> list[Path]:
    """Remove the temporaries of target whose builder is gone (their lock is free); returns them."""
    prefix = f".{target.name}.tmp-"
    names = {p.name.removesuffix(LOCK_SUFFIX) for p in target.parent.iterdir() if p.name.startswith(prefix)}
    removed = []
    for temporary in sorted(target.parent / name for name in names):
        fd = _lock(_lock_of(temporary), wait=False)
        if fd is None:  # a live builder's
            continue
        try:
            if temporary.is_dir() and not temporary.is_symlink():
                shutil.rmtree(temporary, ignore_errors=True)
            else:
                temporary.unlink(missing_ok=True)
            _lock_of(temporary).unlink(missing_ok=True)  # last, and still held: the temporary is gone first
            removed.append(temporary)
        finally:
            os.close(fd)
    return removed


@contextmanager
def staging_folder(target: Path) -> Iterator[Path]:
    """A new empty folder beside target (.<name>.tmp-<pid>) to build in and rename onto target, locked
    while the caller builds; removed if the caller raises. Dead builders' temporaries go first."""
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(target)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    fd = _lock(_lock_of(temporary), wait=True)
    assert fd is not None  # a waiting lock returns only once it holds
    try:
        temporary.mkdir()  # after the lock: no other build ever sees this temporary unlocked
        try:
            yield temporary
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
    finally:
        _lock_of(temporary).unlink(missing_ok=True)  # after the temporary is renamed or removed, still held
        os.close(fd)
