"""The Slurm backend: what the harness asks a Slurm cluster (is it there, its partitions and GPU
types, job states) and how it submits a sweep through submitit.

A sweep is one preprocessing job on the CPU partition, then one job array on the GPU partition (a
task per run, afterok on the preprocessing job): two sbatch calls however many runs (one array per
placement: per rank count, and per node under --every-node). Every command
is an argument list, never a shell string, so user input never reaches a shell. submitit is imported
only to submit: reading states costs one sacct call and no heavy import.
"""
import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from harness.cluster.base import JobState, Option, Placement, SiteView, Work, user_name
from harness.cluster.slurm import options
from harness.cluster.slurm.accounting import job_states
from harness.cluster.slurm.environment import SlurmJobEnvironment, slurm_environment
from harness.cluster.slurm.gpus import GPU_COLUMNS, check_sweep_gpus, gpu_columns, stated_capability, sweep_nodes
from harness.cluster.slurm.profile import Profile, load_profile
from harness.cluster.slurm.sbatch import format_gres, format_mem, format_time, parse_mem, parse_time
from harness.cluster.slurm.site import Site, derive_settings, read_site, settings_as_toml, settings_table
from harness.errors import UserError
from harness.store.paths import SweepPaths
from harness.store.submissions import Submission

T = TypeVar("T")
MAX_TIMEOUTS = 10  # how many times a task may run into its time limit and requeue


def _run(args: list[str], timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def slurm_answers() -> str | None:
    """None when a Slurm controller answers; otherwise why not, in a few words."""
    if shutil.which("sinfo") is None:
        return "sinfo is not on PATH"
    try:
        done = _run(["sinfo", "-h", "-o", "%R"], timeout=15)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 15 s"
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or ["sinfo failed"])[-1]
    return None


DEFAULT_SIGNAL_DELAY_S = 120


def site_defaults(site: Site, profile: Profile) -> Profile:
    """The settings this site gives a sweep (slurm.site), for the partitions the profile names."""
    settings = derive_settings(site, profile.gpu_partition, profile.cpu_partition)
    return Profile(cpu_partition=settings.cpu_partition, gpu_partition=settings.gpu_partition, gres=settings.gres,
                   cpus_per_task=settings.cpus_per_task, mem=format_mem(settings.mem_mb), time=format_time(settings.time_min),
                   preprocess_cpus=settings.preprocess_cpus, preprocess_mem=format_mem(settings.preprocess_mem_mb),
                   preprocess_time=format_time(settings.preprocess_time_min), array_parallelism=settings.array_parallelism,
                   max_array_size=settings.max_array_size, signal_delay_s=DEFAULT_SIGNAL_DELAY_S)


def _check_gpu_type(site: Site, profile: Profile) -> None:
    types = site.partitions[profile.gpu_partition].gpu_types if profile.gpu_partition in site.partitions else frozenset()
    if profile.gpu_type and profile.gpu_type not in types:
        raise UserError(f"unknown GPU type {profile.gpu_type!r} in partition {profile.gpu_partition!r}; "
                        f"it has: {', '.join(sorted(types)) or 'untyped GPUs'}")


def _chunks(run_ids: list[str], size: int) -> list[list[str]]:
    return [run_ids[i:i + size] for i in range(0, len(run_ids), size)]


def job_names(sweep: SweepPaths) -> tuple[str, str]:
    """The Slurm job names of a sweep's preprocessing job and its training arrays."""
    return f"{sweep.sweep_id}-preprocess", f"{sweep.sweep_id}-train"


def _placed(runs: dict[str, Placement], max_array_size: int | None) -> list[tuple[Placement, list[str]]]:
    """The runs as job arrays: one per placement (an array's tasks share their resources), split where
    they outnumber the site's MaxArraySize."""
    groups: dict[Placement, list[str]] = {}
    for rid, placement in runs.items():
        groups.setdefault(placement, []).append(rid)
    return [(placement, chunk) for placement, rids in groups.items() for chunk in _chunks(rids, max_array_size or len(rids))]


