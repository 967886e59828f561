"""harness.cluster.slurm.accounting on sacct and squeue output recorded from the local cluster (data/README.md).

Jobs recorded: 1, an array --array=0-7%2 on gpu (--gres=gpu:p100:1, sleep 30), later scancelled;
4, a job on compute requeued with `scontrol requeue` and later scancelled; 5, an array --array=0,2,4,6-9%1.
"""
import subprocess
from pathlib import Path

import pytest

from harness.cluster.slurm import accounting
from harness.cluster.slurm.accounting import (
    SACCT_FIELDS,
    allocated_gpus,
    elapsed_seconds,
    expand_job_id,
    expand_task_spec,
    job_states,
    merge_states,
    parse_sacct,
    parse_squeue,
    query_ids,
)
from harness.errors import UserError

DATA = Path(__file__).parent / "data"
# The columns the recordings in tests/unit/data were made with (ConsumedEnergy came later).
RECORDED = SACCT_FIELDS[:9]


def sacct(name: str):
    return parse_sacct((DATA / f"sacct-{name}.txt").read_text(), RECORDED)


def squeue(name: str):
    return parse_squeue((DATA / f"squeue-{name}.txt").read_text())


@pytest.mark.parametrize("spec, indices", [
    ("2-7%2", [2, 3, 4, 5, 6, 7]), ("2,4,6-9%1", [2, 4, 6, 7, 8, 9]), ("0-999%10", list(range(1000))),
    ("0-15:4", [0, 4, 8, 12]), ("3", [3])])
def test_expand_task_spec(spec, indices):
    assert expand_task_spec(spec) == indices


def test_expand_job_id():
    assert expand_job_id("123_[2-4%2]") == ["123_2", "123_3", "123_4"]
    assert expand_job_id("123_4") == ["123_4"] and expand_job_id("123") == ["123"]
    with pytest.raises(UserError, match=r"cannot read the array tasks \[2-x\]"):
        expand_job_id("123_[2-x]")


def test_a_throttled_array_waits_as_one_row_and_reads_as_one_state_per_task():
    states = sacct("array-throttled")  # 1_0, 1_1 RUNNING; 1_[2-7%2] PENDING
    assert sorted(states) == [f"1_{i}" for i in range(8)]
    assert {states[f"1_{i}"].state for i in range(2, 8)} == {"PENDING"}
    assert states["1_5"].reason == "JobArrayTaskLimit" and states["1_5"].node == "" and states["1_5"].partition == "gpu"
    assert (states["1_0"].state, states["1_0"].node, states["1_0"].gpus) == ("RUNNING", "gpu01", 1)  # gres/gpu=1 in AllocTRES


def test_a_range_with_holes():
    states = sacct("array-holes")  # 5_[2,4,6-9%1]
    assert sorted(states) == ["5_0", "5_2", "5_4", "5_6", "5_7", "5_8", "5_9"]


def test_cancelled_by_a_uid_is_cancelled_and_a_cancelled_range_is_not_pending():
    states = sacct("array-cancelled")  # 1_2 "CANCELLED by 0"; 1_[4-7%2] "CANCELLED by 0"
    assert [states[f"1_{i}"].state for i in range(8)] == ["COMPLETED"] * 2 + ["CANCELLED"] * 6
    # the last reason it waited for is not a reason once it has started or ended
    assert states["1_2"].reason == "" and states["1_5"].reason == ""


def test_a_task_with_its_own_row_is_not_overwritten_by_a_range_still_naming_it():
    states = sacct("requeued-then-cancelled")  # 5_2 on gpu01, and 5_[2,4,6-9%1] after scancel
    assert (states["5_2"].node, states["5_2"].start, states["5_2"].restarts) == ("gpu01", "2026-11-27T04:32:25", 0)
    assert states["5_4"].state == "CANCELLED" and states["5_4"].node == ""


def test_a_requeued_job_counts_its_restart_in_every_phase():
    held, running, cancelled = sacct("requeued-held")["4"], sacct("requeued-running")["4"], sacct("requeued-then-cancelled")["4"]
    assert (held.state, held.restarts) == ("REQUEUED", 1)  # waiting to start again: no row of its own yet
    assert (running.state, running.restarts, running.start) == ("RUNNING", 1, "2026-11-27T04:31:31")
    assert (cancelled.state, cancelled.restarts, cancelled.elapsed) == ("CANCELLED", 1, "00:00:55")


