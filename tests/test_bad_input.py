"""Bad input, odd input and damaged files: every case is refused in one line that names the
cause, or handled; and whatever happens, the results folder, the datasets and the cluster's queue are
as they were (unless the case is a repair, such as `sweep --resume` rerunning a DAMAGED run).

One table (`CASES`), each row a command as a user types it, its exit code, the words its one stderr
line must hold (or, for a handled case, what stdout shows). The commands run in this process through
`harness.cli.main` (the `cli` fixture), a few as a real process where the process matters. Nothing is
ever submitted: the backends are replaced by guards that fail the test if a case reaches a
submission it should not, and by a recorder where a case is a resubmission (`sweep --resume`).

Placeholders in a row's arguments: {R} the results folder (a copy of a template with one sweep per kind
of damage, shared by the cases, each entry a case changed put back from the template after it), {D} the
datasets, {I} other inputs (weights, profiles, images), {T} the case's own scratch folder.
"""
import contextlib
import dataclasses
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.cluster.local import LocalBackend, has_nvidia_gpu, worker_token
from harness.store.submissions import Submission

from patience import HUNG_S

REPO = Path(__file__).resolve().parent.parent
MODEL = "MobileNetV2"
SLURM_SETTINGS = ("spec-account", "spec-partition", "spec-time", "spec-unknown-key")  # damaged sweeps of the Slurm backend


# ----------------------------------------------------------------------------------------------------
# The world every case runs against
# ----------------------------------------------------------------------------------------------------

def _completed(sweep_id: str, rid: str, seed: int) -> dict[str, Any]:
    """A COMPLETED record as a run writes it (metrics made up, every field of the right type)."""
    from harness.training.config import TrainConfig
    from harness.zoo.lookup import preprocessing_for

    metrics = {"accuracy": 0.75, "loss": 0.5, "precision": 0.8, "recall": 0.7, "f1": 0.74, "auc": 0.8,
               "average_precision": 0.79, "eer": 0.25, "threshold": 0.5, "accuracy_at_threshold": 0.75,
               "confusion_matrix": [[8, 2], [3, 7]], "count": 20}
    return {"schema_version": 1, "sweep_id": sweep_id, "run_id": rid, "model": MODEL, "seed": seed, "status": "COMPLETED",
            "config": dataclasses.asdict(TrainConfig(model=MODEL, seed=seed, epochs=2, image_size=64)),
            "finished_at": "2025-01-01T00:00:00+00:00", "error": None,
            "preprocessing": dataclasses.asdict(preprocessing_for(MODEL, "timm", 64)), "cache": None,
            "params": 2_914_369, "trainable_params": 2_914_369, "best_epoch": 2, "epochs_completed": 2,
            "val": dict(metrics), "test": dict(metrics), "robustness": {"jpeg90": dict(metrics)}, "cross_generator": {},
            "throughput": {"train_images_per_s": 100.0, "infer_images_per_s": 300.0, "data_wait_fraction": 0.01,
                           "achieved_tflops": None, "mfu": None, "mfu_reason": "no GPU"},
            "memory": {"peak_host_rss_bytes": 1, "peak_gpu_memory_bytes": None, "peak_gpu_memory_reason": "no GPU"},
            "gpu": {"util_mean": None, "util_median": None, "reason": "no NVIDIA GPU"},
            "environment": {"host": "test"}, "requeues": 0}


def _write_sweep(results: Path, name: str, seeds: int = 2, executor: str = "local", edit: Callable | None = None,
                 jobs: Any = None) -> Path:
    """A sweep of MobileNetV2 x seeds as `sweep` writes it (no code snapshot); edit(spec_json) may damage it."""
    from harness.cluster.slurm.profile import Profile
    from harness.store.records import RunSpec, SweepSpec, run_id
    from harness.training.config import train_options

    folder = results / name
    (folder / "logs").mkdir(parents=True)
    spec = SweepSpec(sweep_id=name, created="2025-01-01T00:00:00+00:00", dataset=str(results.parent / "datasets" / "good"),
                     cache_root=str(results / "cache"), models=[MODEL], seeds=seeds,
                     train=train_options(epochs=2, image_size=64),
                     cluster={"executor": executor, **Profile().to_json()},
                     runs=[RunSpec(run_id(MODEL, s), MODEL, s) for s in range(seeds)])
    data = spec.to_json()
    if edit:
        edit(data)
    (folder / "sweep.json").write_text(json.dumps(data, indent=2))
    if jobs is not None:
        (folder / "jobs.json").write_text(jobs if isinstance(jobs, str) else json.dumps(jobs))
    (folder / ".jobs.lock").touch()  # as a sweep's submission leaves it (record_submission)
    return folder


def _run_folder(sweep: Path, seed: int, record: Any = "completed", best: bytes | None = None) -> Path:
    """A run's files: its record (a dict, raw text, or "completed"), history, test scores, weights."""
    import numpy as np

    rid = f"{MODEL}-s{seed}"
    folder = sweep / "runs" / rid
    folder.mkdir(parents=True)
    if record == "completed":
        record = _completed(sweep.name, rid, seed)
    if record is not None:
        (folder / "result.json").write_text(record if isinstance(record, str) else json.dumps(record))
    (folder / "history.csv").write_text("epoch,train_loss,train_accuracy,val_loss,val_accuracy\n1,0.7,0.5,0.7,0.5\n2,0.6,0.6,0.6,0.7\n")
    rng = np.random.default_rng(seed)
    np.save(folder / "test_scores.npy", np.stack([np.repeat([0.0, 1.0], 10), rng.random(20)]))
    if best is not None:
        (folder / "best.pt").write_bytes(best)
    return folder


def _jobs(tasks: dict[str, str], executor: str = "local", pre: str | None = None) -> dict[str, Any]:
    return {"submissions": [{"executor": executor, "preprocess_job": pre, "tasks": tasks, "submitted": "2025-01-01T00:00:00+00:00"}]}


