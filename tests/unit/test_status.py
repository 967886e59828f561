"""A run's status row from its record and its job's state: pure, so every case is a line here."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from harness.analysis.status import DAMAGED, is_final, preprocess_status, run_status
from harness.cluster.base import FINAL_STATES, JobState
from harness.cluster.local import LocalBackend, pool_run_state, worker_alive, worker_of_run, worker_token
from harness.cluster.slurm.accounting import SACCT_FIELDS, parse_sacct
from harness.store.paths import SweepPaths
from harness.store.record_checks import Checked
from harness.store.records import RunSpec
from harness.store.schema import DamagedFile

from patience import HUNG_S
from test_store import completed

RUN = RunSpec("ResNet50-s0", "ResNet50", 0)
DATA = Path(__file__).parent / "data"


PREPROCESSED = {"job_id": "100", "state": "COMPLETED"}


def status(record=None, progress=None, job_id="101_0", job=None, pre=PREPROCESSED):
    return run_status(RUN, Checked.of(record, None), progress or {}, job_id, job, pre, "sweep-1")


def test_the_record_decides_before_the_scheduler():
    assert status(completed(), job=JobState("101_0", "FAILED")).state == "COMPLETED"
    failed = completed(status="FAILED", error="CUDA out of memory", test=None)
    row = status(failed, job=JobState("101_0", "COMPLETED"))
    assert (row.state, row.reason) == ("FAILED", "CUDA out of memory")


def test_a_damaged_record_is_named_and_final():
    row = status(DamagedFile(Path("r/s/runs/x/result.json"), "not whole JSON"))
    assert row.state == DAMAGED and "not whole JSON" in row.reason and "--resume" in row.reason and is_final(row)


@pytest.mark.parametrize("state", sorted(FINAL_STATES - {"COMPLETED"}) + ["PENDING", "RUNNING", "REQUEUED", "SUSPENDED"])
def test_every_slurm_state_shows_as_itself(state):
    row = status(job=JobState("101_0", state, partition="gpu", node="gpu01", restarts=1))
    assert row.state == state and (row.partition, row.node, row.requeues) == ("gpu", "gpu01", 1)
    assert is_final(row) == (state in FINAL_STATES)
    if is_final(row):  # a run without a record: its reason names the command that shows why
        assert row.reason.endswith("python -m harness logs sweep-1/ResNet50-s0 shows its log")


def test_a_job_that_completed_without_a_record_failed():
    row = status(job=JobState("101_0", "COMPLETED"))
    assert row.state == "FAILED" and "without writing a result" in row.reason


@pytest.mark.parametrize("job", [JobState("101_0", "PENDING", reason="DependencyNeverSatisfied"),
                                 JobState("101_0", "CANCELLED"), JobState("4242", "FAILED")])
def test_a_task_behind_a_failed_preprocessing_step_is_cancelled_with_its_reason(job):
    row = status(job=job, pre={"job_id": "100", "state": "FAILED", "reason": "no manifest.csv in /data"})
    assert row.state == "CANCELLED" and is_final(row)
    assert row.reason.startswith("the preprocessing step FAILED (no manifest.csv in /data)")
    assert "python -m harness logs sweep-1/ResNet50-s0" in row.reason


def test_the_tasks_of_a_throttled_array_are_pending_never_unknown():
    """sacct lists tasks waiting behind the %N throttle as one row, 123_[2-7%2] (recorded on the local cluster)."""
    states = parse_sacct((DATA / "sacct-array-throttled.txt").read_text(), SACCT_FIELDS[:9])
    waiting = [job for job in states.values() if job.state == "PENDING"]
    assert len(waiting) >= 2
    for job in waiting:
        row = run_status(RUN, Checked(None), {}, job.job_id, job, PREPROCESSED, "sweep-1")
        assert row.state == "PENDING" and row.state != "UNKNOWN"


def test_unknown_only_with_a_reason_to_act_on():
    row = status(job=None)
    assert row.state == "UNKNOWN" and "job 101_0" in row.reason


def test_a_local_run_waiting_for_its_worker_is_pending_and_a_dead_worker_failed(tmp_path):
    sweep, local = SweepPaths(tmp_path), LocalBackend()

    def local_status(job, progress=None):
        if progress:
            sweep.run(RUN.run_id).folder.mkdir(parents=True, exist_ok=True)
            sweep.run(RUN.run_id).progress.write_text(json.dumps(progress))
        return status(job_id="4242", job=local.run_state(sweep, RUN.run_id, job), progress=progress)
    assert local_status(JobState("4242", "RUNNING")).state == "PENDING"
    # an earlier attempt's progress, and no worker of this pool has taken the run: still waiting for one
    assert local_status(JobState("4242", "RUNNING"), progress={"epoch": 1}).state == "PENDING"
    worker = subprocess.Popen(["sleep", str(HUNG_S)])
    try:
        token = worker_token(worker.pid)
        sweep.run(RUN.run_id).worker.write_text(token)  # taken, before its first epoch's progress
        sweep.run(RUN.run_id).progress.unlink()
        assert local_status(JobState(token, "RUNNING")).state == "RUNNING"
        sweep.run(RUN.run_id).worker.unlink()
    finally:
        worker.kill()
        worker.wait()
    dead = local_status(JobState("4242", "FAILED", reason="the local worker ended without a result"))
    assert dead.state == "FAILED" and "worker ended" in dead.reason
    # what the worker said last, where the user would otherwise have to open its log to find it
    sweep.logs.mkdir(parents=True, exist_ok=True)
    sweep.local_log(RUN.run_id).write_text("ResNet50 epoch 1/5\nOSError: [Errno 28] No space left on device\n\n")
    dead = local_status(JobState("4242@7", "FAILED", reason="the local workers ended without a result"))
    assert dead.reason.startswith("the local workers ended without a result; its log ends: OSError: [Errno 28] No space")


def test_a_local_run_is_not_cancelled_while_a_worker_may_still_get_past_a_failed_preprocessing_step(tmp_path):
    sweep, local = SweepPaths(tmp_path), LocalBackend()
    sweep.preprocess_progress.parent.mkdir(parents=True)
    sweep.preprocess_progress.write_text(json.dumps({"state": "failed", "error": "no space left"}))
    failed = {"job_id": None, "state": "FAILED", "reason": "no space left"}
    alive = status(job_id="4242", job=local.run_state(sweep, RUN.run_id, JobState("4242", "RUNNING")), pre=failed)
    assert not is_final(alive)
    ended = status(job_id="4242", job=local.run_state(sweep, RUN.run_id, JobState("4242", "FAILED")), pre=failed)
    assert ended.state == "CANCELLED" and "no space left" in ended.reason


def test_a_local_preprocessing_step_whose_workers_all_ended_before_it_finished_failed(tmp_path):
    """Cancelled (or killed) mid-build, a local pool leaves the step's progress file saying running: no job
    of a scheduler says otherwise, so the sweep's jobs having all ended does."""
    sweep = SweepPaths(tmp_path)
    sweep.preprocess_progress.parent.mkdir(parents=True)
    sweep.preprocess_progress.write_text(json.dumps({"state": "running", "done": 384, "total": 3000}))
    assert preprocess_status(sweep, None, None, True, None, jobs_ended=False)["state"] == "RUNNING"
    ended = preprocess_status(sweep, None, None, True, None, jobs_ended=True)
    assert ended["state"] == "FAILED" and ended["reason"] == "the workers that ran it ended before it finished"
    failed = status(job_id="4242", job=JobState("4242", "FAILED"), pre=ended)
    assert failed.state == "CANCELLED" and "ended before it finished" in failed.reason


