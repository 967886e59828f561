"""Small helpers for tests that drive the local Slurm cluster.

A wait for a job fails fast: it ends as soon as the job it waits on has left the queue without what
was awaited, and whenever it fails it says what it waited for and what the scheduler said of the job
(its state, its reason, the last line of its log)."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from harness.store.paths import list_sweeps

POLL_S = 1.0


def sh(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True).stdout


def job_in_queue(job: str) -> str | None:
    """The job's state and reason while Slurm still holds it (queued, running, completing); None once it left."""
    done = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T|%r"], capture_output=True, text=True)
    line = done.stdout.strip().splitlines()
    return line[0] if done.returncode == 0 and line else None


def job_story(job: str, logs: Path | None = None) -> str:
    """What the scheduler says of a job, for a failure message: its state and reason (squeue while it is
    queued, else sacct), and the last line of its log where the sweep's log folder is given."""
    said = job_in_queue(job)
    if said is None:
        rows = sacct_rows(job)
        said = f"{rows[0]['State']} (left the queue)" if rows else "unknown to sacct"
    story = f"job {job}: {said}"
    for stream in ("err", "out"):
        path = (logs / f"{job}_0_log.{stream}") if logs else None
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()] if path and path.exists() else []
        if lines:
            return f"{story}; its {stream} log ends: {lines[-1][:300]}"
    return story


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, tick: Callable[[], None] = lambda: None,
               job: Callable[[], str | None] | None = None, logs: Path | None = None) -> None:
    """Poll predicate until it holds. job: the Slurm job the awaited state depends on (a function: a resume
    changes it): the wait fails at once when that job has left the queue and predicate still does not hold.
    logs: the sweep's log folder, for the job's last log line in the message."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        tick()
        if predicate():
            return
        current = job() if job else None
        if current and job_in_queue(current) is None and not predicate():  # looked again: it may have just finished
            raise AssertionError(f"gave up waiting for {what}: {job_story(current, logs)}")
        time.sleep(POLL_S)
    story = f"; {job_story(current, logs)}" if job and (current := job()) else ""
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}{story}")


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


def job_of(folder: Path, rid: str) -> Callable[[], str | None]:
    """The run's latest job (the preprocessing job's for rid 'preprocess'), read anew at each call."""
    def current() -> str | None:
        try:
            latest = submission(folder)
        except (OSError, ValueError, KeyError, IndexError):
            return None
        return latest.get("preprocess_job") if rid == "preprocess" else latest["tasks"].get(rid)
    return current


def wait_for_result(folder: Path, rid: str, what: str, timeout_s: float = 600) -> dict:
    """The run's record, once its job has written it (requeued jobs released at once); fails fast when the
    run's job leaves the queue without one."""
    wait_until(lambda: result(folder, rid) is not None, timeout_s, what, tick=release_held_jobs, job=job_of(folder, rid),
               logs=folder / "logs")
    return result(folder, rid)


def progress_epoch(folder: Path, rid: str) -> int:
    path = folder / "runs" / rid / "progress.json"
    try:
        return json.loads(path.read_text()).get("epoch") or 0
    except (OSError, ValueError):
        return 0


def result(folder: Path, rid: str) -> dict | None:
    path = folder / "runs" / rid / "result.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # not there yet, or read while being replaced
        return None


def train_until(cli, results: Path, epochs: int, until_epoch: int, *options: str, dataset: Path, name: str,
                partition: str = "gpu") -> tuple[Path, str]:
    """Submit a MobileNetV2 run, sweep `name`, to the cluster's partition (with the sweep options given) and
    wait until it trains epoch until_epoch; returns the sweep folder and the run's job id."""
    sweep = cli("sweep", "--partition", partition, "--dataset", dataset, "--models", "MobileNetV2", "--epochs", epochs,
                "--image-size", "32", "--name", name, *options, "--results", results)
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)
    rid = run_of(folder)
    wait_until(lambda: progress_epoch(folder, rid) >= until_epoch, 300, f"epoch {until_epoch}", job=job_of(folder, rid),
               logs=folder / "logs")
    return folder, submission(folder)["tasks"][rid]


def run_of(folder: Path) -> str:
    """The run id of a sweep of one run (MobileNetV2-s0; MobileNetV2-x2-s0 on two ranks)."""
    (rid,) = [run["run_id"] for run in json.loads((folder / "sweep.json").read_text())["runs"]]
    return rid


def as_another_user(command: list[str], home: Path) -> subprocess.CompletedProcess:
    """`python -m harness COMMAND...` run as user nobody with root's access to files (the venv and the results
    folder are open to it, as a shared results folder is to a group) but not root's right to signal another
    user's processes or cancel its jobs; skips where this cannot be (not root, or no setpriv)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv (util-linux) to run a command as another user")
    files = "+dac_override,+dac_read_search"
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", f"--inh-caps={files}",
                           f"--ambient-caps={files}", sys.executable, "-m", "harness", *command],
                          capture_output=True, text=True, env=env, timeout=120)