class Exploit:
    """A pickle that would run a command when loaded (torch.load with weights_only=True never runs it)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def build_world(root: Path) -> Path:
    """root/datasets, root/inputs, root/results: the template every case copies."""
    import numpy as np
    import pandas as pd
    import torch
    from PIL import Image

    from harness.data.demo import make_demo
    from harness.zoo.models import build_model

    datasets, inputs, results = root / "datasets", root / "inputs", root / "results"
    make_demo(datasets / "good", per_class=22, size=40, seed=0)
    manifest = pd.read_csv(datasets / "good" / "manifest.csv", keep_default_na=False, dtype=str)
    manifest["path"] = [str(datasets / "good" / p) for p in manifest["path"]]

    def dataset(name: str, text: str | bytes) -> None:
        (datasets / name).mkdir()
        target = datasets / name / "manifest.csv"
        target.write_bytes(text) if isinstance(text, bytes) else target.write_text(text)

    dataset("empty", "")
    dataset("header-only", ",".join(manifest.columns) + "\n")
    dataset("no-columns", "path,label\nx.png,real\n")
    dataset("binary", b"\x00\xff\xfe" * 100)
    capital = manifest.copy()
    capital.loc[capital.index[capital["label"] == "real"][0], "label"] = "Real"  # one row: was cast to INT64_MIN and trained
    dataset("real-capital", capital.to_csv(index=False))
    missing = manifest.copy()
    missing.loc[missing.index[:3], "path"] = [str(datasets / "gone" / f"{i}.png") for i in range(3)]
    dataset("missing-files", missing.to_csv(index=False))
    # one image listed in train and again in test; a width that once overflowed; a sha256 that is none
    twice = manifest.copy()
    first_train, last_test = twice.index[twice["split"] == "train"][0], twice.index[twice["split"] == "test"][-1]
    twice.loc[last_test, ["path", "label"]] = twice.loc[first_train, ["path", "label"]].to_numpy()
    dataset("same-file-twice", twice.to_csv(index=False))
    dataset("width-huge", manifest.assign(width="9" * 30).to_csv(index=False))
    dataset("sha-not-hex", manifest.assign(sha256="not a digest").to_csv(index=False))
    (datasets / "no-manifest").mkdir()

    inputs.mkdir()
    (inputs / "a-file").write_text("not a folder\n")
    (inputs / "notes.txt").write_text("not weights\n")
    torch.save([torch.zeros(2)], inputs / "a-list.pt")
    torch.save({"conv.weight": "not a tensor"}, inputs / "strings.pt")
    torch.save({"conv.weight": torch.zeros(2)}, inputs / "wrong-keys.pt")
    torch.save({"w": Exploit(inputs / "pwned")}, inputs / "exploit.pt")
    (inputs / "weights-dir").mkdir()
    shutil.copy(datasets / "good" / manifest["path"].iloc[0], inputs / "face.png")
    (inputs / "text.png").write_text("a text file named .png\n")
    # what an image path may be instead of an image (read without blocking, sized from the header)
    os.mkfifo(inputs / "fifo.png")
    (inputs / "folder.jpg").mkdir()
    Image.new("L", (200_000, 1)).save(inputs / "thin.png")  # a few hundred bytes; 2.4 GB once resized
    Image.new("1", (10_000, 10_000)).save(inputs / "gigapixel.png")
    profiles = {
        "bad-toml": "gpu_partition = [unclosed\n", "unknown-key": 'gpu_partitions = "gpu"\n', "zero-time": "time_min = 0\n",
        "time-string": "time = 60\n", "account-number": "account = 5\n", "partition-bool": "gpu_partition = true\n",
        "mem-string": 'mem_gb = "8"\n', "array-list": "array_parallelism = [1]\n", "cpus-float": "cpus_per_task = 1.5\n",
        "negative-mem": "mem_gb = -1\n", "account-newline": 'account = "proj\\n#SBATCH --wrap=id"\n',
        "qos-nul": 'qos = "x\\u0000y"\n', "table": "[gpu]\npartition = 'gpu'\n", "nan-mem": "mem_gb = nan\n",
        "signal-zero": "signal_delay_s = 0\n",
    }
    for name, text in profiles.items():
        (inputs / f"{name}.toml").write_text(text)
    (inputs / "binary.toml").write_bytes(b"\xff\xfe\x00")
    (inputs / "dir.toml").mkdir()

    results.mkdir()
    model = build_model(MODEL)
    _MODELS[MODEL] = model  # predict's cases use this one (see _cached_build)
    state = model.state_dict()
    torch.save(state, inputs / "good.pt")
    good_best = (inputs / "good.pt").read_bytes()

    sweep = _write_sweep(results, "done", seeds=1)
    _run_folder(sweep, 0, best=good_best)
    sweep = _write_sweep(results, "damaged", executor="slurm")  # one good seed, one truncated record
    _run_folder(sweep, 0, best=good_best)
    full = json.dumps(_completed("damaged", f"{MODEL}-s1", 1))
    _run_folder(sweep, 1, record=full[: len(full) // 2], best=good_best[:1000])
    _write_sweep(results, "nothing-done")  # no run completed, nothing submitted
    sweep = _write_sweep(results, "all-damaged")
    _run_folder(sweep, 0, record='{"schema_version": 1, "sweep_id": "all-dam')
    _run_folder(sweep, 1, record="")
    for name, record in {
        "record-list": [1, 2, 3], "record-v2": {**_completed("record-v2", f"{MODEL}-s0", 0), "schema_version": 2},
        "record-status": {**_completed("record-status", f"{MODEL}-s0", 0), "status": "GREAT"},
        "record-accuracy": {**_completed("record-accuracy", f"{MODEL}-s0", 0), "test": {"accuracy": 7}},
        "record-other-run": _completed("record-other-run", f"{MODEL}-s1", 1),
        "record-seed-string": {**_completed("record-seed-string", f"{MODEL}-s0", 0), "seed": "0"},
        "record-unknown-field": {**_completed("record-unknown-field", f"{MODEL}-s0", 0), "extra": 1},
    }.items():
        _run_folder(_write_sweep(results, name, seeds=1), 0, record=record)
    for name, best in {"best-truncated": good_best[: len(good_best) // 3], "best-text": b"not a checkpoint\n",
                       "best-wrong-keys": (inputs / "wrong-keys.pt").read_bytes(), "best-exploit": (inputs / "exploit.pt").read_bytes(),
                       "best-list": (inputs / "a-list.pt").read_bytes(), "best-missing": None}.items():
        _run_folder(_write_sweep(results, name, seeds=1), 0, best=best)
    old = _write_sweep(results, "old-snapshot", seeds=1)
    (old / "code" / "harness" / "cluster").mkdir(parents=True)
    (old / "code" / "harness" / "cluster" / "node.py").write_text("# what an older harness ran on the nodes\n")
    sweep = _write_sweep(results, "bad-preprocessing", seeds=1)
    _run_folder(sweep, 0, record={**_completed(sweep.name, f"{MODEL}-s0", 0), "preprocessing": {"mean": "x"}}, best=good_best)

    def edited(**values: Any) -> Callable:
        return lambda data: data.update(values)

    def run_ids(*ids: str) -> Callable:
        return lambda data: data.update(runs=[{"run_id": rid, "model": MODEL, "seed": 0, "variant": "", "overrides": {}} for rid in ids])

    def cluster(**values: Any) -> Callable:
        return lambda data: data["cluster"].update(values)

    for name, edit in {
        "spec-escape": run_ids("../../../x"), "spec-absolute": run_ids("/tmp/x"), "spec-dotdot": run_ids(".."),
        "spec-twice": run_ids(f"{MODEL}-s0", f"{MODEL}-s0"), "spec-v2": edited(schema_version=2),
        "spec-account": cluster(account="proj\n#SBATCH --wrap=id"), "spec-partition": cluster(gpu_partition="gpu\n"),
        "spec-time": cluster(time=60), "spec-time-zero": cluster(time_min=0), "spec-unknown-key": cluster(nodes=4),
        "spec-executor": cluster(executor="pbs"), "spec-no-executor": lambda d: d["cluster"].pop("executor"),
        "spec-train-unknown": lambda d: d["train"].update(dropout=0.5), "spec-epochs": lambda d: d["train"].update(epochs="5"),
        "spec-sweep-id": edited(sweep_id="../x"), "spec-model": lambda d: d["runs"][0].update(model="AlexNet"),
        # a cache_root that is not the results folder's (the folder was moved; the file edited)
        "spec-cache-moved": edited(cache_root=str(results.parent / "before-the-move" / "cache")),
        "spec-cache-sibling": edited(cache_root=str(results / "other-cache")),
    }.items():  # a Slurm sweep's settings, each checked by its backend as the command line's are
        _write_sweep(results, name, executor="slurm" if name.startswith(SLURM_SETTINGS) else "local", edit=edit)
    (_write_sweep(results, "spec-truncated").joinpath("sweep.json")).write_text('{"sweep_id": "spec-trunc')
    (_write_sweep(results, "spec-list").joinpath("sweep.json")).write_text("[]")
    (_write_sweep(results, "spec-binary").joinpath("sweep.json")).write_bytes(b"\xff\xfe\x00\x01")
    for name, jobs in {
        "jobs-text-id": _jobs({f"{MODEL}-s0": "123; scancel -u root"}), "jobs-escape": _jobs({"../../x": "123@1"}),
        "jobs-truncated": '{"submissions": [{"executor": "loc', "jobs-list": "[1]",
        "jobs-pre-id": _jobs({f"{MODEL}-s0": "123"}, executor="slurm", pre="$(id)"),
        "jobs-executor": _jobs({f"{MODEL}-s0": "123"}, executor="pbs"),
        # processes that are not ours (pid 1 lives, but did not start when the token says; a bare pid)
        "jobs-pid-reused": _jobs({f"{MODEL}-s0": "1@5", f"{MODEL}-s1": "1@5"}),
        "jobs-pid-bare": _jobs({f"{MODEL}-s0": "1"}), "jobs-local-slurm-id": _jobs({f"{MODEL}-s0": "123_4"}),
    }.items():
        _write_sweep(results, name, jobs=jobs)
    # a run whose worker is alive (this test process stands for it) and one that failed
    sweep = _write_sweep(results, "running", jobs=_jobs({f"{MODEL}-s0": "PID", f"{MODEL}-s1": "PID"}))
    (sweep / "runs" / f"{MODEL}-s0").mkdir(parents=True)
    (sweep / "runs" / f"{MODEL}-s0" / "progress.json").write_text(json.dumps({"epoch": 1, "epochs": 2, "state": "training"}))
    (sweep / "runs" / f"{MODEL}-s0" / ".holder").write_text("PID")  # taken by that worker
    _run_folder(sweep, 1, record={**_completed("running", f"{MODEL}-s1", 1), "status": "FAILED", "error": "boom",
                                  "test": None, "val": None})
    (results / "not-a-sweep").mkdir()
    hostile_world(results, good_best)  # before the sweeps whose order the cases of a future date rely on
    # --- intervals and separability (records whose test interval is not one; test scores with odd groups) ---
    for name, interval in {"record-interval-reversed": {"accuracy_interval": [0.9, 0.2]},
                           "record-interval-text": {"auc_interval": "high"},
                           "record-interval-outside": {"accuracy_interval": [-0.1, 1.5]}}.items():
        record = _completed(name, f"{MODEL}-s0", 0)
        _run_folder(_write_sweep(results, name, seeds=1), 0, record={**record, "test": {**record["test"], **interval}})
    for name, groups in {"scores-fractional-groups": [0.5] * 20, "scores-one-group": [0.0] * 20}.items():
        sweep = _write_sweep(results, name, seeds=1, edit=lambda data: data.update(models=[MODEL, "ResNet50"], runs=[
            {"run_id": rid, "model": model, "seed": 0, "variant": "", "overrides": {}}
            for rid, model in ((f"{MODEL}-s0", MODEL), ("ResNet50-s0", "ResNet50"))]))
        for rid, model in ((f"{MODEL}-s0", MODEL), ("ResNet50-s0", "ResNet50")):
            folder = sweep / "runs" / rid
            folder.mkdir(parents=True)
            (folder / "result.json").write_text(json.dumps({**_completed(name, rid, 0), "model": model}))
            np.save(folder / "test_scores.npy", np.stack([np.repeat([0.0, 1.0], 10), np.linspace(0, 1, 20), groups]))
    # --- end of intervals and separability ---
    # --- records (every field of a record and a spec, the files beside a record, progress) ---
    def record(name: str, seed: int = 0, **fields: Any) -> dict[str, Any]:
        return {**_completed(name, f"{MODEL}-s{seed}", seed), **fields}

    def test_field(name: str, **values: Any) -> dict[str, Any]:
        data = record(name)
        return {**data, "test": {**data["test"], **values}}

    def preprocessing(name: str, **values: Any) -> dict[str, Any]:
        data = record(name)
        return {**data, "preprocessing": {**data["preprocessing"], **values}}

    for name, damaged in {
        "rec-auc-text": test_field("rec-auc-text", auc="high"), "rec-auc-big": test_field("rec-auc-big", auc=7.5),
        "rec-params-negative": record("rec-params-negative", params=-5),
        "rec-infinity": json.dumps(test_field("rec-infinity", f1=0.5)).replace('"f1": 0.5', '"f1": Infinity'),
        "rec-nan": json.dumps(record("rec-nan")).replace('"train_images_per_s": 100.0', '"train_images_per_s": NaN'),
        "rec-other-sweep": record("done"), "rec-other-model": record("rec-other-model", model="ResNet50"),
        "rec-other-seed": {**record("rec-other-seed"), "seed": 3},
        "rec-requeues-negative": record("rec-requeues-negative", requeues=-1),
        "rec-epochs-negative": record("rec-epochs-negative", epochs_completed=-4),
        "rec-std-zero": preprocessing("rec-std-zero", std=[0, 0, 0]),
        "rec-image-size-huge": preprocessing("rec-image-size-huge", image_size=50000),
        "rec-crop-zero": preprocessing("rec-crop-zero", crop_pct=0),
        "rec-interpolation": preprocessing("rec-interpolation", interpolation="sinc"),
    }.items():
        _run_folder(_write_sweep(results, name, seeds=1), 0, record=damaged, best=good_best)
    for name, edit in {"spec-seeds-negative": edited(seeds=-3), "spec-seeds-zero": edited(seeds=0),
                       "spec-runs-empty": edited(runs=[]), "spec-models-empty": edited(models=[]),
                       "spec-created": edited(created="yesterday")}.items():
        _write_sweep(results, name, edit=edit)
    files = {"history-garbage": ("history.csv", b"\x00\xffnot,a,history\n1,2\n"),
             "history-columns": ("history.csv", b"epoch,loss\n1,0.5\n2,0.4\n"),
             "history-accuracy": ("history.csv", b"epoch,train_loss,train_accuracy,val_loss,val_accuracy\n"
                                                 b"1,0.7,5,0.7,0.5\n2,0.6,0.6,0.6,0.7\n"),
             "scores-garbage": ("test_scores.npy", b"not an array\n"), "scores-shape": ("test_scores.npy", None)}
    for name, (file_name, text) in files.items():
        sweep = _write_sweep(results, f"files-{name}")  # seed 0 whole, seed 1's file damaged
        _run_folder(sweep, 0, best=good_best)
        run = _run_folder(sweep, 1, best=good_best)
        if text is None:
            np.save(run / file_name, np.zeros(5))
        else:
            (run / file_name).write_bytes(text)
    for name, progress in {"progress-odd": {"epoch": "x", "epochs": [1], "val_accuracy": "high", "state": "training"},
                           "progress-list": [1, 2]}.items():
        sweep = _write_sweep(results, name, seeds=1)
        (sweep / "runs" / f"{MODEL}-s0").mkdir(parents=True)
        (sweep / "runs" / f"{MODEL}-s0" / "progress.json").write_text(json.dumps(progress))
    for name, progress in {"preprocess-odd": {"state": "running", "done": "x", "total": 5, "images_per_s": "fast"},
                           "preprocess-state-number": {"state": 5}}.items():
        sweep = _write_sweep(results, name, seeds=1)
        (sweep / "preprocess").mkdir()
        (sweep / "preprocess" / "progress.json").write_text(json.dumps(progress))
    nan_best = {key: torch.full_like(value, float("nan")) if value.is_floating_point() else value for key, value in state.items()}
    torch.save(nan_best, inputs / "nan.pt")
    _run_folder(_write_sweep(results, "best-nan", seeds=1), 0, best=(inputs / "nan.pt").read_bytes())
    # --- end of records ---
    return root


NESTED = "[" * 2000 + "]" * 2000  # 4 KB that Python's parsers would recurse into past their limit
ESCAPES = "boom \x1b]0;pwned\x07\x1b[2J\x9b31m [/] [bold]x"  # retitle, clear the screen, C1 CSI, rich markup


def hostile_world(results: Path, good_best: bytes) -> None:
    """The sweeps of the fourth hostile round: files nested past any parser's depth, text that a terminal,
    rich or a Markdown page would take as orders, a code snapshot and its digest."""
    from harness.store.disk import tree_digest

    _run_folder(_write_sweep(results, "nested-record", seeds=1), 0, record=NESTED)
    (_write_sweep(results, "nested-spec").joinpath("sweep.json")).write_text(NESTED)
    _write_sweep(results, "nested-jobs", jobs=NESTED)
    sweep = _write_sweep(results, "nested-progress", seeds=1)
    (sweep / "runs" / f"{MODEL}-s0").mkdir(parents=True)
    (sweep / "runs" / f"{MODEL}-s0" / "progress.json").write_text(NESTED)
    (sweep / "preprocess").mkdir()
    (sweep / "preprocess" / "progress.json").write_text(NESTED)
    sweep = _write_sweep(results, "escapes", seeds=1)
    _run_folder(sweep, 0, record={**_completed("escapes", f"{MODEL}-s0", 0), "status": "FAILED", "error": ESCAPES,
                                  "test": None, "val": None})
    html = {"dataset": str(results.parent / "datasets" / "<script>alert(1)</script>"),
            "code": {"git_commit": "<img src=x onerror=alert(1)>", "harness_version": "<iframe src=//x>"}}
    _run_folder(_write_sweep(results, "html-in-spec", seeds=1, edit=lambda data: data.update(html)), 0, best=good_best)
    for name, digest in {"snapshot": True, "snapshot-no-digest": False}.items():
        sweep = _write_sweep(results, name, seeds=1)
        module = sweep / "code" / "harness" / "jobs.py"
        module.parent.mkdir(parents=True)
        module.write_text("# what the jobs run on the nodes\n")
        if digest:
            spec = json.loads((sweep / "sweep.json").read_text())
            spec["code"] = {"snapshot": str(sweep / "code"), "digest": tree_digest(sweep / "code")}
            (sweep / "sweep.json").write_text(json.dumps(spec))


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> Path:
    return build_world(tmp_path_factory.mktemp("bad-input-world"))


# The perflog's index and its lock, which a reading command makes or brings up to date: a cache, not results.
CACHES = {".perflog.index.sqlite", ".perflog.index.sqlite-journal", ".perflog.lock"}


def snapshot(*folders: Path) -> dict[str, tuple]:
    """Every path under the folders (links not followed; the perflog's index aside) with its kind, size and
    modification time (ns); a folder's time aside, as it changes with the entries it holds, which are listed."""
    seen: dict[str, tuple] = {}

    def add(path: str, info: os.stat_result) -> None:
        folder = stat.S_ISDIR(info.st_mode)
        seen[path] = (info.st_mode, 0 if folder else info.st_size, 0 if folder else info.st_mtime_ns,
                      os.readlink(path) if stat.S_ISLNK(info.st_mode) else None)

    def walk(folder: str) -> None:  # os.scandir: a case takes three snapshots, and pathlib's rglob is thrice as slow
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name in CACHES:
                    continue
                add(entry.path, entry.stat(follow_symlinks=False))
                if entry.is_dir(follow_symlinks=False):
                    walk(entry.path)

    for folder in folders:
        if folder.exists():
            add(str(folder), folder.lstat())
            if folder.is_dir():
                walk(str(folder))
    return seen


def recorded_site() -> Any:
    """The local Slurm cluster as scontrol described it (tests/unit/data): a Slurm sweep's settings are
    derived from it without asking the real cluster, which others use at the same time."""
    from harness.cluster.slurm.site import parse_site

    data = Path(__file__).parent / "unit" / "data"
    return parse_site(*((data / f"harness-{kind}.txt").read_text() for kind in ("partition", "node", "config")))


_MODELS: dict[str, Any] = {}


def _cached_build(build_model: Callable, name: str, weights: str = "none") -> Any:
    """build_model, once per architecture for the whole session (building one takes seconds on two cores);
    predict loads its weights into it, every tensor replaced."""
    if weights != "none":
        return build_model(name, weights)
    if name not in _MODELS:
        _MODELS[name] = build_model(name)
    return _MODELS[name]


class Guard(LocalBackend):
    """Stands in for every backend: reports job states as the local one does, and fails the test if a
    case submits, unless the case is a resubmission (then it records the run ids)."""

    allowed = False
    submitted: list[list[str]] = []

    def submit(self, sweep: Any, settings: Any, run_ids: dict[str, Any], work: Any) -> Iterator[Submission]:
        if not Guard.allowed:
            raise AssertionError(f"a bad-input case submitted {run_ids}")
        Guard.submitted.append(list(run_ids))
        yield Submission("local", None, dict.fromkeys(run_ids, "999999999@1"))

    def cancel(self, sweep: Any, job_ids: list[str]) -> None:
        """The local backend's cancel, but a signal sent fails the case: the "running" sweep's worker is
        this very process, and no other process is any case's."""
        def refuse(group: int, signal: int) -> None:
            raise AssertionError(f"a case signalled process group {group}")
        real, os.killpg = os.killpg, refuse
        try:
            super().cancel(sweep, job_ids)
        finally:
            os.killpg = real


class SharedResults:
    """The template's results as the cases find them, copied once and shared while the cases leave it as it
    was (most only read it, and each checks that itself). After a case that changed it (a repair, a setup
    that plants a link, a failure), each top-level entry that differs is put back from the template."""

    def __init__(self, template: Path, folder: Path) -> None:
        self.template, self.folder = template / "results", folder
        self.copy(self.template, self.folder)
        self.pristine = snapshot(self.folder)

    def copy(self, source: Path, target: Path) -> None:
        if source.is_dir():
            # weights are only ever read, and replaced whole when written: a link spares copying them
            shutil.copytree(source, target, symlinks=True,
                            copy_function=lambda src, dst: os.link(src, dst) if src.endswith(".pt") else shutil.copy2(src, dst))
        else:
            shutil.copy2(source, target)
        running = self.folder / "running"  # its runs' worker is this process
        if target in (self.folder, running):
            for file in (running / "jobs.json", running / "runs" / f"{MODEL}-s0" / ".holder"):
                file.write_text(file.read_text().replace("PID", worker_token(os.getpid())))

    def put_back(self) -> None:
        changed = set(snapshot(self.folder).items()) ^ set(self.pristine.items())
        for name in {Path(path).relative_to(self.folder).parts[0] for path, _ in changed if path != str(self.folder)}:
            entry, source = self.folder / name, self.template / name
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            elif entry.is_symlink() or entry.exists():
                entry.unlink()
            if source.exists():
                self.copy(source, entry)
        if changed:
            self.pristine = snapshot(self.folder)


@pytest.fixture(scope="module")
def shared_results(template, tmp_path_factory) -> SharedResults:
    return SharedResults(template, tmp_path_factory.mktemp("bad-input-results") / "results")


@pytest.fixture
def world(template, shared_results, tmp_path, monkeypatch):
    """The shared results (as the template's), datasets and inputs (their snapshots must not move), and the
    case's own scratch folder."""
    import harness.cluster as clusters
    import harness.cluster.slurm.backend as slurm
    import harness.cluster.slurm.limits as limits
    import harness.zoo.models as models

    results = shared_results.folder
    Guard.allowed, Guard.submitted = False, []
    real_slurm = clusters.BACKENDS["slurm"]

    def guarded_slurm() -> Any:
        backend = real_slurm()
        backend.submit = Guard().submit
        backend.available = lambda: None  # the site is the recorded local cluster (recorded_site), with no limits
        backend.cancel = lambda sweep, jobs: (_ for _ in ()).throw(AssertionError(f"a case cancelled {jobs}"))
        backend.states = lambda ids: {}  # never ask the real cluster about made-up job ids
        return backend

    monkeypatch.setitem(clusters.BACKENDS, "local", Guard)
    monkeypatch.setitem(clusters.BACKENDS, "slurm", guarded_slurm)
    monkeypatch.setattr(slurm, "slurm_answers", lambda: (_ for _ in ()).throw(AssertionError("a case asked sinfo")))
    monkeypatch.setattr(slurm, "read_site", recorded_site)
    monkeypatch.setattr(limits, "submission_limits", lambda account=None, qos=None: [])
    original = models.build_model
    monkeypatch.setattr(models, "build_model", lambda name, weights="none": _cached_build(original, name, weights))
    monkeypatch.chdir(tmp_path)
    yield {"R": results, "D": template / "datasets", "I": template / "inputs", "T": tmp_path / "scratch"}
    shared_results.put_back()


# ----------------------------------------------------------------------------------------------------
# The matrix
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    code: int = 2
    words: tuple[str, ...] = ()  # in the one stderr line when code is 2, else in stdout and stderr together
    changes: bool = False  # a repair: the results folder may change (every other case leaves it as it was)
    submits: tuple[str, ...] | None = None  # the run ids a resubmission must submit (None: it must submit nothing)
    setup: Callable[[dict[str, Path]], None] | None = None
    check: Callable[[dict[str, Path]], None] | None = None
    process: bool = False  # run as `python -m harness`, not in this process
    marks: tuple = ()
    unsaid: tuple[str, ...] = ()  # in neither stdout nor stderr (a raw escape code, markup rich would read)
    env: tuple[tuple[str, str], ...] = ()  # environment variables the command runs with

    def param(self) -> Any:
        return pytest.param(self, id=self.id, marks=self.marks)


def fill(arg: str, places: dict[str, Path]) -> str:
    for key, value in places.items():
        arg = arg.replace("{" + key + "}", str(value))
    return arg


SWEEP = ("sweep", "--cluster", "local", "--dataset", "{D}/good", "--models", MODEL, "--image-size", "64", "--results", "{R}")
DRY = ("sweep", "--cluster", "slurm", "--dry-run", "--dataset", "{D}/good", "--models", MODEL, "--image-size", "64", "--results", "{R}")


def sweep(*args: str) -> tuple[str, ...]:
    return (*SWEEP, *args)


def dry(*args: str) -> tuple[str, ...]:
    return (*DRY, *args)


def results(command: str, *args: str) -> tuple[str, ...]:
    return (command, *args, "--results", "{R}")


def plant_link(link: str, target: str, target_text: str | None = "precious\n") -> Callable[[dict[str, Path]], None]:
    """Plant a symbolic link in the results (link, relative to {R}) pointing at target (relative to {T})."""
    def setup(places: dict[str, Path]) -> None:
        destination = places["T"] / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        if target_text is not None:
            destination.write_text(target_text)
        (places["R"] / link).parent.mkdir(parents=True, exist_ok=True)
        (places["R"] / link).symlink_to(destination)
    return setup


def absent(relative: str) -> Callable[[dict[str, Path]], None]:
    def check(places: dict[str, Path]) -> None:
        assert not (places["T"] / relative).exists(), f"{relative} was left behind"
    return check


def moved_behind_link(folder: str, target: str) -> Callable[[dict[str, Path]], None]:
    """Move a folder of the results ({R}/folder) to {T}/target and leave a symbolic link in its place."""
    def setup(places: dict[str, Path]) -> None:
        shutil.move(places["R"] / folder, places["T"] / target)
        (places["R"] / folder).symlink_to(places["T"] / target)
    return setup


def unchanged_folder(target: str, names: tuple[str, ...]) -> Callable[[dict[str, Path]], None]:
    def check(places: dict[str, Path]) -> None:
        assert sorted(p.name for p in (places["T"] / target).iterdir()) == sorted(names), f"{target} was written"
    return check


def untouched(target: str, text: str | None = "precious\n") -> Callable[[dict[str, Path]], None]:
    def check(places: dict[str, Path]) -> None:
        path = places["T"] / target
        if text is None:
            assert not path.exists() or (path.is_dir() and not any(path.iterdir())), f"{path} was written"
        else:
            assert path.read_text() == text, f"{path} was overwritten"
    return check


def set_aside(sweep_id: str, *rids: str) -> Callable[[dict[str, Path]], None]:
    """The earlier (damaged or FAILED) records of resubmitted runs are kept beside, not read as results."""
    def check(places: dict[str, Path]) -> None:
        for rid in rids:
            folder = places["R"] / sweep_id / "runs" / rid
            assert not (folder / "result.json").exists() and list(folder.glob("result.*.previous.json"))
    return check


def image_folders(places: dict[str, Path]) -> None:
    """{T}/real and {T}/fake, three images each, for `data prepare`."""
    good = places["D"] / "good"
    for label in ("real", "fake"):
        (places["T"] / label).mkdir(parents=True)
        for i, path in enumerate(sorted((good / label).glob("*.png"))[:3]):
            shutil.copy(path, places["T"] / label / f"{i}.png")


def groups_file(content: bytes = b"", fifo: bool = False, size: int = 0) -> Callable[[dict[str, Path]], None]:
    """image_folders, and {T}/groups.txt for `data prepare --groups`: content, a FIFO, or a sparse file of size bytes."""
    def setup(places: dict[str, Path]) -> None:
        image_folders(places)
        path = places["T"] / "groups.txt"
        if fifo:
            os.mkfifo(path)
        elif size:
            with open(path, "wb") as handle:
                handle.truncate(size)
        else:
            path.write_bytes(content)
    return setup


def read_only_folder(places: dict[str, Path]) -> None:
    (places["T"] / "ro").mkdir(parents=True)
    (places["T"] / "ro").chmod(0o555)


def no_marker(places: dict[str, Path]) -> None:
    assert not (places["I"] / "pwned").exists(), "loading a pickle ran code"


def killed_demo_build(name: str) -> Callable[[dict[str, Path]], None]:
    """{R}/<name> as a `data demo --out {R}/d` killed mid-way leaves it (its lock free: the builder is gone)."""
    def setup(places: dict[str, Path]) -> None:
        left = places["R"] / name
        if name.endswith(".lock"):
            left.write_text("")
        else:
            (left / "real").mkdir(parents=True)
            (left / "real" / "real_00000_astronaut.png").write_bytes(b"half a png")
    return setup


def demo_built_and_temporary_gone(name: str) -> Callable[[dict[str, Path]], None]:
    def check(places: dict[str, Path]) -> None:
        assert (places["R"] / "d" / "manifest.csv").is_file()
        left = sorted(p.name for p in places["R"].iterdir() if p.name.startswith(".d."))
        assert not left, f"{name}: left behind {left}"
    return check


ROOT = pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
CHARACTERS = {  # what matters to sbatch (#SBATCH lines end at a newline) and to bash
    "newline": "proj\n#SBATCH --wrap=id", "trailing-newline": "proj\n", "cr": "proj\r#SBATCH --wrap=id",
    "quote": "pro'j", "dquote": 'pro"j', "hash": "proj#SBATCH", "dollar": "proj$(id)", "backtick": "proj`id`",
    "nul": "proj\x00x", "leading-dash": "-proj", "space": "proj --wrap=id", "semicolon": "proj;id",
}
NAME_OPTIONS = {option: "is not valid" for option in ("--account", "--qos", "--partition", "--cpu-partition", "--gpu-type",
                                                      "--reservation", "--constraint", "--exclude")}
NAME_OPTIONS["--name"] = "must be a plain folder name"

# --- records (helpers of its cases) ---
def perflog_lines(*times: str) -> Callable[[dict[str, Path]], None]:
    """{R}/perflog.jsonl with one entry of the "done" sweep's run per time (as written, unchecked)."""
    def setup(places: dict[str, Path]) -> None:
        from harness.store.perflog import entry_from_record
        from harness.store.records import RunRecord

        record = RunRecord.from_json(json.loads(json.dumps(_completed("done", f"{MODEL}-s0", 0))), Path("result.json"))
        entry = entry_from_record(record, None, {}).to_json()
        lines = [json.dumps({**entry, "sweep": f"sweep-{i}", "time": time}) for i, time in enumerate(times)]
        (places["R"] / "perflog.jsonl").write_text("\n".join(lines) + "\n")
    return setup


def folder_in_results(name: str) -> Callable[[dict[str, Path]], None]:
    return lambda places: (places["R"] / name).mkdir()


def figure_in(name: str) -> Callable[[dict[str, Path]], None]:
    def check(places: dict[str, Path]) -> None:
        assert (places["R"] / name / "history-train_images_per_s.png").is_file(), "no figure in the folder"
    return check


def future(*sweeps: str) -> Callable[[dict[str, Path]], None]:
    """sweep.json of these sweeps (all: every one) dated a year ahead."""
    def setup(places: dict[str, Path]) -> None:
        ahead = time.time() + 365 * 86400
        for spec in places["R"].glob("*/sweep.json"):
            if not sweeps or spec.parent.name in sweeps:
                os.utime(spec, (ahead, ahead))
    return setup


def references(text: str) -> Callable[[dict[str, Path]], None]:
    return lambda places: (places["T"] / "refs.toml").write_text(text)


def report_says(sweep_id: str, *words: str) -> Callable[[dict[str, Path]], None]:
    def check(places: dict[str, Path]) -> None:
        text = (places["R"] / sweep_id / "report.md").read_text()
        assert all(word in text for word in words), f"the report lacks {words}"
    return check


def nothing_written(sweep_id: str) -> Callable[[dict[str, Path]], None]:
    def check(places: dict[str, Path]) -> None:
        folder = places["R"] / sweep_id
        assert not (folder / "figures").exists() and not list(folder.glob("report.*")), "report left files behind"
    return check


def status_of(sweep_id: str, *args: str) -> tuple[str, ...]:
    return results("status", sweep_id, *args)


# --- fourth hostile round (helpers of its cases) ---
CACHE_KEY = "0123456789abcdef-35px-bicubic-crop0.875"  # a cache's folder, as data.cache.cache_key names one
OWN_OUTPUTS = {"dashboard": "<!doctype html><html><head><meta charset='utf-8'><title>harness dashboard</title></head></html>\n"}


def with_perflog(setup: Callable[[dict[str, Path]], None] | None) -> Callable[[dict[str, Path]], None]:
    """A perflog line in {R} (history reads one before it draws), then setup."""
    def both(places: dict[str, Path]) -> None:
        perflog_lines("2025-01-01T00:00:00+00:00")(places)
        if setup:
            setup(places)
    return both


def home_with(own_output: str | None = None, cache: bool = False, partition: str = "local") -> Callable[[dict[str, Path]], None]:
    """{R}/home, a results folder of its own: the "done" sweep and a perflog line of it (its partition
    named so); own_output: home/page.html as the dashboard or history wrote one, or a user's ("notes");
    cache: home/cache with a cache, its lock file, and a user's files."""
    def setup(places: dict[str, Path]) -> None:
        from PIL import Image, PngImagePlugin

        home = places["R"] / "home"
        shutil.copytree(places["R"] / "done", home / "done", symlinks=True)
        perflog_lines("2025-01-01T00:00:00+00:00")({"R": home})
        line = json.loads((home / "perflog.jsonl").read_text())
        line["sweep"], line["system"]["partition"] = "done", partition
        (home / "perflog.jsonl").write_text(json.dumps(line) + "\n")
        if own_output == "history-png":
            info = PngImagePlugin.PngInfo()
            info.add_text("Software", "harness history")
            Image.new("RGB", (2, 2)).save(home / "page.html", format="png", pnginfo=info)
        elif own_output:
            (home / "page.html").write_text(OWN_OUTPUTS.get(own_output, "precious\n"))
        if cache:
            (home / "cache" / CACHE_KEY).mkdir(parents=True)
            (home / "cache" / CACHE_KEY / "header.json").write_text("{}")
            (home / "cache" / CACHE_KEY / "train.npy").write_bytes(b"\0" * 998)
            (home / "cache" / f"{CACHE_KEY}.lock").write_text("")
            for mine in ("notes/chapter1.txt", "pip/numpy.whl"):
                (home / "cache" / mine).parent.mkdir()
                (home / "cache" / mine).write_text("precious\n")
    return setup


def replaced_by(name: str, command: str) -> Callable[[dict[str, Path]], None]:
    def check(places: dict[str, Path]) -> None:
        head = (places["R"] / "home" / name).read_bytes()[:4096]
        assert (b"<title>harness dashboard</title>" if command == "dashboard" else b"Software\x00harness history") in head
    return check


def only_caches_gone(places: dict[str, Path]) -> None:
    cache = places["R"] / "home" / "cache"
    assert sorted(p.name for p in cache.iterdir()) == ["notes", "pip"], "clean --cache took what is not a cache"
    assert (cache / "notes" / "chapter1.txt").read_text() == "precious\n"


def sweep_elsewhere(places: dict[str, Path]) -> None:
    """{T}/paper/mysweep, a sweep outside the results folder, beside {T}/paper/cache holding a user's notes."""
    shutil.copytree(places["R"] / "done", places["T"] / "paper" / "mysweep", symlinks=True)
    (places["T"] / "paper" / "cache" / "notes").mkdir(parents=True)
    (places["T"] / "paper" / "cache" / "notes" / "chapter1.txt").write_text("precious\n")


BYTECODE = Path("snapshot/code/harness/__pycache__/jobs.cpython-311.pyc")


def planted_bytecode(places: dict[str, Path]) -> None:
    (places["R"] / BYTECODE).parent.mkdir()
    (places["R"] / BYTECODE).write_bytes(b"bytecode that would run in jobs.py's place")


def bytecode_gone(places: dict[str, Path]) -> None:
    assert not (places["R"] / BYTECODE).parent.exists(), "the bytecode beside the checked source is still there"


def report_lacks(sweep_id: str, *words: str) -> Callable[[dict[str, Path]], None]:
    def check(places: dict[str, Path]) -> None:
        text = (places["R"] / sweep_id / "report.md").read_text()
        assert not [word for word in words if word in text] and "&lt;script&gt;" in text, text[:3000]
    return check


CASES: list[Case] = [
    # --- tracebacks, once: each must be one line, or handled ---
    Case("empty-manifest", sweep("--dataset", "{D}/empty"), words=("manifest.csv",)),
    Case("header-only-manifest", sweep("--dataset", "{D}/header-only"), words=("manifest.csv",)),
    Case("manifest-without-columns", sweep("--dataset", "{D}/no-columns"), words=("manifest.csv", "columns")),
    Case("binary-manifest", sweep("--dataset", "{D}/binary"), words=("manifest.csv",)),
    Case("leaderboard-sort-eer-nothing-completed", results("leaderboard", "nothing-done", "--sort", "eer"), code=0,
         words=("NOT SUBMITTED",)),
    Case("leaderboard-json-nothing-completed", results("leaderboard", "nothing-done", "--format", "json"), code=0,
         words=('"status": "2 NOT SUBMITTED"',)),
    Case("leaderboard-markdown-nothing-completed", results("leaderboard", "nothing-done", "--format", "markdown"), code=0,
         words=("NOT SUBMITTED",)),
    Case("report-nothing-completed", results("report", "nothing-done"), words=("nothing-done", "no completed run")),
    Case("report-md-nothing-completed", results("report", "nothing-done", "--format", "markdown"), words=("no completed run",)),
    Case("report-all-damaged", results("report", "all-damaged"), words=("no completed run", "DAMAGED")),
    Case("status-truncated-record", results("status", "damaged"), code=0, words=("DAMAGED", "MobileNetV2-s1", "--resume")),
    Case("status-json-truncated-record", results("status", "damaged", "--format", "json"), code=0, words=('"state": "DAMAGED"',)),
    Case("status-empty-record", results("status", "all-damaged"), code=0, words=("DAMAGED",)),
    Case("leaderboard-truncated-record", results("leaderboard", "damaged"), code=0, words=("1 COMPLETED, 1 DAMAGED",)),
    Case("leaderboard-csv-truncated-record", results("leaderboard", "damaged", "--format", "csv", "--sort", "eer"), code=0,
         words=("1 DAMAGED",)),
    Case("report-truncated-record", results("report", "damaged", "--format", "markdown"), code=0, words=("report.md",), changes=True,
         check=lambda p: ("DAMAGED" in (p["R"] / "damaged" / "report.md").read_text()) or pytest.fail("report lacks DAMAGED")),
    Case("predict-truncated-record", ("predict", "--run", "damaged/MobileNetV2-s1", "{I}/face.png", "--results", "{R}"),
         words=("MobileNetV2-s1", "result.json", "damaged", "--resume")),
    Case("predict-other-seed-of-truncated", ("predict", "--run", "damaged/MobileNetV2", "{I}/face.png", "--results", "{R}"),
         code=0, words=("face.png",)),
    Case("resume-reruns-damaged", results("sweep", "--resume", "all-damaged"), code=0, changes=True,
         submits=("MobileNetV2-s0", "MobileNetV2-s1"), check=set_aside("all-damaged", "MobileNetV2-s0", "MobileNetV2-s1")),
    Case("resume-dry-run-shows-damaged", results("sweep", "--resume", "damaged", "--dry-run"), code=0, words=("--array=0-0%1",)),
    Case("predict-truncated-best", ("predict", "--run", "best-truncated/MobileNetV2", "{I}/face.png", "--results", "{R}"),
         words=("best-truncated/MobileNetV2-s0", "cannot be read", "--resume")),
    Case("predict-text-best", ("predict", "--run", "best-text/MobileNetV2", "{I}/face.png", "--results", "{R}"),
         words=("cannot be read", "weights_only=True"), unsaid=("set to `False`",)),  # torch's unsafe advice not passed on
    Case("predict-wrong-keys-best", ("predict", "--run", "best-wrong-keys/MobileNetV2", "{I}/face.png", "--results", "{R}"),
         words=("cannot be read",)),
    Case("predict-exploit-best", ("predict", "--run", "best-exploit/MobileNetV2", "{I}/face.png", "--results", "{R}"),
         words=("cannot be read",), check=no_marker),
    Case("predict-list-best", ("predict", "--run", "best-list/MobileNetV2", "{I}/face.png", "--results", "{R}"),
         words=("cannot be read",)),
    Case("predict-missing-best", ("predict", "--run", "best-missing/MobileNetV2", "{I}/face.png", "--results", "{R}"),
         words=("cannot be read",)),
    Case("predict-damaged-preprocessing", ("predict", "--run", "bad-preprocessing/MobileNetV2", "{I}/face.png", "--results", "{R}"),
         words=("bad-preprocessing", "result.json")),
    Case("demo-out-is-a-file", ("data", "demo", "--out", "{I}/a-file"), words=("a-file",)),
    Case("demo-out-unwritable", ("data", "demo", "--out", "/proc/harness-demo"), words=("/proc/harness-demo",),),
    Case("demo-out-read-only", ("data", "demo", "--out", "{T}/ro/demo"), words=("ro/demo",), setup=read_only_folder,
         marks=(ROOT,)),

    # --- checked too late: now at plan time, before anything is written ---
    Case("weights-missing", sweep("--weights", "{T}/missing.pt"), words=("--weights", "missing.pt", "does not exist")),
    Case("weights-text", sweep("--weights", "{I}/notes.txt"), words=("--weights", "notes.txt", "state dict")),
    Case("weights-list", sweep("--weights", "{I}/a-list.pt"), words=("--weights", "a-list.pt", "state dict")),
    Case("weights-strings", sweep("--weights", "{I}/strings.pt"), words=("--weights", "strings.pt", "tensor")),
    Case("weights-exploit", sweep("--weights", "{I}/exploit.pt"), words=("--weights", "exploit.pt", "could run code"),
         check=no_marker),
    Case("weights-folder", sweep("--weights", "{I}/weights-dir"), words=("--weights", "weights-dir", "not a file")),
    Case("weights-typo", sweep("--weights", "imagenett"), words=("--weights", "imagenett", "imagenet")),
    Case("weights-imagenet-nasnet", sweep("--weights", "imagenet", "--models", "NASNetMobile"),
         words=("NASNetMobile", "no ImageNet weights")),
    Case("device-foo", sweep("--device", "foo"), words=("--device", "'foo'", "auto, cpu, cuda")),
    Case("device-cuda-letter", sweep("--device", "cuda:x"), words=("--device", "cuda:x")),
    Case("device-cuda-negative", sweep("--device", "cuda:-1"), words=("--device",)),
    Case("device-upper-case", sweep("--device", "CPU"), words=("--device",)),
    Case("device-trailing-newline", sweep("--device", "cuda\n"), words=("--device",)),
    Case("image-size-absurd", sweep("--image-size", "100000"), words=("--image-size", "100000", "2048")),
    Case("image-size-just-over", sweep("--image-size", "2049"), words=("--image-size", "2048")),
    Case("image-size-below-model", sweep("--image-size", "16"), words=("MobileNetV2", "--image-size")),
    Case("manifest-files-missing", sweep("--dataset", "{D}/missing-files"), words=("gone",),),
    Case("manifest-label-case", sweep("--dataset", "{D}/real-capital"), words=("Real",),),
    Case("dataset-missing", sweep("--dataset", "{T}/nowhere"), words=("nowhere", "does not exist")),
    Case("dataset-without-manifest", sweep("--dataset", "{D}/no-manifest"), words=("no manifest.csv",)),
    Case("dataset-is-a-file", sweep("--dataset", "{I}/a-file"), words=("a-file",)),
    Case("models-empty", sweep("--models", ""), words=("--models", "no architecture")),
    Case("models-commas", sweep("--models", ",,"), words=("--models", "no architecture")),
    Case("models-blank", sweep("--models", "  "), words=("--models", "no architecture")),
    Case("models-twice", sweep("--models", "ResNet50,ResNet50"), words=("twice",)),
    Case("models-misspelt", sweep("--models", "ResNet-50"), words=("unknown architecture 'ResNet-50'", "ResNet50")),
    Case("models-unknown", sweep("--models", "ResNet50,AlexNet"), words=("unknown architecture 'AlexNet'",)),
    Case("models-injection", sweep("--models", "ResNet50;id"), words=("unknown architecture",)),

    # --- untrusted files: what is read from disk is checked as the command line is ---
    Case("spec-run-id-escapes-status", results("status", "spec-escape"), words=("sweep.json", "'../../../x'")),
    Case("spec-run-id-escapes-resume", results("sweep", "--resume", "spec-escape"), words=("sweep.json", "'../../../x'")),
    Case("spec-run-id-escapes-leaderboard", results("leaderboard", "spec-escape"), words=("sweep.json", "run id")),
    Case("spec-run-id-escapes-report", results("report", "spec-escape"), words=("sweep.json", "run id")),
    Case("spec-run-id-escapes-predict", ("predict", "--run", "spec-escape/MobileNetV2", "{I}/face.png", "--results", "{R}"),
         words=("sweep.json", "run id")),
    Case("spec-run-id-escapes-cancel", results("cancel", "spec-escape"), words=("sweep.json", "run id")),
    Case("spec-run-id-absolute", results("status", "spec-absolute"), words=("sweep.json", "'/tmp/x'")),
    Case("spec-run-id-dotdot", results("status", "spec-dotdot"), words=("sweep.json", "'..'")),
    Case("spec-run-id-twice", results("status", "spec-twice"), words=("sweep.json", "twice")),
    Case("spec-run-id-not-its-model", results("status", "spec-model"), words=("sweep.json", "AlexNet")),
    Case("spec-account-sbatch", results("sweep", "--resume", "spec-account"), words=("sweep.json", "account")),
    Case("spec-account-sbatch-dry-run", results("sweep", "--resume", "spec-account", "--dry-run", "--cluster", "slurm"),
         words=("sweep.json", "account")),
    Case("spec-partition-newline", results("sweep", "--resume", "spec-partition"), words=("sweep.json", "partition")),
    Case("spec-time-not-text", results("sweep", "--resume", "spec-time"), words=("sweep.json", "--time 60 is not text")),
    Case("spec-time-zero", results("sweep", "--resume", "spec-time-zero"), words=("sweep.json", "time")),
    Case("spec-cluster-unknown-key", results("sweep", "--resume", "spec-unknown-key"), words=("sweep.json", "nodes")),
    Case("spec-executor-unknown", results("status", "spec-executor"), words=("sweep.json", "pbs")),
    Case("spec-executor-missing", results("status", "spec-no-executor"), words=("sweep.json", "executor")),
    Case("spec-train-unknown-option", results("sweep", "--resume", "spec-train-unknown"), words=("sweep.json", "dropout")),
    Case("spec-train-wrong-type", results("sweep", "--resume", "spec-epochs"), words=("sweep.json", "epochs")),
    Case("spec-schema-version", results("status", "spec-v2"), words=("sweep.json", "schema_version 2")),
    Case("spec-truncated", results("status", "spec-truncated"), words=("sweep.json", "not whole JSON")),
    Case("spec-not-an-object", results("leaderboard", "spec-list"), words=("sweep.json", "JSON object")),
    Case("spec-binary", results("status", "spec-binary"), words=("sweep.json", "damaged")),
    Case("spec-sweep-id-escapes", results("status", "spec-sweep-id"), words=("sweep.json", "'../x'")),
    Case("jobs-text-job-id-status", results("status", "jobs-text-id"), words=("jobs.json", "job id")),
    Case("jobs-text-job-id-resume", results("sweep", "--resume", "jobs-text-id"), words=("jobs.json", "job id")),
    Case("jobs-text-job-id-cancel", results("cancel", "jobs-text-id"), words=("jobs.json", "job id")),
    Case("jobs-run-id-escapes", results("status", "jobs-escape"), words=("jobs.json", "run id")),
    Case("jobs-truncated", results("status", "jobs-truncated"), words=("jobs.json", "not whole JSON")),
    Case("jobs-not-an-object", results("leaderboard", "jobs-list"), words=("jobs.json", "JSON object")),
    Case("jobs-preprocess-id", results("status", "jobs-pre-id"), words=("jobs.json", "'$(id)'")),
    Case("jobs-executor-unknown", results("status", "jobs-executor"), words=("jobs.json", "pbs")),
    Case("record-not-an-object", results("status", "record-list"), code=0, words=("DAMAGED", "JSON object")),
    Case("record-schema-version", results("status", "record-v2"), code=0, words=("DAMAGED", "schema_version 2")),
    Case("record-status", results("status", "record-status"), code=0, words=("DAMAGED", "GREAT")),
    Case("record-accuracy", results("leaderboard", "record-accuracy"), code=0, words=("1 DAMAGED",)),
    Case("record-of-another-run", results("status", "record-other-run"), code=0, words=("DAMAGED", "MobileNetV2-s1")),
    Case("record-seed-string", results("status", "record-seed-string", "--format", "json"), code=0, words=("DAMAGED", "seed")),
    Case("record-unknown-field", results("status", "record-unknown-field"), code=0, words=("DAMAGED", "extra")),
    Case("record-v2-predict", ("predict", "--run", "record-v2/MobileNetV2", "{I}/face.png", "--results", "{R}"),
         words=("record-v2", "schema_version 2")),
    Case("profile-bad-toml", dry("--profile", "{I}/bad-toml.toml"), words=("bad-toml.toml", "not valid TOML")),
    Case("profile-unknown-key", dry("--profile", "{I}/unknown-key.toml"), words=("unknown-key.toml", "gpu_partitions")),
    Case("profile-zero-time", dry("--profile", "{I}/zero-time.toml"), words=("zero-time.toml", "--time '0'", "at least one minute")),
    Case("profile-time-not-text", dry("--profile", "{I}/time-string.toml"), words=("time-string.toml", "--time", "not text")),
    Case("profile-account-number", dry("--profile", "{I}/account-number.toml"), words=("account-number.toml", "account")),
    Case("profile-partition-bool", dry("--profile", "{I}/partition-bool.toml"), words=("partition-bool.toml", "--partition", "not text")),
    Case("profile-mem-string", dry("--profile", "{I}/mem-string.toml"), words=("mem-string.toml", "mem_gb")),
    Case("profile-array-list", dry("--profile", "{I}/array-list.toml"), words=("array-list.toml", "--array-parallelism")),
    Case("profile-cpus-float", dry("--profile", "{I}/cpus-float.toml"), words=("cpus-float.toml", "--cpus-per-task", "whole number")),
    Case("profile-negative-mem", dry("--profile", "{I}/negative-mem.toml"), words=("negative-mem.toml", "mem_gb")),
    Case("profile-nan-mem", dry("--profile", "{I}/nan-mem.toml"), words=("nan-mem.toml", "mem_gb")),
    Case("profile-signal-zero", dry("--profile", "{I}/signal-zero.toml"), words=("signal-zero.toml", "--signal-delay-s")),
    Case("profile-account-sbatch", dry("--profile", "{I}/account-newline.toml"), words=("account-newline.toml", "account")),
    Case("profile-qos-nul", dry("--profile", "{I}/qos-nul.toml"), words=("qos-nul.toml", "qos")),
    Case("profile-table", dry("--profile", "{I}/table.toml"), words=("table.toml", "gpu")),
    Case("profile-binary", dry("--profile", "{I}/binary.toml"), words=("binary.toml",)),
    Case("profile-folder", dry("--profile", "{I}/dir.toml"), words=("dir.toml",)),
    Case("profile-unknown-name", dry("--profile", "nope"), words=("no profile 'nope'", "local")),
    Case("profile-path-escape", dry("--profile", "../../../../etc/passwd"), words=("no profile",)),

    # --- unsafe writes: never through a link planted in the results ---
    Case("report-html-symlink", results("report", "done"), words=("report.html", "symbolic link"),
         setup=plant_link("done/report.html", "victim.txt"), check=untouched("victim.txt")),
    Case("report-md-symlink", results("report", "done", "--format", "markdown"), words=("report.md", "symbolic link"),
         setup=plant_link("done/report.md", "victim.txt"), check=untouched("victim.txt")),
    Case("report-dangling-symlink", results("report", "done"), words=("report.html", "symbolic link"),
         setup=plant_link("done/report.html", "nowhere.txt", None), check=untouched("nowhere.txt", None)),
    Case("figures-folder-symlink", results("report", "done"), words=("figures", "symbolic link"),
         setup=plant_link("done/figures", "elsewhere", None), check=untouched("elsewhere", None)),
    Case("figure-file-symlink", results("report", "done"), words=("roc.png", "symbolic link"),
         setup=plant_link("done/figures/roc.png", "victim.png"), check=untouched("victim.png")),
    Case("resume-jobs-symlink", results("sweep", "--resume", "all-damaged"), words=("jobs.json", "symbolic link"),
         setup=plant_link("all-damaged/jobs.json", "victim.json"), check=untouched("victim.json")),
    Case("prepare-out-inside-real", ("data", "prepare", "--real", "{T}/real", "--fake", "{T}/fake", "--out", "{T}/real/out",
                                     "--reencode", "png"), words=("--out",), setup=image_folders,),

    # --- numbers out of range ---
    *[Case(f"{option[2:]}-{label}", sweep(option, value), words=(option,)) for option, value, label in [
        ("--epochs", "0", "zero"), ("--epochs", "-1", "negative"), ("--epochs", "1.5", "fraction"), ("--epochs", "many", "word"),
        ("--seeds", "0", "zero"), ("--seeds", "-1", "negative"), ("--batch-size", "0", "zero"), ("--batch-size", "-3", "negative"),
        ("--lr", "nan", "nan"), ("--lr", "inf", "inf"), ("--lr", "-inf", "minus-inf"), ("--lr", "0", "zero"),
        ("--lr", "-1e-3", "negative"), ("--lr", "fast", "word"), ("--max-parallel", "0", "zero"), ("--time", "0", "zero"),
        ("--mem", "0", "zero"), ("--mem", "nan", "nan"), ("--mem", "inf", "inf"), ("--cpus-per-task", "0", "zero"),
        ("--array-parallelism", "0", "zero"), ("--image-size", "0", "zero"), ("--image-size", "-64", "negative")]],
    Case("demo-per-class-zero", ("data", "demo", "--out", "{T}/d", "--per-class", "0"), words=("--per-class",)),
    Case("demo-size-zero", ("data", "demo", "--out", "{T}/d", "--size", "0"), words=("--size",)),
    Case("demo-seed-negative", ("data", "demo", "--out", "{T}/d", "--seed=-1"), words=("--seed",)),
    Case("demo-per-class-below-photographs", ("data", "demo", "--out", "{T}/d", "--per-class", "3"), words=("--per-class",)),
    Case("prepare-per-class-zero", ("data", "prepare", "--real", "{T}/r", "--fake", "{T}/f", "--out", "{T}/o", "--per-class", "0"),
         words=("--per-class",)),

    # --- unknown choices ---
    *[Case(f"choice-{label}", args, words=(word,)) for label, args, word in [
        ("optimizer", sweep("--optimizer", "rmsprop"), "--optimizer"), ("mode", sweep("--mode", "full"), "--mode"),
        ("preprocessing", sweep("--preprocessing", "keras"), "--preprocessing"),
        ("select-by", sweep("--select-by", "f1"), "--select-by"), ("precision", sweep("--precision", "fp8"), "--precision"),
        ("cluster", sweep("--cluster", "pbs"), "--cluster"), ("models-format", ("models", "--format", "xml"), "--format"),
        ("status-format", results("status", "done", "--format", "xml"), "--format"),
        ("leaderboard-format", results("leaderboard", "done", "--format", "xlsx"), "--format"),
        ("leaderboard-sort", results("leaderboard", "done", "--sort", "speed"), "speed"),
        ("leaderboard-compare", results("leaderboard", "done", "--compare", "keras"), "--compare"),
        ("report-format", results("report", "done", "--format", "pdf"), "--format"),
        ("predict-format", ("predict", "--run", "done/MobileNetV2", "--format", "xml", "{I}/face.png"), "--format"),
        ("report-format-md", results("report", "done", "--format", "md"), "--format"),
        ("command", ("train",), "train"), ("data-command", ("data",), "data"),
        ("demo-generator", ("data", "demo", "--out", "{T}/d", "--generators", "stylegan"), "stylegan"),
        ("reencode", ("data", "prepare", "--real", "{T}/r", "--fake", "{T}/f", "--out", "{T}/o", "--reencode", "webp"), "webp")]],
    Case("choice-reencode-quality", ("data", "prepare", "--real", "{T}/r", "--fake", "{T}/f", "--out", "{T}/o", "--reencode", "jpeg:101"),
         words=("jpeg:101",), setup=image_folders),
    Case("dry-run-on-local-shows-commands", sweep("--dry-run"), code=0, words=("harness.jobs",)),
    Case("cross-generator-and-ablate", sweep("--cross-generator", "--ablate-preprocessing"), words=("--cross-generator",)),
    Case("cross-generator-one-generator", sweep("--cross-generator"), words=("--cross-generator", "two generators")),
    Case("force-without-resume", sweep("--force"), words=("--force", "--resume")),
    Case("resume-with-training-option", results("sweep", "--resume", "done", "--epochs", "3"), words=("--epochs", "--resume")),
    Case("resume-dry-run-nothing-to-do", results("sweep", "--resume", "done", "--dry-run", "--cluster", "local"), code=0,
         words=("no run to resubmit",)),
    Case("resume-bad-account", results("sweep", "--resume", "done", "--account", "proj\n"),
         words=("--account", "'proj\\n'", "is not valid")),
    Case("resume-nothing-to-do", results("sweep", "--resume", "done"), code=0, words=("no run to resubmit",)),
    Case("resume-skips-running", results("sweep", "--resume", "running"), code=0, changes=True, submits=("MobileNetV2-s1",),
         words=("MobileNetV2-s0 is RUNNING", "--force"), check=set_aside("running", "MobileNetV2-s1")),
    Case("resume-force-running", results("sweep", "--resume", "running", "--force"), code=0, changes=True,
         submits=("MobileNetV2-s0", "MobileNetV2-s1")),
    Case("results-is-a-file", sweep("--results", "{I}/a-file"), words=("a-file",)),
    Case("results-unwritable", sweep("--results", "/proc/harness-results"), words=("/proc/harness-results",)),
    Case("results-nul", sweep("--results", "{T}/r\x00x"), words=("--results",)),
    Case("results-newline-slurm", dry("--results", "{T}/r\n#SBATCH --wrap=id"), words=("--results",)),
    Case("dataset-nul", sweep("--dataset", "{T}/d\x00x"), words=("d\\x00x",)),
    Case("weights-nul", sweep("--weights", "{T}/w\x00.pt"), words=("--weights",)),

    # --- unknown sweep ids and runs ---
    Case("status-unknown", results("status", "nope"), words=("no sweep 'nope'", "sweeps there")),
    Case("leaderboard-unknown", results("leaderboard", "nope"), words=("no sweep 'nope'",)),
    Case("report-unknown", results("report", "nope"), words=("no sweep 'nope'",)),
    Case("cancel-unknown", results("cancel", "nope"), words=("no sweep 'nope'",)),
    Case("resume-unknown", results("sweep", "--resume", "nope"), words=("no sweep 'nope'",)),
    Case("resume-older-snapshot", results("sweep", "--resume", "old-snapshot"), words=("older harness", "harness/jobs.py")),
    Case("resume-with-resplit", results("sweep", "--resume", "done", "--resplit"), words=("--resplit", "--resume")),
    Case("status-ambiguous", results("status", "spec-"), words=("ambiguous",)),
    Case("status-path-escape", results("status", "../../etc"), words=("no sweep",)),
    Case("status-folder-without-spec", results("status", "not-a-sweep"), words=("no sweep 'not-a-sweep'",)),
    Case("status-empty-id", results("status", ""), words=("no sweep ''",)),
    Case("status-nul-id", results("status", "do\x00ne"), words=("no sweep",)),
    Case("status-no-results", ("status", "--results", "{T}/nowhere"), words=("no sweep under",)),
    Case("status-results-file", ("status", "--results", "{I}/a-file"), words=("no sweep under",)),
    Case("predict-no-slash", ("predict", "--run", "done", "{I}/face.png", "--results", "{R}"), words=("SWEEP/ARCH",)),
    Case("predict-no-run", ("predict", "--run", "done/", "{I}/face.png", "--results", "{R}"), words=("SWEEP/ARCH",)),
    Case("predict-unknown-sweep", ("predict", "--run", "nope/MobileNetV2", "{I}/face.png", "--results", "{R}"),
         words=("no sweep 'nope'",)),
    Case("predict-unknown-arch", ("predict", "--run", "done/AlexNet", "{I}/face.png", "--results", "{R}"), words=("no run 'AlexNet'",)),
    Case("predict-nothing-completed", ("predict", "--run", "nothing-done/MobileNetV2", "{I}/face.png", "--results", "{R}"),
         words=("no completed run",)),
    Case("predict-missing-image", ("predict", "--run", "done/MobileNetV2", "{T}/nope.png", "--results", "{R}"), code=1,
         words=("nope.png", "No such file")),
    Case("predict-text-image", ("predict", "--run", "done/MobileNetV2", "{I}/text.png", "--results", "{R}"), code=1,
         words=("text.png",)),
    Case("predict-folder-image", ("predict", "--run", "done/MobileNetV2", "{I}", "--results", "{R}"), code=1, words=("inputs",)),
    Case("predict-nul-image", ("predict", "--run", "done/MobileNetV2", "{T}/a\x00.png", "--results", "{R}"), code=1,
         words=("embedded null byte",)),
    Case("cancel-unknown-run", results("cancel", "running", "--runs", "AlexNet"), words=("no run 'AlexNet'",)),

    # --- as a real process: the exit code and the one stderr line the shell sees ---
    Case("process-account-newline", sweep("--account", "proj\n"), words=("--account", "'proj\\n'"), process=True),
    Case("process-epochs-zero", sweep("--epochs", "0"), words=("--epochs",), process=True),
    Case("process-status-unknown", results("status", "nope"), words=("no sweep 'nope'",), process=True),
    Case("process-status-damaged", results("status", "damaged"), code=0, words=("DAMAGED",), process=True),
    Case("process-leaderboard-nothing-completed", results("leaderboard", "nothing-done", "--sort", "eer"), code=0,
         words=("NOT SUBMITTED",), process=True),
    Case("process-spec-escape", results("status", "spec-escape"), words=("sweep.json",), process=True),
    # --- the demo (a build killed mid-way leaves its temporary folder) ---
    *[Case(f"demo-killed-build-{label}", ("data", "demo", "--out", "{R}/d", "--per-class", "22", "--size", "16"), code=0,
           words=("manifest.csv",), changes=True, setup=killed_demo_build(name), check=demo_built_and_temporary_gone(name))
      for label, name in [("pid-dead", f".d.tmp-{2**22 + 1}"),  # above Linux's largest pid
                          ("pid-reused", ".d.tmp-1"),  # pid 1 is alive, and no builder of ours
                          ("lock-only", f".d.tmp-{2**22 + 1}.lock")]],  # killed between the rename and the lock's removal
    # --- intervals and separability ---
    Case("record-interval-reversed", results("status", "record-interval-reversed"), code=0,
         words=("DAMAGED", "test.accuracy_interval", "not null or [low, high] in [0, 1]")),
    Case("record-interval-text", results("leaderboard", "record-interval-text"), code=0, words=("1 DAMAGED",)),
    Case("record-interval-outside", results("status", "record-interval-outside", "--format", "json"), code=0,
         words=("DAMAGED", "accuracy_interval")),
    Case("scores-one-group", results("leaderboard", "scores-one-group"), code=0,
         words=("no pair tested", "the test split holds one group")),
    Case("scores-one-group-auc", results("leaderboard", "scores-one-group", "--sort", "auc", "--format", "markdown"), code=0,
         words=("no pair tested", "the test split holds one group")),
    Case("scores-fractional-groups", results("status", "scores-fractional-groups"), code=0,
         words=("DAMAGED", "test_scores.npy", "not whole numbers")),
    # --- records ---
    Case("rec-auc-text-leaderboard", results("leaderboard", "rec-auc-text"), code=0, words=("1 DAMAGED",)),
    Case("rec-auc-text-status", status_of("rec-auc-text"), code=0, words=("DAMAGED", "test.auc", "'high'")),
    Case("rec-auc-above-one", results("leaderboard", "rec-auc-big", "--format", "json"), code=0,
         words=('"status": "1 DAMAGED"',)),
    Case("rec-auc-above-one-status", status_of("rec-auc-big"), code=0, words=("DAMAGED", "test.auc", "7.5")),
    Case("rec-params-negative", status_of("rec-params-negative"), code=0, words=("DAMAGED", "params", "-5")),
    Case("rec-requeues-negative", status_of("rec-requeues-negative"), code=0, words=("DAMAGED", "requeues")),
    Case("rec-epochs-negative", status_of("rec-epochs-negative"), code=0, words=("DAMAGED", "epochs_completed")),
    Case("rec-infinity-leaderboard-json", results("leaderboard", "rec-infinity", "--format", "json"), code=0,
         words=('"status": "1 DAMAGED"',)),
    Case("rec-infinity-status", status_of("rec-infinity"), code=0, words=("DAMAGED", "Infinity")),
    Case("rec-infinity-report", results("report", "rec-infinity"), words=("no completed run", "DAMAGED"),
         check=nothing_written("rec-infinity")),
    Case("rec-nan-leaderboard", results("leaderboard", "rec-nan", "--format", "json"), code=0, words=('"status": "1 DAMAGED"',)),
    Case("rec-other-sweep", status_of("rec-other-sweep"), code=0, words=("DAMAGED", "sweep 'done'")),
    Case("rec-other-model", status_of("rec-other-model"), code=0, words=("DAMAGED", "ResNet50")),
    Case("rec-other-seed", status_of("rec-other-seed"), code=0, words=("DAMAGED", "seed 3")),
    Case("spec-seeds-negative", status_of("spec-seeds-negative"), words=("sweep.json", "seeds", "-3")),
    Case("spec-seeds-zero", results("leaderboard", "spec-seeds-zero"), words=("sweep.json", "seeds")),
    Case("spec-runs-empty", status_of("spec-runs-empty"), words=("sweep.json", "no run")),
    Case("spec-models-empty", results("report", "spec-models-empty"), words=("sweep.json", "no architecture")),
    Case("spec-created-not-a-date", status_of("spec-created"), words=("sweep.json", "created", "ISO 8601")),
    Case("files-history-garbage-status", status_of("files-history-garbage"), code=0, words=("DAMAGED", "history.csv")),
    Case("files-history-garbage-leaderboard", results("leaderboard", "files-history-garbage"), code=0,
         words=("1 COMPLETED, 1 DAMAGED",)),
    Case("files-history-garbage-report", results("report", "files-history-garbage", "--format", "markdown"), code=0,
         changes=True, words=("report.md",), check=report_says("files-history-garbage", "DAMAGED")),
    Case("files-history-columns", results("leaderboard", "files-history-columns"), code=0, words=("1 DAMAGED",)),
    Case("files-history-accuracy", status_of("files-history-accuracy"), code=0, words=("DAMAGED", "train_accuracy")),
    Case("files-scores-garbage-leaderboard", results("leaderboard", "files-scores-garbage"), code=0, words=("1 DAMAGED",)),
    Case("files-scores-garbage-report", results("report", "files-scores-garbage", "--format", "markdown"), code=0,
         changes=True, words=("report.md",), check=report_says("files-scores-garbage", "DAMAGED")),
    Case("files-scores-shape", status_of("files-scores-shape"), code=0, words=("DAMAGED", "test_scores.npy", "shape")),
    Case("progress-odd-status", status_of("progress-odd"), code=0, words=("NOT SUBMITTED",)),
    Case("progress-list-status-json", status_of("progress-list", "--format", "json"), code=0, words=('"state": "NOT SUBMITTED"',)),
    Case("preprocess-progress-odd", status_of("preprocess-odd"), code=0, words=("DAMAGED", "progress.json")),
    Case("preprocess-progress-state-number", status_of("preprocess-state-number", "--format", "json", "--meta"), code=0,
         words=('"state": "DAMAGED"', "state")),
    Case("predict-std-zero", ("predict", "--run", "rec-std-zero/MobileNetV2", "{I}/face.png", "--results", "{R}"),
         words=("rec-std-zero", "preprocessing.std")),
    Case("predict-image-size-huge", ("predict", "--run", "rec-image-size-huge/MobileNetV2", "{I}/face.png", "--results", "{R}"),
         words=("preprocessing.image_size", "50000")),
    Case("predict-crop-zero", ("predict", "--run", "rec-crop-zero/MobileNetV2", "{I}/face.png", "--results", "{R}"),
         words=("preprocessing.crop_pct",)),
    Case("predict-interpolation-unknown", ("predict", "--run", "rec-interpolation/MobileNetV2", "{I}/face.png", "--results", "{R}"),
         words=("preprocessing.interpolation", "sinc")),
    Case("predict-nan-weights-json", ("predict", "--run", "best-nan/MobileNetV2", "{I}/face.png", "--format", "json",
                                      "--results", "{R}"), code=1, words=('"p_fake": null', "not finite")),
    Case("history-iso-week-date", results("history"), code=0, words=("2024-12-30",),
         setup=perflog_lines("2025-W01-1", "2025-02-01T00:00:00+00:00")),
    Case("history-date-without-zone", results("history", "--format", "json"), code=0, words=("2025-01-02T03:04:05+00:00",),
         setup=perflog_lines("2025-01-02T03:04:05", "2025-02-01T00:00:00+00:00")),
    Case("history-date-beyond-axis", results("history"), code=0, words=("line 1", "between 1970"),
         setup=perflog_lines("9999-01-01T00:00:00+00:00", "2025-02-01T00:00:00+00:00")),
    Case("history-out-folder", results("history", "--format", "png", "--out", "{R}/figs"), code=0, changes=True,
         words=("history-train_images_per_s.png",), setup=lambda p: (perflog_lines("2025-01-01T00:00:00+00:00")(p),
                                                                     folder_in_results("figs")(p)), check=figure_in("figs")),
    Case("history-out-folder-slash", results("history", "--format", "png", "--out", "{R}/figs/"), code=0, changes=True,
         setup=lambda p: (perflog_lines("2025-01-01T00:00:00+00:00")(p), folder_in_results("figs")(p)), check=figure_in("figs")),
    Case("check-no-architecture-matches", results("check", "done", "--references", "{T}/refs.toml"),
         words=("refs.toml", "ResNet50", "nothing to check"), setup=references("[ResNet50]\naccuracy = { value = 0.9, lower = -0.05 }\n")),
    Case("check-timm-name-matches-nothing", results("check", "done", "--references", "{T}/refs.toml"),
         words=("mobilenetv2_100", "nothing to check", "MobileNetV2"),
         setup=references("[mobilenetv2_100]\naccuracy = { value = 0.9, lower = -0.05 }\n")),
    Case("future-sweep-not-latest", ("status", "--results", "{R}"), code=0, words=("sweep preprocess-state-number",),
         setup=future("best-nan")),
    Case("future-every-sweep", ("status", "--results", "{R}"), words=("dated in the future",), setup=future()),
    # --- predict reads images, nothing else, and none too large ---
    *[Case(f"predict-{name}", ("predict", "--run", "damaged/MobileNetV2", path, "--results", "{R}"), code=1, words=words)
      for name, path, words in [("fifo", "{I}/fifo.png", ("a FIFO",)), ("dev-zero", "/dev/zero", ("a device",)),
                                ("folder-named-jpg", "{I}/folder.jpg", ("a folder",)),
                                ("long-thin-png", "{I}/thin.png", ("200000x1", "times the other")),
                                ("gigapixel-png", "{I}/gigapixel.png", ("10000x10000", "more than"))]],
    # --- processes that are not ours, and what cancel says ---
    Case("pid-reused-status", results("status", "jobs-pid-reused", "--format", "json"), code=0,
         words=('"state": "FAILED"', "workers ended")),
    Case("pid-reused-cancel", results("cancel", "jobs-pid-reused"), code=0, words=("nothing to cancel",)),
    Case("pid-reused-cancel-run", results("cancel", "jobs-pid-reused", "--runs", MODEL), code=0, words=("nothing to cancel",)),
    Case("pid-bare-status", results("status", "jobs-pid-bare"), words=("jobs.json", "'1'", "local")),
    Case("pid-bare-cancel", results("cancel", "jobs-pid-bare"), words=("jobs.json", "job id")),
    Case("local-slurm-id-cancel", results("cancel", "jobs-local-slurm-id"), words=("jobs.json", "'123_4'")),
    Case("cancel-finished-sweep", results("cancel", "done"), code=0, words=("nothing to cancel", "every run ended")),
    # an empty `--runs "$RUNS"` in a script: no run named, not every run (it cancelled the whole sweep)
    *[Case(f"cancel-runs-{name}", results("cancel", "running", "--runs", given), words=("--runs names no run", f"{MODEL}-s0"))
      for name, given in (("empty", ""), ("commas", ","), ("blank", " "))],
    Case("cancel-finished-run", results("cancel", "done", "--runs", MODEL), code=0, words=("nothing to cancel", "those runs")),
    # --- manifests (an image in two splits, sizes that overflowed, digests that are none) ---
    Case("manifest-same-file-in-train-and-test", dry("--dataset", "{D}/same-file-twice"), words=("is not listed once", "line")),
    Case("manifest-same-file-local", sweep("--dataset", "{D}/same-file-twice"), words=("is not listed once",)),
    Case("manifest-width-huge", dry("--dataset", "{D}/width-huge"), words=("width", "whole number of pixels")),
    Case("manifest-sha-not-hex", dry("--dataset", "{D}/sha-not-hex"), words=("sha256", "64 hex digits")),
    # --- data prepare with too few images for its splits ---
    Case("prepare-per-class-three", ("data", "prepare", "--real", "{T}/real", "--fake", "{T}/fake", "--out", "{T}/o",
                                     "--per-class", "3"), words=("--per-class", "at least 4"), setup=image_folders, check=absent("o")),
    Case("prepare-too-few-images", ("data", "prepare", "--real", "{T}/real", "--fake", "{T}/fake", "--out", "{T}/o"),
         words=("3 real", "too few", "at least 4"), setup=image_folders, check=absent("o")),
    # --- links along the path (a run folder, runs/, a log leading out of the sweep) ---
    Case("link-run-folder-cancel", results("cancel", "running", "--runs", MODEL),
         words=("symbolic link", f"{MODEL}-s0"), setup=moved_behind_link(f"running/runs/{MODEL}-s0", "run-elsewhere"),
         check=unchanged_folder("run-elsewhere", (".holder", "progress.json"))),
    Case("link-runs-folder-resume", results("sweep", "--resume", "all-damaged"), words=("symbolic link", "runs"),
         setup=moved_behind_link("all-damaged/runs", "runs-elsewhere"),
         check=unchanged_folder("runs-elsewhere", (f"{MODEL}-s0", f"{MODEL}-s1"))),
    Case("link-local-log-resume", results("sweep", "--resume", "all-damaged"), words=("symbolic link", "local-"),
         setup=plant_link(f"all-damaged/logs/local-{MODEL}-s0.log", "victim.log"), check=untouched("victim.log")),
    # --- paths from sweep.json (a cache_root outside the results folder that holds the sweep) ---
    # (the jobs build them in the results folder that holds the sweep, whatever sweep.json says: tests/unit/test_node.py)
    *[Case(f"spec-cache-root-{name}-resume", results("sweep", "--resume", f"spec-cache-{name}"), code=0, changes=True,
           submits=(f"{MODEL}-s0", f"{MODEL}-s1")) for name in ("moved", "sibling")],
    # --- sizes without bound, and options accepted in silence ---
    Case("seeds-huge", dry("--seeds", "100000000"), words=("--seeds", "1000")),
    Case("seeds-just-over", dry("--seeds", "1001"), words=("--seeds", "1001")),
    Case("epochs-huge", dry("--epochs", "99999999999999999999"), words=("--epochs", "10000")),
    Case("batch-size-huge", dry("--batch-size", "1000000"), words=("--batch-size", "65536")),
    Case("lr-huge", dry("--lr", "1e308"), words=("--lr", "at most 10")),
    Case("lr-just-over", dry("--lr", "11"), words=("--lr",)),
    Case("warmup-longer-than-training", dry("--epochs", "2", "--warmup-epochs", "5"), words=("--warmup-epochs", "--epochs (2)")),
    Case("warmup-longer-local", sweep("--epochs", "1", "--warmup-epochs", "2"), words=("--warmup-epochs",)),
    Case("dry-run-and-check", dry("--check"), words=("--dry-run", "--check")),
    # --- ranks and nodes of a run, scaling sweeps ---
    Case("gpus-per-run-zero", sweep("--gpus-per-run", "0"), words=("--gpus-per-run",)),
    Case("gpus-per-run-huge", dry("--gpus-per-run", "5000"), words=("--gpus-per-run", "1024")),
    Case("nodes-not-dividing-ranks", dry("--gpus-per-run", "3", "--nodes-per-run", "2"), words=("--nodes-per-run", "divide")),
    Case("nodes-more-than-ranks", dry("--nodes-per-run", "2"), words=("--nodes-per-run", "divide")),
    Case("nodes-on-local", sweep("--gpus-per-run", "2", "--nodes-per-run", "2"), words=("--nodes-per-run", "local")),
    Case("gres-count-instead-of-ranks", dry("--gres", "gpu:2"), words=("--gres", "--gpus-per-run")),
    Case("lr-scaling-unknown", sweep("--lr-scaling", "sqrt"), words=("--lr-scaling",)),
    Case("lr-scaled-too-far", dry("--lr", "1", "--gpus-per-run", "16", "--lr-scaling", "linear"), words=("--lr", "16 ranks")),
    Case("scaling-without-one", sweep("--scaling", "2,4"), words=("--scaling", "1 among them")),
    Case("scaling-repeated", sweep("--scaling", "1,2,2"), words=("--scaling",)),
    Case("scaling-word", sweep("--scaling", "1,two"), words=("--scaling",)),
    Case("scaling-and-gpus-per-run", sweep("--scaling", "1,2", "--gpus-per-run", "2"), words=("--scaling", "--gpus-per-run")),
    Case("scaling-and-cross-generator", sweep("--scaling", "1,2", "--cross-generator"), words=("--cross-generator", "--scaling")),
    Case("scaling-uneven-nodes", dry("--scaling", "1,3", "--nodes-per-run", "2"), words=("--scaling", "fill the nodes")),
    Case("slurm-option-on-local", sweep("--partition", "gpu"), words=("--partition", "--cluster local")),
    Case("slurm-sbatch-on-local", sweep("--sbatch", "mail-type=END"), words=("--sbatch", "--cluster local")),
    Case("local-option-on-slurm", dry("--max-parallel", "2"), words=("--max-parallel", "--cluster slurm")),
    # --- sbatch options matched as sbatch's getopt_long reads an #SBATCH line: a unique prefix is the option ---
    Case("sbatch-prefix-dependency", dry("--sbatch", "dep=afterok:1$(id)"), words=("--sbatch dependency=", "TYPE:JOBID")),
    Case("sbatch-prefix-array", dry("--sbatch", "arr=0-9999"), words=("--arr is --array to sbatch", "sets --array itself")),
    Case("sbatch-alias-tasks-per-node", dry("--sbatch", "tasks-per-node=64"),
         words=("sets --tasks-per-node itself", "--gpus-per-run")),
    Case("sbatch-prefix-gres", dry("--sbatch", "gre=gpu:8"), words=("--gres, --gres-flags", "whole name")),  # as sbatch says
    Case("sbatch-prefix-gpus", dry("--sbatch", "gpus-per-n=8"), words=("--gpus-per-n is --gpus-per-node to sbatch", "use --gres")),
    Case("sbatch-value-for-a-flag", dry("--sbatch", "requeue=x"), words=("--requeue takes no value", "--sbatch requeue")),
    Case("sbatch-flag-without-value", dry("--sbatch", "mail-type"), words=("--mail-type takes a value",)),
    Case("sbatch-ambiguous-prefix", dry("--sbatch", "mail=END"), words=("--mail-type", "--mail-user", "whole name")),
    Case("sbatch-no-such-option", dry("--sbatch", "frobnicate=1"), words=("sbatch has no option --frobnicate",)),
    Case("sbatch-twice-by-two-names", dry("--sbatch", "comment=a", "--sbatch", "comm=b"), words=("comment= is given twice",)),
    Case("sbatch-job-name", dry("--sbatch", "job-name=x"), words=("sets --job-name itself", "by their names")),
    Case("sbatch-output", dry("--sbatch", "outp=/tmp/x"), words=("sets --output itself", "harness logs")),
    # --- what the local backend cannot hold is refused, and --dry-run and --check meet the same refusals ---
    Case("local-more-ranks-than-this-machine-holds", sweep("--gpus-per-run", "1024"),
         words=("--gpus-per-run 1024", "this machine, which holds", "or fewer")),
    Case("local-dry-run-nodes", sweep("--dry-run", "--gpus-per-run", "2", "--nodes-per-run", "2"), words=("--nodes-per-run", "local")),
    Case("local-check-ranks", sweep("--check", "--gpus-per-run", "1024"), words=("--gpus-per-run 1024",)),
    # --- a '%' in the results path would be expanded in the jobs' #SBATCH --output ---
    Case("slurm-percent-in-results", dry("--results", "{T}/r%x"), words=("--results", "'%'", "#SBATCH --output")),
    Case("slurm-percent-in-results-check", (*DRY[:3], "--check", *DRY[4:], "--results", "{T}/r%j"), words=("--results", "'%'")),
    Case("network-twice-paper-and-timm", dry("--models", "MobileNetV2,mobilenetv2_100"),
         words=("MobileNetV2 and mobilenetv2_100", "same network")),
    Case("network-twice-timm-and-paper", dry("--models", "resnet50,ResNet50"), words=("resnet50 and ResNet50",)),
    *[Case(f"device-{device.replace(':', '')}-without-gpu", sweep("--device", device), words=(f"--device {device}", "no NVIDIA GPU"),
           marks=(pytest.mark.skipif(has_nvidia_gpu(), reason="this machine has an NVIDIA GPU"),)) for device in ("cuda", "cuda:1")],
]
CASES += [Case(f"name{option}-{label}", dry(f"{option}={value}"), words=(option, message))
          for option, message in NAME_OPTIONS.items() for label, value in CHARACTERS.items()]
CASES += [
    # --- fourth hostile round: an output is written only where the user could mean it ---
    *[Case(f"{name}-out-{label}", (*args, "--out", target, "--results", "{R}"), words=words, check=check,
           setup=with_perflog(setup) if name == "history-png" else setup)
      for name, args in (("dashboard", ("dashboard",)), ("history-png", ("history", "--format", "png")))
      for label, target, words, setup, check in [
          ("dev-null", "/dev/null", ("/dev/null", "is a device"), None, None),
          ("fifo", "{T}/fifo", ("fifo", "is a FIFO"), lambda p: os.mkfifo(p["T"] / "fifo"), None),
          ("perflog", "{R}/perflog.jsonl", ("perflog.jsonl", "the harness keeps"), None, None),
          ("sweep-file", "{R}/done/sweep.json", ("sweep.json", "the harness keeps"), None, None),
          ("jobs-file", "{R}/running/jobs.json", ("jobs.json", "the harness keeps"), None, None),
          ("in-sweep-folder", "{R}/done/page", ("sweep done", "the harness keeps"), None, None),
          ("others-file", "{T}/notes.txt", ("notes.txt", "--force"), lambda p: (p["T"] / "notes.txt").write_text("precious\n"),
           untouched("notes.txt"))]],
    Case("history-png-out-sweep-folder", results("history", "--format", "png", "--out", "{R}/done"), words=("sweep done",),
         setup=with_perflog(None)),
    *[Case(f"{name}-out-{label}", (*args, *force, "--results", "{R}/home"), code=0, changes=True, setup=setup, check=check)
      for name, args, file in (("dashboard", ("dashboard", "--out", "{R}/home/page.html"), "page.html"),
                               ("history-png", ("history", "--format", "png", "--out", "{R}/home/page.html"), "page.html"))
      for label, force, setup, check in [
          ("replaces-its-own", (), home_with(own_output=name), replaced_by(file, name)),
          ("others-file-forced", ("--force",), home_with(own_output="notes"), replaced_by(file, name))]],
    Case("update-references-device", results("check", "done", "--references", "/dev/null", "--update-references"),
         words=("/dev/null", "is a device")),
    Case("update-references-in-sweep-folder", results("check", "done", "--references", "{R}/done/refs.toml", "--update-references"),
         words=("sweep done", "the harness keeps")),
    Case("demo-out-device", ("data", "demo", "--out", "/dev/null"), words=("/dev/null", "is a device")),
    Case("demo-out-in-sweep-folder", ("data", "demo", "--out", "{R}/done/demo"), words=("sweep done", "the harness keeps")),
    Case("prepare-out-others-manifest", ("data", "prepare", "--real", "{T}/real", "--fake", "{T}/fake", "--out", "{T}/real"),
         words=("manifest.csv", "--force"), setup=lambda p: (image_folders(p), (p["T"] / "real" / "manifest.csv").write_text("mine\n")),
         check=untouched("real/manifest.csv", "mine\n")),
    Case("prepare-out-in-sweep-folder", ("data", "prepare", "--real", "{T}/real", "--fake", "{T}/fake", "--out", "{R}/done/data"),
         words=("sweep done",), setup=image_folders),
    # --- data prepare's groups: a groups file and a pattern are as untrusted as any input ---
    *[Case(f"prepare-groups-{label}", ("data", "prepare", "--real", "{T}/real", "--fake", "{T}/fake", "--out", "{T}/o", *more),
           words=words, setup=setup, check=absent("o")) for label, more, setup, words in [
        ("fifo", ("--groups", "{T}/groups.txt"), groups_file(fifo=True), ("groups.txt", "a FIFO")),
        ("huge", ("--groups", "{T}/groups.txt"), groups_file(size=257 * 2**20), ("groups.txt", "more than")),
        ("missing-file", ("--groups", "{T}/nowhere.txt"), image_folders, ("nowhere.txt", "does not exist")),
        ("control-character", ("--groups", "{T}/groups.txt"), groups_file(b"0.png person\x1b[2J\n"), ("line 1", "control")),
        ("image-in-two-groups", ("--groups", "{T}/groups.txt"), groups_file(b"real/0.png anna\nscratch/real/0.png ben\n"),
         ("line 2", "one group")),
        ("name-of-two-images", ("--groups", "{T}/groups.txt"), groups_file(b"0.png anna\n"), ("names 2 images", "more of its path")),
        ("missing-image", ("--groups", "{T}/groups.txt"), groups_file(b"real/0.png anna\nreal/1.png ben\n"),
         ("no group to 1 of 3 real images", "2.png")),
        ("binary", ("--groups", "{T}/groups.txt"), groups_file(b"0.png \xff\n"), ("groups.txt", "UTF-8")),
        ("and-pattern", ("--groups", "{T}/groups.txt", "--group-pattern", "{parent}"), groups_file(b"0.png a\n"),
         ("give one of them",)),
        ("pattern-not-regex", ("--group-pattern", "([a-z]"), image_folders, ("--group-pattern", "regular expression")),
        ("pattern-two-captures", ("--group-pattern", "(a)(b)"), image_folders, ("2 capture groups",)),
        ("pattern-control-character", ("--group-pattern", "^(.)"),
         lambda p: (image_folders(p), shutil.copy(p["T"] / "real" / "0.png", p["T"] / "real" / "\x1b[2J.png")),
         ("group name is printable",)),
        ("near-duplicates-too-far", ("--near-duplicates", "40"), image_folders, ("--near-duplicates", "0..16")),
    ]],
    # --- fourth hostile round: clean removes only what the harness wrote, inside --results ---
    Case("clean-cache-sweep-elsewhere", results("clean", "{T}/paper/mysweep", "--cache"), words=("mysweep", "--results"),
         setup=sweep_elsewhere, check=untouched("paper/cache/notes/chapter1.txt")),
    Case("clean-sweep-elsewhere", results("clean", "{T}/paper/mysweep"), words=("mysweep", "--results"), setup=sweep_elsewhere,
         check=untouched("paper/cache/notes/chapter1.txt")),
    Case("clean-cache-keeps-what-is-not-a-cache", ("clean", "done", "--cache", "--results", "{R}/home"), code=0, changes=True,
         words=("freed 1.0 kB",), setup=home_with(cache=True), check=only_caches_gone),
    Case("clean-cache-folder-links-out", ("clean", "done", "--cache", "--results", "{R}/home"), words=("cache", "symbolic link"),
         setup=lambda p: (home_with(cache=True)(p), shutil.move(p["R"] / "home" / "cache", p["T"] / "elsewhere"),
                          (p["R"] / "home" / "cache").symlink_to(p["T"] / "elsewhere")),
         check=unchanged_folder("elsewhere", (CACHE_KEY, f"{CACHE_KEY}.lock", "notes", "pip"))),
    Case("clean-run-folder-links-out", results("clean", "done"), words=("symbolic link", f"{MODEL}-s0"),
         setup=lambda p: ((p["R"] / "done" / "runs" / f"{MODEL}-s0" / "state.pt").write_bytes(b"x"),
                          moved_behind_link(f"done/runs/{MODEL}-s0", "run-elsewhere")(p)),
         check=lambda p: (p["T"] / "run-elsewhere" / "state.pt").is_file() or pytest.fail("state.pt was deleted")),
    Case("clean-checkpoint-links-inside", results("clean", "done"), words=("state.pt", "is a symbolic link"), unsaid=("leads outside",),
         setup=lambda p: (p["R"] / "done" / "runs" / f"{MODEL}-s0" / "state.pt").symlink_to(p["R"] / "done" / "sweep.json")),
    # --- fourth hostile round: --resume runs the code snapshot only as it was submitted ---
    Case("resume-code-planted", results("sweep", "--resume", "snapshot"), words=("snapshot", "not what was submitted", "--trust-code"),
         setup=lambda p: (p["R"] / "snapshot" / "code" / "harness" / "jobs.py").write_text("import os; os.system('id')\n")),
    Case("resume-code-new-module", results("sweep", "--resume", "snapshot"), words=("not what was submitted",),
         setup=lambda p: (p["R"] / "snapshot" / "code" / "sitecustomize.py").write_text("import os; os.system('id')\n")),
    Case("resume-code-no-digest", results("sweep", "--resume", "snapshot-no-digest"), words=("records no digest", "--trust-code")),
    Case("resume-code-trusted", results("sweep", "--resume", "snapshot-no-digest", "--trust-code"), code=0, changes=True,
         submits=(f"{MODEL}-s0",)),
    Case("resume-code-intact", results("sweep", "--resume", "snapshot"), code=0, changes=True, submits=(f"{MODEL}-s0",),
         setup=planted_bytecode, check=bytecode_gone),
    Case("trust-code-without-resume", sweep("--trust-code"), words=("--trust-code", "--resume")),
    # --- fourth hostile round: text from disk or the user made inert on its way out ---
    *[Case(f"escapes-status-{fmt}", status_of("escapes", "--format", fmt), code=0, words=words, unsaid=("\x1b", "\x07", "\x9b"))
      for fmt, words in (("table", ("FAILED",)), ("csv", ("\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m [/] [bold]x",)),
                         ("markdown", ("\\x1b]0;pwned\\x07",)), ("json", ("\\u001b]0;pwned\\u0007",)))],
    Case("escapes-references-key", results("check", "done", "--references", "{T}/refs.toml"), code=1,
         words=("\\x1b[2J",), unsaid=("\x1b",), setup=references('[MobileNetV2]\naccuracy = { value = 0.9, lower = -0.05 }\n'
                                                             '["\\u001b[2JResNet50"]\naccuracy = { value = 0.9, lower = -0.05 }\n')),
    Case("markup-in-results-path", sweep("--results", "{R}/r[/]x", "--name", "n"), code=0, changes=True, submits=(f"{MODEL}-s0",),
         words=("sweep n: 1 runs on local", "r[/]x/n")),
    Case("markup-in-perflog-warning", results("history"), code=0, words=("[/]", "skipped"),
         setup=perflog_lines("[/]\x1b[2J", "2025-02-01T00:00:00+00:00"), unsaid=("\x1b",)),
    *[Case(f"mathtext-in-perflog-{name}", (*args, "--results", "{R}/home"), code=0, changes=True, words=("page",),
           setup=home_with(partition="p$\\frac{$")) for name, args in (
        ("history-png", ("history", "--format", "png", "--out", "{R}/home/page.png")),
        ("dashboard", ("dashboard", "--out", "{R}/home/page.html")))],
    Case("html-in-spec-markdown-report", results("report", "html-in-spec", "--format", "markdown"), code=0, changes=True,
         check=report_lacks("html-in-spec", "<script", "<img", "<iframe")),
    # --- fourth hostile round: files nested past any parser's depth ---
    Case("nested-record-status", status_of("nested-record"), code=0, words=("DAMAGED", "more than 32 deep")),
    Case("nested-record-leaderboard", results("leaderboard", "nested-record"), code=0, words=("1 DAMAGED",)),
    Case("nested-record-report", results("report", "nested-record"), words=("no completed run", "DAMAGED")),
    Case("nested-record-clean", results("clean", "nested-record"), code=0, words=("freed 0 B",)),
    Case("nested-spec-status", status_of("nested-spec"), words=("sweep.json", "more than 32 deep")),
    Case("nested-spec-leaderboard", results("leaderboard", "nested-spec"), words=("sweep.json", "more than 32 deep")),
    Case("nested-jobs-status", status_of("nested-jobs"), words=("jobs.json", "more than 32 deep")),
    Case("nested-progress-status", status_of("nested-progress", "--format", "json", "--meta"), code=0,
         words=('"state": "DAMAGED"', "more than 32 deep")),
    Case("nested-perflog-line", results("history"), code=0, words=("line 1", "more than 32 deep", "skipped"),
         setup=lambda p: (perflog_lines("2025-02-01T00:00:00+00:00")(p),
                          (p["R"] / "perflog.jsonl").write_text(NESTED + "\n" + (p["R"] / "perflog.jsonl").read_text()))),
    *[Case(f"references-{label}-{name}", (*args, "--references", path, "--results", "{R}"), words=words, setup=setup)
      for name, args in (("check", ("check", "done")), ("update", ("check", "done", "--update-references")),
                         ("dashboard", ("dashboard", "--out", "{T}/page.html")))
      for label, path, words, setup in [
          ("fifo", "{T}/refs.toml", ("refs.toml", "FIFO"), lambda p: os.mkfifo(p["T"] / "refs.toml")),
          ("dev-zero", "/dev/zero", ("/dev/zero", "a device"), None),
          ("huge", "{T}/refs.toml", ("refs.toml", "more than the 4,194,304"),
           references("# padding\n" * 500_000 + "[MobileNetV2]\naccuracy = { value = 0.9, lower = -0.1 }\n")),
          ("nested", "{T}/refs.toml", ("refs.toml", "more than 32 deep"), references("[MobileNetV2]\naccuracy = " + NESTED + "\n"))]],
    # --- fourth hostile round: numbers a terminal width or a poll interval cannot be ---
    *[Case(f"columns-{label}-{fmt}", status_of("done", "--format", fmt), code=0, words=("MobileNetV2-s0",), env=(("COLUMNS", value),))
      for label, value in (("superscript", "\u00b2"), ("circled", "\u2460")) for fmt in ("table", "json")],
    Case("lines-superscript", status_of("done"), code=0, words=("MobileNetV2-s0",), env=(("LINES", "\u00b2"),)),
    Case("columns-superscript-process", status_of("done"), code=0, words=("MobileNetV2-s0",), env=(("COLUMNS", "\u00b2"),),
         process=True),
    Case("interval-overflows", status_of("running", "--watch", "--interval", "1e308"), words=("--interval", "between 1 and 86400")),
    Case("interval-busy-loop", status_of("running", "--watch", "--interval", "1e-300"), words=("--interval", "between 1 and 86400")),
    Case("interval-below-a-second", results("sweep", "--resume", "done", "--wait", "--interval", "0.5"), words=("--interval",)),
    # --- fourth hostile round: options the format would ignore ---
    *[Case(f"{option[2:]}-with-{fmt}-{args[0]}", (*args, "--format", fmt, option), words=(option, f"--format {fmt}"))
      for args in (status_of("done"), results("leaderboard", "done"), results("compare", "done", "done"),
                   results("check", "done", "--references", "{T}/refs.toml"), results("history"),
                   ("predict", "--run", "done/MobileNetV2", "{I}/face.png", "--results", "{R}"), ("models",))
      for option, fmt in (("--meta", "csv"), ("--meta", "table"), ("--meta", "markdown"), ("--wide", "csv"), ("--wide", "json"))
      if option != "--meta" or args[0] not in ("leaderboard", "history", "models")],
]


# --- fifth hostile round: a FIFO or a device put where the harness keeps a file; bounds; options ignored ---
def put_in_place(relative: str, kind: str, text: bytes = b"") -> Callable[[dict[str, Path]], None]:
    """In place of a file of the results ({R}/relative): a FIFO (kind "fifo"), a link to /dev/zero ("dev-zero"),
    a folder holding a user's note ("folder"), or a file of text ("file")."""
    def setup(places: dict[str, Path]) -> None:
        path = places["R"] / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dev-zero":
            path.symlink_to("/dev/zero")
        elif kind == "folder":
            path.mkdir()
            (path / "notes.txt").write_text("precious\n")
        else:
            path.write_bytes(text)
    return setup


def note_kept(relative: str) -> Callable[[dict[str, Path]], None]:
    def check(places: dict[str, Path]) -> None:
        assert (places["R"] / relative / "notes.txt").read_text() == "precious\n", f"{relative} was emptied"
    return check


RUN = f"runs/{MODEL}-s0"
KINDS = {"fifo": "is a FIFO", "dev-zero": "is a device"}
ESCAPES_LOG = b"epoch 1 \x1b]0;pwned\x07\x1b[2J done\n"
CASES += [
    *[Case(f"{name}-in-place-of-{file.split('.')[0]}-{kind}", (*args, "--results", "{R}"), code=0,
           words=("DAMAGED", words) if name == "status" else (), setup=put_in_place(f"done/{RUN}/{file}", kind))
      for name, args in (("status", ("status", "done", "--format", "json")), ("leaderboard", ("leaderboard", "done")))
      for file in ("history.csv", "test_scores.npy") for kind, words in KINDS.items()],
    *[Case(f"status-{name}-{kind}", status_of("running"), code=0, words=(f"{MODEL}-s0",), setup=put_in_place(f"running/{file}", kind))
      for name, file in (("progress", f"{RUN}/progress.json"), ("holder", f"{RUN}/.holder"),
                         ("preprocess-progress", "preprocess/progress.json")) for kind in KINDS],
    Case("cancel-run-holder-fifo", results("cancel", "running", "--runs", f"{MODEL}-s0"), code=0, words=("cancelled 1 run ",), changes=True,
         setup=put_in_place(f"running/{RUN}/.holder", "fifo")),
    *[Case(f"record-in-place-of-result-{kind}", status_of("done", "--format", "json"), code=0, words=("DAMAGED", words),
           setup=put_in_place(f"done/{RUN}/result.json", kind)) for kind, words in {**KINDS, "folder": "is a folder"}.items()],
    *[Case(f"predict-best-{kind}", ("predict", "--run", f"done/{MODEL}", "{I}/face.png", "--results", "{R}"),
           words=("best.pt", words), setup=put_in_place(f"done/{RUN}/best.pt", kind)) for kind, words in KINDS.items()],
    Case("report-where-a-folder-stands", results("report", "done"), words=("report.html", "is a folder", "remove it first"),
         setup=put_in_place("done/report.html", "folder")),
    *[Case(f"logs-{kind}", results("logs", f"running/{MODEL}-s1"), words=(f"local-{MODEL}-s1.log", words),
           setup=put_in_place(f"running/logs/local-{MODEL}-s1.log", kind)) for kind, words in KINDS.items()],
    Case("logs-escape-codes", results("logs", f"running/{MODEL}-s1"), code=0, words=("epoch 1", "\\x1b]0;pwned"),
         unsaid=("\x1b", "\x07"), setup=put_in_place(f"running/logs/local-{MODEL}-s1.log", "file", ESCAPES_LOG)),
    Case("clean-a-folder-named-as-a-checkpoint", results("clean", "done"), code=0, words=("freed 0 B",),
         setup=put_in_place(f"done/{RUN}/state.prev.pt", "folder"), check=note_kept(f"done/{RUN}/state.prev.pt")),
    Case("references-integer-beyond-a-float", results("check", "done", "--references", "{T}/refs.toml"),
         words=("refs.toml", "accuracy"), setup=references("[MobileNetV2]\naccuracy = { value = 1" + "0" * 400 + ", lower = -0.05 }\n")),
    Case("references-integer-of-5000-digits", results("check", "done", "--references", "{T}/refs.toml"),
         words=("refs.toml", "not valid TOML"), setup=references("[MobileNetV2]\naccuracy = { value = 1" + "0" * 5000 + " }\n")),
    Case("profile-signal-delay-beyond-sbatch", dry("--profile", "{T}/p.toml"), words=("--signal-delay-s", "65,535"),
         setup=lambda p: (p["T"] / "p.toml").write_text("signal_delay_s = 99999999999999999999999\n")),
    Case("profile-integer-of-5000-digits", dry("--profile", "{T}/p.toml"), words=("p.toml", "not valid TOML"),
         setup=lambda p: (p["T"] / "p.toml").write_text("cpus_per_task = 1" + "0" * 5000 + "\n")),
    *[Case(f"demo-{option[2:]}-beyond-its-bound", ("data", "demo", "--out", "{T}/demo", option, value), words=(option, "must be from"))
      for option, value in (("--seed", "9" * 26), ("--size", "100000"), ("--per-class", "100000000"))],
    Case("history-out-with-csv", results("history", "--format", "csv", "--out", "{T}/x.csv"), words=("--out", "--format png"),
         setup=with_perflog(None)),
    Case("history-force-with-table", results("history", "--force"), words=("--force", "--format png"), setup=with_perflog(None)),
    Case("watch-with-json", status_of("done", "--watch", "--format", "json"), words=("--watch", "--format json")),
    Case("interval-without-watch", status_of("done", "--interval", "5"), words=("--interval", "--watch")),
    Case("dry-run-results-a-file", dry("--results", "{T}/afile"), words=("afile", "is not a folder"),
         setup=lambda p: (p["T"] / "afile").write_text("precious\n"), check=untouched("afile")),
    Case("results-a-sweeps-own-folder", ("status", "--results", "{R}/done"), words=("a sweep's folder", "--results")),
]


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def _run(case: Case, places: dict[str, Path], cli) -> Outcome:
    args = [fill(a, places) for a in case.args]
    if not case.process:
        shown = cli(*args)
        return Outcome(shown.code, shown.out, shown.err)
    # a real process: the backends cannot be guarded there, so only cases refused before any submission
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=env,
                          cwd=places["T"], timeout=HUNG_S, check=False)
    return Outcome(done.returncode, done.stdout, done.stderr)


