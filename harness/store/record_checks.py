"""What the checks of a sweep's records found, kept with the identity of the files checked, so that a
command reading a sweep of 10,000 runs checks only the records written or changed since the last one
(docs/results.md, "A sweep's checked records").

Each run's record is checked as store.records.read_record checks it (its schema, its folder, its history
and test scores). The outcome (the record's state, error and requeues, a completed run's last progress,
or the damage and its reason) is kept with the inode, size, modification and change times of the
run's result.json, history.csv and test_scores.npy: a file replaced, or edited in place, has another
change time (which no one can set back), and its run is checked again, as is every run of a cache that
is missing, damaged or of another harness. The record itself is read from its file, as it was checked.

The cache lives in the user's cache folder ($XDG_CACHE_HOME/harness/checked-records, else
~/.cache/harness/...), one SQLite file per sweep named after the sweep's path: the results folder is not
written by a command that reads it, and the outcomes a command trusts are the user's own. It is written
under its lock held exclusive and read under it held shared (store.index_files); where the cache folder
cannot be written, every record is checked as it is read. Plain Python.
"""
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from harness.stats.collapse import RunScore, run_score
from harness.store.index_files import FileLock, Unusable, connect, user_cache
from harness.store.paths import RunPaths, SweepPaths
from harness.store.records import RESULT_MINOR, RESULT_SCHEMA, STATUSES, RunRecord, SweepSpec, read_spec, record_or_damage
from harness.store.schema import DamagedFile, from_checked_fields
from harness.version import __version__

DAMAGED = "DAMAGED"
T = TypeVar("T")
TABLES = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY) STRICT",
    "CREATE TABLE runs (run_id TEXT PRIMARY KEY, files TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN "
    f"({', '.join(repr(state) for state in (*STATUSES, DAMAGED))})), error TEXT, requeues INTEGER NOT NULL CHECK (requeues >= 0), "
    "damaged TEXT, reason TEXT, epoch ANY, epochs ANY, val_accuracy ANY, accuracy ANY, images ANY, chance ANY) STRICT",
    "CREATE TABLE views (name TEXT PRIMARY KEY, inputs TEXT NOT NULL, view TEXT NOT NULL) STRICT",
]
_NAMES = RunPaths(Path())
CHECKED = (_NAMES.result.name, _NAMES.history.name, _NAMES.test_scores.name)  # the files a record is checked from


def cache_version() -> str:
    """What a cache must have been made by: this harness, this record schema, these tables."""
    tables = hashlib.sha256("\n".join(TABLES).encode()).hexdigest()[:16]
    return f"harness {__version__}, result {RESULT_SCHEMA}.{RESULT_MINOR}, tables {tables}"


@dataclass(frozen=True)
class Checked:
    """What the checks found of one run: its record's state (COMPLETED, FAILED, CANCELLED; DAMAGED with the
    damage; None: no record yet), error and requeues; a completed run's last progress as its record says it
    (epoch, epochs, val_accuracy: it is no longer in progress) and its test score (status names a run at
    chance without reading its record); files: the identity of the files checked."""

    state: str | None
    error: str | None = None
    requeues: int = 0
    damage: DamagedFile | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    score: RunScore | None = None
    files: str | None = None
    record: RunRecord | None = field(default=None, compare=False)  # where this command checked it itself

    @classmethod
    def of(cls, found: RunRecord | DamagedFile | None, files: str | None) -> "Checked":
        if isinstance(found, DamagedFile):
            return cls(DAMAGED, damage=found, files=files)
        if found is None:
            return cls(None, files=files)
        progress = {"epoch": found.epochs_completed, "epochs": found.config.get("epochs"),
                    "val_accuracy": (found.val or {}).get("accuracy")} if found.completed else {}
        score = run_score(found.test or {}) if found.completed else None
        return cls(found.status, found.error, found.requeues, progress=progress, score=score, files=files, record=found)

    @classmethod
    def of_row(cls, row: tuple, folder: str) -> "Checked":
        """What the cache's row of a run in folder says (as row wrote it: no JSON to parse in 10,000 rows)."""
        _, files, state, error, requeues, damaged, reason, epoch, epochs, val_accuracy, accuracy, images, chance = row
        progress = {"epoch": epoch, "epochs": epochs, "val_accuracy": val_accuracy} if state == "COMPLETED" else {}
        return cls(state, error, requeues, DamagedFile(Path(folder, damaged), reason) if state == DAMAGED else None, progress,
                   None if accuracy is None else RunScore(accuracy, images, chance), files)

    def row(self, run_id: str) -> tuple:
        """The cache's row of it (ANY columns: a number is read back as the type it was written, int or float)."""
        score = self.score or (None, None, None)
        return (run_id, self.files, self.state, self.error, self.requeues, self.damage and self.damage.path.name,
                self.damage and self.damage.reason, *(self.progress.get(key) for key in ("epoch", "epochs", "val_accuracy")),
                *score)