def test_a_pool_of_local_workers_lives_while_any_of_its_workers_does():
    alive, dead = subprocess.Popen(["sleep", str(HUNG_S)]), subprocess.Popen(["true"])
    dead_token = worker_token(dead.pid)  # taken while it runs or is a zombie, as the backend takes it
    dead.wait()
    pool = f"{dead_token}+{worker_token(alive.pid)}"
    try:
        states = LocalBackend().states([pool, dead_token])
        assert states[pool].state == "RUNNING" and states[dead_token].state == "FAILED"
        assert LocalBackend.job_id.fullmatch(pool)  # jobs.json accepts the pool's id
    finally:
        alive.kill()
        alive.wait()
    assert LocalBackend().states([pool])[pool].state == "FAILED"


def test_a_process_that_took_a_workers_pid_is_not_that_worker():
    """A pid is reused once its process ends: only the pid and the start time together name a worker,
    and a token without a start time (an old or edited jobs.json) names none."""
    this = worker_token(os.getpid())
    pid, start = this.split("@")
    assert worker_alive(this)
    for other in (f"{pid}@{int(start) + 1}", pid, "1", "1@0", f"{pid}@"):
        assert not worker_alive(other)


def test_a_pooled_run_is_its_workers_job_and_pending_again_when_that_worker_died(tmp_path):
    alive, dead = subprocess.Popen(["sleep", str(HUNG_S)]), subprocess.Popen(["true"])
    dead_token = worker_token(dead.pid)
    dead.wait()
    sweep = SweepPaths(tmp_path)
    alive_token = worker_token(alive.pid)
    pool = f"{dead_token}+{alive_token}"
    running, ended = JobState(pool, "RUNNING"), JobState(pool, "FAILED", reason="the local workers ended")

    def state_in(pool_state: JobState) -> JobState:
        return pool_run_state(pool_state, worker_of_run(sweep, "A-s0", pool_state.job_id))

    def held_by(pid) -> None:
        sweep.run("A-s0").folder.mkdir(parents=True, exist_ok=True)
        sweep.run("A-s0").worker.write_text(str(pid))
    try:
        assert state_in(running) == running  # not taken yet: the pool's
        held_by(alive_token)
        assert state_in(running) == JobState(alive_token, "RUNNING")
        held_by(dead_token)
        pending = state_in(running)
        assert pending.state == "PENDING" and f"worker {dead_token} died" in pending.reason
        assert state_in(ended).state == "FAILED"
        held_by("999999999@1")  # an earlier pool's worker is not this pool's
        assert state_in(running) == running
    finally:
        alive.kill()
        alive.wait()


