"""What the checks of a sweep's records found, kept in the user's cache folder: a record changed in any way
is checked again, a damaged cache is made anew, no cache at all checks every record, and a command that
reads results writes nothing in the results folder."""
import json
import os
from pathlib import Path

import pytest

from harness.analysis.load import SweepResults

from perf_helpers import make_sweep, record


def states(sweep) -> dict[str, str | None]:
    return {rid: checked.state for rid, checked in SweepResults(sweep).checked.items()}


def accuracies(sweep) -> dict[str, float]:
    return {label: records[0].test["accuracy"] for label, records in SweepResults(sweep).completed().items() if records}


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return make_sweep(tmp_path / "results", "a", [record("ResNet50", accuracy=0.9), record("VGG16", accuracy=0.8)],
                      models=["ResNet50", "VGG16", "DenseNet121"])


def cached() -> list[Path]:
    return list(Path(os.environ["XDG_CACHE_HOME"]).glob("harness/checked-records/*.sqlite"))


def test_a_record_changed_after_its_check_is_checked_again(sweep):
    assert states(sweep) == {"ResNet50-s0": "COMPLETED", "VGG16-s0": "COMPLETED", "DenseNet121-s0": None}
    assert accuracies(sweep) == {"ResNet50": 0.9, "VGG16": 0.8}
    result = sweep.run("VGG16-s0").result
    data = json.loads(result.read_text())
    with open(result, "r+") as handle:  # edited in place, as an editor that keeps the file would
        handle.write(json.dumps({**data, "test": {**data["test"], "accuracy": 0.7}}, indent=2))
        handle.truncate()
    assert accuracies(sweep)["VGG16"] == 0.7
    with open(result, "r+") as handle:
        handle.truncate(100)
    checked = SweepResults(sweep).checked["VGG16-s0"]
    assert checked.state == "DAMAGED" and "not whole JSON" in checked.damage.reason
    assert str(SweepResults(sweep).records["VGG16-s0"]).startswith(str(result))


def test_a_run_whose_history_changes_is_checked_again(sweep):
    assert states(sweep)["ResNet50-s0"] == "COMPLETED"
    sweep.run("ResNet50-s0").history.write_text("epoch,loss\n1,0.5\n")
    checked = SweepResults(sweep).checked["ResNet50-s0"]
    assert checked.state == "DAMAGED" and checked.damage.path.name == "history.csv"


def test_a_damaged_cache_is_made_anew(sweep, tmp_path):
    states(sweep)
    (cache,) = cached()
    cache.write_bytes(b"not an SQLite file" * 50)
    assert states(sweep) == {"ResNet50-s0": "COMPLETED", "VGG16-s0": "COMPLETED", "DenseNet121-s0": None}
    assert cache.read_bytes().startswith(b"SQLite format 3")