def _executors(sweep: SweepPaths, profile: Profile, n_runs: int, placement: Placement = Placement()) -> tuple[Any, Any]:
    """submitit's Slurm executors for the preprocessing job and a training array whose runs are placed
    so (a task per rank, the GPUs of its node's tasks in --gres, of the profile's type, and their memory
    in --mem, which sbatch reads per node; their nodes whole where the profile is exclusive); every setting
    reaches Slurm through submitit's parameters
    (already checked by Profile). No --wckey but the profile's: submitit's own default (`submitit`)
    would stand in for the site's accounting key."""
    import submitit

    optional = {"account": profile.account, "qos": profile.qos, "constraint": profile.constraint,
                "exclude": profile.exclude}
    common: dict[str, Any] = {k: v for k, v in optional.items() if v}
    # Jobs start in the sweep's folder: `python -m` puts the working directory first on sys.path, and a
    # checkout there would shadow the code snapshot.
    extra = dict(profile.sbatch) | {"chdir": str(sweep.folder)} | ({"reservation": profile.reservation} if profile.reservation else {})
    pinned = {"nodelist": placement.node} if placement.node else {}  # sweep --every-node
    # a node's runs one at a time: side by side they would share the node, and its figure would be theirs together
    parallel = 1 if placement.node else min(profile.array_parallelism or n_runs, n_runs)
    # The jobs import the source as it was at submission (the sweep's code/ snapshot), after the site's setup.
    setup = [*profile.setup, f"export PYTHONPATH={shlex.quote(str(sweep.code))}${{PYTHONPATH:+:$PYTHONPATH}}"]
    common["wckey"] = None  # the profile's --wckey, where it has one, is among the extra options
    preprocess = submitit.SlurmExecutor(folder=sweep.logs, python=profile.python)
    preprocess.update_parameters(job_name=job_names(sweep)[0], partition=profile.cpu_partition,
                                 cpus_per_task=profile.preprocess_cpus, mem=profile.preprocess_mem,
                                 time=parse_time(profile.preprocess_time or ""), setup=setup, additional_parameters=extra,
                                 **common)
    tasks = placement.tasks_per_node
    gres = format_gres(profile.gpu_type, tasks) if profile.gres and placement.gpus else None
    mem = format_mem(parse_mem(profile.mem) * tasks) if profile.mem else None
    train = submitit.SlurmExecutor(folder=sweep.logs, max_num_timeout=MAX_TIMEOUTS, python=profile.python)
    train.update_parameters(job_name=job_names(sweep)[1], partition=profile.gpu_partition, gres=gres,
                            nodes=placement.nodes, ntasks_per_node=tasks, cpus_per_task=profile.cpus_per_task, mem=mem,
                            time=profile.time_min, array_parallelism=parallel,
                            signal_delay_s=profile.signal_delay_s or DEFAULT_SIGNAL_DELAY_S, setup=setup,
                            exclusive=True if profile.exclusive else None, additional_parameters=extra | pinned, **common)
    return preprocess, train


def _after(job_id: str, profile: Profile) -> dict[str, str]:
    """A training array's dependency on the preprocessing job, joined with the user's own (--sbatch
    dependency=, which the preprocessing job waits on too; an any-of '?' list holds through that job
    alone, as Slurm does not mix ',' and '?'). Should a dependency fail, Slurm takes the array out of the
    queue instead of keeping it PENDING (DependencyNeverSatisfied) for ever."""
    theirs = str(dict(profile.sbatch).get("dependency", ""))  # (check_sbatch_option gives it a value)
    joined = f"afterok:{job_id}" + (f",{theirs}" if theirs and "?" not in theirs else "")
    return {"dependency": joined, "kill_on_invalid_dep": "yes"}


# sbatch's answers when the controller is busy or full for a moment: worth another try
TRANSIENT = ("temporarily unable", "temporarily unavailable", "socket timed out", "try again")
SBATCH_DELAYS_S = (5, 15, 45)


