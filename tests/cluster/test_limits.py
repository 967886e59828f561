"""A sweep larger than the site accepts: refused before anything is queued when the limit can be read,
tracked, cancellable and resumable without duplicates when sbatch refuses it part-way."""
import json
import subprocess
from collections.abc import Iterator

import pytest

from slurm_helpers import latest_sweep, sh

pytestmark = pytest.mark.usefixtures("slurm_cluster")
MODELS = "MobileNetV2,ResNet50,VGG16,DenseNet121"
LATER = "begin=now+1hour"  # the jobs wait in the queue: the test is about what is queued, not about training


def sacctmgr(*args: str, check: bool = True) -> None:
    subprocess.run(["sacctmgr", "-i", *args], capture_output=True, text=True, check=check)


def own_account(name: str) -> str:
    """An account of the test's own for root (made once, kept): its limits and its jobs are the test's alone,
    whatever other tests queue meanwhile under root's default account."""
    sacctmgr("add", "account", name, "parent=root", check=False)  # already there: sacctmgr says so and adds nothing
    sacctmgr("add", "user", "root", f"account={name}", check=False)
    return name


@pytest.fixture
def user_limit() -> Iterator[str]:
    """root's association in an account of its own accepts 3 queued jobs at a time (MaxSubmitJobs), as a
    site sets per user; yields the account."""
    account = own_account("limits-user")
    sacctmgr("modify", "user", "root", "where", f"account={account}", "set", "maxsubmitjobs=3")
    yield account
    sacctmgr("modify", "user", "root", "where", f"account={account}", "set", "maxsubmitjobs=-1")
    subprocess.run(["scancel", f"--account={account}"], capture_output=True)  # a failed run's leftovers count no more


@pytest.fixture
def account_limit() -> Iterator[str]:
    """An account that accepts 3 queued jobs (GrpSubmitJobs): a limit the harness does not read beforehand,
    so sbatch itself refuses the job that does not fit; yields the account."""
    account = own_account("limits-account")
    sacctmgr("modify", "account", account, "set", "grpsubmitjobs=3")
    yield account
    sacctmgr("modify", "account", account, "set", "grpsubmitjobs=-1")
    subprocess.run(["scancel", f"--account={account}"], capture_output=True)


def queued(sweep_id: str) -> list[str]:
    """The queued jobs of the sweep (its preprocessing job and training tasks are named after it)."""
    return [line for line in sh("squeue", "-h", "-r", "-o", "%i %j").splitlines() if line.split()[1].startswith(f"{sweep_id}-")]


def test_a_sweep_over_the_users_submit_limit_is_refused_before_anything_is_queued(cli, results, tiny_demo, user_limit):
    done = cli("sweep", "--partition", "gpu", "--account", user_limit, "--dataset", tiny_demo, "--models", MODELS,
               "--epochs", "1", "--results", results, "--name", "too-big", "--sbatch", LATER)
    assert done.code == 2 and len(done.err.strip().splitlines()) == 1, done.err
    assert "needs 5 Slurm jobs" in done.err and "MaxSubmitJobs" in done.err
    assert "3 more fit, enough for 2 runs" in done.err
    assert not (results / "too-big").exists() and queued("too-big") == []


def test_a_submission_refused_part_way_is_tracked_cancellable_and_resumed_without_duplicates(cli, results, tiny_demo,
                                                                                           tmp_path, account_limit):
    profile = tmp_path / "small-arrays.toml"
    profile.write_text(f'gpu_partition = "gpu"\ncpu_partition = "compute"\nmax_array_size = 2\naccount = "{account_limit}"\n')
    done = cli("sweep", "--profile", profile, "--dataset", tiny_demo, "--models", MODELS, "--epochs", "1",
               "--results", results, "--name", "part-way", "--sbatch", LATER)
    # the preprocessing job and the first array (2 tasks: of equal inputs, the two largest networks) fit; the second does not
    assert done.code == 2 and len(done.err.strip().splitlines()) == 1, done.err
    assert "sbatch refused" in done.err and "2 of 4 runs of sweep part-way were queued" in done.err
    assert "sweep --resume part-way" in done.err
    folder = latest_sweep(results)
    tracked = json.loads((folder / "jobs.json").read_text())["submissions"]
    assert len(tracked) == 1 and sorted(tracked[0]["tasks"]) == ["ResNet50-s0", "VGG16-s0"]
    assert len(queued("part-way")) == 3

    rows = {r["run_id"]: r for r in cli("status", "part-way", "--results", results, "--format", "json").json()}
    assert [rows[r]["state"] for r in ("ResNet50-s0", "VGG16-s0")] == ["PENDING", "PENDING"]
    assert [rows[r]["state"] for r in ("MobileNetV2-s0", "DenseNet121-s0")] == ["NOT SUBMITTED", "NOT SUBMITTED"]

    sacctmgr("modify", "account", account_limit, "set", "grpsubmitjobs=-1")
    resumed = cli("sweep", "--resume", "part-way", "--results", results)
    assert resumed.code == 0, resumed.err
    latest = json.loads((folder / "jobs.json").read_text())["submissions"][-1]
    assert sorted(latest["tasks"]) == ["DenseNet121-s0", "MobileNetV2-s0"]  # the queued two are not submitted again
    assert len([j for j in queued("part-way") if "-train" in j]) == 4

    cancelled = cli("cancel", "part-way", "--results", results)
    assert cancelled.code == 0 and "cancelled 4 runs" in cancelled.err
    assert queued("part-way") == []
