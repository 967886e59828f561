"""The on-disk contract: a sweep's spec (sweep.json) and a run's record (result.json), as dataclasses
with a documented, versioned schema (docs/results.md). Every read is checked (store.schema)."""
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from harness.store.atomic import write_json_atomic
from harness.store.paths import SWEEP_NAME, RunPaths, SweepPaths, check_inside, is_run_id
from harness.store.run_files import check_run_files
from harness.store.schema import (
    Amount,
    Count,
    DamagedFile,
    Date,
    Fraction,
    Keys,
    Length,
    Positive,
    Range,
    from_versioned_fields,
    load_json,
    type_problem,
)
from harness.zoo import MAX_IMAGE_SIZE

# Each file's schema: its major version (schema_version; another one is not read) and its minor version
# (schema_minor: fields a later harness adds, which an earlier one reads past with a warning).
SWEEP_SCHEMA, SWEEP_MINOR = 1, 7  # 1.1: train.keep_checkpoints, cluster.python; 1.2: train.world_size, nodes, lr_scaling,
# sync_bn; 1.3: code.digest; 1.4: train.keras_resize; 1.5: train.synthetic (dataset then ''); 1.6: train.robustness_images;
# 1.7: runs[].node (sweep --every-node)
# 1.1: config.keep_checkpoints, the environment's cluster; 1.2: distributed; 1.3: the environment's backend, job_id,
# cluster, partition and node, as the run's backend says (before: under its scheduler's name, see _where_it_ran);
# 1.4: config.keras_resize, preprocessing.resize, throughput.gpu_copy_wait_fraction and gpu_copy_wait_reason,
# gpu.energy_uncertainty_j, cross_generator's intervals; 1.5: throughput.train_spread and infer_spread (the timed
# windows), sharing, config.synthetic and test_reason (a synthetic run: no val or test); 1.6: config.robustness_images
RESULT_SCHEMA, RESULT_MINOR = 1, 6
STATUSES = ("COMPLETED", "FAILED", "CANCELLED")  # CANCELLED: by `harness cancel` before it completed

# The kinds of value the two files hold, each checked where it is read (store.schema.type_problem):
# nested objects name their known keys; keys a later version adds pass.
ImageSize = Annotated[int, Range(1, MAX_IMAGE_SIZE)]
Rate = Annotated[float, Range(0, above=True)]  # a learning rate, a std: more than 0
TRAINING = Keys({"epochs": Positive, "batch_size": Positive, "lr": Rate | None, "warmup_epochs": Count | None,
                 "image_size": ImageSize | None, "seed": Count, "model": str, "world_size": Positive, "nodes": Positive,
                 "sync_bn": bool, "lr_scaling": str, "synthetic": bool})
Training = Annotated[dict[str, Any], TRAINING]
Metrics = Annotated[dict[str, Any], Keys({
    **dict.fromkeys(("accuracy", "precision", "recall", "f1", "accuracy_at_threshold"), Fraction),
    **dict.fromkeys(("auc", "average_precision", "eer"), Fraction | None),
    "loss": Amount, "threshold": float, "count": Count,
    "confusion_matrix": Annotated[list[Annotated[list[Count], Length(2)]], Length(2)],
    **dict.fromkeys(("accuracy_interval", "auc_interval"), Annotated[list[Fraction], Length(2)] | None),
    **dict.fromkeys(("accuracy_interval_method", "accuracy_interval_reason", "auc_interval_method",
                     "auc_interval_reason", "interval_unit"), str | None),
    "interval_units": Count | None})]
Preprocessing = Annotated[dict[str, Any], Keys({
    "image_size": ImageSize, "interpolation": Literal["nearest", "bilinear", "bicubic", "lanczos"],
    "crop_pct": Annotated[float, Range(0, 1, above=True)], "mean": Annotated[list[float], Length(3)],
    "std": Annotated[list[Rate], Length(3)], "bgr": bool, "mode": str, "resize": Literal["timm", "keras"]})]