def test_attempts_of_one_job_between_rows_of_others():
    states = sacct("several-ids")  # job 4: REQUEUED ... rows of 5 ... RUNNING
    assert (states["4"].state, states["4"].restarts) == ("RUNNING", 1)


def test_squeue_expands_a_range_even_without_r():
    assert squeue("no-r-array-throttled") == squeue("array-throttled")
    assert squeue("no-r-just-submitted") == squeue("just-submitted")


def test_a_job_only_in_squeue_takes_its_state():
    ids = [f"1_{i}" for i in range(8)]
    states = merge_states(ids, sacct("just-submitted"), squeue("just-submitted"))  # sacct printed nothing yet
    assert {s.state for s in states.values()} == {"PENDING"} and states["1_7"].partition == "gpu"


def test_the_controller_state_wins_while_a_requeued_job_waits():
    state = merge_states(["4"], sacct("requeued-held"), squeue("requeued-held"))["4"]
    assert (state.state, state.reason, state.restarts, state.node) == ("PENDING", "BeginTime", 1, "")


def test_an_ended_attempt_queued_again_is_a_restart():
    accounted = parse_sacct("7|PREEMPTED|gpu|gpu01|00:10:00|2026-11-27T05:00:00|2026-11-27T05:10:00|cpu=1|None\n", RECORDED)
    queued = parse_squeue("7|PENDING|gpu||0:00|BeginTime\n")
    assert merge_states(["7"], accounted, queued)["7"].restarts == 1
    finishing = merge_states(["7"], parse_sacct("7|COMPLETED|gpu|gpu01|00:10:00|a|b|cpu=1|None\n", RECORDED),
                             parse_squeue("7|COMPLETING|gpu|gpu01|10:00|None\n"))["7"]
    assert (finishing.state, finishing.restarts) == ("COMPLETING", 0)


def test_same_state_in_both_keeps_accountings_details():
    state = merge_states(["4"], sacct("several-ids"), squeue("several-ids"))["4"]
    assert (state.state, state.start, state.elapsed, state.restarts) == ("RUNNING", "2026-11-27T04:31:31", "00:00:44", 1)


def test_a_job_in_neither_is_unknown_with_what_to_do():
    states = merge_states(["99999", "5_3"], sacct("several-ids"), squeue("several-ids"))
    assert states["99999"].state == "UNKNOWN"
    assert states["99999"].reason.startswith("job 99999 is in neither sacct nor squeue: the controller has purged it "
                                             "(MinJobAge)")
    assert states["5_3"].reason.endswith("; check with sacct -j 5")  # 5_3 was never a task of 5_[0,2,4,6-9]


def test_an_unreadable_line_is_refused_not_skipped():
    with pytest.raises(UserError, match=r"^cannot read a line of sacct: 2 fields where 11 were asked"):
        parse_sacct("1|RUNNING\n")


def test_query_ids_asks_for_whole_arrays():
    # sacct -j 5_6 prints nothing for a task still inside 5_[2,4,6-9%1] (recorded: only 5_0 came back)
    assert sorted(sacct("task-ids-miss-range")) == ["5_0"]
    assert query_ids(["5_6", "5_0", "4", "1_3", "5_2"]) == "5,4,1"


def _answered(name: str) -> str:
    """A recording as today's query would print it: with empty ConsumedEnergy (not accounted here) and Submit
    columns (recorded before the query asked for them)."""
    return "".join(line + "||\n" for line in (DATA / f"sacct-{name}.txt").read_text().splitlines() if line)


def _fake_slurm(monkeypatch, answers):
    """subprocess.Popen answering sacct and squeue from (returncode, stdout, stderr) or an exception
    (FileNotFoundError when started, TimeoutExpired when awaited)."""
    calls = []

    class Process:
        def __init__(self, args, **kwargs):
            calls.append((args, kwargs))
            self.answer = answers[args[0]]
            if isinstance(self.answer, FileNotFoundError):
                raise self.answer
            self.returncode = None if isinstance(self.answer, Exception) else self.answer[0]

        def communicate(self, timeout=None):
            if isinstance(self.answer, Exception) and self.returncode is None:
                self.returncode = -9
                raise self.answer
            return ("", "") if isinstance(self.answer, Exception) else self.answer[1:]

        def kill(self):
            pass
    monkeypatch.setattr(accounting.subprocess, "Popen", Process)
    return calls


