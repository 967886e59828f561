"""How many more jobs a Slurm site accepts from this user now: its MaxJobCount, and, where it enforces
accounting limits, the user's association and QOS MaxSubmitJobs. A sweep that cannot fit is refused
before anything is queued. Every array task counts as one job, as Slurm counts it for these limits."""
import getpass
import subprocess
from dataclasses import dataclass

from harness.cluster.base import ALIVE_STATES
from harness.errors import UserError

QUEUED = ",".join(sorted(ALIVE_STATES))  # the jobs that count against a submit limit


@dataclass(frozen=True)
class Limit:
    name: str  # where the limit is set, as a user would look it up
    limit: int
    used: int

    @property
    def room(self) -> int:
        return max(0, self.limit - self.used)


def _lines(args: list[str]) -> list[str] | None:
    """The command's output lines, or None where it fails (no accounting, no such command)."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.splitlines() if done.returncode == 0 else None


def _number(text: str) -> int | None:
    return int(text) if text.strip().isdigit() else None


def _config() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in _lines(["scontrol", "show", "config"]) or [] if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def _job_count(*options: str) -> int:
    return len(_lines(["squeue", "-h", "-r", "-o", "%i", *options]) or [])


def _association(user: str, account: str | None) -> dict[str, str] | None:
    """The user's association for the account (default: the user's default account), from sacctmgr."""
    account = account or next(iter(_lines(["sacctmgr", "-nP", "show", "user", user, "format=defaultaccount"]) or []), "")
    fields = ["account", "maxsubmit", "defaultqos", "qos"]
    for line in _lines(["sacctmgr", "-nP", "show", "assoc", f"user={user}", f"format={','.join(fields)}"]) or []:
        row = dict(zip(fields, line.split("|")))
        if row["account"] == account.strip():
            return row
    return None


def _qos_limit(name: str) -> int | None:
    rows = _lines(["sacctmgr", "-nP", "show", "qos", name, "format=name,maxsubmitpu"]) or []
    return next((_number(row.split("|")[1]) for row in rows if row.split("|")[0] == name and "|" in row), None)


def submission_limits(account: str | None = None, qos: str | None = None) -> list[Limit]:
    """The limits on queued jobs that apply to this user's next submission, with how many jobs count now."""
    config = _config()
    limits = []
    max_jobs = _number(config.get("MaxJobCount", ""))
    if max_jobs:
        limits.append(Limit("the site's MaxJobCount", max_jobs, _job_count("-t", "all")))
    if "limits" not in config.get("AccountingStorageEnforce", ""):
        return limits  # association and QOS limits are not enforced here
    user = getpass.getuser()
    association = _association(user, account)
    if association is None:
        return limits
    if _number(association["maxsubmit"]):  # counts the association's jobs: this user's, in this account
        limits.append(Limit(f"MaxSubmitJobs of {user}'s association in account {association['account']}",
                            int(association["maxsubmit"]), _job_count("-u", user, "-A", association["account"], "-t", QUEUED)))
    qos = qos or association["defaultqos"] or (association["qos"] if "," not in association["qos"] else "")
    per_user = _qos_limit(qos) if qos else None
    if per_user:  # counts this user's jobs in the QOS, whatever their account
        limits.append(Limit(f"MaxSubmitJobsPerUser of QOS {qos}", per_user, _job_count("-u", user, "-q", qos, "-t", QUEUED)))
    return limits


def check_room(limits: list[Limit], runs: int) -> None:
    """Refuse, in one line, a sweep of `runs` training tasks and one preprocessing job that a limit would stop."""
    needed = runs + 1
    for limit in sorted(limits, key=lambda limit: limit.room):
        if limit.room < needed:
            fit = max(0, limit.room - 1)
            raise UserError(f"the sweep needs {needed} Slurm jobs ({runs} runs and the preprocessing job), but "
                            f"{limit.name} is {limit.limit} with {limit.used} counted now: {limit.room} more fit, "
                            f"enough for {fit} runs; submit fewer (--models, --seeds) or wait for jobs to end")
