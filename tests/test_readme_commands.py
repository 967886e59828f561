"""The README's commands as a newcomer types them: from a fresh copy of the checkout, from the folder a
user would be in, with the default (relative) results folder."""
import json
import os
import re
import shutil
import site
import subprocess
import sys
import venv
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import torch

from harness.data import DEMO_IMAGE_SIZE, DEMO_ROBUSTNESS_IMAGES
from harness.store.paths import list_sweeps

from docs_helpers import COMMAND, documented_lines
from perf_helpers import make_sweep, record
from slurm_helpers import sacct_rows

REPO = Path(__file__).resolve().parent.parent
EIGHT = ["ResNet50", "VGG16", "VGG19", "DenseNet121", "MobileNetV2", "Xception", "NASNetMobile", "InceptionV3"]
TWO = ["MobileNetV2", "ResNet50"]
UNIT_INTERVAL = ["accuracy", "loss", "precision", "recall", "f1", "auc"]
# Above chance on the demo's test split (photographs no run saw): the first command measured 68.8-91.0%
# accuracy and AUC 0.81-0.98 over the eight; chance is 0.5 for both.
MIN_TEST_ACCURACY = 0.65
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


def test_the_first_command_from_a_fresh_clone_on_a_machine_without_slurm(tmp_path, cli):
    command = readme_command("python -m pip install -e '.[demo]' && python -m harness sweep")
    clone = fresh_copy(tmp_path / "harness")
    # `python -m pip install -e '.[demo]'` goes into a virtual environment of its own, which sees this one's packages
    # (a .pth file): pip finds the dependencies installed, as on a machine that has them, and installs the
    # clone alone (a venv's system_site_packages would see the base interpreter's, not this environment's)
    venv.create(tmp_path / "venv", with_pip=True)
    (next((tmp_path / "venv" / "lib").glob("python3*")) / "site-packages" / "outer.pth").write_text("\n".join(site.getsitepackages()))
    # no Slurm answers here (conftest's fence stands in for its commands and refuses): the sweep asks sinfo
    # whether a cluster is there, and runs on this machine; the fence writes that question down apart
    env = {**os.environ, "PATH": f"{tmp_path / 'venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "SLURM_CONF": str(tmp_path / "no-slurm.conf"), "SLURM_FENCE_LOG": str(tmp_path / "slurm-calls")}
    for name in ("PYTHONPATH", "OMP_NUM_THREADS"):  # as a user's shell has them (conftest sets threads for tests)
        env.pop(name, None)
    done = subprocess.run(["bash", "-c", f"set -euo pipefail; {command}"], cwd=clone, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "slurm-calls").read_text().splitlines() == ["sinfo -h -o %R"]
    results = clone / "results"
    runs = completed_runs(results)
    assert sorted(runs) == sorted(EIGHT), done.stderr[-3000:]
    for model, result in runs.items():
        assert result["test"]["accuracy"] >= MIN_TEST_ACCURACY and result["test"]["auc"] >= MIN_TEST_AUC, (model, result["test"])
    for model in EIGHT:  # the leaderboard, beside the paper's Table 2
        assert model in done.stdout
    check_what_the_sweep_left(cli, results)
    # then what the README and docs/ show a user typing next, on this sweep
    lines = [(page, line) for page, line in documented_lines() if not asks_slurm(line)]
    assert len(lines) >= 8
    run_documented_lines(clone, env, lines, sweep=list_sweeps(results)[-1].folder.name)
    check_a_resume_dry_run(cli, results)


def check_what_the_sweep_left(cli, results: Path) -> None:
    """The first command's sweep as a user reads it afterwards: the leaderboard's every format, each
    record and the runs' own logs."""
    board = cli("leaderboard", "--format", "json", "--results", results).json()
    for row in board:
        for metric in UNIT_INTERVAL:
            assert 0 <= row[metric] <= 1, (row["model"], metric)
        assert row["train_images_per_s"] > 0 and row["infer_images_per_s"] > 0
        assert row["params"] > 0 and row["status"] == "COMPLETED"
        assert row["gpu_util_mean"] is None and "no NVIDIA GPU" in row["gpu_reason"]
    status = cli("status", "--format", "json", "--results", results).json()
    assert [run["state"] for run in status] == ["COMPLETED"] * 8
    folder = list_sweeps(results)[-1].folder
    record = json.loads((folder / "runs" / "ResNet50-s0" / "result.json").read_text())
    assert record["schema_version"] == 1 and record["config"]["image_size"] == DEMO_IMAGE_SIZE and record["config"]["epochs"] == 5
    assert record["test"]["confusion_matrix"] and sum(map(sum, record["test"]["confusion_matrix"])) == record["test"]["count"]
    # the perturbed passes score DEMO_ROBUSTNESS_IMAGES of the demo's test images, as many of each class
    assert record["config"]["robustness_images"] == DEMO_ROBUSTNESS_IMAGES < record["test"]["count"]
    for metrics in record["robustness"].values():
        assert metrics["count"] == DEMO_ROBUSTNESS_IMAGES and sum(map(sum, metrics["confusion_matrix"])) == DEMO_ROBUSTNESS_IMAGES
    assert record["memory"]["peak_gpu_memory_bytes"] is None and record["memory"]["peak_gpu_memory_reason"]
    assert record["environment"]["torch"] == torch.__version__
    # one pool of two workers shared the runs: each run trained once, its output in its own log
    tasks = json.loads((folder / "jobs.json").read_text())["submissions"][0]["tasks"]
    assert len(set(tasks.values())) == 1 and len(tasks["ResNet50-s0"].split("+")) == 2
    for model, other in (("ResNet50", "MobileNetV2"), ("MobileNetV2", "ResNet50")):
        assert json.loads((folder / "runs" / f"{model}-s0" / "result.json").read_text())["requeues"] == 0
        log = cli("logs", f"{folder.name}/{model}-s0", "--results", results)
        assert f"{model} epoch 5/5" in log.out and f"{other} epoch" not in log.out, log.err
    history = pd.read_csv(folder / "runs" / "ResNet50-s0" / "history.csv")
    assert list(history.columns) == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]
    assert (folder / "runs" / "ResNet50-s0" / "best.pt").is_file() and (folder / "runs" / "ResNet50-s0" / "test_scores.npy").is_file()
    assert not list(folder.glob("runs/*/state*")), "a completed run keeps no resume checkpoint without --keep-checkpoints"
    csv = cli("leaderboard", "--format", "csv", "--results", results)
    assert csv.code == 0 and csv.out.startswith("model,")
    compared = {row["model"]: row for row in cli("leaderboard", "--format", "json", "--compare", "paper", "--results", results).json()}
    assert (compared["ResNet50"]["paper_accuracy"], compared["MobileNetV2"]["paper_accuracy"]) == (0.9934, 0.74)
    markdown = cli("leaderboard", "--format", "markdown", "--results", results)
    assert markdown.code == 0 and "| MobileNetV2 |" in markdown.out


