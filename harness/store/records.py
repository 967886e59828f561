"""The on-disk contract: a sweep's spec (sweep.json) and a run's record (result.json), as dataclasses
with a documented, versioned schema (README, "Results"). Every read is checked (store.schema)."""
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.store.atomic import write_json_atomic
from harness.store.paths import SWEEP_NAME, RunPaths, SweepPaths, is_run_id
from harness.store.schema import DamagedFile, from_versioned_fields, load_json

SWEEP_SCHEMA = 1
RESULT_SCHEMA = 1
STATUSES = ("COMPLETED", "FAILED")


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: an architecture, a seed, and the variant (training options it overrides)."""

    run_id: str
    model: str
    seed: int
    variant: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """What a leaderboard row is called: the architecture, and its variant if the sweep has several."""
        return f"{self.model} [{self.variant}]" if self.variant else self.model


def run_id(model: str, seed: int, variant: str = "") -> str:
    return f"{model}-{variant}-s{seed}" if variant else f"{model}-s{seed}"


@dataclass(frozen=True)
class SweepSpec:
    """Every option of a sweep and its run list, written once before any job starts."""

    sweep_id: str
    created: str
    dataset: str
    cache_root: str
    models: list[str]
    seeds: int
    train: dict[str, Any]
    cluster: dict[str, Any]  # the backend's name under "executor", and its settings
    runs: list[RunSpec]
    code: dict[str, Any] = field(default_factory=dict)  # the source the jobs run: snapshot, git commit, dirty
    schema_version: int = SWEEP_SCHEMA

    @property
    def executor(self) -> str:
        return str(self.cluster.get("executor", ""))

    def run(self, rid: str) -> RunSpec:
        for run in self.runs:
            if run.run_id == rid:
                return run
        raise KeyError(rid)

    def image_sizes(self) -> dict[str, int | None]:
        """Each architecture's input size: the sweep's, or what its runs override (None: its own default)."""
        return {run.model: run.overrides.get("image_size", self.train.get("image_size")) for run in self.runs}

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any, path: Path) -> "SweepSpec":
        spec = from_versioned_fields(cls, data, path, SWEEP_SCHEMA)
        if not SWEEP_NAME.fullmatch(spec.sweep_id):
            raise DamagedFile(path, f"sweep_id {spec.sweep_id!r} is not a plain folder name")
        ids = [r.run_id for r in spec.runs]
        bad = [rid for rid in ids if not is_run_id(rid)]
        if bad:
            raise DamagedFile(path, f"run id {bad[0]!r} is not of the form ARCH-sSEED (it could leave the sweep folder)")
        if len(set(ids)) != len(ids):
            raise DamagedFile(path, "a run id is listed twice")
        for run in spec.runs:  # a run's folder is named after its architecture, variant and seed: nothing else
            if run.seed < 0 or run.run_id != run_id(run.model, run.seed, run.variant):
                raise DamagedFile(path, f"run id {run.run_id!r} is not the id of {run.model!r}, variant {run.variant!r}, seed {run.seed}")
        relative = [name for name in ("dataset", "cache_root") if not Path(getattr(spec, name)).is_absolute()]
        if relative:  # a job starts in the sweep's folder, where a relative path points elsewhere
            raise DamagedFile(path, f"its {relative[0]} {getattr(spec, relative[0])!r} is a relative path; give it "
                              "as an absolute path in the file, or start the sweep anew")
        if not spec.executor:
            raise DamagedFile(path, "cluster.executor is missing")
        return spec


def read_spec(sweep: SweepPaths) -> SweepSpec:
    if not sweep.spec.is_file():
        raise DamagedFile(sweep.spec, "the file is missing")
    return SweepSpec.from_json(load_json(sweep.spec), sweep.spec)


def write_spec(sweep: SweepPaths, spec: SweepSpec) -> None:
    write_json_atomic(sweep.spec, spec.to_json())


@dataclass(frozen=True)
class RunRecord:
    """A run's result (COMPLETED) or why it has none (FAILED, with `error`); the same type for both."""

    sweep_id: str
    run_id: str
    model: str
    seed: int
    status: str
    config: dict[str, Any]
    finished_at: str
    error: str | None = None
    preprocessing: dict[str, Any] | None = None
    cache: str | None = None
    params: int | None = None
    trainable_params: int | None = None
    best_epoch: int | None = None
    epochs_completed: int | None = None
    val: dict[str, Any] | None = None
    test: dict[str, Any] | None = None
    robustness: dict[str, dict[str, Any]] = field(default_factory=dict)
    cross_generator: dict[str, dict[str, Any]] = field(default_factory=dict)
    throughput: dict[str, Any] | None = None
    memory: dict[str, Any] | None = None
    gpu: dict[str, Any] | None = None
    environment: dict[str, Any] | None = None
    requeues: int = 0
    train_seconds_this_attempt: float | None = None
    started_at: str | None = None
    schema_version: int = RESULT_SCHEMA

    @property
    def completed(self) -> bool:
        return self.status == "COMPLETED"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any, path: Path) -> "RunRecord":
        record = from_versioned_fields(cls, data, path, RESULT_SCHEMA)
        if record.status not in STATUSES:
            raise DamagedFile(path, f"status {record.status!r} is not one of {', '.join(STATUSES)}")
        if record.completed:
            missing = [n for n in ("test", "val", "throughput", "gpu", "params", "memory") if getattr(record, n) is None]
            if missing:
                raise DamagedFile(path, f"a COMPLETED record without {', '.join(missing)}")
            for split in ("test", "val"):
                value = getattr(record, split).get("accuracy")
                if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                    raise DamagedFile(path, f"{split}.accuracy is {value!r}, not a number in [0, 1]")
            for name in ("accuracy_interval", "auc_interval"):  # null (with its reason) or [low, high] inside [0, 1]
                interval = (record.test or {}).get(name)
                if interval is not None and not (isinstance(interval, list) and len(interval) == 2
                                                 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in interval)
                                                 and 0 <= interval[0] <= interval[1] <= 1):
                    raise DamagedFile(path, f"test.{name} is {interval!r:.60}, not null or [low, high] in [0, 1]")
        return record


def read_record(run: RunPaths) -> RunRecord | None:
    """The run's record; None when it has none yet; DamagedFile when it cannot be read."""
    if not run.result.is_file():
        return None
    record = RunRecord.from_json(load_json(run.result), run.result)
    if record.run_id != run.run_id:
        raise DamagedFile(run.result, f"it is the record of run {record.run_id!r}, not of {run.run_id!r}")
    return record


def record_or_damage(run: RunPaths) -> RunRecord | DamagedFile | None:
    """The run's record, None when it has none yet, or the damage that keeps it from being read."""
    try:
        return read_record(run)
    except DamagedFile as damaged:
        return damaged


def read_completed(run: RunPaths) -> RunRecord | None:
    """The run's record where it is whole and COMPLETED; None otherwise (missing, damaged or FAILED)."""
    record = record_or_damage(run)
    return record if isinstance(record, RunRecord) and record.completed else None


def write_record(run: RunPaths, record: RunRecord) -> None:
    write_json_atomic(run.result, record.to_json())


def read_progress(run: RunPaths) -> dict[str, Any]:
    """The run's progress (epoch, epochs, val_accuracy, state); empty when absent or unreadable
    (progress is advisory and rewritten every epoch)."""
    try:
        data = json.loads(run.progress.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