# The images/s of a phase's timed windows (measure.meters.window_spread): each window's, their median (the
# phase's figure), quartiles and extremes.
Spread = Annotated[dict[str, Any], Keys({"images_per_s": list[Amount],
                                         **dict.fromkeys(("median", "q1", "q3", "min", "max"), Amount | None)})]
Throughput = Annotated[dict[str, Any], Keys({
    **dict.fromkeys(("train_images_per_s", "infer_images_per_s", "achieved_tflops", "peak_tflops", "mfu",
                     "compile_seconds"), Amount | None),
    "train_spread": Spread, "infer_spread": Spread,
    "data_wait_fraction": Fraction | None, "gpu_copy_wait_fraction": Fraction | None, "gpu_copy_wait_reason": str | None,
    "steady_train_steps": Count,
    "train_flops_per_image": Count | None, "infer_flops_per_image": Count | None})]
Memory = Annotated[dict[str, Any], Keys({"peak_host_rss_bytes": Count | None, "peak_gpu_memory_bytes": Count | None})]
ENERGY = {"energy_j": Amount | None, "energy_uncertainty_j": Amount | None, "images": Count, "energy_per_image_j": Amount | None}
Gpu = Annotated[dict[str, Any], Keys({
    "util_mean": Fraction | None, "util_median": Fraction | None, "util_period_s": Amount | None, "samples": Count,
    "memory_used_max_bytes": Count | None, "power_mean_w": Amount | None, **ENERGY,
    "infer": Annotated[dict[str, Any], Keys(ENERGY)] | None})]
# Whether a run had its node and its GPU to itself during its timed windows (measure.sharing): alone (true),
# shared (false, shared_by naming what shared it) or not known (null); each part's own figures, or why not.
Sharing = Annotated[dict[str, Any], Keys({"alone": bool | None, "shared_by": list[str], "node": dict[str, Any] | None,
                                          "gpu": dict[str, Any] | None, "load": dict[str, Any] | None,
                                          "per_rank": list[dict[str, Any]]})]
# The source a sweep's jobs import (sweeps._snapshot_code): where, which, and its digest (store.disk.tree_digest).
Code = Annotated[dict[str, Any], Keys({"snapshot": str, "harness_version": str, "git_commit": str | None,
                                       "git_dirty": bool | None, "digest": str})]
