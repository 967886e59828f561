"""The perflog's index: kept in step with the perflog as lines are appended (a line without its newline
waits), its skipped lines reported on every query, built again when it is not the perflog's (damaged,
of another version, the perflog truncated or replaced), in the reader's cache folder where the results
folder is not theirs to write, and exact under readers and appenders at once."""
import json
import multiprocessing
import os
import shutil
import sqlite3
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from harness.store.paths import perflog, perflog_index
from harness.store.perflog import append_entry
from harness.store.perflog_index import read_columns, read_perflog

from patience import HUNG_S
from perf_helpers import entry


def runs(results: Path) -> list[str]:
    return [e.run for e in read_perflog(perflog(results))[0]]


def append(results: Path, *names: str) -> None:
    for name in names:
        append_entry(results, entry(name))


def test_the_index_follows_the_perflog_as_lines_are_appended(tmp_path):
    append(tmp_path, "A-s0", "B-s0")
    assert runs(tmp_path) == ["A-s0", "B-s0"] and perflog_index(tmp_path).is_file()
    append(tmp_path, "C-s0")
    append_entry(tmp_path, entry("A-s0", 7.0))  # A run completed again: its new line replaces the old
    assert runs(tmp_path) == ["B-s0", "C-s0", "A-s0"]
    found = read_columns(perflog(tmp_path), ["train_images_per_s"], architecture="A")
    assert list(found.columns["train_images_per_s"]) == [7.0] and found.columns["line"] == [4]


def test_a_line_without_its_newline_is_read_once_it_has_one(tmp_path):
    append(tmp_path, "A-s0")
    line = json.dumps(entry("B-s0").to_json()) + "\n"
    with open(perflog(tmp_path), "a") as handle:
        handle.write(line[:100])  # a writer part-way through its line
    assert runs(tmp_path) == ["A-s0"] and read_perflog(perflog(tmp_path))[1] == []
    with open(perflog(tmp_path), "a") as handle:
        handle.write(line[100:])
    assert runs(tmp_path) == ["A-s0", "B-s0"]


def test_a_skipped_line_is_reported_by_every_later_query(tmp_path):
    append(tmp_path, "A-s0")
    with open(perflog(tmp_path), "a") as handle:
        handle.write('{"half a line\n')
    first = read_perflog(perflog(tmp_path))[1]
    assert len(first) == 1 and "line 2: not a JSON object" in first[0]
    append(tmp_path, "B-s0")
    entries, problems = read_perflog(perflog(tmp_path))
    assert [e.run for e in entries] == ["A-s0", "B-s0"] and problems == first


def _damage(results: Path) -> None:
    perflog_index(results).write_bytes(b"this is not an SQLite file" * 100)


def _other_tables(results: Path) -> None:
    perflog_index(results).unlink()
    with sqlite3.connect(perflog_index(results)) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")


def _other_version(results: Path) -> None:
    with sqlite3.connect(perflog_index(results)) as connection:
        connection.execute("UPDATE meta SET value = 'layout 0' WHERE key = 'version'")


def _truncated(results: Path) -> None:
    lines = perflog(results).read_bytes().splitlines(keepends=True)
    with open(perflog(results), "r+b") as handle:  # the same file, cut after its first line, then a new one
        handle.truncate(len(lines[0]))
    append(results, "D-s0")


def _replaced(results: Path) -> None:
    """Another file in its place, its first line and its size the same as the old one's."""
    lines = perflog(results).read_bytes().splitlines(keepends=True)
    other = json.dumps(entry("X-s0").to_json()).encode()
    new = perflog(results).with_name("new.jsonl")
    new.write_bytes(lines[0] + other + b" " * (len(lines[1]) + len(lines[2]) - len(other) - 1) + b"\n")
    os.replace(new, perflog(results))


def _rewritten_before_the_offset(results: Path) -> None:
    """The same file, the same size, its last line replaced in place (as an editor that writes in place would)."""
    lines = perflog(results).read_bytes().splitlines(keepends=True)
    other = json.dumps(entry("Y-s0").to_json()).encode()
    with open(perflog(results), "r+b") as handle:
        handle.seek(len(lines[0]) + len(lines[1]))
        handle.write(other + b" " * (len(lines[2]) - len(other) - 1) + b"\n")


@pytest.mark.parametrize("change, expected", [(_damage, ["A-s0", "B-s0", "C-s0"]), (_other_tables, ["A-s0", "B-s0", "C-s0"]),
                                              (_other_version, ["A-s0", "B-s0", "C-s0"]),
                                              (_truncated, ["A-s0", "D-s0"]), (_replaced, ["A-s0", "X-s0"]),
                                              (_rewritten_before_the_offset, ["A-s0", "B-s0", "Y-s0"])])
