"""The performance log across sweeps: results/perflog.jsonl, one JSON object a line, one line per
completed run, appended and never rewritten (ReFrame's perflog, MLPerf's provenance).

An entry says which run it is (sweep, run, architecture, seed), the settings that change a figure
(image size, batch, precision, TF32, channels_last, compile, mode, epochs, synthetic inputs), the system it
ran on (cluster, partition, node, GPU name and count, driver, CUDA, torch, timm, harness version and git
commit), each figure with its unit (`{"value": ..., "unit": ...}`; value null where the run could not
measure it), whether the run had its node and GPU to itself (alone, shared_by) and the quartiles of its
timed windows (spread). Jobs append concurrently: each line is written whole, under a lock, with one
O_APPEND write and an fsync. Readers query the perflog's index (store.perflog_index), which checks each
line once: a broken one is reported with its line number and skipped, never fatal. A run completed
again (a record set aside and its run rerun by --resume) appends another line: readers take the last
line of each (sweep, run), the attempt the sweep's record now holds. Plain Python: no torch, no pandas.
"""
import json
import math
import os
import typing
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from harness.store.atomic import locked, refuse_symlink
from harness.store.figures import FIGURES, figures_of
from harness.store.paths import perflog, perflog_lock
from harness.store.records import RunRecord, SweepSpec
from harness.store.schema import (
    Amount,
    Count,
    DamagedFile,
    Date,
    Fraction,
    Keys,
    Length,
    Range,
    from_versioned_fields,
    parse_json,
    type_problem,
)
from harness.version import __version__

PERFLOG_SCHEMA, PERFLOG_MINOR = 1, 1  # 1.1: settings.synthetic, alone, shared_by, spread
# Each figure of the registry as a line holds it: its value in its range, its unit the registry's. A
# figure the registry does not know (a later harness's) passes, checked as a number or null.
FigureValues = Annotated[dict[str, dict[str, Any]], Keys({
    name: Annotated[dict[str, Any], Keys({"value": (Fraction if figure.percent else Amount) | None,
                                          "unit": Literal[figure.unit]})]
    for name, figure in FIGURES.items()})]
# Each known figure's unit and range as FigureValues declares them: check_known_figures tests them directly (the
# generic check of FigureValues was half the index's first build of a long perflog), and words a failure by it.
KNOWN_FIGURES = {name: (figure.unit, next(rule for rule in typing.get_args(Fraction if figure.percent else Amount)
                                            if isinstance(rule, Range))) for name, figure in FIGURES.items()}
# The training settings that change a figure: runs differing in one of them are not compared.
SETTINGS = ("image_size", "batch_size", "lr", "warmup_epochs", "optimizer", "precision", "tf32", "channels_last", "compile",
            "mode", "epochs", "world_size", "lr_scaling", "sync_bn", "synthetic")
SYSTEM = ("cluster", "partition", "node", "device", "gpu_name", "gpu_count", "driver", "cuda", "torch", "timm",
          "harness_version", "git_commit", "git_dirty")
SCALAR = (str, int, float, bool, type(None))
FIRST_YEAR, LAST_YEAR = 1970, 2261  # the dates a time axis (pandas' Timestamp) can hold


@dataclass(frozen=True)
class PerfEntry:
    time: Annotated[str, Date()]  # when the run finished (ISO 8601, UTC)
    sweep: str
    run: str
    architecture: str
    seed: int
    settings: dict[str, Any]
    system: dict[str, Any]
    figures: FigureValues  # name -> {"value": number or null, "unit": str}
    variant: str = ""
    alone: bool | None = None  # the run had its node and GPU to itself (null: not known, or a line before 1.1)
    shared_by: list[str] = field(default_factory=list)  # what shared them, one line each (the record's sharing)
    spread: dict[str, Annotated[list[Amount], Length(2)]] = field(default_factory=dict)  # figure -> [q1, q3] of its windows
    schema_version: int = PERFLOG_SCHEMA
    schema_minor: Count = PERFLOG_MINOR

    def value(self, figure: str) -> float | None:
        return (self.figures.get(figure) or {}).get("value")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, path: Path) -> "PerfEntry":
        """An entry from one parsed line; DamagedFile (with the reason) when it is not one. Every figure is
        checked as a number or null with its unit first, then the other fields, then a known figure's range
        and unit (FigureValues: check_known_figures)."""
        figures = data.get("figures") if isinstance(data, dict) else None
        if isinstance(figures, dict):
            check_figures(figures, path)
            data = {**data, "figures": {}}  # checked apart: the fields' generic check need not walk them
        entry = from_versioned_fields(cls, data, path, PERFLOG_SCHEMA, PERFLOG_MINOR)
        if isinstance(figures, dict):
            check_known_figures(figures, path)
        try:
            when = datetime.fromisoformat(entry.time)
        except ValueError:
            raise DamagedFile(path, f"time {entry.time!r:.40} is not an ISO 8601 date") from None
        if not FIRST_YEAR <= when.year <= LAST_YEAR:
            raise DamagedFile(path, f"time {entry.time!r:.40} is not a date between {FIRST_YEAR} and {LAST_YEAR}")
        # one spelling of a time for every reader: an ISO week date (2025-W01-1) or a time without its
        # zone (taken as UTC) reads as any other
        entry = replace(entry, time=(when if when.tzinfo else when.replace(tzinfo=timezone.utc)).isoformat(),
                        figures=figures if isinstance(figures, dict) else entry.figures)
        if entry.seed < 0:
            raise DamagedFile(path, f"seed {entry.seed} is negative")
        for part in ("settings", "system"):
            for key, value in getattr(entry, part).items():
                if not isinstance(value, SCALAR):
                    raise DamagedFile(path, f"{part}.{key} is {type(value).__name__}, not a plain value")
        return entry


