"""Faults on the local Slurm cluster: a preprocessing job killed mid-build, a resume while a run is still
running, a truncated result.json. Each ends with nothing hung, nothing run twice, nothing lost."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slurm_helpers import (
    as_another_user,
    job_in_queue,
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

pytestmark = pytest.mark.usefixtures("slurm_cluster")
RID = "MobileNetV2-s0"


def _preprocess_progress(folder: Path) -> dict:
    try:
        return json.loads((folder / "preprocess" / "progress.json").read_text())
    except (OSError, ValueError):
        return {}


def _queued(job_ids: set[str]) -> set[str]:
    return set(sh("squeue", "-h", "-o", "%i").split()) & job_ids


# The cache lock was inherited by the pool workers, and the second build waited for ever: the timeout
# below turns such a hang into a failure.
def test_a_preprocessing_job_killed_mid_build_does_not_block_the_next_sweep(cli, results, tmp_path):
    from harness.data.demo import make_demo

    dataset = tmp_path / "large-demo"  # enough images, resized up to 224 px, that the kill lands inside the build
    make_demo(dataset, per_class=200, size=128, seed=1)
    args = ("--partition", "gpu", "--dataset", dataset, "--models", "MobileNetV2", "--epochs", "1", "--image-size", "224",
            "--results", results)
    first = cli("sweep", *args, "--name", "killed")
    assert first.code == 0, first.err
    folder = results / "killed"
    pre = submission(folder)["preprocess_job"]
    deadline = time.monotonic() + 300
    while not 0 < _preprocess_progress(folder).get("done", 0) < _preprocess_progress(folder).get("total", 0):
        assert time.monotonic() < deadline, "the preprocessing job did not start building the cache"
        time.sleep(0.1)
    # what the OOM killer or a time limit does: SIGKILL to every process of the job, mid-build
    try:
        sh("scancel", "--signal=KILL", "--full", pre)
        wait_until(lambda: sacct_rows(pre) and sacct_rows(pre)[0]["State"] not in ("RUNNING", "PENDING", "COMPLETING"), 120,
                   "the killed preprocessing job to end")
        assert sacct_rows(pre)[0]["State"] != "COMPLETED"
    finally:
        subprocess.run(["scancel", *{j.split("_")[0] for j in submission(folder)["tasks"].values()}], capture_output=True)

    second = cli("sweep", *args, "--name", "after-kill")
    assert second.code == 0, second.err
    again = results / "after-kill"
    # the second sweep's own build of the same cache completes (a hang would mean a lock left held): that
    # is what the kill could have blocked; its run at 224 px is not needed, and is cancelled
    wait_until(lambda: _preprocess_progress(again).get("state") == "done", 300, "the second sweep's preprocessing",
               job=job_of(again, "preprocess"), logs=again / "logs")
    assert cli("cancel", "after-kill", "--results", results).code == 0
    assert not list((results / "cache").glob(".*.tmp-*")), "the killed build's temporary folder was not cleaned"
    status = cli("status", "after-kill", "--format", "json", "--meta", "--results", results).json()
    assert status["preprocess"]["state"] == "COMPLETED" and status["rows"][0]["state"] == "CANCELLED"


def test_resume_while_a_run_is_running_does_not_start_a_second_copy(cli, results, small_demo):
    epochs = 10
    folder, job = train_until(cli, results, epochs, 2, dataset=small_demo, name="resumed-while-running")
    submissions = json.loads((folder / "jobs.json").read_text())["submissions"]
    status = cli("status", folder.name, "--format", "json", "--results", results).json()[0]
    assert status["state"] == "RUNNING" and status["job_id"] == job

    resumed = cli("sweep", "--resume", folder.name, "--results", results)
    assert resumed.code == 0, resumed.err
    assert f"{RID} is RUNNING (job {job}): not resubmitted (--force to)" in resumed.err
    assert "no run to resubmit" in resumed.err
    assert json.loads((folder / "jobs.json").read_text())["submissions"] == submissions  # nothing submitted
    assert not list((folder / "runs" / RID).glob("result.*.previous.json"))
    names = sh("squeue", "-h", "-o", "%j").split()
    assert names.count(f"{folder.name}-train") == 1  # one copy of the run in the queue

    record = wait_for_result(folder, RID, "the run to finish")
    assert record["status"] == "COMPLETED" and record["epochs_completed"] == epochs
    history = (folder / "runs" / RID / "history.csv").read_text().splitlines()[1:]
    assert [int(line.split(",")[0]) for line in history] == list(range(1, epochs + 1))  # one writer: no epoch twice
    logs = "".join(p.read_text() for p in (folder / "logs").glob("*_log.*"))
    assert "is being written by another worker" not in logs


def test_a_truncated_result_is_damaged_in_status_and_rerun_by_resume(cli, results, small_demo):
    sweep = cli("sweep", "--partition", "gpu", "--dataset", small_demo, "--models", "MobileNetV2", "--epochs", "2",
                "--image-size", "32", "--results", results, "--name", "truncated")
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)
    wait_for_result(folder, RID, "the run to finish")
    first_job = submission(folder)["tasks"][RID]
    path = folder / "runs" / RID / "result.json"
    text = path.read_text()
    path.write_text(text[: len(text) // 2])  # a write cut short by a full disk, an edit

    status = cli("status", folder.name, "--format", "json", "--results", results)
    assert status.code == 0, status.err
    run = status.json()[0]
    assert run["state"] == "DAMAGED" and "not whole JSON" in run["reason"] and "--resume" in run["reason"]
    board = cli("leaderboard", folder.name, "--format", "json", "--results", results)
    assert board.code == 0 and board.json()[0]["status"] == "1 DAMAGED", board.err
    image = next(small_demo.rglob("*.png"))
    predict = cli("predict", "--run", f"{folder.name}/MobileNetV2", image, "--results", results)
    assert predict.code == 2 and "damaged" in predict.err and predict.err.count("\n") == 1, predict.err

    resumed = cli("sweep", "--resume", folder.name, "--results", results)
    assert resumed.code == 0, resumed.err
    assert list(submission(folder)["tasks"]) == [RID] and submission(folder)["tasks"][RID] != first_job
    assert list((folder / "runs" / RID).glob("result.*.previous.json"))  # the damaged record kept beside
    assert wait_for_result(folder, RID, "the rerun")["status"] == "COMPLETED"
    time.sleep(1)
    run = cli("status", folder.name, "--format", "json", "--results", results).json()[0]
    assert run["state"] == "COMPLETED"
    assert progress_epoch(folder, RID) == 2
    # the job ends after its result is written, not with it: wait for it (the bound only catches a hang)
    wait_until(lambda: not _queued({submission(folder)["tasks"][RID]}), 120, "the rerun's job to leave the queue")


def test_cancel_signals_only_the_sweeps_own_jobs(tmp_path):
    """A job id in jobs.json that is another job's (reused, or the file edited) is not cancelled: Slurm
    signals a listed id only where its job name is the sweep's."""
    from harness.cluster.slurm.backend import SlurmBackend, job_names
    from harness.store.paths import SweepPaths

    sweep = SweepPaths(tmp_path / "mine")
    foreign = sh("sbatch", "--parsable", "-p", "compute", "-J", "someone-elses", "--wrap", "sleep 300").strip()
    own = sh("sbatch", "--parsable", "-p", "compute", "-J", job_names(sweep)[1], "--wrap", "sleep 300").strip()
    try:
        SlurmBackend().cancel(sweep, [foreign, own])
        wait_until(lambda: _queued({own}) == set(), 60, "the sweep's own job to leave the queue")
        assert _queued({foreign}) == {foreign}
    finally:
        subprocess.run(["scancel", foreign, own], capture_output=True)