def test_an_index_that_is_not_the_perflogs_is_built_again(tmp_path, change, expected):
    append(tmp_path, "A-s0", "B-s0", "C-s0")
    assert runs(tmp_path) == ["A-s0", "B-s0", "C-s0"]
    change(tmp_path)
    assert runs(tmp_path) == expected
    assert not list(tmp_path.glob(".perflog.index.sqlite.*"))  # no temporary file left behind
    with sqlite3.connect(perflog_index(tmp_path)) as connection:  # built again where it was, not elsewhere
        assert connection.execute("SELECT count(*) FROM entries").fetchone() == (len(expected),)


def _read_as_nobody(path: str, cache: str, answers: "multiprocessing.Queue") -> None:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    os.environ["XDG_CACHE_HOME"] = cache
    answers.put([e.run for e in read_perflog(Path(path))[0]])


@pytest.fixture
def folder_not_ours(tmp_path, monkeypatch):
    """(results folder, cache folder, read): a results folder this reader may read but not write. As root,
    the reader is a forked process that becomes nobody (root writes anywhere); else the folder is made
    read-only."""
    if os.geteuid() != 0:
        results, cache = tmp_path / "results", tmp_path / "cache"
        results.mkdir()
        monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
        yield results, cache, lambda: (results.chmod(0o555), runs(results), results.chmod(0o755))[1]
        return
    shared = Path(tempfile.mkdtemp(prefix="harness-shared-", dir="/tmp"))  # a folder nobody can reach
    shared.chmod(0o755)
    results, cache = shared / "results", shared / "cache"
    results.mkdir()
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)

    def read() -> list[str]:
        answers = multiprocessing.get_context("fork").Queue()
        reader = multiprocessing.get_context("fork").Process(target=_read_as_nobody, args=(str(perflog(results)), str(cache), answers))
        reader.start()
        answer = answers.get(timeout=HUNG_S)  # before the join: a child exits only once its queued data is read
        reader.join(HUNG_S)
        assert reader.exitcode == 0
        return answer

    try:
        yield results, cache, read
    finally:
        shutil.rmtree(shared)


def test_a_reader_who_cannot_write_the_results_folder_keeps_the_index_in_their_cache(folder_not_ours):
    results, cache, read = folder_not_ours
    append(results, "A-s0", "B-s0")
    assert read() == ["A-s0", "B-s0"]
    assert not perflog_index(results).exists() and len(list(cache.glob("harness/perflog-index/*.sqlite"))) == 1
    append(results, "C-s0")
    assert read() == ["A-s0", "B-s0", "C-s0"]


def _append_many(folder: str, worker: int, count: int) -> None:
    for number in range(count):
        append_entry(Path(folder), replace(entry(f"M{worker}-s{number}", float(number)), sweep=f"w{worker}"))


def _read_until(folder: str, stop: "multiprocessing.Event", counts: "multiprocessing.Queue") -> None:
    seen = []
    while not stop.is_set():
        seen.append(len(read_columns(perflog(Path(folder)))))
    counts.put(seen)


def test_readers_and_appenders_at_once_lose_and_double_nothing(tmp_path):
    """Three processes append while three others query, each of which may catch the index up: every line
    ends in the index exactly once, and no reader ever sees fewer entries than it saw before."""
    context = multiprocessing.get_context("fork")
    append(tmp_path, "first-s0")
    stop, counts = context.Event(), context.Queue()
    appenders = [context.Process(target=_append_many, args=(str(tmp_path), w, 40)) for w in range(3)]
    readers = [context.Process(target=_read_until, args=(str(tmp_path), stop, counts)) for _ in range(3)]
    for process in [*readers, *appenders]:
        process.start()
    for process in appenders:
        process.join(HUNG_S)
        assert process.exitcode == 0
    stop.set()
    seen_by_reader = [counts.get(timeout=HUNG_S) for _ in readers]  # before the joins, as above
    for process in readers:
        process.join(HUNG_S)
        assert process.exitcode == 0
    for seen in seen_by_reader:
        assert seen == sorted(seen) and seen
    entries, problems = read_perflog(perflog(tmp_path))
    assert problems == [] and len(entries) == 121
    assert sorted(e.run for e in entries[1:]) == sorted(f"M{w}-s{n}" for w in range(3) for n in range(40))
    with sqlite3.connect(perflog_index(tmp_path)) as connection:
        lines = [line for (line,) in connection.execute("SELECT line FROM entries ORDER BY line")]
    assert lines == list(range(1, 122))
