"""Job states from sacct and squeue, read without guessing.

One sacct call (accounting: every attempt of every job, finished ones included) and one squeue call
(the controller: what is queued or running now, before accounting has heard of it) for a whole sweep.
Array tasks that wait together are printed as one row, `123_[2-7%2]`: they are expanded into one
state per task. A job in neither gets the state UNKNOWN and a reason a user can act on.
"""
import re
import subprocess
from dataclasses import replace

from harness.cluster.base import FINAL_STATES, JobState
from harness.errors import UserError

SACCT_FIELDS = ["JobID", "State", "Partition", "NodeList", "Elapsed", "Start", "End", "AllocTRES", "Reason", "ConsumedEnergy",
                "Submit"]
_ENERGY_UNITS = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
SQUEUE_FORMAT = "%i|%T|%P|%N|%M|%r"  # the same order as the SQUEUE_COLUMNS below
SQUEUE_COLUMNS = ["job_id", "state", "partition", "node", "elapsed", "reason"]
TIMEOUT_S = 30

REQUEUE_STATES = {"REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED"}
# A job squeue shows in one of these after accounting saw an attempt end has been requeued.
QUEUED_AGAIN = {"PENDING", "CONFIGURING", "RUNNING"} | REQUEUE_STATES
# What sacct and squeue print where a value is absent.
ABSENT = {"None", "None assigned", "Unknown", "(null)"}
_ATTRIBUTE = {"JobID": "job_id", "State": "state", "Partition": "partition", "NodeList": "node",
              "Elapsed": "elapsed", "Start": "start", "End": "end", "Reason": "reason", "Submit": "submit"}
_TASK_RANGE = re.compile(r"(?P<job>[0-9]+)_\[(?P<spec>[^\]]*)\]")
_TASK_SPAN = re.compile(r"([0-9]+)(?:-([0-9]+)(?::([0-9]+))?)?")
_ELAPSED = re.compile(r"(?:(?P<days>[0-9]+)-)?(?:(?P<hours>[0-9]+):)?(?P<minutes>[0-9]+):(?P<seconds>[0-9]+(?:\.[0-9]*)?)")
_GPUS = re.compile(r"(?:^|,)gres/gpu=(?P<count>[0-9]+)(?:,|$)")


def elapsed_seconds(text: str) -> float | None:
    """sacct's Elapsed, [D-][HH:]MM:SS, in seconds; None where it is not one."""
    found = _ELAPSED.fullmatch(text.strip()) if text else None
    if not found:
        return None
    return (int(found["days"] or 0) * 86400 + int(found["hours"] or 0) * 3600 + int(found["minutes"]) * 60
            + float(found["seconds"]))


def allocated_gpus(alloc_tres: str) -> int | None:
    """The GPUs in sacct's AllocTRES (`cpu=2,gres/gpu=1,mem=3G`); None where it names none."""
    found = _GPUS.search(alloc_tres or "")
    return int(found["count"]) if found else None


def expand_task_spec(spec: str) -> list[int]:
    """Task indices of an array spec as Slurm prints it: `2-7%2`, `2,4,6-9%1`, `0-15:4`."""
    indices: list[int] = []
    for part in spec.split("%")[0].split(","):
        span = _TASK_SPAN.fullmatch(part)
        if not span:
            raise UserError(f"cannot read the array tasks [{spec}] that Slurm printed: {part!r} is not N, N-M or N-M:STEP")
        first, last, step = int(span.group(1)), int(span.group(2) or span.group(1)), int(span.group(3) or 1)
        indices += range(first, last + 1, step)
    return indices


def expand_job_id(job_id: str) -> list[str]:
    """`123_[2-7%2]` as 123_2 ... 123_7; any other id as itself."""
    found = _TASK_RANGE.fullmatch(job_id)
    return [f"{found['job']}_{i}" for i in expand_task_spec(found["spec"])] if found else [job_id]


def normalise_state(text: str) -> str:
    """`CANCELLED by 1000` is CANCELLED; every other state as Slurm names it."""
    return text.split()[0] if text.strip() else "UNKNOWN"


