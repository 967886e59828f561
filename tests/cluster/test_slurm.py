"""The harness on a real Slurm cluster (slurm/local-cluster): fan-out, accounting, requeue and resume."""

import sys

import pandas as pd
import pytest

from slurm_helpers import latest_sweep, run_of, sacct_rows, sh, submission, train_until, wait_for_result

pytestmark = pytest.mark.usefixtures("slurm_cluster")


def _history_is_whole(folder, rid: str, epochs: int) -> None:
    history = pd.read_csv(folder / "runs" / rid / "history.csv")
    assert history["epoch"].tolist() == list(range(1, epochs + 1))


@pytest.mark.parametrize("ranks", [1, 2], ids=["one rank", "two ranks"])
def test_a_requeued_job_resumes_from_its_checkpoint(cli, results, small_demo, ranks):
    # Slurm's requeue sends SIGTERM, which submitit lets pass, and kills at KillWait (2 s here; 12 epochs on
    # two ranks lost the race once at 5 s): the epochs left after the third must outlast it on a machine twice
    # this one's speed, or the first attempt finishes meanwhile and nothing resumes. Here an epoch takes 0.8 s
    # on one rank, 0.4 s on two.
    epochs = 18 * ranks
    folder, job = train_until(cli, results, epochs, 3, "--gpus-per-run", str(ranks), dataset=small_demo, name=f"requeued-{ranks}")
    rid = run_of(folder)
    sh("scontrol", "requeue", job)
    record = wait_for_result(folder, rid, "the requeued run to finish")
    assert record["status"] == "COMPLETED" and record["requeues"] >= 1
    assert record["epochs_completed"] == epochs and record["distributed"]["world_size"] == ranks
    _history_is_whole(folder, rid, epochs)
    for rank in range(ranks):  # every rank resumed from the main rank's checkpoint
        logs = "".join(p.read_text() for p in (folder / "logs").glob(f"*_{rank}_log.out"))
        assert "resumed from state" in logs  # state.pt, or state.prev.pt when the kill fell inside a save
    status = cli("status", "--format", "json", "--results", results).json()[0]
    assert status["state"] == "COMPLETED" and status["requeues"] >= 1


@pytest.mark.usefixtures("other_site")  # long, and alone on its cluster: beside the other cluster's tests
def test_a_job_past_its_time_limit_checkpoints_requeues_and_finishes(cli, results, tmp_path, small_demo):
    profile = tmp_path / "short.toml"
    profile.write_text('cpu_partition = "batch"\ngpu_partition = "a100"\ngpu_type = "a100"\ncpus_per_task = 1\n'
                       'mem_gb = 3\ntime_min = 2\nsignal_delay_s = 45\n')
    epochs = 150  # more than a task trains alone in the 75 s before its time limit's signal
    sweep = cli("sweep", "--profile", profile, "--cluster", "slurm", "--dataset", small_demo, "--models", "MobileNetV2",
                "--epochs", epochs, "--image-size", "32", "--results", results, "--name", "past-its-limit")
    assert sweep.code == 0, sweep.err
    folder = latest_sweep(results)
    record = wait_for_result(folder, "MobileNetV2-s0", "the run to finish", timeout_s=900)
    assert record["status"] == "COMPLETED", record.get("error")
    assert record["requeues"] >= 1
    _history_is_whole(folder, "MobileNetV2-s0", epochs)
    logs = "".join(p.read_text() for p in (folder / "logs").glob("*_log.*"))
    assert "timed-out" in logs and "resumed from state" in logs


