"""The results folder's contract: records round-trip, and what is damaged on disk is named, never half-used."""
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cluster import check_submission
from harness.errors import UserError
from harness.store.atomic import locked_or_none, write_text_atomic
from harness.store.paths import SweepPaths, find_sweep
from harness.store.records import RunRecord, RunSpec, SweepSpec, read_record, read_spec, write_record, write_spec
from harness.store.schema import DamagedFile
from harness.store.submissions import Submission, read_submissions, record_submission

from patience import HUNG_S


def spec(sweep_id: str = "s1", runs: list[RunSpec] | None = None) -> SweepSpec:
    return SweepSpec(sweep_id=sweep_id, created="2026-11-27T00:00:00+00:00", dataset="/d", cache_root="/c",
                     models=["ResNet50"], seeds=1, train={"epochs": 1}, cluster={"executor": "local"},
                     runs=runs or [RunSpec("ResNet50-s0", "ResNet50", 0)])


def completed(run_id: str = "ResNet50-s0", accuracy: float = 0.9, **changes) -> RunRecord:
    metrics = {"accuracy": accuracy, "loss": 0.3, "auc": 0.95}
    values = dict(sweep_id="s1", run_id=run_id, model=run_id.split("-")[0], seed=0, status="COMPLETED", config={},
                  finished_at="2026-11-27T01:00:00+00:00", params=10, test=metrics, val=metrics,
                  throughput={"train_images_per_s": 100.0}, gpu={"util_mean": None, "reason": "no GPU"}, memory={})
    return RunRecord(**{**values, **changes})


def test_spec_and_record_round_trip(tmp_path):
    sweep = SweepPaths(tmp_path / "s1")
    write_spec(sweep, spec())
    assert read_spec(sweep) == spec()
    record = completed()
    write_record(sweep.run("ResNet50-s0"), record)
    assert read_record(sweep.run("ResNet50-s0")) == record and record.completed


def test_a_version_1_record_written_before_the_dataclasses_still_reads(tmp_path):
    """result.json of the first releases: the same fields as a dict literal, in another order."""
    sweep = SweepPaths(tmp_path / "s1")
    data = completed().to_json()
    data.pop("started_at")
    sweep.run("ResNet50-s0").folder.mkdir(parents=True)
    sweep.run("ResNet50-s0").result.write_text(json.dumps(dict(reversed(list(data.items())))))
    assert read_record(sweep.run("ResNet50-s0")).test["accuracy"] == 0.9


def test_a_newer_minor_versions_fields_are_read_past_with_a_warning(tmp_path, caplog):
    """A record and a spec a later harness wrote (schema 1.N, N above this one's): what this harness knows
    is read; the fields it does not, and a training option it does not know, are named once and left."""
    from harness.store.records import RESULT_MINOR, SWEEP_MINOR
    from harness.training.config import config_for

    sweep = SweepPaths(tmp_path / "s1")
    newer_spec = {**spec().to_json(), "schema_minor": SWEEP_MINOR + 1, "priority": "high",
                  "train": {"epochs": 1, "gradient_noise": 0.1}}
    sweep.folder.mkdir(parents=True)
    sweep.spec.write_text(json.dumps(newer_spec))
    read = read_spec(sweep)
    assert config_for(read, read.runs[0]).epochs == 1
    run = sweep.run("ResNet50-s0")
    run.folder.mkdir(parents=True)
    run.result.write_text(json.dumps({**completed().to_json(), "schema_minor": RESULT_MINOR + 1, "carbon_g": 12.5}))
    assert read_record(run).test["accuracy"] == 0.9
    assert "its fields priority are not read" in caplog.text and "its fields carbon_g are not read" in caplog.text
    same_minor = {**spec().to_json(), "train": {"epochs": 1, "gradient_noise": 0.1}}
    sweep.spec.write_text(json.dumps(same_minor))
    with pytest.raises(UserError, match="unknown training options gradient_noise"):
        config_for(read_spec(sweep), read_spec(sweep).runs[0])


@pytest.mark.parametrize("damage, words", [
    (lambda d: "{\"schema_version\": 1, \"sweep", "not whole JSON"),
    (lambda d: {**d, "schema_version": 2}, "schema_version 2 is a newer harness's; this harness reads 1: upgrade"),
    (lambda d: {**d, "schema_version": 0}, "schema_version 0; this harness reads 1"),
    (lambda d: {**d, "status": "DONE"}, "status 'DONE'"),
    (lambda d: {**d, "seed": "0"}, "field 'seed'"),
    (lambda d: {**d, "test": None}, "COMPLETED record without test"),
    (lambda d: {**d, "test": {"accuracy": 1.5}}, "test.accuracy is 1.5"),
    (lambda d: {**d, "run_id": "VGG16-s0"}, "record of run 'VGG16-s0'"),
    (lambda d: {**d, "surprise": 1}, "unknown fields surprise"),
    (lambda d: [d], "expected a JSON object"),
])
def test_a_damaged_record_is_named_with_its_file_and_field(tmp_path, damage, words):
    run = SweepPaths(tmp_path / "s1").run("ResNet50-s0")
    run.folder.mkdir(parents=True)
    damaged = damage(completed().to_json())
    run.result.write_text(damaged if isinstance(damaged, str) else json.dumps(damaged))
    with pytest.raises(DamagedFile, match=words) as raised:
        read_record(run)
    assert str(run.result) in str(raised.value)