def test_job_states_asks_sacct_once_and_squeue_once(monkeypatch):
    calls = _fake_slurm(monkeypatch, {"sacct": (0, _answered("several-ids"), ""),
                                      "squeue": (0, (DATA / "squeue-several-ids.txt").read_text(), "")})
    states, notes = job_states(["1_3", "4", "5_6", "5_0", "99999"])
    assert [args for args, _ in calls] == [
        ["sacct", "-X", "-P", "-n", "--duplicates", "-j", "1,4,5,99999", "-o",
         "JobID,State,Partition,NodeList,Elapsed,Start,End,AllocTRES,Reason,ConsumedEnergy,Submit"],
        ["squeue", "-h", "-r", "-t", "all", "-j", "1,4,5,99999", "-o", "%i|%T|%P|%N|%M|%r"]]
    assert not any(kwargs.get("shell") for _, kwargs in calls)  # argument lists, never a shell
    assert notes == [] and list(states) == ["1_3", "4", "5_6", "5_0", "99999"]
    assert [s.state for s in states.values()] == ["CANCELLED", "RUNNING", "PENDING", "RUNNING", "UNKNOWN"]


def test_job_states_with_accounting_disabled(monkeypatch):
    _fake_slurm(monkeypatch, {"sacct": (1, "", "sacct: error: Slurm accounting storage is disabled\n"),
                              "squeue": (0, (DATA / "squeue-requeued-held.txt").read_text(), "")})
    states, notes = job_states(["4", "3"])
    assert states["4"].state == "PENDING"
    assert notes == ["sacct did not answer (sacct: error: Slurm accounting storage is disabled): "
                     "the state of a job that has left the queue is unknown"]
    assert states["3"].reason.startswith("job 3 is not in squeue and sacct did not answer (sacct: error: Slurm "
                                         "accounting storage is disabled)")


def test_job_states_when_every_job_has_left_the_controller(monkeypatch):
    stderr = (DATA / "squeue-invalid-id.stderr").read_text()  # squeue exits 1 when no id is known to it
    _fake_slurm(monkeypatch, {"sacct": (0, _answered("array-cancelled"), ""), "squeue": (1, "", stderr)})
    states, notes = job_states(["1_0", "1_7"])
    assert notes == [] and (states["1_0"].state, states["1_7"].state) == ("COMPLETED", "CANCELLED")


def test_job_states_when_the_commands_fail(monkeypatch):
    _fake_slurm(monkeypatch, {"sacct": subprocess.TimeoutExpired(["sacct"], 30), "squeue": FileNotFoundError()})
    states, notes = job_states(["7"])
    assert states["7"].state == "UNKNOWN"
    assert notes == ["sacct did not answer (sacct did not answer within 30 s): the state of a job that has left "
                     "the queue is unknown",
                     "squeue did not answer (squeue is not on PATH): states come from accounting alone, which may "
                     "lag seconds behind"]


def test_no_job_ids_asks_nothing(monkeypatch):
    assert _fake_slurm(monkeypatch, {}) == [] and job_states([]) == ({}, [])


def test_consumed_energy_where_the_site_accounts_it():
    line = "8|COMPLETED|gpu|gpu01|00:10:00|a|b|cpu=1,gres/gpu=1|None|12.50K|2026-11-27T04:31:00\n"
    assert parse_sacct(line)["8"].energy_j == 12500.0 and parse_sacct(line)["8"].submit == "2026-11-27T04:31:00"
    assert parse_sacct(line.replace("12.50K", "0"))["8"].energy_j is None  # not accounted: null, never zero


@pytest.mark.parametrize("text, seconds", [("00:00:30", 30), ("01:02:03", 3723), ("2-01:00:00", 176400),
                                           ("05:07", 307), ("00:00:01.5", 1.5), ("", None), ("INVALID", None)])
def test_sacct_elapsed_in_seconds(text, seconds):
    assert elapsed_seconds(text) == seconds


def test_allocated_gpus_from_alloc_tres():
    assert allocated_gpus("billing=1,cpu=1,gres/gpu=1,mem=1000M,node=1") == 1
    assert allocated_gpus("cpu=8,gres/gpu:a100=4,gres/gpu=4,mem=64G") == 4
    assert allocated_gpus("billing=1,cpu=1,mem=1000M,node=1") is None and allocated_gpus("") is None
