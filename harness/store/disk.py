"""What a results folder holds on disk, and freeing what a finished sweep no longer needs."""
import os
import shutil
from pathlib import Path

from harness.store.paths import SweepPaths
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


def human_bytes(size: int) -> str:
    """1234567 -> '1.2 MB' (powers of 1000, as df -H and the GPU datasheets count)."""
    value, unit = float(size), 0
    while value >= 1000 and unit < len(UNITS) - 1:
        value, unit = value / 1000, unit + 1
    return f"{value:.0f} {UNITS[unit]}" if unit == 0 else f"{value:.1f} {UNITS[unit]}"


def completed_checkpoints(sweep: SweepPaths) -> list[Path]:
    """The resume checkpoints of the sweep's COMPLETED runs (a failed or cancelled run keeps its own: --resume
    continues from them)."""
    runs = sorted(p.parent for p in sweep.folder.glob("runs/*/result.json"))
    return [path for folder in runs if read_completed(sweep.run(folder.name)) for path in sweep.run(folder.name).resume_checkpoints()]


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
