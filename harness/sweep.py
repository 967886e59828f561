"""A sweep's spec: which runs (architecture x seed) on which dataset with which training options.

Written once as results/<sweep-id>/sweep.json before any job starts; every job reads its orders
from it, so a job's pickle carries only the sweep folder and a run id.
"""
import os
import secrets
from dataclasses import asdict, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.atomic import write_json_atomic
from harness.data.demo import make_demo
from harness.data.manifest import read_manifest
from harness.errors import UserError
from harness.models import PAPER_PROBABLE_MODE
from harness.results import SWEEP_SCHEMA, check_sweep_name, run_id
from harness.training import TrainConfig

DEMO = {"per_class": 400, "size": 80, "seed": 0}  # 80 px: the smallest size above InceptionV3's minimum of 75
TRAIN_OPTIONS = tuple(f.name for f in fields(TrainConfig) if f.name not in ("model", "seed"))


def new_sweep_id(name: str | None) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return check_sweep_name(name) if name else f"{stamp}-{secrets.token_hex(2)}"


def resolve_dataset(dataset: str, results: Path) -> Path:
    """'demo' builds (once) the built-in demo dataset under results/datasets; a folder is checked."""
    if dataset == "demo":
        folder = Path(results) / "datasets" / "demo-{per_class}x{size}px-seed{seed}".format(**DEMO)
        if not (folder / "manifest.csv").exists():
            make_demo(folder, **DEMO)
        return folder.resolve()
    read_manifest(Path(dataset))  # fails in one line on a missing folder, manifest or class
    return Path(dataset).resolve()


Variant = tuple[str, dict[str, Any]]  # (name, training options it overrides)


def make_spec(sweep_id: str, dataset: Path, results: Path, models: list[str], seeds: int,
              train: dict[str, Any], cluster: dict[str, Any], variants: list[Variant] | None = None) -> dict[str, Any]:
    """The runs: every architecture x variant x seed. A variant (a generator to train on, a
    preprocessing mode) overrides some training options and becomes its own leaderboard row."""
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {seeds}")
    runs = [{"run_id": run_id(m, s, name), "model": m, "seed": s, "variant": name, "overrides": overrides}
            for m in models for name, overrides in (variants or [("", {})]) for s in range(seeds)]
    for run in runs:
        _config(run, train).validate()
    return {
        "schema_version": SWEEP_SCHEMA,
        "sweep_id": sweep_id,
        "created": datetime.now(timezone.utc).isoformat(),
        "dataset": str(dataset),
        "cache_root": str((Path(results) / "cache").resolve()),
        "models": models,
        "seeds": seeds,
        "train": train,
        "cluster": cluster,
        "runs": runs,
    }


def _config(run: dict[str, Any], train: dict[str, Any]) -> TrainConfig:
    return TrainConfig(model=run["model"], seed=run["seed"], **{**train, **run.get("overrides", {})})


def train_config(spec: dict[str, Any], rid: str) -> TrainConfig:
    return _config(next(r for r in spec["runs"] if r["run_id"] == rid), spec["train"])


def generator_variants(dataset: Path) -> list[Variant]:
    """One variant per fake generator of the dataset: train on it, test on every generator."""
    generators = sorted(set(read_manifest(dataset).query("label == 'fake'")["generator"]) - {""})
    if len(generators) < 2:
        raise UserError(f"--cross-generator needs fakes from two generators or more; {dataset} has {generators or 'none named'}")
    return [(g, {"train_generator": g}) for g in generators]


def preprocessing_variants() -> list[Variant]:
    """Each architecture with its own preprocessing, and with the Keras mode the paper most likely used."""
    return [("timm", {"preprocessing": "timm"}), (PAPER_PROBABLE_MODE, {"preprocessing": PAPER_PROBABLE_MODE})]


def resize_keys(spec: dict[str, Any]) -> list[tuple[int, str, float]]:
    """The distinct caches a sweep needs (architectures that share input settings share one)."""
    keys = {train_config(spec, r["run_id"]).resolved_preprocessing().resize_key for r in spec["runs"]}
    return sorted(keys)


def write_spec(folder: Path, spec: dict[str, Any]) -> None:
    """Create the sweep folder and its spec; refuses to reuse a folder another sweep owns."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir()  # atomic: of two sweeps started at once under one name, one gets the folder
    except FileExistsError:
        raise UserError(f"a sweep named {folder.name!r} already exists in {folder.parent}; pick another --name or --resume it") from None
    except OSError as err:
        raise UserError(f"cannot write the results folder {folder.parent}: {err.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise UserError(f"cannot write the results folder {folder}")
    write_json_atomic(folder / "sweep.json", spec)


def train_options(**values: Any) -> dict[str, Any]:
    """The training options of a sweep, every TrainConfig field spelled out."""
    defaults = asdict(TrainConfig(model="ResNet50"))
    unknown = set(values) - set(TRAIN_OPTIONS)
    if unknown:
        raise ValueError(f"unknown training options {sorted(unknown)}")
    return {name: defaults[name] if values.get(name) is None else values[name] for name in TRAIN_OPTIONS}