def _waiting_reason(state: str, reason: str) -> str:
    """Slurm's Reason says why a job waits; once it has started both commands still print the last one."""
    return reason if state == "PENDING" else ""


def _split(line: str, columns: list[str], command: str) -> dict[str, str]:
    values = line.split("|")
    if len(values) != len(columns):
        raise UserError(f"cannot read a line of {command}: {len(values)} fields where {len(columns)} were asked "
                        f"({'|'.join(columns)}): {line!r}")
    return dict(zip(columns, values))


def _sacct_row(job_id: str, row: dict[str, str]) -> JobState:
    values = {_ATTRIBUTE[key]: ("" if value in ABSENT else value) for key, value in row.items() if key in _ATTRIBUTE}
    state = normalise_state(row["State"])
    reason = _waiting_reason(state, values.get("reason", ""))
    return JobState(job_id, state, partition=values.get("partition", ""), node=values.get("node", ""),
                    elapsed=values.get("elapsed", ""), start=values.get("start", ""), end=values.get("end", ""),
                    submit=values.get("submit", ""), reason=reason, energy_j=consumed_energy(row.get("ConsumedEnergy", "")),
                    elapsed_s=elapsed_seconds(values.get("elapsed", "")), gpus=allocated_gpus(row.get("AllocTRES", "")))


def consumed_energy(text: str) -> float | None:
    """sacct's ConsumedEnergy (joules, with a K/M/G/T suffix); None where the site does not account energy
    (sacct prints 0 or nothing)."""
    number, unit = text.strip()[:-1], text.strip()[-1:]
    if unit.isdigit() or unit == ".":
        number, unit = text.strip(), ""
    try:
        joules = float(number) * _ENERGY_UNITS[unit.upper()]
    except (ValueError, KeyError):
        return None
    return joules or None


def _attempts(rows: list[dict[str, str]]) -> JobState:
    """The current attempt of a job from its --duplicates rows, oldest first, counting its requeues."""
    current = _sacct_row(rows[-1]["JobID"], rows[-1])
    # A requeued job waiting to start again has no row of its own yet: its last row reads REQUEUED.
    current.restarts = len(rows) - 1 + (current.state in REQUEUE_STATES)
    return current


def parse_sacct(text: str, columns: list[str] = SACCT_FIELDS) -> dict[str, JobState]:
    """`sacct -X -P -n --duplicates -o COLUMNS`, JobID and State among them; array ranges expanded."""
    if "JobID" not in columns or "State" not in columns:
        raise ValueError("parse_sacct needs the JobID and State columns")
    own_rows: dict[str, list[dict[str, str]]] = {}
    ranges: list[dict[str, str]] = []
    for line in filter(None, text.splitlines()):
        row = _split(line, columns, "sacct")
        (ranges if _TASK_RANGE.fullmatch(row["JobID"]) else own_rows.setdefault(row["JobID"], [])).append(row)
    states = {job_id: _attempts(rows) for job_id, rows in own_rows.items()}
    for row in ranges:
        # A range still names a task that has split off and has a row of its own (seen: 5_2 and
        # 5_[2,4,6-9%1] after a scancel): the task's own row is the truth.
        for task in expand_job_id(row["JobID"]):
            states.setdefault(task, _sacct_row(task, row))
    return states


def parse_squeue(text: str) -> dict[str, JobState]:
    """`squeue -h -r -t all -o SQUEUE_FORMAT`; a range it prints all the same is expanded."""
    states = {}
    for line in filter(None, text.splitlines()):
        row = _split(line, SQUEUE_COLUMNS, "squeue")
        values = {key: ("" if value in ABSENT else value) for key, value in row.items()}
        state = normalise_state(row["state"])
        for task in expand_job_id(row["job_id"]):
            states[task] = JobState(task, state, partition=values["partition"], node=values["node"],
                                    elapsed=values["elapsed"], reason=_waiting_reason(state, values["reason"]))
    return states


