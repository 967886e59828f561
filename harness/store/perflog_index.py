"""The perflog's index: an SQLite file beside results/perflog.jsonl that the reading commands query, so
that none reads and checks every line again (ReFrame keeps its run reports in SQLite likewise).

The perflog stays the truth: the jobs append to it, line by line, under its lock (store.perflog). The
index is a cache of its whole lines, kept in step from the byte offset it last read: a reader that finds
new whole lines checks them, once, and adds them (a line without its newline is not read yet). An index
that is missing, damaged, of another layout or harness version, or made from a perflog since replaced
or truncated (another inode, a smaller size, other first bytes or other bytes before the offset) is
built again from the perflog. A line that is no entry is kept with its number and reason, and every
later query reports it, as the perflog's reader always did.

Shared file systems (docs/results.md, "The perflog's index"): the index is written only under the
perflog's own lock, exclusive, the lock its appenders take, and it is queried under that lock shared;
SQLite keeps its rollback journal (never WAL, whose shared memory does not cross NFS clients), and a
rebuilt index is written whole to a file of its own, then renamed over the old one. Where this user
cannot write the results folder or its index, the index lives in the user's cache folder
($XDG_CACHE_HOME/harness/perflog-index, else ~/.cache/...), named after the perflog's path; where that
cannot be written either, it is built in memory for the one command. Plain Python: no pandas.
"""
import hashlib
import json
import math
import os
import sqlite3
import struct
import sys
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.store.atomic import current_umask
from harness.store.figures import FIGURES
from harness.store.index_files import FileLock, Unusable, connect, shared, user_cache
from harness.store.paths import perflog_index, perflog_lock
from harness.store.perflog import PERFLOG_SCHEMA, PerfEntry, entry_of_line
from harness.store.schema import DamagedFile
from harness.version import __version__

HEAD_BYTES, TAIL_BYTES = 4096, 64  # what is compared to tell the perflog it was made from
CHUNK_BYTES = 8 << 20
BAR_FROM_BYTES = 1 << 20  # a progress bar where more than this is to be read
FETCH_ROWS = 10_000
# SQLite's errors that say this user cannot write the index here (the next place is tried); any other: damaged
UNWRITABLE = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_BUSY",
              "SQLITE_LOCKED", "SQLITE_AUTH")
IDENTITY = ("line", "time", "sweep", "run", "architecture", "variant", "seed", "partition")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables() -> list[str]:
    return [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY) STRICT",
        "CREATE TABLE settings (id INTEGER PRIMARY KEY, json TEXT NOT NULL UNIQUE) STRICT",
        "CREATE TABLE systems (id INTEGER PRIMARY KEY, json TEXT NOT NULL UNIQUE) STRICT",
        # one row per entry the perflog holds; latest: the last line of its (sweep, run)
        "CREATE TABLE entries (line INTEGER PRIMARY KEY, latest INTEGER NOT NULL CHECK (latest IN (0, 1)), "
        "time TEXT NOT NULL, sweep TEXT NOT NULL, run TEXT NOT NULL, architecture TEXT NOT NULL, variant TEXT NOT NULL, "
        "seed INTEGER NOT NULL, partition ANY, settings INTEGER NOT NULL REFERENCES settings, "
        "system INTEGER NOT NULL REFERENCES systems, other_figures TEXT, absent_figures TEXT, "
        f"figures BLOB NOT NULL CHECK (length(figures) = {8 * len(FIGURES)})) STRICT",
        "CREATE INDEX latest_of_run ON entries (sweep, run) WHERE latest = 1",
        "CREATE TABLE problems (line INTEGER PRIMARY KEY, reason TEXT NOT NULL) STRICT",
    ]


def index_version() -> str:
    """What an index must have been made by: these tables, this perflog schema and harness, this registry."""
    layout = "\n".join([*_tables(), *(f"{f.name}:{f.unit}" for f in FIGURES.values())])
    return f"perflog {PERFLOG_SCHEMA}, harness {__version__}, layout {hashlib.sha256(layout.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class PerflogColumns:
    """The latest line of each (sweep, run), in the perflog's order, column by column (a list each, one
    value a line): line, time, sweep, run, architecture, variant, seed, partition, settings and system (dicts,
    shared by the lines that hold the same; read them, do not change them), and each figure asked for (an
    array of float64, NaN where not measured); and one warning per line skipped, with its number."""

    columns: dict[str, Any]
    problems: list[str]

    def __len__(self) -> int:
        return len(self.columns["line"])


# --- where the index lives, and its locks ---

@dataclass(frozen=True)
class Place:
    """Where an index is kept: its file (None: in memory) and the lock its writers take exclusive and its
    readers shared; reading_lock: the perflog's lock, taken shared while the perflog is read where `lock`
    is another."""

    index: Path | None
    lock: Path | None
    reading_lock: Path | None


