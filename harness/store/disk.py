"""What a results folder holds on disk, and freeing what a finished sweep no longer needs."""
import hashlib
import os
import shutil
import stat
from pathlib import Path

from harness.store.paths import CACHE_NAME, SweepPaths, cache_root, check_inside, is_run_id
from harness.store.records import read_completed

UNITS = ("B", "kB", "MB", "GB", "TB")


def folder_bytes(folder: Path) -> int:
    """The bytes of the regular files under folder (links not followed, a file or folder gone meanwhile skipped)."""
    total, folders = 0, [os.fspath(folder)]
    while folders:
        try:
            entries = os.scandir(folders.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
    return total


BYTECODE = "__pycache__"  # what Python compiles beside the source it imports


def tree_digest(folder: Path) -> str:
    """A SHA-256 over everything under folder: each entry's path, its kind and its content (a file's
    bytes, a link's target), links never followed; BYTECODE folders left out (the jobs compile them)."""
    digest = hashlib.sha256()
    for parent, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if name != BYTECODE)
        for name in sorted([*folders, *files]):
            path = os.path.join(parent, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                content = b"link " + os.fsencode(os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    content = b"file " + hashlib.file_digest(handle, "sha256").digest()
            else:  # a folder, or what no source is (a FIFO: named, never read)
                content = b"kind " + str(stat.S_IFMT(info.st_mode)).encode()
            digest.update(os.fsencode(os.path.relpath(path, folder)) + b"\0" + content + b"\n")
    return digest.hexdigest()


def remove_bytecode(folder: Path) -> None:
    """Remove the BYTECODE folders under folder (a link so named too): Python would run a .pyc planted
    there in place of the source it checks, and compiles them again."""
    for parent, folders, _ in os.walk(folder):
        for name in [n for n in folders if n == BYTECODE]:
            remove([Path(parent) / name])
            folders.remove(name)


def human_bytes(size: int) -> str:
    """1234567 -> '1.2 MB' (powers of 1000, as df -H and the GPU datasheets count)."""
    value, unit = float(size), 0
    while value >= 1000 and unit < len(UNITS) - 1:
        value, unit = value / 1000, unit + 1
    return f"{value:.0f} {UNITS[unit]}" if unit == 0 else f"{value:.1f} {UNITS[unit]}"


def completed_checkpoints(sweep: SweepPaths) -> list[Path]:
    """The resume checkpoints of the sweep's COMPLETED runs (a failed or cancelled run keeps its own: --resume
    continues from them); UserError where a run folder, or runs/, leads out of the sweep through a link."""
    runs = [sweep.run(folder.name) for folder in sorted(sweep.folder.glob("runs/*")) if is_run_id(folder.name)]
    for run in runs:
        check_inside(run.state, sweep.folder)
    return [path for run in runs if read_completed(run) for path in run.resume_checkpoints()]


def cache_entries(results: Path) -> list[Path]:
    """What the image caches of a results folder are (data.cache.build_cache writes them): each cache
    folder, named by its key and holding its header.json, and its lock file; nothing else cache/ holds.
    UserError where cache/ leads out of the results folder through a link."""
    caches = cache_root(results)
    check_inside(caches, results)
    if not caches.is_dir():
        return []
    return sorted(path for path in caches.iterdir() if not path.is_symlink() and (
        (CACHE_NAME.fullmatch(path.name) and (path / "header.json").is_file())
        or (path.name.endswith(".lock") and CACHE_NAME.fullmatch(path.name.removesuffix(".lock")) and path.is_file())))


def remove(paths: list[Path]) -> int:
    """Delete files and folders; returns the bytes freed."""
    freed = 0
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            freed += folder_bytes(path)
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            freed += path.lstat().st_size
            path.unlink()
    return freed