def sbatch_retrying(call: Callable[[], T], delays: Sequence[float] = SBATCH_DELAYS_S,
                    sleep: Callable[[float], None] = time.sleep) -> T:
    """call() (one sbatch through submitit), again after each delay while Slurm says it is busy for now;
    any failure ends in a UserError of one line, with sbatch's own last word."""
    from submitit.core.utils import FailedJobError

    attempt = 0
    while True:
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # submitit prints sbatch's stderr: it is in the error
                return call()
        except (FailedJobError, subprocess.CalledProcessError, OSError) as err:
            said = [line.strip() for line in str(err).splitlines() if line.strip()]
            word = next((line for line in reversed(said) if "error" in line.lower()), said[-1] if said else type(err).__name__)
            if attempt == len(delays) or not any(t in str(err).lower() for t in TRANSIENT):
                tries = f" (tried {attempt + 1} times)" if attempt else ""
                raise UserError(f"sbatch refused a job{tries}: {word}") from None
            sleep(delays[attempt])
            attempt += 1


def job_log(sweep: SweepPaths, job_id: str, stream: str = "out") -> Path:
    """Where submitit writes a job's stdout ("out") or stderr ("err"), as its JobPaths names them (a unit
    test holds the two together): named here so that reading a state imports no submitit."""
    return sweep.logs / f"{job_id}_0_log.{stream}"  # an array task's id is 123_4: its log 123_4_0_log.out


def batch_script(executor: Any, **extra: Any) -> str:
    """The batch script submitit writes for executor (--dry-run, --check). submitit has no public call for
    it: this is the one place that uses its private API (a unit test holds its shape), so that a submitit
    release that moves it costs those two options, in one line, and never a submission."""
    import submitit

    try:
        from submitit.slurm.slurm import _make_sbatch_string

        parameters = {**executor.parameters, **extra}
        return _make_sbatch_string(command=executor._submitit_command_str, folder=executor.folder, **parameters)
    except (ImportError, AttributeError, TypeError) as err:
        raise UserError(f"--dry-run and --check render submitit's batch script through a call submitit "
                        f"{submitit.__version__} no longer has ({type(err).__name__}: {err}); submitting without them works") from None


def describe_site(partition: str | None, cpu_partition: str | None, profile_name: str | None = None) -> SiteView:
    """The site's partitions (with their GPUs, and whether the jobs' torch runs them: the profile's python,
    else this one) and the settings a sweep would use, for `harness cluster`."""
    reason = slurm_answers()
    if reason:
        raise UserError(f"no Slurm answers here ({reason}); run this on a login node of the cluster")
    profile = load_profile(profile_name) if profile_name else Profile()
    site = read_site()
    settings = derive_settings(site, partition or profile.gpu_partition, cpu_partition or profile.cpu_partition)
    stated = stated_capability(profile)
    gpus, notes = gpu_columns(site, (settings.gpu_partition, stated) if stated else None, profile.python)
    partitions = [{"partition": p.name, "default": p.is_default, "state": p.state, "nodes": len(p.nodes),
                   "cpus_per_node": p.cpus_per_node, "mem_mb_per_node": p.mem_mb_per_node, "gpus_per_node": p.gpus_per_node,
                   "gpu_types": sorted(p.gpu_types), **gpus.get(p.name, dict.fromkeys(GPU_COLUMNS)),
                   "max_time_min": p.max_time_min, "default_time_min": p.default_time_min}
                  for p in site.partitions.values()]
    rows = settings_table(settings)
    return SiteView(title=f"Slurm cluster {site.cluster_name} (MaxArraySize {site.max_array_size}; times in minutes)",
                    partitions=partitions, settings=rows, profile_text=settings_as_toml(settings), notes=tuple(notes),
                    meta={"cluster": site.cluster_name, "max_array_size": site.max_array_size,
                          "settings": {k: v for k, v, _ in rows}, "gpu_notes": notes})


def check_log_folder(sweep: SweepPaths) -> None:
    """The sweep's folder lands in every job's #SBATCH --output and --error, where Slurm expands %-patterns
    (%j, %x, ...: `%%` would keep a '%' there), and submitit replaces %j, %t, %A and %a in its own paths of
    the same folder, where no escape holds: a '%' in it is refused."""
    if "%" in str(sweep.folder):
        raise UserError(f"--results {sweep.results}: a '%' in the path would be expanded in the jobs' log paths "
                        "(Slurm reads %j, %x, ... in #SBATCH --output, and submitit in its own files): use a folder without '%'")