def _merge(accounted: JobState, queued: JobState) -> JobState:
    """One job both know: the controller's state is the current one, accounting lags it by seconds."""
    if accounted.state == queued.state:
        return replace(accounted, reason=queued.reason)
    # Accounting saw this attempt end and the controller has the job queued again: a requeue
    # (preemption, node failure) that accounting has not listed as an attempt yet.
    requeued = accounted.state in FINAL_STATES and queued.state in QUEUED_AGAIN
    return replace(queued, restarts=accounted.restarts + requeued)


def _unknown(job_id: str, sacct_failure: str | None) -> JobState:
    check = f"check with sacct -j {job_id.split('_')[0]}"
    if sacct_failure:
        reason = (f"job {job_id} is not in squeue and sacct did not answer ({sacct_failure}): "
                  f"a finished job is known only to accounting; {check}")
    else:
        reason = (f"job {job_id} is in neither sacct nor squeue: the controller has purged it (MinJobAge) and "
                  f"accounting has no record of it (slurmdbd was down, or another cluster ran it); {check}")
    return JobState(job_id, "UNKNOWN", reason=reason)


def merge_states(job_ids: list[str], accounted: dict[str, JobState], queued: dict[str, JobState],
                 sacct_failure: str | None = None) -> dict[str, JobState]:
    """Each job id's state from both sources; UNKNOWN, with what to do, where neither knows it."""
    merged = {}
    for job_id in job_ids:
        known, current = accounted.get(job_id), queued.get(job_id)
        if known and current:
            merged[job_id] = _merge(known, current)
        else:
            merged[job_id] = known or current or _unknown(job_id, sacct_failure)
    return merged


def _start(command: list[str]) -> subprocess.Popen | str:
    """The command started, or why it could not be."""
    try:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        return f"{command[0]} is not on PATH"


def _answer(started: subprocess.Popen | str, name: str) -> tuple[str, str | None]:
    """(stdout, None), or ("", why the command gave no answer)."""
    if isinstance(started, str):
        return "", started
    try:
        out, err = started.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        started.kill()
        started.communicate()
        return "", f"{name} did not answer within {TIMEOUT_S} s"
    if started.returncode != 0:
        return "", (err.strip().splitlines() or [f"exit status {started.returncode}"])[-1]
    return out, None


def _run(command: list[str]) -> tuple[str, str | None]:
    return _answer(_start(command), command[0])


def query_ids(job_ids: list[str]) -> str:
    """The ids to ask for: an array task as its array (sacct -j 123_4 misses a task still in a `123_[..]` row)."""
    return ",".join(dict.fromkeys(job_id.split("_")[0] for job_id in job_ids))


def job_states(job_ids: list[str]) -> tuple[dict[str, JobState], list[str]]:
    """The state of every job id (array tasks as `123_4`) from one sacct and one squeue call, and notes on
    what could not be asked."""
    if not job_ids:
        return {}, []
    ids = query_ids(job_ids)
    # both at once: the two answers are read while the other is being made
    sacct = _start(["sacct", "-X", "-P", "-n", "--duplicates", "-j", ids, "-o", ",".join(SACCT_FIELDS)])
    squeue = _start(["squeue", "-h", "-r", "-t", "all", "-j", ids, "-o", SQUEUE_FORMAT])
    sacct_text, sacct_failure = _answer(sacct, "sacct")
    squeue_text, squeue_failure = _answer(squeue, "squeue")
    if squeue_failure and "Invalid job id" in squeue_failure:
        squeue_failure = None  # every id has left the controller: nothing is queued, which is an answer
    notes = []
    if sacct_failure:
        notes.append(f"sacct did not answer ({sacct_failure}): the state of a job that has left the queue is unknown")
    if squeue_failure:
        notes.append(f"squeue did not answer ({squeue_failure}): states come from accounting alone, "
                     "which may lag seconds behind")
    return merge_states(job_ids, parse_sacct(sacct_text), parse_squeue(squeue_text), sacct_failure), notes