def test_a_run_never_submitted():
    row = status(job_id=None)
    assert row.state == "NOT SUBMITTED" and is_final(row)


@pytest.mark.usefixtures("slurm_cluster")  # which job stands for a resubmitted run is the schedulers' to say
def test_a_runs_log_is_named_by_the_backend_that_ran_it(tmp_path):
    """A sweep resumed on another cluster: each run's log comes from the backend of its own latest job (its
    earlier one, a local pool's, has ended)."""
    from harness import sweeps
    from harness.store.records import write_spec
    from harness.store.submissions import Submission, record_submission

    from test_store import spec

    sweep = SweepPaths(tmp_path / "s1")
    write_spec(sweep, spec(runs=[RunSpec("ResNet50-s0", "ResNet50", 0), RunSpec("ResNet50-s1", "ResNet50", 1)]))
    record_submission(sweep, Submission("local", None, {"ResNet50-s0": "41@7+42@7", "ResNet50-s1": "41@7+42@7"}, submitted="1"))
    record_submission(sweep, Submission("slurm", "100", {"ResNet50-s1": "101_0"}, submitted="2"))
    assert sweeps.log_path(sweep, "ResNet50-s0") == sweep.local_log("41")  # no run log yet: its pool's first worker
    assert sweeps.log_path(sweep, "ResNet50-s1") == sweep.logs / "100_0_log.out"  # the task never started


def test_the_caches_are_kept_while_a_sweep_of_the_folder_has_runs_to_go(tmp_path, cli):
    from harness.store.submissions import Submission, record_submission

    from perf_helpers import make_sweep, record

    results = tmp_path / "results"
    done = make_sweep(results, "a-done", [record("ResNet50", sweep="a-done")])
    going = make_sweep(results, "b-going", [record("ResNet50", sweep="b-going")], models=["ResNet50", "VGG16"])
    cache = results / "cache" / "0123456789abcdef-35px-bicubic-crop0.875"  # a cache, as build_cache names one
    cache.mkdir(parents=True)
    (cache / "header.json").write_text("{}")
    (cache / "train.npy").write_bytes(b"\0" * 998)
    (results / "cache" / "notes").mkdir()  # not the harness's: it stays
    (results / "cache" / "notes" / "chapter1.txt").write_text("mine\n")
    worker = subprocess.Popen(["sleep", str(HUNG_S)])
    try:
        record_submission(going, Submission("local", None, {"VGG16-s0": worker_token(worker.pid)}))
        refused = cli("clean", done.sweep_id, "--cache", "--results", results)
        assert refused.code == 2 and "sweep b-going still has runs to go (VGG16-s0)" in refused.err
        assert (cache / "train.npy").is_file()
    finally:
        worker.kill()
        worker.wait()
    freed = cli("clean", done.sweep_id, "--cache", "--results", results)
    assert freed.out.startswith("freed 1.0 kB: the image caches") and not cache.exists(), freed.err
    assert (results / "cache" / "notes" / "chapter1.txt").read_text() == "mine\n"