def test_a_sweep_waits_for_another_workflows_job_and_runs_in_the_sites_python(cli, results, tmp_path, tiny_demo):
    """--sbatch dependency= holds the sweep behind another job; the profile's python (a container's, here a
    wrapper script that says it ran) runs every job."""
    ran = tmp_path / "ran-through-wrapper"
    wrapper = tmp_path / "container-python"
    wrapper.write_text(f'#!/bin/sh\necho "$SLURM_JOB_ID" >> {ran}\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    profile = tmp_path / "site.toml"
    profile.write_text(f'python = "{wrapper}"\n')
    other = sh("sbatch", "--parsable", "--partition", "compute", "--output", "/dev/null", "--wrap", "sleep 10").strip()
    sweep = cli("sweep", "--profile", profile, "--cluster", "slurm", "--dataset", tiny_demo, "--models", "MobileNetV2",
                "--epochs", "1", "--image-size", "32", "--sbatch", f"dependency=afterok:{other}", "--results", results,
                "--name", "behind-another", "--wait")
    assert sweep.code == 0, sweep.err
    jobs = submission(latest_sweep(results))
    rows = {row["JobID"]: row for row in sacct_rows(other, jobs["preprocess_job"], jobs["tasks"]["MobileNetV2-s0"])}
    assert rows[other]["State"] == "COMPLETED"
    assert rows[jobs["preprocess_job"]]["Start"] >= rows[other]["End"]  # ISO times: as text, in order
    assert len(ran.read_text().split()) == 2  # the preprocessing job and the training task, each through the wrapper
    logs = "".join(path.read_text() for path in (latest_sweep(results) / "logs").glob("*_log.out"))
    assert logs.count("Job completed successfully") == 2  # each job's line once, not again through the harness's handler


def test_a_scaling_sweep_asks_slurm_for_each_size_its_nodes_tasks_and_gpus(cli, results):
    shown = cli("sweep", "--partition", "gpu", "--models", "MobileNetV2", "--scaling", "1,2,4", "--nodes-per-run", "2",
                "--dry-run", "--results", results)
    assert shown.code == 0, shown.err
    scripts = ["#!/bin/bash" + text for text in shown.out.split("#!/bin/bash")[1:]]
    assert len(scripts) == 4  # the preprocessing job, then one array per placement

    def asked(script: str) -> tuple[str, ...]:
        lines = dict(line.removeprefix("#SBATCH --").split("=", 1) for line in script.splitlines() if line.startswith("#SBATCH --"))
        return lines["nodes"], lines["ntasks-per-node"], lines["gres"], lines["mem"]

    mem = int(asked(scripts[1])[3].removesuffix("M"))  # one task's memory, as the site gives it
    assert [asked(s) for s in scripts[1:]] == [("1", "1", "gpu:p100:1", f"{mem}M"), ("1", "2", "gpu:p100:2", f"{2 * mem}M"),
                                               ("2", "2", "gpu:p100:2", f"{2 * mem}M")]
    assert "srun" in scripts[3]  # each task runs the run's callable, as one rank


def test_the_sites_wckey_reaches_the_batch_scripts_and_slurm_takes_them(cli, results, tiny_demo):
    """--sbatch wckey= is in both jobs' batch scripts in place of submitit's `--wckey=submitit`, and the
    site's sbatch takes the scripts (--check: sbatch --test-only)."""
    sweep = ("sweep", "--partition", "gpu", "--cpu-partition", "compute", "--dataset", tiny_demo, "--models", "MobileNetV2",
             "--image-size", "32", "--results", results, "--sbatch", "wckey=myproj")
    shown = cli(*sweep, "--dry-run")
    assert shown.code == 0, shown.err
    assert shown.out.count("#SBATCH --wckey=myproj\n") == 2 and shown.out.count("--wckey") == 2
    checked = cli(*sweep, "--check")
    assert checked.code == 0 and [line[:4] for line in checked.out.splitlines()] == ["ok: ", "ok: "], checked.out
    assert not results.exists()


def test_the_harness_knows_every_option_this_sbatch_reads():
    """Each letter's options, as this cluster's sbatch lists them when a prefix is ambiguous (getopt_long),
    are all in the list the harness resolves --sbatch keys against: a prefix it resolves is the one sbatch does."""
    import re
    import subprocess
    import tempfile

    from harness.cluster.slurm.sbatch import SBATCH_OPTIONS

    listed = set()
    with tempfile.NamedTemporaryFile("w", suffix=".sh") as script:
        for letter in "abcdeghimnopqrstuvw":  # (f, x, y, z begin none; j, k and l one each)
            script.seek(0)
            script.truncate()
            script.write(f"#!/bin/sh\n#SBATCH --{letter}=1\ntrue\n")
            script.flush()
            said = subprocess.run(["sbatch", "--test-only", script.name], capture_output=True, text=True).stderr
            listed |= set(re.findall(r"'--([a-z0-9-]+)'", said))
    assert len(listed) > 100 and listed <= set(SBATCH_OPTIONS), sorted(listed - set(SBATCH_OPTIONS))