@pytest.mark.parametrize("run_id", ["../../../x", "a/b", "..", "-s0", "x\n"])
def test_a_spec_whose_run_id_could_leave_the_sweep_is_damaged(tmp_path, run_id):
    sweep = SweepPaths(tmp_path / "s1")
    sweep.folder.mkdir()
    data = spec().to_json()
    data["runs"][0]["run_id"] = run_id
    sweep.spec.write_text(json.dumps(data))
    with pytest.raises(DamagedFile):
        read_spec(sweep)
    with pytest.raises(UserError):
        sweep.run(run_id)


def test_submissions_append_and_reject_a_job_id_that_is_not_one(tmp_path):
    sweep = SweepPaths(tmp_path / "s1")
    sweep.folder.mkdir()
    record_submission(sweep, Submission("slurm", "101", {"ResNet50-s0": "102_0"}))
    record_submission(sweep, Submission("slurm", "103", {"ResNet50-s0": "104_0"}))
    assert [s.tasks["ResNet50-s0"] for s in read_submissions(sweep)] == ["102_0", "104_0"]
    data = json.loads(sweep.jobs.read_text())
    data["submissions"][0]["tasks"]["ResNet50-s0"] = "102_0; rm -rf ~"
    sweep.jobs.write_text(json.dumps(data))
    damaged = read_submissions(sweep)[0]  # the store reads it; its backend, where the sweep is read, refuses it
    with pytest.raises(DamagedFile, match="not a job id of the 'slurm' executor"):
        check_submission(damaged, sweep.jobs)
    with pytest.raises(DamagedFile, match="not a job id of the 'local' executor"):
        check_submission(Submission("local", None, {"ResNet50-s0": "102_0"}), sweep.jobs)


def test_writes_honour_the_umask_and_never_follow_a_link(tmp_path):
    old = os.umask(0o002)
    try:
        write_text_atomic(tmp_path / "shared.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shared.json").stat().st_mode) == 0o664  # the group can read (and write) it
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / "report.html").symlink_to(victim)
    with pytest.raises(UserError, match="symbolic link"):
        write_text_atomic(tmp_path / "report.html", "<html>")
    assert victim.read_text() == "keep me"


def test_find_sweep_by_id_prefix_or_latest(tmp_path):
    for name in ("2026-a", "2026-b"):
        write_spec(SweepPaths(tmp_path / name), spec(name))
    assert find_sweep(tmp_path, None).sweep_id == "2026-b"
    assert find_sweep(tmp_path, "2026-a").sweep_id == "2026-a"
    with pytest.raises(UserError, match="ambiguous"):
        find_sweep(tmp_path, "2026")


@pytest.mark.parametrize("field", ["dataset", "cache_root"])
def test_a_spec_with_a_relative_path_is_refused_saying_what_to_do(tmp_path, field):
    """A job starts in the sweep's folder: a relative path there points elsewhere than where it was typed."""
    sweep = SweepPaths(tmp_path / "s1")
    sweep.folder.mkdir()
    sweep.spec.write_text(json.dumps({**spec().to_json(), field: "results/data"}))
    with pytest.raises(DamagedFile, match=f"its {field} 'results/data' is a relative path; give it as an absolute path"):
        read_spec(sweep)


def test_sweep_paths_are_absolute_whatever_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = SweepPaths.of(Path("results"), "s1")
    assert sweep.folder == tmp_path / "results" / "s1" and sweep.run("ResNet50-s0").folder.is_absolute()


def test_a_lock_let_go_within_the_wait_is_taken_and_one_still_held_is_not(tmp_path):
    """A requeued job waits for its own earlier attempt, which dies within the scheduler's kill wait (jobs.Train):
    a lock another process lets go of within wait_s is taken; one held past it, or without waiting, is not."""
    lock = tmp_path / "run.lock"
    holding = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
               "fcntl.lockf(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(float(sys.argv[2]))")
    for hold_s, wait_s, taken in ((HUNG_S, 0.0, False), (1.5, HUNG_S, True), (HUNG_S, 1.0, False)):
        holder = subprocess.Popen([sys.executable, "-c", holding, str(lock), str(hold_s)], stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "held"
            with locked_or_none(lock, wait_s) as held:
                assert held is taken, (hold_s, wait_s)
        finally:
            holder.kill()
            holder.wait()
