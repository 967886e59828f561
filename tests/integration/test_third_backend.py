"""A backend the harness does not ship, written here and registered by name (harness.cluster.register_backend):
each job a process of its own, its state read from the files the job leaves. A tiny sweep runs on it
through the command line, end to end; a backend touches only its own code, and nothing of the harness
changes for it."""
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.cluster import BACKENDS, register_backend
from harness.cluster.base import JobEnvironment, JobState, Option, Placement, SiteView, Work
from harness.errors import UserError
from harness.store.paths import SweepPaths
from harness.store.submissions import Submission


@dataclass(frozen=True)
class NoSettings:
    def to_json(self) -> dict[str, Any]:
        return {}


class FilesBackend:
    """Each job `sh -c '<the work's worker> RUN; echo $? > JOB.exit'`, started in the background; a job
    that has an exit file has ended with it, one that has a pid file and none runs, else it waits."""

    name = "files"
    scheduler = False
    job_id = re.compile(r"job-[0-9a-f]{8}")
    options_title = "a process per job, its state in files (--cluster files)"

    def __init__(self, jobs: Path) -> None:
        self.jobs = jobs

    def options(self) -> list[Option]:
        return []

    def settings(self, given: dict[str, Any], stored: dict[str, Any] | None = None) -> NoSettings:
        return NoSettings()

    def environment(self) -> JobEnvironment | None:
        return None  # its jobs run on this machine, as the local backend's do

    def available(self) -> str | None:
        return None

    def describe(self, partition: str | None, cpu_partition: str | None, profile: str | None = None) -> SiteView:
        raise UserError("the files backend has no site")

    def preflight(self, sweep: SweepPaths, settings: Any, runs: dict[str, Placement], devices: set[str],
                  precisions: set[str]) -> None:
        if any(p.ranks > 1 for p in runs.values()):
            raise UserError("the files backend runs one process per job")

    def resolve(self, settings: Any) -> Any:
        return settings

    def _script(self, sweep: SweepPaths, run_id: str, job: str, work: Work) -> str:
        worker = shlex.join(work.worker_command(sys.executable, sweep, [run_id]))
        return f"echo $$ > {self.jobs / job}.pid; {worker} > {self.jobs / job}.log 2>&1; echo $? > {self.jobs / job}.exit"

    def submit(self, sweep: SweepPaths, settings: Any, runs: dict[str, Placement], work: Work) -> Iterator[Submission]:
        self.jobs.mkdir(exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(sweep.code)}  # the jobs import the sweep's code snapshot
        tasks = {}
        for run_id in runs:
            job = f"job-{secrets.token_hex(4)}"
            subprocess.Popen(["sh", "-c", self._script(sweep, run_id, job, work)], cwd=sweep.folder, env=env,
                             stdin=subprocess.DEVNULL, start_new_session=True)
            tasks[run_id] = job
        yield Submission(self.name, None, tasks)

    def scripts(self, sweep: SweepPaths, settings: Any, runs: dict[str, Placement], work: Work) -> list[str]:
        return [self._script(sweep, run_id, "job-00000000", work) for run_id in runs]

    def check(self, sweep: SweepPaths, settings: Any, runs: dict[str, Placement], work: Work) -> list[str]:
        return [f"ok: {len(runs)} processes"]

    def states(self, job_ids: list[str]) -> dict[str, JobState]:
        def state(job: str) -> JobState:
            ended = self.jobs / f"{job}.exit"
            if ended.exists():
                return JobState(job, "COMPLETED" if ended.read_text().strip() == "0" else "FAILED")
            return JobState(job, "RUNNING" if (self.jobs / f"{job}.pid").exists() else "PENDING")
        return {job: state(job) for job in job_ids}

    def run_state(self, sweep: SweepPaths, run_id: str, job: JobState) -> JobState:
        return job

    def log_path(self, sweep: SweepPaths, run_id: str, submission: Submission, stream: str) -> Path:
        """The run's own log, where the worker writes it; before that, its job's (the preprocessing step)."""
        run_log = sweep.local_log(run_id)
        return run_log if run_log.exists() else self.jobs / f"{submission.tasks[run_id]}.log"

    def preprocess_log(self, sweep: SweepPaths, submission: Submission) -> Path | None:
        return None

    def check_may_cancel(self, sweep: SweepPaths, job_ids: list[str]) -> None:
        """Every job is a process of the user who started the sweep: nothing to refuse."""

    def cancel(self, sweep: SweepPaths, job_ids: list[str]) -> None:
        for job in job_ids:
            pid = self.jobs / f"{job}.pid"
            if pid.exists() and not (self.jobs / f"{job}.exit").exists():
                os.killpg(int(pid.read_text()), signal.SIGTERM)

    def cancel_runs(self, sweep: SweepPaths, jobs: dict[str, str]) -> None:
        self.cancel(sweep, list(jobs.values()))


@pytest.fixture
def files_backend(tmp_path):
    register_backend("files", lambda: FilesBackend(tmp_path / "files-jobs"))
    try:
        yield tmp_path / "files-jobs"
    finally:
        BACKENDS.pop("files")


def test_a_backend_registered_from_outside_runs_a_sweep_end_to_end(cli, tiny_demo, tmp_path, files_backend):
    results = tmp_path / "results"
    done = cli("sweep", "--cluster", "files", "--dataset", tiny_demo, "--models", "MobileNetV2", "--epochs", 1,
               "--image-size", 32, "--results", results, "--wait", "--interval", 1)
    assert done.code == 0, done.err
    assert "1 runs on files" in done.err
    status = cli("status", "--format", "json", "--results", results).json()
    assert [(row["run_id"], row["state"]) for row in status] == [("MobileNetV2-s0", "COMPLETED")]
    assert (files_backend / f"{status[0]['job_id']}.pid").exists()  # its own job, as it named it
    board = cli("leaderboard", "--format", "json", "--results", results).json()
    assert [row["model"] for row in board] == ["MobileNetV2"]
    assert cli("logs", done.out.strip() + "/MobileNetV2", "--results", results).code == 0


def test_an_option_of_a_backend_the_sweep_does_not_use_is_refused_and_one_of_its_own_the_same(cli, tiny_demo, tmp_path, files_backend):
    refused = cli("sweep", "--cluster", "files", "--gres", "gpu", "--dataset", tiny_demo, "--results", tmp_path / "r")
    assert refused.code == 2 and "--gres is an option of --cluster slurm, but the sweep runs on --cluster files" in refused.err
    local = cli("sweep", "--cluster", "files", "--max-parallel", "2", "--dataset", tiny_demo, "--results", tmp_path / "r")
    assert local.code == 2 and "--max-parallel is an option of --cluster local" in local.err
    assert not (tmp_path / "r").exists()