def test_cases_have_distinct_ids():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_input(case: Case, world, cli, monkeypatch):
    """One line naming the cause (exit 2), or handled; the results and datasets as they were (and the Slurm
    queue: no case is in the cluster's group, so conftest's fence fails any that reaches it)."""
    places = world
    places["T"].mkdir()
    for name, value in case.env:
        monkeypatch.setenv(name, value)
    if case.setup:
        case.setup(places)
    kept = [places["D"], places["I"], places["T"]] + ([] if case.changes else [places["R"]])
    before = snapshot(*kept)
    Guard.allowed = case.submits is not None
    result = _run(case, places, cli)
    shown = result.out + result.err
    assert "Traceback" not in shown, shown[-3000:]
    assert result.code == case.code, (result.code, result.out[-2000:], result.err[-2000:])
    if case.code == 2:  # refused: one line on stderr, naming the cause
        assert result.err.startswith("error: ") and result.err.endswith("\n") and result.err.count("\n") == 1, repr(result.err)
    for word in case.words:
        assert word in (result.err if case.code == 2 else shown), f"{word!r} not in {shown[-2000:]!r}"
    for word in case.unsaid:
        assert word not in shown, f"{word!r} in {shown[-2000:]!r}"
    changed = sorted(set(before.items()) ^ set(snapshot(*kept).items()))
    assert not changed, f"written or changed: {changed[:6]}"
    assert Guard.submitted == ([list(case.submits)] if case.submits else []), Guard.submitted
    if case.check:
        case.check(places)