class SlurmBackend:
    name = "slurm"
    scheduler = True
    job_id = re.compile(r"[0-9]+(_[0-9]+)?")  # a job, or an array task
    options_title = options.TITLE

    def options(self) -> list[Option]:
        return options.OPTIONS

    def settings(self, given: dict[str, Any], stored: dict[str, Any] | None = None) -> Profile:
        return options.profile_of(given, stored)

    def environment(self) -> SlurmJobEnvironment | None:
        return slurm_environment()

    def available(self) -> str | None:
        return slurm_answers()

    def describe(self, partition: str | None, cpu_partition: str | None, profile: str | None = None) -> SiteView:
        return describe_site(partition, cpu_partition, profile)

    def _require(self) -> None:
        reason = self.available()
        if reason:
            raise UserError(f"--cluster slurm, but no Slurm answers here ({reason}); "
                            "start one with slurm/local-cluster up, or use --cluster local")

    def preflight(self, sweep: SweepPaths, profile: Profile, runs: dict[str, Placement], devices: set[str],
                  precisions: set[str]) -> None:
        """The jobs' log paths hold, Slurm answers, its limits leave room for every job of the sweep (the
        devices are the nodes'), and, for runs that may use a GPU, the GPU partition's GPUs can do the
        arithmetic asked and run the jobs' torch (slurm.gpus)."""
        from harness.cluster.slurm.limits import check_room, submission_limits

        check_log_folder(sweep)
        self._require()
        check_room(submission_limits(profile.account, profile.qos), len(runs))
        if devices != {"cpu"}:
            check_sweep_gpus(read_site(), profile, precisions)

    def resolve(self, profile: Profile) -> Profile:
        """The profile, with what it does not set read from the site; its partitions and GPU type checked."""
        self._require()
        site = read_site()
        resolved = profile.filled(site_defaults(site, profile))
        _check_gpu_type(site, resolved)
        return resolved

    def nodes(self, profile: Profile, gpus: bool) -> list[str]:
        """The nodes of the sweep's (resolved) training partition its jobs may be given: less --exclude, with every
        feature of --constraint; with GPUs of the sweep's type where its runs use them (gpus), else any."""
        names = [node.name for node in sweep_nodes(read_site(), profile, gpus)[0]]
        if not names:
            raise UserError(f"--every-node: partition {profile.gpu_partition} has no node a job of this sweep may be given "
                            "(its --exclude and --constraint leave none)")
        return names

    def submit(self, sweep: SweepPaths, profile: Profile, runs: dict[str, Placement], work: Work) -> Iterator[Submission]:
        """One preprocessing job (where the work has one), then the training arrays (one per placement,
        several where the runs outnumber the site's MaxArraySize), each afterok on it: a handful of sbatch
        calls however many runs. Yields the submission as it grows, after every sbatch, so that a failure
        part-way loses no queued job."""
        from harness.cluster.slurm.requeue import Requeueable

        arrays = _placed(runs, profile.max_array_size)
        submission = Submission(self.name, None, {})
        if work.preprocess is not None:
            preprocess, _ = _executors(sweep, profile, 1)
            submission = replace(submission, preprocess_job=sbatch_retrying(partial(preprocess.submit, work.preprocess)).job_id)
            yield submission
        for placement, chunk in arrays:
            _, train = _executors(sweep, profile, len(chunk), placement)
            if submission.preprocess_job:
                train.update_parameters(additional_parameters={**train.parameters["additional_parameters"],
                                                               **_after(submission.preprocess_job, profile)})
            jobs = sbatch_retrying(partial(train.map_array, Requeueable(work.train), chunk))
            submission = replace(submission, tasks={**submission.tasks, **{rid: job.job_id for rid, job in zip(chunk, jobs)}})
            yield submission

    def scripts(self, sweep: SweepPaths, profile: Profile, runs: dict[str, Placement], work: Work) -> list[str]:
        preprocess, _ = _executors(sweep, profile, 1)
        scripts = [batch_script(preprocess)] if work.preprocess is not None else []
        for placement, chunk in _placed(runs, profile.max_array_size):
            _, train = _executors(sweep, profile, len(chunk), placement)
            after = _after("<preprocess job id>", profile) if work.preprocess is not None else {}
            dependency = {"additional_parameters": {**train.parameters["additional_parameters"], **after}}
            scripts.append(batch_script(train, map_count=len(chunk), **dependency))
        return scripts

    def check(self, sweep: SweepPaths, profile: Profile, runs: dict[str, Placement], work: Work) -> list[str]:
        """Slurm's own word on each batch script (sbatch --test-only): whether and when it would start."""
        import tempfile

        answers = []
        for script in self.scripts(sweep, profile, runs, work):
            script = "\n".join(line for line in script.splitlines() if "--dependency" not in line)
            with tempfile.NamedTemporaryFile("w", suffix=".sh") as handle:
                handle.write(script + "\n")
                handle.flush()
                done = _run(["sbatch", "--test-only", handle.name])
            said = " ".join((done.stderr + done.stdout).split())
            answers.append(("ok: " if done.returncode == 0 else "refused: ") + said)
        return answers

    def states(self, job_ids: list[str]) -> dict[str, JobState]:
        return job_states(job_ids)[0]

    def run_state(self, sweep: SweepPaths, run_id: str, job: JobState) -> JobState:
        return job  # one array task per run

    def log_path(self, sweep: SweepPaths, run_id: str, submission: Submission, stream: str) -> Path:
        """The task's log; where the task never started, the preprocessing job's (the step it waited for
        tells why)."""
        path = job_log(sweep, submission.tasks[run_id], stream)
        if not path.exists() and submission.preprocess_job:
            return job_log(sweep, submission.preprocess_job, stream)
        return path

    def preprocess_log(self, sweep: SweepPaths, submission: Submission) -> Path | None:
        return job_log(sweep, submission.preprocess_job, "err") if submission.preprocess_job else None

    def check_may_cancel(self, sweep: SweepPaths, job_ids: list[str]) -> None:
        """A job of the sweep (its name the sweep's: an id reused since is not) still queued that is another
        user's is refused, unless this user is root or a Slurm operator or administrator (sacctmgr's AdminLevel;
        none where Slurm keeps no database): scancel would refuse it. An account's coordinator, who may cancel
        it, is told to use scancel. Where squeue does not answer, or shows only one's own jobs (PrivateData),
        nothing is refused here: scancel's refusal is then read (cancel)."""
        me = os.getuid()
        if not job_ids or me == 0:
            return
        jobs = sorted({job.split("_")[0] for job in job_ids})  # an array's tasks are its owner's
        try:
            listed = _run(["squeue", "-h", "-j", ",".join(jobs), "-o", "%i|%U|%u|%j"]).stdout.splitlines()
        except (OSError, subprocess.TimeoutExpired):
            return
        others = [(job, owner) for job, uid, owner, name in (line.split("|", 3) for line in listed if line.count("|") >= 3)
                  if uid != str(me) and name in job_names(sweep)]
        if not others:
            return
        user = user_name(me)
        try:
            level = _run(["sacctmgr", "-n", "-P", "show", "user", user, "format=AdminLevel"]).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            level = ""
        if level in ("Operator", "Administrator"):
            return
        job, owner = others[0]
        raise UserError(f"sweep {sweep.sweep_id}: its job {job} is user {owner}'s, which user {user} may not cancel: nothing "
                        "cancelled (that user or a Slurm operator can cancel it; an account's coordinator, with scancel)")

    def cancel(self, sweep: SweepPaths, job_ids: list[str]) -> None:
        """scancel, restricted to the jobs named as this sweep's (_executors): Slurm signals a listed id
        only where its name matches, so an id that is another job's is left alone."""
        if job_ids:
            for name in job_names(sweep):
                refused = [line for line in _run(["scancel", f"--name={name}", *job_ids]).stderr.splitlines()
                           if "permission denied" in line.lower()]
                if refused:  # where squeue hid the owner (check_may_cancel): the records are written already
                    raise UserError(f"sweep {sweep.sweep_id}: {refused[0].strip()}: its runs are marked CANCELLED but "
                                    "that job goes on (its owner or a Slurm operator can cancel it)")

    def cancel_runs(self, sweep: SweepPaths, jobs: dict[str, str]) -> None:
        self.cancel(sweep, sorted(set(jobs.values())))