def places(path: Path) -> list[Place]:
    """Beside the perflog; else in the user's cache folder; else in memory."""
    folder, lock = path.parent, perflog_lock(path.parent)
    cache = user_cache("perflog-index", path)
    return [Place(perflog_index(folder), lock, None), Place(cache.with_suffix(".sqlite"), cache.with_suffix(".lock"), lock),
            Place(None, None, lock)]


# --- the perflog it was made from ---

def _marks(path: Path, offset: int) -> tuple[str, str]:
    """The perflog's first bytes (a hash) and the bytes before offset (hex): what tells it from another."""
    with open(path, "rb") as handle:
        head = handle.read(min(offset, HEAD_BYTES))
        handle.seek(max(0, offset - TAIL_BYTES))
        tail = handle.read(min(offset, TAIL_BYTES))
    return hashlib.sha256(head).hexdigest(), tail.hex()


def _meta(connection: sqlite3.Connection) -> dict[str, Any]:
    return dict(connection.execute("SELECT key, value FROM meta").fetchall())


def _made_from(meta: dict[str, Any], path: Path) -> bool:
    """Whether the index was made by this harness from this perflog, as it was up to its offset."""
    if meta.get("version") != index_version():
        return False
    try:
        found = os.stat(path)
        offset = int(meta["offset"])
        return found.st_ino == meta["inode"] and found.st_size >= offset and _marks(path, offset) == (meta["head"], meta["tail"])
    except (OSError, KeyError, TypeError, ValueError):
        return False


def _in_step(meta: dict[str, Any], path: Path) -> bool:
    """Made from this perflog, and nothing appended since (its size as last seen)."""
    try:
        return _made_from(meta, path) and os.stat(path).st_size == meta["seen"]
    except (OSError, KeyError):
        return False


# --- reading new lines into the index ---

def pack_figures(entry: PerfEntry) -> bytes:
    """The registry's figures of an entry as one value: little-endian float64s in the registry's order, NaN
    where not measured (no figure is NaN: every number read is finite). A query of 100,000 lines reads one
    value a line, and takes a figure's column as an array without a Python number per value."""
    return struct.pack(f"<{len(FIGURES)}d", *(math.nan if (value := entry.value(name)) is None else value for name in FIGURES))


def figure_columns(every: array, names: Sequence[str]) -> dict[str, array]:
    """Each named figure's column (array of float64, NaN where not measured) from pack_figures' values, one
    after the other in every."""
    if sys.byteorder != "little":
        every.byteswap()
    return {name: every[at::len(FIGURES)] for at, name in enumerate(FIGURES) if name in names}