# ----------------------------------------------------------------------------------------------------
# Property: whatever a name holds, the batch script keeps its #SBATCH lines
# ----------------------------------------------------------------------------------------------------

# The characters that matter to sbatch (a directive ends at a newline; sbatch stops reading directives at
# the first ordinary line) and to bash, a few that do not, and some a name may hold.
PROPERTY_CHARACTERS = ["\n", "\r", "'", '"', "#", "$", "`", "\x00", "-", " ", ";", "\\", "\t", "\x7f", "é", "\u2028",
                       "%", "(", ")", "|", "&", "*", ".", "_"]


def sbatch_directives(script: str) -> tuple[list[str], list[str]]:
    """(the keys sbatch reads, in order: #SBATCH lines until the first line that is neither blank nor a
    comment; the keys of every line that starts with #SBATCH anywhere in the script)."""
    read, stopped = [], False
    lines = script.split("\n")[1:]  # after the shebang
    for line in lines:
        if line.startswith("#SBATCH"):
            if not stopped:
                read.append(line.split()[1].split("=")[0])
        elif line.strip() and not line.startswith("#"):
            stopped = True
    anywhere = [line.split()[1].split("=")[0] if len(line.split()) > 1 else line for line in lines if line.startswith("#SBATCH")]
    return read, anywhere