# A run's ranks (training.distributed): how many, where, and each one's own figures.
Distributed = Annotated[dict[str, Any], Keys({
    "world_size": Positive, "nodes": Positive, "ranks_per_node": Positive, "backend": str | None, "lr_scaling": str,
    "lr": Rate, "sync_bn": bool, "per_rank": list[dict[str, Any]]})]


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: an architecture, a seed, and the variant (training options it overrides)."""

    run_id: str
    model: str
    seed: Count
    variant: str = ""
    overrides: Training = field(default_factory=dict)
    node: str = ""  # the node the run is pinned to (sweep --every-node); '' where the scheduler chooses

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
    created: Annotated[str, Date()]
    dataset: str  # '' for a synthetic sweep (synthetic inputs, no dataset)
    cache_root: str  # where the caches were when the sweep started; its jobs use the results folder's own (node)
    models: list[str]
    seeds: Positive
    train: Training
    cluster: dict[str, Any]  # the backend's name under "executor", and its settings
    runs: list[RunSpec]
    code: Code = field(default_factory=dict)  # the source the jobs run: snapshot, git commit, dirty, digest
    schema_version: int = SWEEP_SCHEMA
    schema_minor: Count = SWEEP_MINOR

    @property
    def executor(self) -> str:
        return str(self.cluster.get("executor", ""))

    @property
    def synthetic(self) -> bool:
        """A sweep of synthetic inputs (sweep --synthetic): no dataset, no preprocessing step."""
        return bool(self.train.get("synthetic"))

    def run(self, rid: str) -> RunSpec:
        for run in self.runs:
            if run.run_id == rid:
                return run
        raise KeyError(rid)

    def image_sizes(self) -> dict[str, int | None]:
        """Each architecture's input size: the sweep's, or what its runs override (None: its own default)."""
        return {run.model: run.overrides.get("image_size", self.train.get("image_size")) for run in self.runs}

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for run in data["runs"]:  # a run the scheduler places keeps no node key: a harness before 1.7 reads its sweep
            if not run["node"]:
                del run["node"]
        return data

    def check_runs(self, path: Path) -> None:
        """A sweep has architectures and runs: one without is no sweep any command can show."""
        if not self.models or not self.runs:
            raise DamagedFile(path, f"it lists no {'architecture' if not self.models else 'run'}")

    @classmethod
    def from_json(cls, data: Any, path: Path) -> "SweepSpec":
        spec = from_versioned_fields(cls, data, path, SWEEP_SCHEMA, SWEEP_MINOR)
        if not SWEEP_NAME.fullmatch(spec.sweep_id):
            raise DamagedFile(path, f"sweep_id {spec.sweep_id!r} is not a plain folder name")
        ids = [r.run_id for r in spec.runs]
        bad = [rid for rid in ids if not is_run_id(rid)]
        if bad:
            raise DamagedFile(path, f"run id {bad[0]!r} is not of the form ARCH-sSEED (it could leave the sweep folder)")
        if len(set(ids)) != len(ids):
            raise DamagedFile(path, "a run id is listed twice")
        for run in spec.runs:  # a run's folder is named after its architecture, variant and seed: nothing else
            if run.run_id != run_id(run.model, run.seed, run.variant):
                raise DamagedFile(path, f"run id {run.run_id!r} is not the id of {run.model!r}, variant {run.variant!r}, seed {run.seed}")
            if run.node and not is_run_id(run.node):  # it lands in an #SBATCH --nodelist line
                raise DamagedFile(path, f"run {run.run_id}: node {run.node!r:.60} is not a plain node name")
        spec.check_runs(path)
        paths = ("cache_root",) if spec.synthetic and not spec.dataset else ("dataset", "cache_root")
        relative = [name for name in paths if not Path(getattr(spec, name)).is_absolute()]
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
    seed: Count
    status: str
    config: Training
    finished_at: Annotated[str, Date()]
    error: str | None = None
    preprocessing: Preprocessing | None = None
    cache: str | None = None
    params: Positive | None = None
    trainable_params: Count | None = None
    best_epoch: Positive | None = None
    epochs_completed: Count | None = None
    val: Metrics | None = None
    test: Metrics | None = None
    robustness: dict[str, Metrics] = field(default_factory=dict)
    cross_generator: dict[str, Metrics] = field(default_factory=dict)
    throughput: Throughput | None = None
    memory: Memory | None = None
    gpu: Gpu | None = None
    distributed: Distributed | None = None  # None: a record from before 1.2 (one process)
    environment: dict[str, Any] | None = None
    requeues: Count = 0
    train_seconds_this_attempt: Amount | None = None
    started_at: Annotated[str, Date()] | None = None
    sharing: Sharing | None = None  # None: a record from before 1.5 (not known)
    test_reason: str | None = None  # why val and test are null on a completed run (synthetic inputs)
    schema_version: int = RESULT_SCHEMA
    schema_minor: Count = RESULT_MINOR

    @property
    def completed(self) -> bool:
        return self.status == "COMPLETED"

    @property
    def synthetic(self) -> bool:
        """A run timed on synthetic inputs (sweep --synthetic): speed figures, no val or test."""
        return bool(self.config.get("synthetic"))

    @property
    def shared_by(self) -> list[str]:
        """What shared the run's node or GPU during its timed windows (empty: alone, or not known)."""
        return list((self.sharing or {}).get("shared_by") or [])

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any, path: Path) -> "RunRecord":
        record = from_versioned_fields(cls, data, path, RESULT_SCHEMA, RESULT_MINOR)
        if record.schema_minor < 3 and record.environment:
            record = dataclasses.replace(record, environment=_where_it_ran(record.environment))
        if record.status not in STATUSES:
            raise DamagedFile(path, f"status {record.status!r} is not one of {', '.join(STATUSES)}")
        if record.completed:
            measured = ("throughput", "gpu", "params", "memory") if record.synthetic else ("test", "val", "throughput", "gpu",
                                                                                         "params", "memory")
            missing = [n for n in measured if getattr(record, n) is None]
            missing += [f"{split}.accuracy" for split in ("test", "val")
                        if not record.synthetic and "accuracy" not in (getattr(record, split) or {})]
            if missing:
                raise DamagedFile(path, f"a COMPLETED record without {', '.join(missing)}")
            for name in ("accuracy_interval", "auc_interval"):  # the schema checks each bound; here their order
                interval = (record.test or {}).get(name)
                if interval is not None and interval[0] > interval[1]:
                    raise DamagedFile(path, f"test.{name} is {interval!r:.60}, not null or [low, high] in [0, 1]")
        return record

    def check_folder(self, run: RunPaths) -> None:
        """The record is of the run whose folder holds it: its sweep, its id, and the architecture and seed
        that id names (a record copied from another run is not this run's result)."""
        where = run.result
        if self.run_id != run.run_id:
            raise DamagedFile(where, f"it is the record of run {self.run_id!r}, not of {run.run_id!r}")
        if run.sweep_folder is not None and self.sweep_id != run.sweep_folder.name:
            raise DamagedFile(where, f"it is a record of sweep {self.sweep_id!r}, not of {run.sweep_folder.name!r}")
        variant = self.run_id.removeprefix(f"{self.model}-").removesuffix(f"s{self.seed}").removesuffix("-")
        if run_id(self.model, self.seed, variant) != self.run_id:
            raise DamagedFile(where, f"its model {self.model!r} and seed {self.seed} are not those of run {self.run_id!r}")