class Writer:
    """Adds a perflog's lines to an index, from the line after the last one it holds."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.connection, self.path = connection, path
        self.ids = {part: dict(connection.execute(f"SELECT json, id FROM {part}").fetchall()) for part in ("settings", "systems")}
        self.seen: dict[tuple[Any, ...], int] = {}
        fields = ["line", "latest", *IDENTITY[1:], "settings", "system", "other_figures", "absent_figures", "figures"]
        self.insert = f"INSERT INTO entries ({', '.join(map(_quoted, fields))}) VALUES ({', '.join('?' * len(fields))})"

    def _id(self, part: str, values: dict[str, Any]) -> int:
        """The row of part (settings, systems) that holds values, added where none does yet."""
        key = (part, *values.items())  # lines mostly repeat the settings and system of the line before
        if key not in self.seen:
            text = json.dumps(values, sort_keys=True, separators=(",", ":"))
            if text not in self.ids[part]:
                self.ids[part][text] = int(self.connection.execute(f"INSERT INTO {part} (json) VALUES (?)", (text,)).lastrowid or 0)
            self.seen[key] = self.ids[part][text]
        return self.seen[key]

    def _row(self, number: int, entry: PerfEntry) -> tuple[Any, ...]:
        other = {name: figure for name, figure in entry.figures.items() if name not in FIGURES}
        absent = [name for name in FIGURES if name not in entry.figures]
        return (number, 1, entry.time, entry.sweep, entry.run, entry.architecture, entry.variant, entry.seed,
                entry.system.get("partition"), self._id("settings", entry.settings), self._id("systems", entry.system),
                json.dumps(other) if other else None, json.dumps(absent) if absent else None,
                pack_figures(entry))

    def add(self, lines: list[tuple[int, bytes]]) -> None:
        """Check each line and add it: an entry (the last of its (sweep, run) so far), or the reason it is none."""
        rows: list[tuple[Any, ...]] = []
        problems: list[tuple[int, str]] = []
        latest: dict[tuple[str, str], int] = {}
        for number, raw in lines:
            if not raw.strip():
                continue
            try:
                entry = entry_of_line(raw, self.path)
            except DamagedFile as err:
                problems.append((number, err.reason))
                continue
            latest[entry.sweep, entry.run] = len(rows)
            rows.append(self._row(number, entry))
        self.connection.executemany("UPDATE entries SET latest = 0 WHERE latest = 1 AND sweep = ? AND run = ?", list(latest))
        kept = set(latest.values())
        self.connection.executemany(self.insert, [row if at in kept else (row[0], 0, *row[2:]) for at, row in enumerate(rows)])
        self.connection.executemany("INSERT INTO problems (line, reason) VALUES (?, ?)", problems)


def catch_up(connection: sqlite3.Connection, path: Path, meta: dict[str, Any]) -> None:
    """Add the perflog's whole lines after meta's offset (every line, for an empty index), a chunk at a
    time with a progress bar where they are many, and note how far it has read; one transaction. A last
    line without its newline is left for a later reader."""
    offset, lines = int(meta.get("offset", 0)), int(meta.get("lines", 0))
    writer = Writer(connection, path)
    with open(path, "rb") as handle, _bar(path, offset) as advance:
        handle.seek(offset)
        pending = b""
        while chunk := handle.read(CHUNK_BYTES):
            data = pending + chunk
            end = data.rfind(b"\n") + 1
            pending, whole = data[end:], data[:end].split(b"\n")[:-1]
            writer.add([(lines + number, raw) for number, raw in enumerate(whole, 1)])
            lines, offset = lines + len(whole), offset + end
            advance(len(whole))
        seen = offset + len(pending)
    head, tail = _marks(path, offset)
    connection.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [
        ("version", index_version()), ("inode", os.stat(path).st_ino), ("offset", offset), ("lines", lines),
        ("seen", seen), ("head", head), ("tail", tail)])
    connection.commit()


@contextmanager
def _bar(path: Path, offset: int) -> Iterator[Callable[[int], None]]:
    """A progress bar over the lines to read from offset on, where they are many (more than BAR_FROM_BYTES):
    the command that builds the index shows it (on a terminal); advance it by the lines read."""
    if os.stat(path).st_size - offset < BAR_FROM_BYTES:
        yield lambda count: None
        return
    from harness.progress import progress_bar

    with open(path, "rb") as handle:  # counted first (a tenth of a second for 100,000 lines): the bar says how many
        handle.seek(offset)
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""))
    with progress_bar() as bar:
        task = bar.add_task(f"indexing {path.name} (lines)", total=lines)
        yield lambda count: bar.advance(task, count)


# --- keeping an index in step ---

def _open_in_step(place: Place, path: Path) -> sqlite3.Connection | None:
    """The place's index, where it is in step with the perflog; None where it must be caught up or built."""
    if place.index is None or not place.index.is_file():
        return None
    try:
        connection = connect(place.index, read_only=True)
        if _in_step(_meta(connection), path):
            return connection
        connection.close()
    except sqlite3.DatabaseError:
        pass
    return None


def _build(place: Place, path: Path) -> sqlite3.Connection:
    """A new index from the whole perflog: in memory, or written to a file of its own and renamed over the
    place's (its old journal removed first, so that it is not played into the new file)."""
    if place.index is None:
        connection = sqlite3.connect(":memory:")
        for table in _tables():
            connection.execute(table)
        with shared(place.reading_lock):
            catch_up(connection, path, {})
        return connection
    for stale in place.index.parent.glob(f"{place.index.name}.*.tmp"):  # a build killed part-way (the lock is ours)
        stale.unlink(missing_ok=True)
    temporary = place.index.with_name(f"{place.index.name}.{os.getpid()}.tmp")
    try:
        connection = sqlite3.connect(temporary)
        connection.execute("PRAGMA journal_mode = OFF")  # a file of its own: a build cut short is thrown away
        connection.execute("PRAGMA synchronous = OFF")
        for table in _tables():
            connection.execute(table)
        with shared(place.reading_lock):
            catch_up(connection, path, {})
        connection.close()
        os.chmod(temporary, 0o666 & ~current_umask())
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        Path(f"{place.index}-journal").unlink(missing_ok=True)
        os.replace(temporary, place.index)
    except (OSError, sqlite3.OperationalError) as err:
        temporary.unlink(missing_ok=True)
        raise Unusable(f"{place.index}: {err}") from None
    return connect(place.index, read_only=True)


