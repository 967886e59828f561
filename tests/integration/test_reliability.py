"""Bad input gets one clear line and writes nothing; faults on the cluster lose no result."""
import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch

from slurm_helpers import (
    job_of,
    latest_sweep,
    progress_epoch,
    sacct_rows,
    sh,
    submission,
    train_until,
    wait_for_result,
    wait_until,
)


def _one_line_error(result, *fragments: str) -> None:
    assert result.code == 2, (result.out, result.err)
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    for fragment in fragments:
        assert fragment in result.err


@pytest.mark.parametrize("args, fragments", [
    (["--models", "ResNet50,AlexNet"], ["unknown architecture 'AlexNet'", "ResNet50, VGG16"]),
    (["--name", "../escape"], ["must be a plain folder name"]),
    (["--name", "/tmp/absolute"], ["must be a plain folder name"]),
    (["--epochs", "0"], ["--epochs", "at least 1"]),
    (["--seeds", "-2"], ["--seeds"]),
    (["--image-size", "0"], ["--image-size"]),
    (["--batch-size", "-1"], ["--batch-size"]),
    (["--lr", "-0.1"], ["--lr"]),
    (["--dataset", "no/such/folder"], ["dataset folder /", "no/such/folder does not exist"]),
    (["--models", "InceptionV3", "--image-size", "64"], ["InceptionV3 needs --image-size of at least 75"]),
    (["--results", "/proc/harness-results"], ["cannot write the results folder"]),
    (["--account", "x\n#SBATCH --wrap=id"], ["--account", "is not valid"]),
])
def test_bad_sweep_input_is_one_line_and_writes_nothing(cli, tmp_path, monkeypatch, args, fragments):
    monkeypatch.chdir(tmp_path)
    result = cli("sweep", "--cluster", "local", "--results", tmp_path / "results", *args)
    _one_line_error(result, *fragments)
    assert not list((tmp_path / "results").glob("*/sweep.json"))
    assert not (tmp_path / "escape").exists()


@pytest.mark.usefixtures("slurm_cluster")  # the scripts hold the local cluster's partitions
def test_dry_run_prints_the_two_batch_scripts_and_writes_nothing(cli, tmp_path):
    shown = cli("sweep", "--dry-run", "--models", "MobileNetV2,ResNet50", "--time", "45", "--results", tmp_path / "results")
    assert shown.code == 0, shown.err
    preprocess, train = shown.out.split("#!/bin/bash")[1:]
    assert "#SBATCH --partition=compute" in preprocess
    for line in ("--partition=gpu", "--gres=gpu:p100:1", "--array=0-1%2", "--time=45", "--dependency='afterok:"):
        assert f"#SBATCH {line}" in train
    assert not (tmp_path / "results").exists()


@pytest.mark.usefixtures("slurm_cluster")
def test_a_sweep_waits_for_another_workflows_job(cli, tmp_path):
    shown = cli("sweep", "--dry-run", "--models", "MobileNetV2", "--sbatch", "dependency=afterok:123",
                "--results", tmp_path / "results")
    assert shown.code == 0, shown.err
    preprocess, train = shown.out.split("#!/bin/bash")[1:]
    assert "#SBATCH --dependency=afterok:123" in preprocess
    assert "#SBATCH --dependency='afterok:<preprocess job id>,afterok:123'" in train
    any_of = cli("sweep", "--dry-run", "--models", "MobileNetV2", "--sbatch", "dependency=afterok:1?afterok:2",
                 "--results", tmp_path / "results")
    assert "#SBATCH --dependency='afterok:<preprocess job id>'" in any_of.out.split("#!/bin/bash")[2]


def test_a_dataset_without_one_class_is_refused(cli, tmp_path, tiny_demo):
    dataset = tmp_path / "half"
    shutil.copytree(tiny_demo, dataset)
    manifest = pd.read_csv(dataset / "manifest.csv", keep_default_na=False)
    manifest[manifest["label"] == "real"].to_csv(dataset / "manifest.csv", index=False)
    _one_line_error(cli("sweep", "--cluster", "local", "--dataset", dataset, "--results", tmp_path / "r"), "no fake images")


def test_unknown_and_ambiguous_sweep_ids(cli, tmp_path, tiny_demo):
    results = tmp_path / "results"
    for name in ("run-a", "run-b"):
        (results / name).mkdir(parents=True)
        (results / name / "sweep.json").write_text(json.dumps({"sweep_id": name, "models": [], "runs": []}))
    _one_line_error(cli("status", "nope", "--results", results), "no sweep 'nope'", "run-a")
    _one_line_error(cli("leaderboard", "run", "--results", results), "ambiguous", "run-a, run-b")
    _one_line_error(cli("status", "--results", tmp_path / "empty"), "no sweep under")