def _scripts(cli, *args: str) -> tuple[int, str, str]:
    shown = cli(*args)
    return shown.code, shown.out, shown.err


def _values(base: str, character: str) -> list[str]:
    return [f"{character}{base}", f"{base[:2]}{character}{base[2:]}", f"{base}{character}"]


def _names(key: str) -> list[str]:
    """How a refusal may name a profile key: the key, its option, or today's key for a legacy one."""
    from harness.cluster.slurm.profile import LEGACY

    keys = [key, LEGACY.get(key, key)]
    return [*keys, *({"gpu_partition": "--partition"}.get(k, f"--{k.replace('_', '-')}") for k in keys)]


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


# Each target and a value it accepts; the characters go in front of it, inside it and after it.
TARGETS = {"--account": "proj", "--qos": "proj", "--reservation": "proj", "--constraint": "proj", "--exclude": "proj",
           "--partition": "gpu", "--cpu-partition": "compute", "--gpu-type": "p100", "--gres": "gpu:p100:1",
           "--time": "90", "--mem": "4000M", "--sbatch": "comment=proj", "--name": "proj", "--results": "proj"}
PROFILE_KEYS = {"cpu_partition": "compute", "gpu_partition": "gpu", "gres": "gpu:p100:1", "mem": "4000M", "time": "90",
                "preprocess_mem": "4000M", "preprocess_time": "90", "account": "proj", "qos": "proj", "constraint": "proj",
                "exclude": "proj", "reservation": "proj", "cpus_per_task": 2, "preprocess_cpus": 2, "array_parallelism": 2,
                "max_array_size": 100, "signal_delay_s": 60, "setup": ["module load proj"], "sbatch": {"comment": "proj"},
                # legacy keys (profiles written before the settings followed sbatch)
                "gpu_type": "p100", "time_min": 90, "mem_gb": 4}
