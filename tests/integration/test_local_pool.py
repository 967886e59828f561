"""The local backend's pool: its workers share the sweep's runs, whoever is free taking the next. One run
is cancelled alone while its worker goes on; a run whose worker dies is taken up by the worker left; cancel
meets a run that completes meanwhile, a user who may not signal the workers, and a forced resume's two pools."""
import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from harness.cluster.local import worker_alive

from patience import HUNG_S
from slurm_helpers import as_another_user, latest_sweep, progress_epoch, result, submission, wait_until

# Small inputs and ten epochs: the runs last long enough to be caught mid-training.
SWEEP = ("--cluster", "local", "--max-parallel", "2", "--epochs", "10", "--image-size", "32")


def _holder(folder, rid: str) -> int:
    """The pid of the worker that took the run (its token: pid@start time)."""
    return int((folder / "runs" / rid / ".holder").read_text().split("@")[0])


@contextmanager
def _sigterm_ignored() -> Iterator[None]:
    """As some runners start the commands they run (a CI's among them): an ignored signal stays ignored
    across fork and exec, in every process started below."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _status(cli, results) -> dict[str, dict]:
    return {row["run_id"]: row for row in cli("status", "--format", "json", "--results", results).json()}


def test_a_run_cancelled_alone_leaves_its_worker_to_go_on_and_a_cancelled_sweep_ends_it(cli, results, tiny_demo):
    """One worker (the default on a machine with a GPU): `cancel --runs` stops the run it trains, and it goes on
    with the next; `cancel` of the sweep then ends it, although it was started by a process that ignores SIGTERM."""
    with _sigterm_ignored():
        sweep = cli("sweep", "--cluster", "local", "--max-parallel", "1", "--epochs", "10", "--image-size", "32",
                    "--dataset", tiny_demo, "--models", "ResNet50,MobileNetV2", "--results", results)
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)
    wait_until(lambda: progress_epoch(folder, "ResNet50-s0") >= 1, 300, "ResNet50 to train an epoch")
    assert cli("cancel", folder.name, "--runs", "ResNet50", "--results", results).code == 0
    wait_until(lambda: progress_epoch(folder, "MobileNetV2-s0") >= 1, 300, "the worker to go on with MobileNetV2")
    assert progress_epoch(folder, "ResNet50-s0") < 10  # stopped mid-training, not after it
    assert _status(cli, results)["ResNet50-s0"]["state"] == "CANCELLED"
    worker = (folder / "runs" / "MobileNetV2-s0" / ".holder").read_text().strip()
    assert worker == (folder / "runs" / "ResNet50-s0" / ".holder").read_text().strip()
    assert cli("cancel", folder.name, "--results", results).code == 0
    wait_until(lambda: not worker_alive(worker), 60, "the worker to end")
    assert progress_epoch(folder, "MobileNetV2-s0") < 10
    assert {row["state"] for row in _status(cli, results).values()} == {"CANCELLED"}


def test_a_run_whose_worker_dies_is_taken_up_by_the_worker_left(cli, results, tiny_demo):
    # VGG16, slow, keeps one worker busy while the other's MobileNetV2 is killed after its first epoch
    sweep = cli("sweep", *SWEEP, "--dataset", tiny_demo, "--models", "VGG16,MobileNetV2", "--results", results)
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)
    wait_until(lambda: progress_epoch(folder, "MobileNetV2-s0") >= 1, 300, "MobileNetV2 to train an epoch")
    dead = _holder(folder, "MobileNetV2-s0")
    survivor = _holder(folder, "VGG16-s0")
    os.kill(dead, signal.SIGKILL)  # as the kernel's OOM killer would
    waited = cli("status", folder.name, "--watch", "--results", results)
    assert waited.code == 0, waited.out
    record = result(folder, "MobileNetV2-s0")
    assert record["status"] == "COMPLETED" and record["requeues"] == 1  # a second attempt, from its checkpoint
    assert _holder(folder, "MobileNetV2-s0") == survivor != dead


def test_ctrl_c_while_waiting_says_the_runs_go_on_and_how_to_follow_or_cancel_them(cli, results, tiny_demo):
    """`sweep --wait` stopped with Ctrl-C: exit 130, one line on stderr saying the runs go on in the background
    and how to follow or cancel them; they do go on, and `--resume` finds the code snapshot its jobs ran as
    it was submitted (the bytecode they compiled there aside)."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}  # the jobs compile
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))
    # 200 epochs, cancelled at the end: ten trained in 4 s once, before the Ctrl-C that came after the first.
    # Ctrl-C as a terminal gives it: a suite started in the background of a shell (`.ci/run &`) has SIGINT ignored,
    # and so would the sweep, which Python then leaves ignored (seen in CI: the sweep went on, SigIgn 0x...2)
    waiting = subprocess.Popen([sys.executable, "-m", "harness", "sweep", *SWEEP, "--epochs", "200", "--dataset", str(tiny_demo),
                                "--models", "MobileNetV2", "--results", str(results), "--wait"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    sweep_id = waiting.stdout.readline().strip()  # printed once the runs are queued
    folder = results / sweep_id
    try:
        wait_until(lambda: progress_epoch(folder, "MobileNetV2-s0") >= 1, 300, "MobileNetV2 to train an epoch")
        # the sweep's signal masks (ignored, blocked, caught) as it gets its Ctrl-C, for a failure to show
        masks = " ".join(line for line in Path(f"/proc/{waiting.pid}/status").read_text().splitlines() if line.startswith("Sig"))
        waiting.send_signal(signal.SIGINT)
        try:
            _, err = waiting.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            waiting.kill()
            raise AssertionError(f"the sweep went on 60 s after its Ctrl-C ({masks})") from None
        assert waiting.returncode == 130, f"{masks}\n{err}"
        said = err.strip().splitlines()[-1]
        assert "runs go on in the background" in said and f"status {sweep_id} --watch" in said and f"cancel {sweep_id}" in said
        assert _status(cli, results)["MobileNetV2-s0"]["state"] == "RUNNING"
        assert list(folder.glob("code/**/__pycache__"))  # the jobs compiled the snapshot they import
        resumed = cli("sweep", "--resume", sweep_id, "--dry-run", "--results", results)
        assert resumed.code == 0 and "not what was submitted" not in resumed.err, resumed.err
    finally:
        assert cli("cancel", sweep_id, "--results", results).code == 0


def test_ctrl_c_while_the_workers_start_leaves_no_worker_running(cli, results, tiny_demo, monkeypatch):
    """A Ctrl-C between the pool's first worker and its second (the second's start raises it here: no
    keyboard times it so): the worker started is stopped, none runs that jobs.json does not name."""
    started: list[subprocess.Popen] = []
    start = subprocess.Popen

    def first_then_ctrl_c(command, *args, **kwargs):
        if "worker" not in command:  # git, say
            return start(command, *args, **kwargs)
        if started:
            raise KeyboardInterrupt
        started.append(start(command, *args, **kwargs))
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", first_then_ctrl_c)
    sweep = cli("sweep", *SWEEP, "--dataset", tiny_demo, "--models", "MobileNetV2,ResNet50", "--results", results)
    assert sweep.code == 130
    assert started[0].wait(timeout=HUNG_S) == -signal.SIGKILL
    monkeypatch.undo()
    assert {row["state"] for row in _status(cli, results).values()} == {"NOT SUBMITTED"}


def test_torch_variables_left_in_the_shell_reach_no_run(cli, results, tiny_demo, monkeypatch):
    """RANK, WORLD_SIZE and the rest left in the shell that starts the sweep (a torchrun session's) are no
    run's: each run is taken once and trains as rank 0 of 1."""
    for name, value in {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "nowhere.invalid",
                        "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(name, value)
    sweep = cli("sweep", "--cluster", "local", "--max-parallel", "2", "--epochs", "1", "--image-size", "32",
                "--dataset", tiny_demo, "--models", "MobileNetV2", "--seeds", "2", "--results", results, "--wait")
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)
    for rid in ("MobileNetV2-s0", "MobileNetV2-s1"):
        assert result(folder, rid)["status"] == "COMPLETED"
        assert (folder / "logs" / f"local-{rid}.log").read_text().count(f"{rid}: taken by process") == 1


def test_logs_follow_of_a_run_not_yet_taken_goes_on_to_its_own_log_and_ends_with_it(cli, results, tiny_demo):
    """One worker, two runs: the second's log, followed before the worker takes it, is the pool's preprocessing
    log first, then the run's own, from its start, until the run ends."""
    sweep = cli("sweep", "--cluster", "local", "--max-parallel", "1", "--epochs", "2", "--image-size", "32",
                "--dataset", tiny_demo, "--models", "MobileNetV2", "--seeds", "2", "--results", results)
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)
    followed = cli("logs", f"{folder.name}/MobileNetV2-s1", "--follow", "--results", results)
    assert followed.code == 0, followed.err
    assert "MobileNetV2-s1: taken by process" in followed.out and "epoch 2/2" in followed.out
    assert result(folder, "MobileNetV2-s1")["status"] == "COMPLETED"


def test_a_run_that_completes_as_it_is_cancelled_keeps_its_result(cli, results, tiny_demo, monkeypatch):
    """`cancel` reads the runs' states, then writes a CANCELLED record for each run still going: a run that
    completes in between (its states read a moment before its record was written, here) keeps its record."""
    import harness.sweeps
    from harness.analysis.status import sweep_status

    sweep = cli("sweep", *SWEEP, "--epochs", "1", "--dataset", tiny_demo, "--models", "MobileNetV2", "--results", results,
                "--wait")
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)

    def read_before_the_record(*args):
        statuses, preprocess = sweep_status(*args)
        return [dataclasses.replace(s, state="RUNNING") for s in statuses], preprocess

    monkeypatch.setattr(harness.sweeps, "sweep_status", read_before_the_record)
    cancelled = cli("cancel", folder.name, "--runs", "MobileNetV2", "--results", results)
    assert cancelled.code == 0 and "nothing to cancel" in cancelled.err, cancelled.err
    assert result(folder, "MobileNetV2-s0")["status"] == "COMPLETED"