def test_paths_typed_relative_are_read_from_the_working_folder_and_shown_whole(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _one_line_error(cli("status"), f"no sweep under {tmp_path / 'results'};")
    _one_line_error(cli("status", "--results", "../elsewhere"), f"no sweep under {tmp_path.parent / 'elsewhere'};")


def test_a_malformed_profile_is_one_line(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("gpu_partition = [unclosed\n")
    _one_line_error(cli("sweep", "--profile", bad, "--results", tmp_path / "r"), "not valid TOML")
    bad.write_text('gpu_partitions = "gpu"\n')
    _one_line_error(cli("sweep", "--profile", bad, "--results", tmp_path / "r"), "unknown keys gpu_partitions")
    bad.write_text("time = \"0\"\n")
    _one_line_error(cli("sweep", "--profile", bad, "--results", tmp_path / "r"), "at least one minute")


def test_the_preprocessing_step_skips_and_lists_an_image_that_no_longer_decodes(cli, tmp_path, tiny_demo):
    dataset = tmp_path / "damaged"
    shutil.copytree(tiny_demo, dataset)
    manifest = pd.read_csv(dataset / "manifest.csv", keep_default_na=False)
    victim = dataset / manifest[manifest["split"] == "train"]["path"].iloc[0]
    victim.write_bytes(victim.read_bytes()[:100])  # cut short after `data prepare` checked it
    result = cli("sweep", "--cluster", "local", "--dataset", dataset, "--models", "MobileNetV2", "--epochs", "1",
                 "--image-size", "32", "--results", tmp_path / "results", "--wait")
    assert result.code == 0, result.err
    status = cli("status", "--format", "json", "--meta", "--results", tmp_path / "results").json()
    assert status["preprocess"]["skipped"] == 1 and status["rows"][0]["state"] == "COMPLETED"
    logs = "".join(p.read_text() for p in (latest_sweep(tmp_path / "results") / "logs").glob("*.log"))
    assert f"skipped {victim}" in logs


def test_loading_a_checkpoint_never_runs_code(tmp_path):
    """A pickle that would execute code on load is refused (torch.load with weights_only=True)."""
    from harness.errors import UserError
    from harness.zoo.models import build_model

    class Exploit:
        def __reduce__(self):
            return (subprocess.call, (["touch", str(tmp_path / "pwned")],))

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": Exploit()}, path)
    with pytest.raises(UserError, match="cannot be read"):
        build_model("MobileNetV2", weights=str(path))
    assert not (tmp_path / "pwned").exists()


# --- faults on the local Slurm cluster ---

@pytest.mark.usefixtures("slurm_cluster")
def test_a_cancelled_job_keeps_the_other_rows_and_resume_submits_only_it(cli, results, small_demo):
    sweep = cli("sweep", "--partition", "gpu", "--time", "45", "--dataset", small_demo, "--models", "MobileNetV2,ResNet50",
                "--epochs", "5", "--image-size", "32", "--results", results, "--name", "one-cancelled")
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)
    jobs = submission(folder)["tasks"]
    wait_until(lambda: progress_epoch(folder, "ResNet50-s0") >= 2, 300, "ResNet50 to checkpoint an epoch",
               job=job_of(folder, "ResNet50-s0"), logs=folder / "logs")
    sh("scancel", jobs["ResNet50-s0"])
    wait_for_result(folder, "MobileNetV2-s0", "MobileNetV2 to finish")
    wait_until(lambda: any(r["State"].startswith("CANCELLED") for r in sacct_rows(jobs["ResNet50-s0"])), 60, "sacct to say CANCELLED")
    # Slurm shows the job COMPLETING until its processes are gone (KillWait): status says so meanwhile
    wait_until(lambda: jobs["ResNet50-s0"] not in sh("squeue", "-h", "-r", "-o", "%i").split(), 60, "the job to leave the queue")
    status = {r["run_id"]: r for r in cli("status", "--format", "json", "--results", results).json()}
    assert status["ResNet50-s0"]["state"] == "CANCELLED" and status["MobileNetV2-s0"]["state"] == "COMPLETED"
    board = {r["model"]: r for r in cli("leaderboard", "--format", "json", "--results", results).json()}
    assert board["MobileNetV2"]["status"] == "COMPLETED" and board["MobileNetV2"]["accuracy"] is not None
    # the leaderboard reads what is on disk and asks no scheduler: a job cancelled by scancel left no record
    assert board["ResNet50"]["status"] == "1 no result yet" and board["ResNet50"]["accuracy"] is None

    resumed = cli("sweep", "--resume", folder.name, "--results", results)  # on Slurm again, as it was submitted
    assert resumed.code == 0, resumed.err
    assert list(submission(folder)["tasks"]) == ["ResNet50-s0"]  # only the run without a result
    # sacct lists a job before it fills in its partition: wait for the row that has it
    wait_until(lambda: any(row["Partition"] for row in sacct_rows(submission(folder)["tasks"]["ResNet50-s0"])), 60,
               "sacct to list the resubmitted job with its partition")
    resubmitted = sacct_rows(submission(folder)["tasks"]["ResNet50-s0"])
    assert resubmitted[0]["Partition"] == "gpu" and resubmitted[0]["Timelimit"] == "00:45:00"  # the sweep's settings
    record = wait_for_result(folder, "ResNet50-s0", "the resumed run")
    assert record["status"] == "COMPLETED"
    assert record["requeues"] >= 1  # it went on from its checkpoint


@pytest.mark.usefixtures("other_site")  # its nodes are taken down alone: the other cluster's tests go on
def test_a_node_taken_down_requeues_the_job_which_resumes_on_another_node(cli, results, small_demo):
    folder, job = train_until(cli, results, 14, 3, dataset=small_demo, name="node-down", partition="a100")
    node = sacct_rows(job)[0]["NodeList"]
    try:
        sh("scontrol", "update", f"nodename={node}", "state=down", "reason=harness-test")
        record = wait_for_result(folder, "MobileNetV2-s0", "the requeued run")
    finally:
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], capture_output=True)
    assert record["status"] == "COMPLETED" and record["requeues"] >= 1
    assert record["environment"]["node"] != node
    assert pd.read_csv(folder / "runs" / "MobileNetV2-s0" / "history.csv")["epoch"].tolist() == list(range(1, 15))