NAMES = {"--account", "--qos", "--reservation", "--partition", "--cpu-partition", "--gpu-type", "--name",
         "profile:account", "profile:qos", "profile:reservation", "profile:cpu_partition", "profile:gpu_partition",
         "profile:gpu_type"}


def _with(base: Any, value: str) -> Any:
    """The profile value base, with its text (or its one line, or its one option's value) replaced by value."""
    if isinstance(base, list):
        return [value]
    if isinstance(base, dict):
        return {"comment": value}
    return value


@pytest.mark.parametrize("target", [*TARGETS, *[f"profile:{key}" for key in PROFILE_KEYS]])
def test_a_name_never_changes_the_batch_scripts_directives(target, world, cli):
    """Each name option and profile key, fed each character in front, inside and at the end of a value it
    accepts: refused in one line that names it, or the scripts `sweep --dry-run` prints have the same
    #SBATCH keys, in the same order, all read by sbatch, as with the plain value."""

    results = world["T"] / "results"
    base = ("sweep", "--cluster", "slurm", "--dry-run", "--dataset", str(world["D"] / "good"), "--models", MODEL,
            "--image-size", "64")
    key = target.removeprefix("profile:")
    plain = TARGETS.get(target, PROFILE_KEYS.get(key))
    text = plain if isinstance(plain, str) else (plain[0] if isinstance(plain, list) else
                                                 plain["comment"] if isinstance(plain, dict) else str(plain))
    profiles = iter(range(10_000))

    def dry_run(value: Any) -> tuple[int, str, str]:
        if target == "--results":
            return _scripts(cli, *base, "--results", str(results / value))
        if target.startswith("profile:"):
            profile = world["T"] / f"p{next(profiles)}.toml"
            profile.parent.mkdir(exist_ok=True)
            profile.write_text(f"{key} = {_toml(value)}\n")
            return _scripts(cli, *base, "--results", str(results), "--profile", str(profile))
        if target == "--sbatch":
            value = f"comment={value}"
        return _scripts(cli, *base, "--results", str(results), f"{target}={value}")

    code, out, err = dry_run(plain)
    assert code == 0, err
    baseline = [sbatch_directives(s)[0] for s in out.split("#!/bin/bash")[1:]]
    accepted = []
    for character in PROPERTY_CHARACTERS:
        for value in _values(text, character):
            code, out, err = dry_run(value if isinstance(plain, str) or target == "--sbatch" else _with(plain, value))
            if code == 2:  # (a) refused, in one line naming what was refused
                assert err.startswith("error: ") and err.count("\n") == 1, repr(err)
                named = [target, *_names(key), *(["GPU type"] if key in ("gpu_type", "gres", "--gpu-type") else [])]
                assert any(name in err for name in named), err
            else:  # (b) accepted: the same directives, each read by sbatch
                assert code == 0, (value, err)
                scripts = out.split("#!/bin/bash")[1:]
                for script, expected in zip(scripts, baseline, strict=True):
                    read, anywhere = sbatch_directives(script)
                    assert read == expected and anywhere == expected, (repr(value), script)
                accepted.append(value)
    assert not [p for p in results.rglob("*") if p.is_file()], "a dry run wrote a file"
    if target in NAMES:  # a Slurm name or a sweep name: letters, digits, '.', '_', '-' (not in front), nothing else
        assert all(set(v) <= set(text + "._-") and not v.startswith("-") for v in accepted), accepted
    if target == "--results":  # a path: no space, no control character (it lands in batch script lines)
        assert accepted and not any(c.isspace() or not c.isprintable() for v in accepted for c in v), accepted