def test_without_a_cache_folder_every_record_is_checked(sweep, tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert states(sweep)["VGG16-s0"] == "COMPLETED"
    sweep.run("VGG16-s0").result.write_text("{not json")
    assert states(sweep)["VGG16-s0"] == "DAMAGED"


def test_reading_a_sweep_writes_nothing_in_the_results_folder(cli, sweep):
    before = sorted(str(path) for path in sweep.folder.rglob("*"))
    for command in (["status"], ["leaderboard"], ["leaderboard", "--format", "json"]):
        assert cli(*command, "--results", sweep.results).code == 0
    assert sorted(str(path) for path in sweep.folder.rglob("*")) == before


def test_a_record_is_checked_once_until_its_files_change(sweep, monkeypatch):
    import harness.store.record_checks as record_checks

    checked = []
    real = record_checks.record_or_damage

    def counted(run):
        if run.result.exists():  # a run without a record has nothing to check
            checked.append(run.run_id)
        return real(run)

    monkeypatch.setattr(record_checks, "record_or_damage", counted)
    assert accuracies(sweep) == {"ResNet50": 0.9, "VGG16": 0.8} and sorted(checked) == ["ResNet50-s0", "VGG16-s0"]
    checked.clear()
    assert accuracies(sweep) == {"ResNet50": 0.9, "VGG16": 0.8} and checked == []
    os.utime(sweep.run("VGG16-s0").result)  # touched: its times are not those checked
    assert accuracies(sweep) == {"ResNet50": 0.9, "VGG16": 0.8} and checked == ["VGG16-s0"]


def test_a_spec_changed_after_its_check_is_checked_again(sweep):
    from harness.store.schema import DamagedFile

    assert len(SweepResults(sweep).spec.runs) == 3
    assert len(SweepResults(sweep).spec.runs) == 3  # read as it was checked
    data = json.loads(sweep.spec.read_text())
    with open(sweep.spec, "r+") as handle:  # edited in place: a run of another sweep's form
        handle.write(json.dumps({**data, "runs": [{**data["runs"][0], "run_id": "../x"}, *data["runs"][1:]]}))
        handle.truncate()
    with pytest.raises(DamagedFile, match="run id '../x' is not of the form"):
        SweepResults(sweep)
    sweep.spec.write_text(json.dumps({**data, "runs": data["runs"][:2]}))
    assert [run.run_id for run in SweepResults(sweep).spec.runs] == ["ResNet50-s0", "VGG16-s0"]


def test_jobs_changed_after_their_check_are_checked_again(sweep):
    from harness.store.schema import DamagedFile

    jobs = {"submissions": [{"executor": "local", "preprocess_job": None, "submitted": "2026-12-06T00:00:00+00:00",
                             "tasks": {"ResNet50-s0": "4194305@1", "VGG16-s0": "4194305@2"}}]}
    sweep.jobs.write_text(json.dumps(jobs))
    assert SweepResults(sweep).job_of("VGG16-s0") == "4194305@2"
    assert SweepResults(sweep).job_of("VGG16-s0") == "4194305@2"  # read as they were checked
    with open(sweep.jobs, "r+") as handle:  # edited in place: a job id no local worker has
        handle.write(json.dumps(jobs).replace("4194305@2", "12345678"))
        handle.truncate()
    with pytest.raises(DamagedFile, match="job id '12345678' is not a job id of the 'local' executor"):
        SweepResults(sweep).job_of("VGG16-s0")
    sweep.jobs.write_text(json.dumps(jobs).replace("4194305@2", "4194305@3"))
    assert SweepResults(sweep).job_of("VGG16-s0") == "4194305@3"


def test_the_leaderboard_kept_is_the_one_made_anew_after_a_record_changes(cli, sweep, tmp_path, monkeypatch):
    import harness.analysis.board as board

    made = []
    real = board._leaderboard_view

    def counted(*args):
        made.append(args)
        return real(*args)

    monkeypatch.setattr(board, "_leaderboard_view", counted)

    def shown() -> dict[str, str]:
        return {fmt: cli("leaderboard", "--format", fmt, "--results", sweep.results).out for fmt in ("table", "json", "csv")}

    first = shown()
    assert len(made) == 1 and shown() == first and len(made) == 1  # made once: the other formats and times, from the cache
    result = sweep.run("VGG16-s0").result
    data = json.loads(result.read_text())
    with open(result, "r+") as handle:  # edited in place
        handle.write(json.dumps({**data, "test": {**data["test"], "accuracy": 0.85}}, indent=2))
        handle.truncate()
    changed = shown()
    assert len(made) == 2 and changed != first and '"accuracy": 0.85' in changed["json"]
    assert shown() == changed and len(made) == 2
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # no cache: made each time
    assert shown() == changed and len(made) == 5


def test_status_from_the_cache_is_status_made_anew(cli, sweep, tmp_path, monkeypatch):
    kept = [cli("status", "--format", "json", "--results", sweep.results).out for _ in range(2)]  # checked, then cached
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert kept[0] == kept[1] == cli("status", "--format", "json", "--results", sweep.results).out
    assert '"val_accuracy": 0.9' in kept[1] and '"epoch": 1' in kept[1]


def test_a_leaderboard_beside_the_paper_is_made_anew_when_its_dataset_changes(cli, sweep, tmp_path):
    dataset = tmp_path / "data"
    dataset.mkdir()
    sweep.spec.write_text(json.dumps({**json.loads(sweep.spec.read_text()), "dataset": str(dataset)}))

    def setting() -> str:
        return cli("leaderboard", "--compare", "paper", "--results", sweep.results).out

    assert "unknown (no manifest)" in setting() and "unknown (no manifest)" in setting()
    (dataset / "manifest.csv").write_text("path,label\na.png,real\nb.png,fake\nc.png,real\n")
    assert "2 real, 1 fake" in setting()


def test_a_leaderboard_kept_by_other_code_is_made_anew(cli, sweep, monkeypatch):
    import harness.analysis.board as board
    import harness.store.record_checks as record_checks

    made = []
    real = board._leaderboard_view
    monkeypatch.setattr(board, "_leaderboard_view", lambda *args: made.append(args) or real(*args))
    first = [cli("leaderboard", "--results", sweep.results).out for _ in range(2)]
    assert first[0] == first[1] and len(made) == 1
    monkeypatch.setattr(record_checks, "_code_identity", lambda: "a checkout edited since")  # its files' sizes or times
    assert cli("leaderboard", "--results", sweep.results).out == first[0] and len(made) == 2


def test_a_finished_sweeps_status_is_kept_until_a_record_or_a_job_changes(cli, sweep, monkeypatch):
    import harness.analysis.status as status
    from harness.cluster.base import JobState
    from harness.cluster.local import LocalBackend
    from harness.store.submissions import Submission, record_submission

    made = []
    real = status.run_statuses
    monkeypatch.setattr(status, "run_statuses", lambda *args: made.append(args) or real(*args))
    record_submission(sweep, Submission("local", None, {rid: "4194305@1" for rid in ("ResNet50-s0", "VGG16-s0")}))
    unfinished = [cli("status", "--format", "json", "--results", sweep.results).out for _ in range(2)]
    assert unfinished[0] == unfinished[1] and len(made) == 2  # DenseNet121 has no record: made each time
    spec = json.loads(sweep.spec.read_text())
    sweep.spec.write_text(json.dumps({**spec, "runs": [r for r in spec["runs"] if r["model"] != "DenseNet121"]}))

    def shown() -> str:
        return cli("status", "--format", "json", "--results", sweep.results).out

    first = shown()
    assert shown() == first and len(made) == 3  # every run completed and its job ended: kept
    result = sweep.run("VGG16-s0").result
    data = json.loads(result.read_text())
    with open(result, "r+") as handle:  # edited in place
        handle.write(json.dumps({**data, "val": {**data["val"], "accuracy": 0.55}}, indent=2))
        handle.truncate()
    assert '"val_accuracy": 0.55' in shown() and len(made) == 4
    ended = LocalBackend.states
    monkeypatch.setattr(LocalBackend, "states", lambda self, ids: {job: JobState(job, "RUNNING") for job in ids})
    running = shown()
    assert '"val_accuracy": 0.55' in running and len(made) == 5 and shown() == running and len(made) == 6
    monkeypatch.setattr(LocalBackend, "states", lambda self, ids: {
        job: JobState(job, "COMPLETED", node="n7") for job in ended(self, ids)})  # another answer: made again
    assert '"node": "n7"' in shown() and len(made) == 7
    assert '"node": "n7"' in shown() and len(made) == 7


def test_a_relative_cache_folder_is_ignored_as_xdg_says(sweep, tmp_path, monkeypatch):
    """$XDG_CACHE_HOME relative to the working folder: ignored (the XDG rule), the cache goes to ~/.cache, never
    into whatever folder the user reads from."""
    monkeypatch.setenv("XDG_CACHE_HOME", "relative-cache")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert states(sweep)["VGG16-s0"] == "COMPLETED"
    assert not (tmp_path / "relative-cache").exists()
    assert list((tmp_path / "home" / ".cache" / "harness" / "checked-records").glob("*.sqlite"))