def _where_it_ran(environment: dict[str, Any]) -> dict[str, Any]:
    """A record before 1.3 named where it ran with its scheduler's prefix (PREFIX_cluster, PREFIX_partition,
    PREFIX_node): under today's keys, so that its system reads as a new record's does."""
    found = {key: next((value for name, value in environment.items() if name.endswith(f"_{key}")), None)
             for key in ("cluster", "partition", "node")}
    return {**{key: value for key, value in found.items() if value is not None}, **environment}


def read_record(run: RunPaths) -> RunRecord | None:
    """The run's record; None when it has none yet; DamagedFile when it, or a file beside it that a
    completed run's figures come from (store.run_files), cannot be read as its schema says."""
    try:
        data = load_json(run.result)  # DamagedFile where a FIFO, a device or a folder stands in its place
    except (FileNotFoundError, NotADirectoryError):  # none yet (or no run folder: a file stands there)
        return None
    record = RunRecord.from_json(data, run.result)
    record.check_folder(run)
    if record.completed:
        check_run_files(run, (record.test or {}).get("count"), record.epochs_completed)
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


def write_record(run: RunPaths, record: RunRecord, replace: bool = True) -> bool:
    """Write the run's record (replace=False: only where it has none yet); returns whether it was written."""
    if run.sweep_folder is not None:
        check_inside(run.result, run.sweep_folder)
    return write_json_atomic(run.result, record.to_json(), replace)


PROGRESS = Keys({"epoch": Count | None, "epochs": Positive | None, "val_accuracy": Fraction | None, "state": str})


def read_progress(run: RunPaths) -> dict[str, Any]:
    """The run's progress (epoch, epochs, val_accuracy, state); empty when absent or damaged (progress is
    advisory and rewritten every epoch: the run's state comes from its record and its job)."""
    try:
        return read_advisory(run.progress, PROGRESS)
    except DamagedFile:
        return {}


def read_advisory(path: Path, keys: Keys) -> dict[str, Any]:
    """A progress file: an object whose known keys are of their declared types; empty when it is absent
    (or unreadable: it is rewritten as the work goes on); DamagedFile when it is not of its schema."""
    try:
        data = load_json(path)
    except OSError:
        return {}
    problem = type_problem(data, Annotated[dict[str, Any], keys])
    if problem:
        raise DamagedFile(path, problem)
    return data
