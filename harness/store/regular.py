"""Reading a path that should be a regular file, without trusting that it is one: opened without blocking,
so that a FIFO or a device put in its place is named, never waited on or read (a FIFO would hang the
reader, /dev/zero fill its memory). Plain Python: the schema's readers and the user's files both use it."""
import os
import stat
from pathlib import Path


def kind_of(mode: int) -> str:
    """What a file is, in words."""
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "a special file"


class Unreadable(ValueError):
    """A path not to read as a file: none (a FIFO, a device, a folder), or one larger than it may be. Its text
    is the reason ("is a FIFO, not a file to read")."""


def check_regular(path: Path) -> None:
    """Unreadable where path is no regular file (stat opens nothing: a FIFO is named, never waited on), for a
    reader that opens it itself (torch.load); FileNotFoundError as it comes."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise Unreadable(f"is {kind_of(mode)}, not a file to read")


def read_regular(path: Path, limit: int, whole: bool = True, offset: int = 0) -> bytes:
    """The bytes of the file at path from offset (negative: from its end), where it is a regular file:
    opened without blocking, so that a FIFO or a device is named, never waited on or read. whole: all of
    them, Unreadable where they are more than limit; else at most limit. FileNotFoundError (an OSError)
    as it comes."""
    check_regular(path)  # before it is opened: opening a device may act (a tape rewinds)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # replaced since it was looked at
            raise Unreadable(f"is {kind_of(info.st_mode)}, not a file to read")
        start = max(0, info.st_size + offset) if offset < 0 else offset
        if whole and info.st_size - start > limit:
            raise Unreadable(f"holds {info.st_size - start:,} bytes, more than the {limit:,} it may")
        os.lseek(fd, start, os.SEEK_SET)
        chunks, size, want = [], 0, limit + 1 if whole else limit  # a byte more tells a file grown past limit
        while size < want and (chunk := os.read(fd, min(2**20, want - size))):
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if whole and len(data) > limit:  # grown since it was measured
        raise Unreadable(f"holds more than the {limit:,} bytes it may")
    return data[:limit]