def test_the_code_snapshot_path_is_quoted_in_the_batch_script(tmp_path):
    """The one line of bash the harness adds to a batch script (PYTHONPATH to the sweep's code) keeps a
    results path with a space or a `$(...)` as one word."""
    import shlex

    from harness.cluster.slurm.backend import _executors, site_defaults
    from harness.cluster.slurm.profile import Profile
    from harness.store.paths import SweepPaths

    sweep = SweepPaths(tmp_path / "my results $(touch pwned)" / "s1")
    sweep.code.mkdir(parents=True)
    pre, train = _executors(sweep, site_defaults(recorded_site(), Profile()), 1)
    for executor in (pre, train):
        line = executor.parameters["setup"][-1]
        assert shlex.split(line)[1].startswith(f"PYTHONPATH={sweep.code}"), line


def test_harness_load_reads_files_nested_past_any_parser_as_damaged(template, tmp_path):
    """harness.load never raises on a damaged file, however deep it nests: the record is a DAMAGED row, the
    perflog line is skipped."""
    import harness

    results = tmp_path / "results"
    shutil.copytree(template / "results" / "nested-record", results / "nested-record")
    (results / "perflog.jsonl").write_text(NESTED + "\n")
    loaded = harness.load(results, "nested-record")
    assert loaded.runs["state"].tolist() == ["DAMAGED"] and "more than 32 deep" in loaded.runs["reason"][0]
    assert loaded.perflog.empty