def check_a_resume_dry_run(cli, results: Path) -> None:
    """A resume's dry run shows what would run: the runs without a result, on the sweep's own cluster."""
    folder = list_sweeps(results)[-1].folder
    (folder / "runs" / "MobileNetV2-s0" / "result.json").unlink()
    submissions = json.loads((folder / "jobs.json").read_text())["submissions"]
    shown = cli("sweep", "--resume", folder.name, "--dry-run", "--force", "--results", results)
    assert shown.code == 0 and "harness.jobs" in shown.out and "MobileNetV2-s0" in shown.out, shown.err
    assert "ResNet50-s0" not in shown.out
    assert json.loads((folder / "jobs.json").read_text())["submissions"] == submissions


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
    status = subprocess.run([sys.executable, "-m", "harness", "status", "--format", "json", "--meta"], cwd=where, env=env,
                            capture_output=True, text=True, check=True)
    rows = json.loads(status.stdout)
    assert rows["preprocess"]["state"] == "COMPLETED"
    assert all(run["state"] == "COMPLETED" and run["node"].startswith("gpu") for run in rows["rows"])


# The options whose value is a file or folder the command reads: a line that names one missing here (a site's
# /shared/faces) runs with --help.
INPUTS = ("--dataset", "--real", "--fake", "--groups", "--results", "--references", "--profile")


def asks_slurm(line: str) -> bool:
    """A line with a sweep (it asks sinfo whether a cluster is there) or a look at the cluster."""
    return any(match.group(1).split()[0] in ("sweep", "cluster") for match in COMMAND.finditer(line))


def as_run_here(line: str, cwd: Path, sweep: str) -> str:
    """The documented line, each harness command in it as it runs here: as typed; with --dry-run where it would
    submit work; with --help where it reads a file that is not here. SWEEP stands for the sweep's id."""
    def here(match: re.Match) -> str:
        argv = [part for word in match.group(1).split() for part in word.split("=", 1)]  # --dataset=DIR as --dataset DIR
        values = dict(zip(argv, (value.strip("'\"") for value in argv[1:])))
        if any(option in values and not (cwd / values[option]).exists() for option in INPUTS):
            return f"{match.group(0)} --help"
        if argv[0] == "sweep" and not {"--check", "--dry-run"} & set(argv):
            return f"{match.group(0)} --dry-run"
        return match.group(0)

    return COMMAND.sub(here, re.sub(r"\$?SWEEP\b", sweep, line))


def run_documented_lines(cwd: Path, env: dict[str, str], lines: list[tuple[str, str]], sweep: str) -> None:
    """The lines in a shell, in the page's order, from cwd (a copy of the checkout), as a user types them (the
    `harness` console script on PATH). Each ends as the exit-code table of docs/commands.md says a command
    that ran does: 0, 1 (a regression, a run not completed) or 3 (nothing comparable), never 2 (a usage error
    or a refused input), and with no traceback."""
    for page, line in lines:
        typed = as_run_here(line, cwd, sweep)
        done = subprocess.run(["bash", "-c", f"set -o pipefail; {typed}"], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode in (0, 1, 3) and "Traceback" not in done.stderr, (page, typed, done.returncode, done.stderr[-2000:])


@pytest.mark.usefixtures("slurm_cluster")
def test_every_command_line_of_the_documentation_that_asks_slurm_runs_on_the_local_cluster(tmp_path):
    """The sweeps and looks at the cluster the README and docs/ show, beside a finished sweep (the first command's
    test runs the other lines; tests/unit/test_docs.py holds every one to the parser)."""
    clone = fresh_copy(tmp_path / "harness")
    # a scaling sweep finished on one and two ranks: what `sweep --scaling ... && leaderboard --compare dle` reads
    make_sweep(clone / "results", "s1", [record("ResNet50", sweep="s1", run_id=f"ResNet50-x{ranks}-s{seed}", seed=seed,
                                                train_ips=100.0 * ranks, distributed={"world_size": ranks, "nodes": 1})
                                         for ranks in (1, 2) for seed in (0, 1)])
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    lines = [(page, line) for page, line in documented_lines() if asks_slurm(line)]
    assert len(lines) >= 6
    run_documented_lines(clone, env, lines, sweep="s1")