def _refresh(place: Place, path: Path) -> sqlite3.Connection:
    """Under the place's lock held exclusive: the index caught up with the perflog's new lines, or built
    anew where it is not the perflog's (or damaged). Unusable where this user cannot write it."""
    if place.index is not None and place.index.is_file():
        try:
            connection = connect(place.index, read_only=False)
            meta = _meta(connection)
            if _made_from(meta, path):
                if not _in_step(meta, path):
                    with shared(place.reading_lock):
                        catch_up(connection, path, meta)
                return connection
            connection.close()
        except sqlite3.DatabaseError as err:
            if getattr(err, "sqlite_errorname", "").startswith(UNWRITABLE):  # read-only, not ours, the disk full
                raise Unusable(f"{place.index}: {err}") from None
            # damaged (not an SQLite file, not our tables): built again
    return _build(place, path)


@contextmanager
def in_step(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to the perflog's index, in step with it, held under the index's lock shared; the first
    place where this user can keep one (places)."""
    for place in places(path):
        try:
            lock = FileLock(place.lock, writable=True)
        except Unusable:
            continue
        try:
            lock.hold(exclusive=False)
            connection = _open_in_step(place, path)
            if connection is None:
                lock.release()  # not an upgrade in place: two readers upgrading at once would deadlock
                lock.hold(exclusive=True)
                connection = _refresh(place, path)
                lock.hold(exclusive=False)  # a downgrade, which never waits
        except Unusable:
            lock.close()
            continue
        try:
            yield connection
        finally:
            connection.close()
            lock.close()
        return
    raise AssertionError("the last place, in memory, is always usable")


# --- queries ---

def _problems(connection: sqlite3.Connection, path: Path) -> list[str]:
    return [f"{path} line {number}: {reason}; skipped"
            for number, reason in connection.execute("SELECT line, reason FROM problems ORDER BY line")]


def _shared_json(connection: sqlite3.Connection, part: str) -> dict[int, dict[str, Any]]:
    return {id_: json.loads(text) for id_, text in connection.execute(f"SELECT id, json FROM {part}")}


def read_columns(path: Path, figures: Sequence[str] = (), architecture: str | None = None, partition: str | None = None,
                 whole: bool = False) -> PerflogColumns:
    """The perflog's latest line of each (sweep, run), through its index: the identity columns, settings,
    system and the figures named; architecture: lines of that architecture, or of that leaderboard row
    (`ARCH [variant]`); partition: lines of that partition. whole: every figure, with other_figures (those
    the registry does not know, by name) and absent_figures (the registry's the line does not hold)."""
    path = Path(path)
    names = list(FIGURES) if whole else [name for name in figures if name in FIGURES]
    fields = [*IDENTITY, "settings", "system", *(("other_figures", "absent_figures") if whole else ())]
    columns: dict[str, Any] = {field: [] for field in fields}
    packed = array("d")
    if not path.is_file():
        return PerflogColumns({**columns, **figure_columns(packed, names)}, [])
    where, parameters = ["latest = 1"], []
    if architecture is not None:
        where.append("(architecture = ? OR architecture || ' [' || variant || ']' = ?)")
        parameters += [architecture, architecture]
    if partition is not None:
        where.append("partition = ?")
        parameters.append(partition)
    with in_step(path) as connection:
        cursor = connection.execute(f"SELECT {', '.join(map(_quoted, [*fields, 'figures']))} FROM entries "
                                    f"WHERE {' AND '.join(where)} ORDER BY line", parameters)
        while rows := cursor.fetchmany(FETCH_ROWS):  # column by column as they come: never every row's tuple at once
            *found, figures = zip(*rows)
            for values, column in zip(found, columns.values()):
                column.extend(values)
            packed.frombytes(b"".join(figures))
        settings, systems = _shared_json(connection, "settings"), _shared_json(connection, "systems")
        problems = _problems(connection, path)
    columns["settings"] = [settings[id_] for id_ in columns["settings"]]
    columns["system"] = [systems[id_] for id_ in columns["system"]]
    return PerflogColumns({**columns, **figure_columns(packed, names)}, problems)


def read_perflog(path: Path) -> tuple[list[PerfEntry], list[str]]:
    """The perflog's entries, in file order, the last line of each (sweep, run) only (a rerun's line replaces
    the attempt before it), through its index; and one warning per line skipped (with its number). A
    missing file is an empty log."""
    found = read_columns(path, whole=True)
    entries = []
    for at in range(len(found)):
        row = {field: values[at] for field, values in found.columns.items()}
        absent = set(json.loads(row["absent_figures"] or "[]"))
        figures = {name: {"value": None if math.isnan(row[name]) else row[name], "unit": figure.unit}
                   for name, figure in FIGURES.items() if name not in absent}
        entries.append(PerfEntry(time=row["time"], sweep=row["sweep"], run=row["run"], architecture=row["architecture"],
                                 seed=row["seed"], settings=dict(row["settings"]), system=dict(row["system"]),
                                 figures={**figures, **json.loads(row["other_figures"] or "{}")}, variant=row["variant"],
                                 schema_version=PERFLOG_SCHEMA))
    return entries, found.problems