def files_of(folder: str) -> str | None:
    """The identity of the files a run's record is read and checked from (inode, size, modification and
    change times of each), in the run's folder; None without a record, or where one cannot be looked at
    (then it is checked every time). Plain strings: a sweep of 10,000 runs stats 30,000 files."""
    parts: list[str] = []
    for name in CHECKED:
        try:
            found = os.stat(f"{folder}/{name}")
        except FileNotFoundError:
            if not parts:
                return None
            parts.append("-")
            continue
        except OSError:
            return None
        parts.append(_identity(found))
    return " ".join(parts)


def _identity(found: os.stat_result) -> str:
    return f"{found.st_ino}:{found.st_size}:{found.st_mtime_ns}:{found.st_ctime_ns}"


def _identity_of(path: Path) -> str | None:
    """A file's identity; None where it cannot be looked at (gone)."""
    try:
        return _identity(os.stat(path))
    except OSError:
        return None


@contextmanager
def _cache(sweep: SweepPaths) -> Iterator[tuple[Path, FileLock] | None]:
    """The sweep's cache file in the user's cache folder and its lock; None where it cannot be kept."""
    name = user_cache("checked-records", sweep.folder)
    try:
        lock = FileLock(name.with_suffix(".lock"), writable=True)
    except Unusable:
        yield None
        return
    try:
        yield name.with_suffix(".sqlite"), lock
    finally:
        lock.close()


def _read(index: Path, lock: FileLock, query: str, *values: str) -> list[tuple]:
    """The rows a query of the cache finds, under its lock held shared (none where it is missing, damaged or
    another harness's)."""
    if not index.is_file():
        return []
    lock.hold(exclusive=False)
    try:
        connection = connect(index, read_only=True)
        try:
            if dict(connection.execute("SELECT key, value FROM meta").fetchall()).get("version") != cache_version():
                return []
            return connection.execute(query, values).fetchall()
        finally:
            connection.close()
    except sqlite3.DatabaseError:
        return []
    finally:
        lock.release()


def _store(index: Path, lock: FileLock, statement: str, rows: list[tuple]) -> None:
    """Add rows to the cache, under its lock held exclusive (made anew where it is missing, damaged or
    another harness's); a cache that cannot be written is left as it is."""
    if not rows:
        return
    lock.hold(exclusive=True)
    try:
        try:
            _write(index, statement, rows)
        except sqlite3.DatabaseError:  # damaged: made anew
            index.unlink(missing_ok=True)
            Path(f"{index}-journal").unlink(missing_ok=True)
            _write(index, statement, rows)
    except (sqlite3.DatabaseError, OSError):
        pass
    finally:
        lock.release()


def _write(index: Path, statement: str, rows: list[tuple]) -> None:
    connection = sqlite3.connect(index, timeout=60)
    try:
        connection.execute("PRAGMA journal_mode = DELETE")
        made = connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone()
        if not made or connection.execute("SELECT value FROM meta WHERE key = 'version'").fetchone() != (cache_version(),):
            connection.executescript("DROP TABLE IF EXISTS meta; DROP TABLE IF EXISTS runs; DROP TABLE IF EXISTS views;")
            for table in TABLES:
                connection.execute(table)
            connection.execute("INSERT INTO meta (key, value) VALUES ('version', ?)", (cache_version(),))
        connection.executemany(statement, rows)
        connection.commit()
    finally:
        connection.close()


def check_records(sweep: SweepPaths, run_ids: list[str]) -> dict[str, Checked]:
    """Each run's record as its checks found it: from the cache where the run's files are those it checked,
    else checked now (read_record) and added to it (only where its files did not change meanwhile)."""
    runs = os.fspath(sweep.folder / "runs")
    files = {rid: files_of(f"{runs}/{rid}") for rid in run_ids}
    with _cache(sweep) as cache:
        known = {row[0]: row for row in _read(*cache, "SELECT * FROM runs")} if cache else {}
        found, fresh = {}, {}
        for rid in run_ids:
            row = known.get(rid)
            if files[rid] is not None and row is not None and row[1] == files[rid]:
                found[rid] = Checked.of_row(row, f"{runs}/{rid}")
            else:
                fresh[rid] = found[rid] = Checked.of(record_or_damage(sweep.run(rid)), files[rid])
        if cache and fresh:  # only where its files did not change meanwhile
            _store(*cache, f"INSERT OR REPLACE INTO runs VALUES ({', '.join('?' * 13)})",
                   [c.row(rid) for rid, c in fresh.items()
                    if c.state is not None and c.files is not None and files_of(f"{runs}/{rid}") == c.files])
    return found