# --- records (a reader of stdout that goes away) ---
@pytest.mark.parametrize("command", ["status done --format json | true", "leaderboard done --format csv | head -c 1"])
def test_a_reader_that_goes_away_ends_the_command_quietly(command, template, tmp_path):
    """`status --format json | true`: no BrokenPipeError traceback; the command ends with 0 (it wrote in
    time) or 141 (128 + SIGPIPE, as a writer killed by the signal), and writes nothing."""
    results = template / "results"
    before = snapshot(results)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    head, _, tail = command.partition(" | ")
    script = f"{sys.executable} -m harness {head} --results {results} | {tail} >/dev/null; echo $" + "{PIPESTATUS[0]} >&2"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=HUNG_S)
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] in ("0", "141"), done.stderr
    assert snapshot(results) == before


# --- a disk that is read-only or full (a real file system of each kind: tmpfs, mounted as root) ---
@contextlib.contextmanager
def mounted_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of that size at folder; the test is skipped, saying why, where this user cannot mount one."""
    folder.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], capture_output=True)


READ_ONLY_COMMANDS = {
    "report": ("report", "done"), "history-png": ("history", "--format", "png"),
    "resume": ("sweep", "--resume", "all-damaged"), "cancel-run": ("cancel", "running", "--runs", MODEL),
    "new-sweep": ("sweep", "--cluster", "local", "--dataset", "{D}/good", "--models", MODEL, "--image-size", "64"),
}


@pytest.mark.parametrize("name", READ_ONLY_COMMANDS)
def test_a_read_only_results_folder_is_one_line_and_nothing_written(name, world, cli):
    perflog_lines("2025-01-01T00:00:00+00:00")(world)
    with mounted_tmpfs(world["T"] / "ro", "200m") as mount:
        for part in ("done", "all-damaged", "running", "perflog.jsonl"):
            (shutil.copytree if (world["R"] / part).is_dir() else shutil.copy2)(world["R"] / part, mount / part)
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        before = snapshot(mount)
        shown = cli(*[fill(a, world) for a in READ_ONLY_COMMANDS[name]], "--results", str(mount))
        assert shown.code == 2 and "Traceback" not in shown.err, shown.err[-2000:]
        assert shown.err.count("\n") == 1 and "Read-only file system" in shown.err, shown.err
        assert snapshot(mount) == before


def test_a_full_disk_leaves_no_sweep_half_made(world, cli):
    """The code snapshot does not fit: the sweep's folder goes with it, and the same command says the same."""
    with mounted_tmpfs(world["T"] / "full", "64k") as mount:
        args = ("sweep", "--cluster", "local", "--dataset", fill("{D}/good", world), "--models", MODEL, "--image-size", "64",
                "--name", "full", "--results", str(mount / "results"))
        for _ in range(2):  # the second time: no "already exists", as the first left nothing
            shown = cli(*args)
            assert shown.code == 2 and shown.err.count("\n") == 1 and "No space left on device" in shown.err, shown.err
            assert not (mount / "results" / "full").exists()
