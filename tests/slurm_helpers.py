"""Small helpers for tests that drive the local Slurm cluster."""
import json
import subprocess
import time
from pathlib import Path
from typing import Callable

from harness.store.paths import list_sweeps


def sh(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True).stdout


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, tick: Callable[[], None] = lambda: None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        tick()
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def release_held_jobs() -> None:
    """Slurm holds a requeued job for a while (Reason=BeginTime); a test has no time to wait for it."""
    for line in sh("squeue", "-h", "-t", "PD", "-o", "%i|%r").splitlines():
        job, _, reason = line.partition("|")
        if reason == "BeginTime":
            subprocess.run(["scontrol", "update", f"jobid={job}", "starttime=now"], capture_output=True)


def sacct_rows(*job_ids: str) -> list[dict[str, str]]:
    fields = ["JobID", "State", "Partition", "NodeList", "Start", "End", "AllocTRES", "Timelimit"]
    out = sh("sacct", "-X", "-P", "-n", "-j", ",".join(job_ids), "-o", ",".join(fields))
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]


def latest_sweep(results: Path) -> Path:
    return list_sweeps(results)[-1].folder


def submission(folder: Path) -> dict:
    return json.loads((folder / "jobs.json").read_text())["submissions"][-1]


def progress_epoch(folder: Path, rid: str) -> int:
    path = folder / "runs" / rid / "progress.json"
    try:
        return json.loads(path.read_text()).get("epoch") or 0
    except (OSError, ValueError):
        return 0


def result(folder: Path, rid: str) -> dict | None:
    path = folder / "runs" / rid / "result.json"
    return json.loads(path.read_text()) if path.exists() else None


def train_until(cli, results: Path, epochs: int, until_epoch: int, *options: str) -> tuple[Path, str]:
    """Submit a MobileNetV2 run on the demo to the cluster (with the sweep options given) and wait until it
    trains epoch until_epoch; returns the sweep folder and the run's job id."""
    sweep = cli("sweep", "--partition", "gpu", "--dataset", "demo", "--models", "MobileNetV2", "--epochs", epochs,
                "--image-size", "32", *options, "--results", results)
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)
    rid = run_of(folder)
    wait_until(lambda: progress_epoch(folder, rid) >= until_epoch, 300, f"epoch {until_epoch}")
    return folder, submission(folder)["tasks"][rid]


def run_of(folder: Path) -> str:
    """The run id of a sweep of one run (MobileNetV2-s0; MobileNetV2-x2-s0 on two ranks)."""
    (rid,) = [run["run_id"] for run in json.loads((folder / "sweep.json").read_text())["runs"]]
    return rid