def check_figures(figures: dict[str, Any], path: Path) -> None:
    """DamagedFile unless each figure is {"value": a finite number or null, "unit": text}."""
    for name, figure in figures.items():
        if not isinstance(figure, dict) or set(figure) != {"value", "unit"}:
            raise DamagedFile(path, f"figure {name!r} is not {{\"value\": ..., \"unit\": ...}}")
        value = figure["value"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise DamagedFile(path, f"figure {name!r} has value {value!r:.40}, not a number or null")
        if not isinstance(figure["unit"], str):
            raise DamagedFile(path, f"figure {name!r} has a unit that is not text")


def check_known_figures(figures: dict[str, dict[str, Any]], path: Path) -> None:
    """DamagedFile unless each known figure (of check_figures' shape) has its unit and is in its range, as
    FigureValues declares them (KNOWN_FIGURES), worded as the declared types word it."""
    for name, figure in figures.items():
        known, value = KNOWN_FIGURES.get(name), figure["value"]
        if known and (figure["unit"] != known[0] or (value is not None and not known[1].holds(value))):
            raise DamagedFile(path, f"field 'figures': {type_problem(figures, FigureValues, 'figures')}")


def settings_of(record: RunRecord) -> dict[str, Any]:
    config, pre = record.config, record.preprocessing or {}
    settings = {name: config.get(name) for name in SETTINGS}
    settings["image_size"] = config.get("image_size") or pre.get("image_size")  # None: the architecture's own
    settings["compile"] = bool(config.get("compile", False))
    # an entry from before data-parallel runs trained on one process
    settings.update(world_size=config.get("world_size", 1), lr_scaling=config.get("lr_scaling", "none"),
                    sync_bn=bool(config.get("sync_bn", False)), synthetic=record.synthetic)
    return {k: (v if isinstance(v, SCALAR) else str(v)) for k, v in settings.items()}


def system_of(record: RunRecord, spec: SweepSpec | None, found: dict[str, Any]) -> dict[str, Any]:
    """Where the run ran: its record's environment, the sweep's code, and what the job found at its end
    (found: gpu_count, driver; see measure.system.collect_system)."""
    env, code = record.environment or {}, (spec.code if spec else {}) or {}
    on_gpu = env.get("device") == "cuda"
    return {
        "cluster": env.get("cluster") or "local",
        "partition": env.get("partition") or "local",
        "node": env.get("node") or env.get("host"),
        "device": env.get("device"),
        "gpu_name": env.get("device_name") if on_gpu else None,
        # a run's GPUs: one per rank where it had several (rank 0 sees its own node's alone), else those visible
        "gpu_count": ranks if on_gpu and (ranks := int((record.distributed or {}).get("world_size") or 1)) > 1
        else found.get("gpu_count", 0 if not on_gpu else None),
        "driver": found.get("driver"),
        "cuda": env.get("cuda"),
        "torch": env.get("torch"),
        "timm": env.get("timm"),
        "harness_version": code.get("harness_version") or __version__,
        "git_commit": code.get("git_commit"),
        "git_dirty": code.get("git_dirty"),
    }


def system_key(system: dict[str, Any]) -> str:
    """A system (system_of) as a reference names it: CLUSTER:PARTITION:GPU, the GPU cpu where there was none."""
    return f"{system.get('cluster') or 'local'}:{system.get('partition') or 'local'}:{system.get('gpu_name') or 'cpu'}"


def entry_from_record(record: RunRecord, spec: SweepSpec | None, found: dict[str, Any]) -> PerfEntry:
    variant = ""
    if spec is not None:
        try:
            variant = spec.run(record.run_id).variant
        except KeyError:
            pass
    figures = {name: {"value": value, "unit": FIGURES[name].unit} for name, value in figures_of(record).items()}
    spread = {name: [s["q1"], s["q3"]] for name, figure in FIGURES.items() if (s := figure.spread_of(record))}
    return PerfEntry(time=record.finished_at, sweep=record.sweep_id, run=record.run_id, architecture=record.model,
                     seed=record.seed, settings=settings_of(record), system=system_of(record, spec, found),
                     figures=figures, variant=variant, alone=(record.sharing or {}).get("alone"),
                     shared_by=record.shared_by, spread=spread)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def append_entry(results: Path, entry: PerfEntry) -> Path:
    """Append one line to results/perflog.jsonl: under the folder's perflog lock, one O_APPEND write,
    then fsync. A line left without its newline by a writer killed mid-write stays a line of its own
    (the reader reports and skips it): this one starts on a fresh line."""
    path = perflog(results)
    refuse_symlink(path)
    line = (json.dumps(entry.to_json(), separators=(",", ":"), allow_nan=False, default=str) + "\n").encode()
    with locked(perflog_lock(results)):
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line
            _write_all(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    return path


def entry_of_line(raw: bytes, path: Path) -> PerfEntry:
    """One line of the perflog (without its newline) as an entry; DamagedFile, with the reason, when it is not one."""
    try:
        data = parse_json(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise DamagedFile(path, f"not a JSON object ({str(err)[:80]})") from None
    return PerfEntry.from_json(data, path)