def read_checked(sweep: SweepPaths, path: Path, read: Callable[[], T], unchecked: Callable[[Any], T]) -> T:
    """What read() makes of one of the sweep's files, checking it (its spec, its jobs): read and checked where
    the file is not the one checked last, whose identity the cache keeps; else made by unchecked() from the
    file's JSON without the checks (the file read being the one checked): a sweep of 10,000 runs is checked once."""
    before = _identity_of(path)
    if before is None:
        return read()
    key = path.name
    with _cache(sweep) as cache:
        if cache and _read(*cache, "SELECT value FROM meta WHERE key = ?", key) == [(before,)]:
            try:
                text = path.read_bytes()
                if _identity_of(path) == before:
                    return unchecked(json.loads(text))
            except (OSError, ValueError, TypeError):  # changed meanwhile: checked as it is now
                pass
        made = read()
        if cache and _identity_of(path) == before:  # the file checked is the one whose identity is kept
            _store(*cache, "INSERT OR REPLACE INTO meta VALUES (?, ?)", [(key, before)])
    return made


def read_checked_spec(sweep: SweepPaths) -> SweepSpec:
    """The sweep's spec (read_spec), checked once per change of its file (read_checked)."""
    return read_checked(sweep, sweep.spec, lambda: read_spec(sweep), lambda data: from_checked_fields(SweepSpec, data))


def _code_identity() -> str:
    """A digest of the identity (size, modification time) of the harness's own files: a view made by other
    code (a checkout edited since, its version the same) is not taken for this code's. 1 ms."""
    digest, folders = hashlib.sha256(), [os.path.dirname(os.path.dirname(__file__))]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        folders.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    found = entry.stat(follow_symlinks=False)
                    digest.update(f"{entry.path} {found.st_size} {found.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def inputs_of(sweep: SweepPaths, run_ids: list[str], also: list[Path], answer: str = "") -> str:
    """A digest of the identity of every file a view of the sweep is made from: the harness's code, the
    sweep's spec, its jobs, the files also named (its dataset's manifest, say), and each run's record,
    history and test scores; and of what else it is made from (answer: a scheduler's, say)."""
    runs = os.fspath(sweep.folder / "runs")
    digest = hashlib.sha256(f"code {_code_identity()}\nanswer {answer}\n".encode())
    for path in (sweep.spec, sweep.jobs, *also):
        digest.update(f"{path} {_identity_of(path) or '-'}\n".encode())
    for rid in run_ids:
        digest.update(f"{rid} {files_of(f'{runs}/{rid}') or '-'}\n".encode())
    return digest.hexdigest()


def view_of(sweep: SweepPaths, run_ids: list[str], also: list[Path], name: str, make: Callable[[], Any],
            answer: str = "", keep: Callable[[Any], bool] = lambda made: True) -> Any:
    """What make() returns, a view of the sweep in JSON's types (its leaderboard, say): as a command made it
    before from the same files and answer (inputs_of), else made now, and kept where keep(made) holds (it
    depends on nothing else), its files did not change meanwhile and JSON gives it back equal."""
    inputs = inputs_of(sweep, run_ids, also, answer)
    with _cache(sweep) as cache:
        found = _read(*cache, "SELECT view FROM views WHERE name = ? AND inputs = ?", name, inputs) if cache else []
    if found:
        return json.loads(found[0][0])
    made = make()  # not under the cache's lock file held open: it reads the records' checks through its own
    if not keep(made):
        return made
    try:
        text = json.dumps(made)
    except (TypeError, ValueError):  # a value JSON does not hold: made every time
        return made
    if json.loads(text) == made and inputs_of(sweep, run_ids, also, answer) == inputs:
        with _cache(sweep) as cache:
            if cache:
                _store(*cache, "INSERT OR REPLACE INTO views VALUES (?, ?, ?)", [(name, inputs, text)])
    return made


def records_of(sweep: SweepPaths, checked: dict[str, Checked]) -> dict[str, RunRecord | DamagedFile | None]:
    """The records check_records found: each read from its file as it was checked (the checks not made
    again where its files are those checked); None where a run has none yet."""
    found: dict[str, RunRecord | DamagedFile | None] = {}
    for rid, c in checked.items():
        if c.record is not None or c.state not in STATUSES:
            found[rid] = c.record or c.damage
            continue
        run = sweep.run(rid)
        try:
            text = run.result.read_bytes()
            if _identity(os.stat(run.result)) == (c.files or "").split(" ")[0]:  # the file read is the one checked
                found[rid] = RunRecord(**json.loads(text))
                continue
        except (OSError, ValueError, TypeError):  # gone, or of a newer harness's minor version: read_record says
            pass
        found[rid] = record_or_damage(run)
    return found