def test_a_user_who_may_not_signal_the_worker_is_told_so_and_cancels_nothing(cli, results, tiny_demo, tmp_path):
    """A shared results folder: another user, who may write the sweep's files but not signal its worker,
    gets one line and exit 2, and no run is marked CANCELLED (before: it was, and the worker trained on)."""
    sweep = cli("sweep", *SWEEP, "--max-parallel", "1", "--epochs", "200", "--dataset", tiny_demo, "--models", "MobileNetV2",
                "--results", results)
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)
    try:
        wait_until(lambda: progress_epoch(folder, "MobileNetV2-s0") >= 1, 300, "MobileNetV2 to train an epoch")
        cancel = as_another_user(["cancel", folder.name, "--results", str(results)], tmp_path)
        assert cancel.returncode == 2 and cancel.stderr.count("\n") == 1, cancel.stderr
        assert "is user root's, which user nobody may not signal: nothing cancelled" in cancel.stderr, cancel.stderr
        assert not (folder / "runs" / "MobileNetV2-s0" / "result.json").exists()
        assert _status(cli, results)["MobileNetV2-s0"]["state"] == "RUNNING"
    finally:
        assert cli("cancel", folder.name, "--results", results).code == 0


def test_a_run_a_forced_resume_left_to_its_earlier_worker_is_shown_running_and_cancelled_there(cli, results, tiny_demo):
    """`sweep --resume --force` of a run still training: the new pool's worker finds it held and ends, and the
    earlier worker trains on. status shows that worker's run RUNNING, and `cancel` ends it there (before: the
    run was FAILED, "the local workers ended without a result", and cancel had nothing to cancel)."""
    sweep = cli("sweep", *SWEEP, "--max-parallel", "1", "--epochs", "1000", "--dataset", tiny_demo, "--models",
                "MobileNetV2", "--results", results)
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)
    try:
        wait_until(lambda: progress_epoch(folder, "MobileNetV2-s0") >= 1, 300, "MobileNetV2 to train an epoch")
        earlier = (folder / "runs" / "MobileNetV2-s0" / ".holder").read_text().strip()  # the worker's token
        assert cli("sweep", "--resume", folder.name, "--force", "--results", results).code == 0
        new_pool = submission(folder)["tasks"]["MobileNetV2-s0"].split("+")
        wait_until(lambda: not any(worker_alive(token) for token in new_pool), 120, "the new pool's worker to find the run held")
        row = _status(cli, results)["MobileNetV2-s0"]
        assert row["state"] == "RUNNING" and row["job_id"] == earlier, row
        cancelled = cli("cancel", folder.name, "--results", results)
        assert cancelled.code == 0 and "cancelled 1 run " in cancelled.err, cancelled.err
        wait_until(lambda: not worker_alive(earlier), 60, "the earlier worker to end")
        assert _status(cli, results)["MobileNetV2-s0"]["state"] == "CANCELLED"
        assert progress_epoch(folder, "MobileNetV2-s0") < 1000
    finally:
        assert cli("cancel", folder.name, "--results", results).code == 0


