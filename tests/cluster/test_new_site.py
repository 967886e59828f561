"""A Slurm site the harness has never seen, large sweeps, status that never guesses, cancel and logs,
and a checkout edited while its sweep waits: all on the local cluster."""
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from slurm_helpers import job_of, latest_sweep, progress_epoch, result, sh, submission, wait_for_result, wait_until

pytestmark = pytest.mark.usefixtures("slurm_cluster")
REPO = Path(__file__).resolve().parents[2]


def _states(cli, results) -> list[str]:
    return [run["state"] for run in cli("status", "--format", "json", "--results", results).json()]


def test_a_site_never_seen_with_a_sweep_larger_than_its_arrays(cli, results, tiny_demo, other_site):
    shown = cli("cluster", "--format", "toml")
    assert shown.code == 0 and 'gpu_partition = "a100"' in shown.out and 'gres = "gpu:a100:1"' in shown.out
    assert 'cpu_partition = "batch"' in shown.out and "MaxArraySize is 5" in shown.out
    rows = {row["partition"]: row for row in cli("cluster", "--format", "json").json()}  # the partitions as rows
    assert rows["a100"]["gpu_types"] == ["a100"] and rows["batch"]["gpus_per_node"] == 0
    described = cli("cluster", "--format", "json", "--meta").json()
    assert described["max_array_size"] == 5 and described["settings"]["gpu_partition"] == "a100"
    # six runs, at most two at once: more than one array (MaxArraySize 5) and tasks waiting behind the throttle
    sweep = cli("sweep", "--partition", "a100", "--dataset", tiny_demo, "--models", "MobileNetV2", "--seeds", "6",
                "--epochs", "1", "--image-size", "32", "--array-parallelism", "2", "--results", results, "--name", "six-seeds")
    assert sweep.code == 0, sweep.err
    assert sweep.out.strip() == latest_sweep(results).name  # the sweep id alone on stdout
    folder = latest_sweep(results)
    arrays = {job.split("_")[0] for job in submission(folder)["tasks"].values()}
    assert len(arrays) == 2
    seen: set[str] = set()

    def finished() -> bool:
        states = _states(cli, results)
        seen.update(states)
        return all(s == "COMPLETED" for s in states)

    wait_until(finished, 900, "six runs on the a100 partition")
    assert "UNKNOWN" not in seen and "PENDING" in seen, seen
    for line in sh("sacct", "-X", "-P", "-n", "-j", ",".join(arrays), "-o", "JobID,Partition,AllocTRES").splitlines():
        job, partition, tres = line.split("|")
        assert partition == "a100" and "gres/gpu" in tres, line
    # A scaling sweep over both nodes: 1 and 2 ranks on one node, 4 on two (two a node, meeting at the first).
    scaling = cli("sweep", "--partition", "a100", "--dataset", tiny_demo, "--models", "MobileNetV2", "--scaling", "1,2,4",
                  "--nodes-per-run", "2", "--epochs", "1", "--image-size", "32", "--results", results, "--name", "scaling",
                  "--wait")
    assert scaling.code == 0, scaling.err
    folder = latest_sweep(results)
    placed = {size: result(folder, f"MobileNetV2-x{size}-s0")["distributed"] for size in (1, 2, 4)}
    assert {size: (d["world_size"], d["nodes"]) for size, d in placed.items()} == {1: (1, 1), 2: (2, 1), 4: (4, 2)}
    tres = sh("sacct", "-X", "-P", "-n", "-j", submission(folder)["tasks"]["MobileNetV2-x4-s0"], "-o", "AllocTRES")
    assert "gres/gpu=4" in tres and "node=2" in tres, tres
    # The sweep as a whole, from sacct: its makespan, and the GPU-hours it held against what the makespan offered
    def read_span() -> dict:
        return cli("status", "--format", "json", "--meta", "--results", results).json()["span"]

    wait_until(lambda: read_span()["ended"], 60, "the jobs to end in sacct (a run's record comes before its job's end)")
    span = read_span()
    jobs = [submission(folder)["preprocess_job"], *submission(folder)["tasks"].values()]
    rows = [line.split("|") for line in sh("sacct", "-X", "-P", "-n", "-j", ",".join(jobs), "-o", "Start,End,AllocTRES").splitlines()]
    held = [(datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() *
            int(dict(kv.split("=") for kv in tres.split(","))["gres/gpu"]) for start, end, tres in rows if "gres/gpu" in tres]
    assert span["jobs"] == 4 and span["peak_gpus"] >= 4, span
    assert span["gpu_hours"] == pytest.approx(sum(held) / 3600, abs=2 * len(held) / 3600)  # sacct's times are to the second
    assert 0 < span["allocation_use"] <= 1 and min(span["queue_wait_s"].values()) >= 0


def test_status_watch_cancel_and_logs(cli, results, tiny_demo):
    sweep = cli("sweep", "--partition", "gpu", "--dataset", tiny_demo, "--models", "MobileNetV2,ResNet50",
                "--epochs", "30", "--image-size", "32", "--results", results, "--name", "watched")
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)
    wait_until(lambda: progress_epoch(folder, "MobileNetV2-s0") >= 2, 300, "a first epoch done",
               job=job_of(folder, "MobileNetV2-s0"), logs=folder / "logs")
    log = cli("logs", f"{folder.name}/MobileNetV2", "--results", results)
    assert log.code == 0 and "MobileNetV2 epoch 1/30" in log.out
    cancelled = cli("cancel", folder.name, "--results", results)
    assert cancelled.code == 0 and "cancelled 2 runs" in cancelled.err
    wait_until(lambda: set(_states(cli, results)) == {"CANCELLED"}, 120, "both runs to read CANCELLED")
    watch = subprocess.run([sys.executable, "-m", "harness", "status", folder.name, "--watch", "--results", str(results)],
                           capture_output=True, text=True, timeout=120)
    assert watch.returncode == 1 and "2 runs did not complete" in watch.stderr  # final, not all completed


def test_a_checkout_edited_while_its_sweep_waits_changes_nothing(results, tiny_demo, tmp_path):
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "harness", checkout / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    held = sh("sbatch", "--parsable", "--hold", "-p", "compute", "-J", "held-for-a-test", "-o", "/dev/null", "--wrap", "true").strip()
    try:  # the sweep waits in the queue behind a held job while its checkout is edited
        done = subprocess.run([sys.executable, "-m", "harness", "sweep", "--partition", "gpu", "--dataset", str(tiny_demo),
                               "--models", "MobileNetV2", "--epochs", "1", "--image-size", "32", "--name", "edited-checkout",
                               "--sbatch", f"dependency=afterok:{held}", "--results", str(results)],
                              capture_output=True, text=True, env=env, cwd=checkout, timeout=120)
        assert done.returncode == 0, done.stderr
        train = checkout / "harness" / "training" / "train.py"
        train.write_text(train.read_text().replace('    """Train, keep the best epoch', '    raise RuntimeError("edited")\n    """Train'))
    finally:
        sh("scontrol", "release", held)
    folder = latest_sweep(results)
    assert wait_for_result(folder, "MobileNetV2-s0", "the run")["status"] == "COMPLETED"  # the code as it was at submission
    code = json.loads((folder / "sweep.json").read_text())["code"]
    assert code["snapshot"] == str(folder / "code") and "git_dirty" in code