@pytest.mark.usefixtures("slurm_cluster")
def test_a_checkpoint_cut_short_is_set_aside_and_the_run_resumes(cli, results, small_demo):
    # 40 epochs, requeued at the 4th: a small demo's epoch takes a fraction of a second, and with 12 the run
    # could finish (its checkpoints removed) between the epoch seen and the requeue
    folder, job = train_until(cli, results, 40, 4, dataset=small_demo, name="checkpoint-cut")
    sh("scontrol", "requeue", job)  # Slurm holds the requeued job a while: time to damage its checkpoint
    wait_until(lambda: sh("squeue", "-h", "-j", job, "-o", "%T").strip() == "PENDING", 120, "the job to stop")
    run = folder / "runs" / "MobileNetV2-s0"
    # state.pt, or where the kill fell between the checkpoint's two renames, the whole state.prev.pt it left
    newest = next((path for path in (run / "state.pt", run / "state.prev.pt") if path.exists()), None)
    assert newest is not None, f"no checkpoint to cut: {sorted(p.name for p in run.iterdir())}"
    (run / "state.pt").write_bytes(newest.read_bytes()[:1000])
    assert wait_for_result(folder, "MobileNetV2-s0", "the resumed run")["status"] == "COMPLETED"
    assert list((folder / "runs" / "MobileNetV2-s0").glob("state.pt.damaged-*"))
    logs = "".join(p.read_text() for p in (folder / "logs").glob("*_log.out"))
    assert "cannot be read" in logs and "resumed from state.prev.pt" in logs


@pytest.mark.usefixtures("slurm_cluster")
def test_two_sweeps_at_once_into_one_results_folder(results, tiny_demo):
    command = [sys.executable, "-m", "harness", "sweep", "--partition", "gpu", "--dataset", str(tiny_demo),
               "--models", "MobileNetV2", "--epochs", "1", "--image-size", "32", "--results", str(results), "--wait"]
    both = [subprocess.Popen(command + ["--name", name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name in ("first", "second")]
    outcomes = [p.communicate(timeout=300) for p in both]
    assert [p.returncode for p in both] == [0, 0], outcomes
    for name in ("first", "second"):
        record = json.loads((results / name / "runs" / "MobileNetV2-s0" / "result.json").read_text())
        assert record["status"] == "COMPLETED" and record["sweep_id"] == name
    same_name = subprocess.run(command[:-1] + ["--name", "first"], capture_output=True, text=True)
    assert same_name.returncode == 2 and "already exists" in same_name.stderr
    assert json.loads((results / "first" / "runs" / "MobileNetV2-s0" / "result.json").read_text())["sweep_id"] == "first"


def test_cluster_slurm_where_no_slurm_answers(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))  # a machine without Slurm's commands
    result = cli("sweep", "--cluster", "slurm", "--results", tmp_path / "results")
    _one_line_error(result, "--cluster slurm, but no Slurm answers here", "sinfo is not on PATH")
    assert not list((tmp_path / "results").glob("*/sweep.json"))
    _one_line_error(cli("sweep", "--partition", "gpu", "--results", tmp_path / "results"), "no Slurm answers")
