"""The README's commands as a newcomer types them: from a fresh copy of the checkout, from the folder a
user would be in, with the default (relative) results folder."""
import json
import os
import shutil
import subprocess
import sys
import venv
from datetime import datetime
from pathlib import Path

import pytest

from slurm_helpers import sacct_rows

REPO = Path(__file__).resolve().parent.parent
EIGHT = ["ResNet50", "VGG16", "VGG19", "DenseNet121", "MobileNetV2", "Xception", "NASNetMobile", "InceptionV3"]
# Above chance on the demo's test split (photographs no run saw): the first command measured 71.7-92.5%
# accuracy and AUC 0.81-0.98 over the eight; chance is 0.5 for both.
MIN_TEST_ACCURACY = 0.65
TWO = ["MobileNetV2", "ResNet50"]
MIN_TEST_AUC = 0.75


def readme_command(prefix: str) -> str:
    """The README's line that starts with prefix, as .ci/run takes the test command."""
    lines = [line for line in (REPO / "README.md").read_text().splitlines() if line.startswith(prefix)]
    assert lines, f"no line starting with {prefix!r} in README.md"
    return lines[0]


def fresh_copy(target: Path) -> Path:
    """The checkout's tracked files as they stand (a clone, uncommitted edits included), nothing else."""
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, text=True, check=True)
    for name in filter(None, tracked.stdout.split("\0")):
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target


def completed_runs(results: Path) -> dict[str, dict]:
    (sweep,) = [p.parent for p in results.glob("*/sweep.json")]
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("runs/*/result.json"))]
    return {r["model"]: r for r in records if r["status"] == "COMPLETED"}


def test_the_first_command_from_a_fresh_clone_on_a_machine_without_slurm(tmp_path):
    command = readme_command("python -m pip install -e . && python -m harness sweep")
    clone = fresh_copy(tmp_path / "harness")
    # `python -m pip install -e .` goes into a virtual environment of its own; the dependencies come from
    # this one (the machine has no model hub, and PyPI's torch is minutes away)
    venv.create(tmp_path / "venv", system_site_packages=True, with_pip=True)
    env = {**os.environ, "PATH": f"{tmp_path / 'venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "SLURM_CONF": str(tmp_path / "no-slurm.conf")}  # no Slurm answers here: the sweep runs on this machine
    env.pop("PYTHONPATH", None)
    done = subprocess.run(["bash", "-c", f"set -euo pipefail; {command}"], cwd=clone, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = completed_runs(clone / "results")
    assert sorted(runs) == sorted(EIGHT), done.stderr[-3000:]
    for model, record in runs.items():
        assert record["test"]["accuracy"] >= MIN_TEST_ACCURACY and record["test"]["auc"] >= MIN_TEST_AUC, (model, record["test"])
    for model in EIGHT:  # the leaderboard, beside the paper's Table 2
        assert model in done.stdout


@pytest.mark.usefixtures("slurm_cluster")
def test_a_sweep_on_the_gpu_partition_typed_from_a_folder_outside_the_repository(tmp_path):
    """`sweep --partition gpu --wait` as the README's site guide shows it, for two architectures and one
    epoch: all eight take six minutes on the local cluster's two cores, and the first command's test
    above trains all eight."""
    where = tmp_path / "project"
    where.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    typed = [sys.executable, "-m", "harness", "sweep", "--partition", "gpu", "--models", ",".join(TWO), "--epochs", "1", "--wait"]
    done = subprocess.run(typed, cwd=where, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(completed_runs(where / "results")) == sorted(TWO)
    (sweep,) = [p.parent for p in (where / "results").glob("*/sweep.json")]
    jobs = json.loads((sweep / "jobs.json").read_text())["submissions"][-1]
    pre = sacct_rows(jobs["preprocess_job"])[0]
    assert pre["Partition"] == "compute" and pre["NodeList"].startswith("cpu") and pre["State"] == "COMPLETED"
    arrays = {job.split("_")[0] for job in jobs["tasks"].values()}
    assert len(arrays) == 1  # one job array for the runs: two sbatch calls in all
    tasks = sacct_rows(*arrays)
    assert len(tasks) == len(TWO)
    for task in tasks:
        assert task["Partition"] == "gpu" and task["NodeList"].startswith("gpu") and "gres/gpu=1" in task["AllocTRES"]
        assert datetime.fromisoformat(task["Start"]) >= datetime.fromisoformat(pre["End"])
    status = subprocess.run([sys.executable, "-m", "harness", "status", "--format", "json"], cwd=where, env=env,
                            capture_output=True, text=True, check=True)
    rows = json.loads(status.stdout)
    assert rows["preprocess"]["state"] == "COMPLETED"
    assert all(run["state"] == "COMPLETED" and run["node"].startswith("gpu") for run in rows["runs"])
