"""The room a site's limits leave, and sbatch's busy answers retried with bounded backoff."""
import pytest
from submitit.core.utils import FailedJobError

from harness.cluster.slurm.backend import sbatch_retrying
from harness.cluster.slurm.limits import Limit, check_room
from harness.errors import UserError


def test_a_sweep_that_fits_every_limit_passes():
    check_room([Limit("the site's MaxJobCount", 10000, 9000), Limit("MaxSubmitJobs", 20, 10)], runs=9)


def test_the_tightest_limit_refuses_and_says_how_many_runs_fit():
    with pytest.raises(UserError) as refused:
        check_room([Limit("the site's MaxJobCount", 10000, 0), Limit("MaxSubmitJobs of root", 20, 10)], runs=10)
    assert "needs 11 Slurm jobs" in str(refused.value) and "MaxSubmitJobs of root is 20 with 10 counted now" in str(refused.value)
    assert "10 more fit, enough for 9 runs" in str(refused.value)


def test_a_full_limit_fits_no_run():
    with pytest.raises(UserError, match="0 more fit, enough for 0 runs"):
        check_room([Limit("MaxSubmitJobs", 5, 7)], runs=1)


def test_sbatch_busy_for_a_moment_is_tried_again_after_each_delay():
    answers = [FailedJobError("sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying")] * 2
    slept: list[float] = []

    def call() -> str:
        if answers:
            raise answers.pop()
        return "123"

    assert sbatch_retrying(call, delays=(5, 15, 45), sleep=slept.append) == "123"
    assert slept == [5, 15]


def test_sbatch_busy_for_longer_than_the_backoff_ends_in_one_line():
    slept: list[float] = []

    def call() -> str:
        raise FailedJobError("sbatch: error: Batch job submission failed: Resource temporarily unavailable")

    with pytest.raises(UserError) as refused:
        sbatch_retrying(call, delays=(5, 15), sleep=slept.append)
    assert slept == [5, 15] and "(tried 3 times)" in str(refused.value) and "\n" not in str(refused.value)


def test_a_refusal_that_will_not_pass_is_not_retried():
    slept: list[float] = []

    def call() -> str:
        raise FailedJobError("sbatch: error: Batch job submission failed: Invalid partition name specified")

    with pytest.raises(UserError, match="^sbatch refused a job: sbatch: error: .*Invalid partition name specified$"):
        sbatch_retrying(call, sleep=slept.append)
    assert slept == []
