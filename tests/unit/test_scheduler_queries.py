"""The commands that read results (report, leaderboard, compare, check, dashboard, harness.load) read what is
on disk and ask the scheduler nothing, a run without a record shown as "no result yet"; status asks it once.
Slurm's commands are stand-ins on PATH that answer nothing and write down every call."""
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

import harness
from harness.cluster.base import JobState
from harness.store.perflog import append_entry
from harness.store.submissions import Submission, record_submission

from conftest import SLURM_COMMANDS
from perf_helpers import entry, make_sweep, record


@pytest.fixture
def scheduler_calls(tmp_path, monkeypatch) -> Path:
    """Slurm's commands as stand-ins first on PATH: each writes its call to the returned file and answers nothing."""
    folder, log = tmp_path / "slurm-stand-ins", tmp_path / "scheduler-calls"
    folder.mkdir()
    for name in SLURM_COMMANDS:
        (folder / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n')
        (folder / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return log


def calls(log: Path) -> list[str]:
    return sorted(line.split()[0] for line in log.read_text().splitlines()) if log.exists() else []


def slurm_sweep(results: Path, name: str) -> None:
    """A sweep that ran on Slurm: ResNet50's seeds completed, VGG16's submitted without a record yet."""
    test = {"accuracy": 0.9, "auc": 0.92, "f1": 0.9, "loss": 0.3, "confusion_matrix": [[5, 1], [1, 5]]}
    sweep = make_sweep(results, name, [record("ResNet50", seed, sweep=name, device="cuda", test=test) for seed in (0, 1)],
                       models=["ResNet50", "VGG16"])
    spec = json.loads(sweep.spec.read_text())
    sweep.spec.write_text(json.dumps({**spec, "cluster": {"executor": "slurm"}}))
    record_submission(sweep, Submission("slurm", "100", {"ResNet50-s0": "101_0", "ResNet50-s1": "101_1", "VGG16-s0": "101_2"}))
    append_entry(results, replace(entry("ResNet50-s0"), sweep=name))


@pytest.fixture
def results(tmp_path) -> Path:
    folder = tmp_path / "results"
    for name in ("first", "second"):
        slurm_sweep(folder, name)
    (tmp_path / "references.toml").write_text("[ResNet50]\naccuracy = { value = 0.9, lower = -0.05, upper = 0.05 }\n")
    return folder


@pytest.mark.parametrize("command", [
    ["report", "second"], ["report", "second", "--format", "markdown"], ["leaderboard", "second"],
    ["leaderboard", "second", "--format", "json", "--compare", "paper"], ["compare", "first", "second"],
    ["check", "second", "--references", "{refs}"], ["dashboard", "--out", "{tmp}/site.html", "--references", "{refs}"],
    ["history"]])
def test_a_command_that_reads_results_asks_no_scheduler(cli, results, scheduler_calls, command):
    arguments = [part.format(refs=results.parent / "references.toml", tmp=results.parent) for part in command]
    done = cli(*arguments, "--results", results)
    assert done.code == 0, done.err
    assert calls(scheduler_calls) == []


def test_a_run_without_a_record_is_no_result_yet_where_results_are_read(cli, results, scheduler_calls):
    board = {row["model"]: row for row in cli("leaderboard", "--format", "json", "--results", results).json()}
    assert board["ResNet50"]["status"] == "COMPLETED" and board["VGG16"]["status"] == "1 no result yet"
    loaded = harness.load(results, "second")
    assert dict(zip(loaded.runs["run_id"], loaded.runs["state"])) == {
        "ResNet50-s0": "COMPLETED", "ResNet50-s1": "COMPLETED", "VGG16-s0": "no result yet"}
    assert list(loaded.perflog["sweep"]) == ["first", "second"]
    assert calls(scheduler_calls) == []


def test_status_asks_the_scheduler_once(cli, results, scheduler_calls, monkeypatch):
    from harness.cluster.slurm.backend import SlurmBackend

    asked = []
    real = SlurmBackend.states

    def states(self, job_ids: list[str]) -> dict[str, JobState]:
        asked.append(job_ids)
        return real(self, job_ids)

    monkeypatch.setattr(SlurmBackend, "states", states)
    for arguments in (["second"], ["second", "--format", "json", "--meta"]):
        asked.clear()
        scheduler_calls.unlink(missing_ok=True)
        done = cli("status", *arguments, "--results", results)
        assert done.code == 0, done.err
        assert len(asked) == 1 and calls(scheduler_calls) == ["sacct", "squeue"]
