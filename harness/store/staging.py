"""Folders built whole (the demo, a uint8 cache): written in a temporary sibling, then renamed into place.

A builder that dies leaves its temporary behind; the next build of the same folder removes it, and never
a live builder's. A builder holds a lock on its temporary's lock file for as long as it builds
(fcntl.lockf: released when the process dies, however it dies, and never held by a forked child), so a
temporary whose lock is free was left by a builder that is gone, whatever process its pid names now.
"""
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from harness.store.atomic import locked, locked_or_none

LOCK_SUFFIX = ".lock"


def _lock_of(temporary: Path) -> Path:
    return temporary.with_name(temporary.name + LOCK_SUFFIX)


@contextmanager
def _folder_locked(folder: Path) -> Iterator[None]:
    """folder's own lock (flock on the folder): one builder at a time clears and creates temporaries in it."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def remove_dead_temporaries(target: Path) -> list[Path]:
    """Remove the temporaries of target whose builder is gone (their lock is free); returns them."""
    prefix = f".{target.name}.tmp-"
    names = {p.name.removesuffix(LOCK_SUFFIX) for p in target.parent.iterdir() if p.name.startswith(prefix)}
    removed = []
    for temporary in sorted(target.parent / name for name in names):
        with locked_or_none(_lock_of(temporary)) as free:
            if free:
                if temporary.is_dir() and not temporary.is_symlink():
                    shutil.rmtree(temporary, ignore_errors=True)
                else:
                    temporary.unlink(missing_ok=True)
                _lock_of(temporary).unlink(missing_ok=True)
                removed.append(temporary)
    return removed


@contextmanager
def staging_folder(target: Path) -> Iterator[Path]:
    """A new empty folder beside target (.<name>.tmp-<pid>) to build in and rename onto target, locked
    while the caller builds; removed if the caller raises. Dead builders' temporaries go first."""
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    with ExitStack() as held:
        with _folder_locked(target.parent):  # no other builder sees the temporary before its lock is held
            remove_dead_temporaries(target)
            held.enter_context(locked(_lock_of(temporary)))
            temporary.mkdir()
        try:
            yield temporary
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        finally:
            _lock_of(temporary).unlink(missing_ok=True)  # still held: no builder can take it for a dead one's