def test_a_resumed_run_no_worker_has_taken_yet_is_pending_whatever_its_earlier_progress_says(cli, results, tiny_demo):
    """Cancelled mid-training, then resumed with one worker: the run the worker has not taken yet is PENDING,
    though its progress file, its cancelled attempt's, says an epoch (before: RUNNING, and `--resume` said so)."""
    sweep = cli("sweep", *SWEEP, "--max-parallel", "1", "--epochs", "200", "--seeds", "2", "--dataset", tiny_demo,
                "--models", "MobileNetV2", "--results", results)
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)
    try:
        wait_until(lambda: progress_epoch(folder, "MobileNetV2-s0") >= 1, 300, "seed 0 to train an epoch")
        assert cli("cancel", folder.name, "--runs", "MobileNetV2-s0", "--results", results).code == 0
        wait_until(lambda: progress_epoch(folder, "MobileNetV2-s1") >= 1, 300, "seed 1 to train an epoch")
        worker = (folder / "runs" / "MobileNetV2-s1" / ".holder").read_text().strip()
        assert cli("cancel", folder.name, "--results", results).code == 0
        wait_until(lambda: not worker_alive(worker), 60, "the worker to end")
        assert cli("sweep", "--resume", folder.name, "--results", results).code == 0
        pool = submission(folder)["tasks"]["MobileNetV2-s0"].split("+")
        wait_until(lambda: (folder / "runs" / "MobileNetV2-s0" / ".holder").read_text().strip() in pool, 300,
                   "the new worker to take seed 0")
        states = {rid: row["state"] for rid, row in _status(cli, results).items()}
        assert states == {"MobileNetV2-s0": "RUNNING", "MobileNetV2-s1": "PENDING"}, states
    finally:
        assert cli("cancel", folder.name, "--results", results).code == 0