def test_a_user_who_may_not_cancel_the_jobs_is_told_so_and_cancels_nothing(cli, results, tiny_demo, tmp_path):
    """A shared results folder: another user, who may write the sweep's files but not cancel its jobs, gets one
    line and exit 2, and no run is marked CANCELLED (before: each was, scancel refused, and the jobs went on)."""
    sweep = cli("sweep", "--partition", "gpu", "--dataset", tiny_demo, "--models", "MobileNetV2", "--epochs", "50",
                "--image-size", "32", "--results", results)
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)
    job = submission(folder)["tasks"][RID]
    try:
        cancel = as_another_user(["cancel", folder.name, "--results", str(results)], tmp_path)
        assert cancel.returncode == 2 and cancel.stderr.count("\n") == 1, cancel.stderr
        assert "is user root's, which user nobody may not cancel: nothing cancelled" in cancel.stderr, cancel.stderr
        assert not (folder / "runs" / RID / "result.json").exists()
        assert _queued({job}) == {job}
    finally:
        assert cli("cancel", folder.name, "--results", results).code == 0


def test_a_forced_resume_of_a_running_run_keeps_it_shown_and_logged_under_the_job_that_trains_it(cli, results, small_demo):
    """`sweep --resume --force` while the run trains: the new task waits behind its own preprocessing job, then
    finds the run held and stops. Meanwhile and after, status shows the run RUNNING under the job that trains it,
    and logs is that job's (before: PENDING for the waiting copy, then FAILED, and the stopped copy's log)."""
    folder, job = train_until(cli, results, 200, 1, dataset=small_demo, name="forced-while-running")
    try:
        assert cli("sweep", "--resume", folder.name, "--force", "--results", results).code == 0
        copy = submission(folder)["tasks"][RID]
        assert copy != job
        row = cli("status", folder.name, "--format", "json", "--results", results).json()[0]
        assert row["state"] == "RUNNING" and row["job_id"] == job, row  # the copy still waits
        wait_until(lambda: job_in_queue(copy) is None, 300, "the copy to find the run held and stop")
        row = cli("status", folder.name, "--format", "json", "--results", results).json()[0]
        assert row["state"] == "RUNNING" and row["job_id"] == job, row
        log = cli("logs", f"{folder.name}/{RID}", "--results", results)
        assert log.code == 0 and "taken by process" in log.out and "this copy stops" not in log.out + log.err, log.out[-500:]
    finally:
        assert cli("cancel", folder.name, "--results", results).code == 0
    wait_until(lambda: job_in_queue(job) is None, 60, "the job that trained the run to end")


def test_two_resumes_at_once_submit_the_runs_once(cli, results, tiny_demo):
    """Two `sweep --resume` of a cancelled sweep started together: one submits the run; the other waits for it,
    then finds the run queued (before: both submitted, and the second copy held a GPU to stop at once)."""
    sweep = cli("sweep", "--partition", "gpu", "--dataset", tiny_demo, "--models", "MobileNetV2", "--epochs", "50",
                "--image-size", "32", "--results", results)
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)
    try:
        assert cli("cancel", folder.name, "--results", results).code == 0
        command = [sys.executable, "-m", "harness", "sweep", "--resume", folder.name, "--results", str(results)]
        both = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outcomes = [p.communicate(timeout=120) for p in both]
        assert [p.returncode for p in both] == [0, 0], outcomes
        assert len(json.loads((folder / "jobs.json").read_text())["submissions"]) == 2, outcomes  # the sweep's, one resume's
        assert sum(f"{RID} is " in err and "not resubmitted" in err for _, err in outcomes) == 1, outcomes
    finally:
        assert cli("cancel", folder.name, "--results", results).code == 0
