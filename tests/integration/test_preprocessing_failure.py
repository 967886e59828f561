"""A failed preprocessing step ends the sweep cleanly, and both backends say the same: the step FAILED
with its reason, every run CANCELLED because of it, nothing left in the queue, --wait and --watch non-zero."""
import pytest

from slurm_helpers import latest_sweep, sh, submission, wait_until


def break_the_cache_folder(results) -> None:
    """The step cannot write its cache: the folder's place is taken by a file."""
    results.mkdir(parents=True, exist_ok=True)
    (results / "cache").write_text("not a folder\n")


def check_the_sweep_ended_on_its_preprocessing(cli, results) -> None:
    status = cli("status", "--format", "json", "--meta", "--results", results).json()
    pre, (run,) = status["preprocess"], status["rows"]
    assert pre["state"] == "FAILED" and "cache" in pre["reason"], pre
    assert run["state"] == "CANCELLED", run
    assert run["reason"].startswith(f"the preprocessing step FAILED ({pre['reason']})")
    assert run["reason"].endswith(f"python -m harness logs {status['sweep_id']}/MobileNetV2-s0 shows its log")
    table = cli("status", "--results", results)
    assert "preprocessing: FAILED" in table.out and table.code == 0
    log = cli("logs", f"{status['sweep_id']}/MobileNetV2-s0", "--err", "--results", results)
    assert log.code == 0 and "FileExistsError" in log.out, log.err
    watched = cli("status", "--watch", "--results", results)
    assert watched.code == 1 and "1 runs did not complete" in watched.err


def test_on_this_machine(cli, results, tiny_demo):
    break_the_cache_folder(results)
    done = cli("sweep", "--cluster", "local", "--dataset", tiny_demo, "--models", "MobileNetV2", "--epochs", "1",
               "--results", results, "--wait")
    assert done.code == 1, done.err
    check_the_sweep_ended_on_its_preprocessing(cli, results)


@pytest.mark.usefixtures("slurm_cluster")
def test_on_slurm(cli, results, tiny_demo):
    break_the_cache_folder(results)
    done = cli("sweep", "--partition", "gpu", "--dataset", tiny_demo, "--models", "MobileNetV2", "--epochs", "1",
               "--results", results)
    assert done.code == 0, done.err
    jobs = submission(latest_sweep(results))
    ours = {jobs["preprocess_job"], *(job.split("_")[0] for job in jobs["tasks"].values())}
    # --kill-on-invalid-dep: the training array leaves the queue with its failed dependency
    wait_until(lambda: not ours & set(sh("squeue", "-h", "-r", "-o", "%A").split()), 120, "the sweep's jobs to leave the queue")
    wait_until(lambda: cli("status", "--format", "json", "--results", results).json()[0]["state"] == "CANCELLED",
               60, "the run to show CANCELLED")
    check_the_sweep_ended_on_its_preprocessing(cli, results)
