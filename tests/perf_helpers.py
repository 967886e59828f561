"""Made-up sweeps, records and perflog entries for the unit tests of the perflog, compare and check:
written through the store, as a job would write them, without training anything."""
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.store.figures import FIGURES
from harness.store.paths import SweepPaths
from harness.store.perflog import PerfEntry
from harness.store.records import RunRecord, RunSpec, SweepSpec, run_id, write_record, write_spec


def record(model: str = "ResNet50", seed: int = 0, sweep: str = "a", accuracy: float = 0.9, train_ips: float = 100.0,
           device: str = "cpu", **changes: Any) -> RunRecord:
    metrics = {"accuracy": accuracy, "auc": min(1.0, accuracy + 0.02), "f1": accuracy, "loss": 0.3}
    made = RunRecord(
        sweep_id=sweep, run_id=run_id(model, seed), model=model, seed=seed, status="COMPLETED",
        config={"epochs": 1, "batch_size": 32, "image_size": 64, "lr": 0.001, "warmup_epochs": 0, "optimizer": "adam",
                "precision": "fp32", "channels_last": False, "mode": "finetune", "compile": False},
        finished_at="2026-01-02T03:10:00+00:00", started_at="2026-01-02T03:00:00+00:00",
        preprocessing={"image_size": 64}, params=1000, trainable_params=1000, best_epoch=1, epochs_completed=1,
        val=dict(metrics), test=dict(metrics),
        throughput={"train_images_per_s": train_ips, "infer_images_per_s": 3 * train_ips, "data_wait_fraction": 0.01,
                    "mfu": None, "compile_seconds": None},
        memory={"peak_host_rss_bytes": 2 ** 30, "peak_gpu_memory_bytes": None},
        gpu={"util_median": None, "reason": "no NVIDIA GPU in use"},
        environment={"host": "node7", "device": device, "device_name": "NVIDIA H100" if device == "cuda" else "x86_64",
                     "torch": "2.5.0", "timm": "1.0", "cuda": "12.4", "partition": None, "node": None},
        train_seconds_this_attempt=500.0, sharing={"alone": True, "shared_by": []})
    return replace(made, **changes)


def make_sweep(results: Path, name: str, records: list[RunRecord], models: list[str] | None = None) -> SweepPaths:
    """A sweep folder with its spec and these records (runs listed in models but without a record stay without one)."""
    sweep = SweepPaths.of(results, name)
    sweep.folder.mkdir(parents=True)
    models = models or list(dict.fromkeys(r.model for r in records))
    seeds = {r.model: [] for r in records}
    for r in records:
        seeds[r.model].append(r.seed)
    # a record's run id names its variant, if any: ResNet50-x2-s0 is ResNet50 on two ranks (sweep --scaling)
    runs = [RunSpec(r.run_id, m, r.seed, r.run_id[len(m) + 1:].rpartition("-s")[0]) for m in models for r in records
            if r.model == m] + [RunSpec(run_id(m, 0), m, 0) for m in models if m not in seeds]
    write_spec(sweep, SweepSpec(sweep_id=name, created="2026-01-02T03:00:00+00:00", dataset="/data", cache_root="/cache",
                                models=models, seeds=max(len(set(v)) for v in seeds.values()), train={},
                                cluster={"executor": "local"}, runs=runs,
                                code={"harness_version": "0.1.0", "git_commit": "abc123", "git_dirty": False}))
    for r in records:
        write_record(sweep.run(r.run_id), replace(r, sweep_id=name))
    return sweep


def entry(run: str = "ResNet50-s0", value: float | None = 100.0, pad: str = "", **changes: Any) -> PerfEntry:
    figures = {name: {"value": None, "unit": figure.unit} for name, figure in FIGURES.items()}
    figures["train_images_per_s"]["value"] = value
    made = PerfEntry(time="2026-01-02T03:10:00+00:00", sweep="a", run=run, architecture=run.rsplit("-s", 1)[0],
                     seed=int(run.rsplit("-s", 1)[1]), settings={"image_size": 64, "batch_size": 32, "note": pad},
                     system={"cluster": "local", "partition": "local"}, figures=figures)
    return replace(made, **changes)
