"""Batch options read the way sbatch reads them: times, memory, GRES, Slurm names, extra sbatch options.

Everything here lands in `#SBATCH` lines of a bash script, where a newline would start a new line
(and so a new option, or end the options); every check uses re.fullmatch, because `$` in re.match
also matches before a trailing newline.
"""
import math
import re

from harness.errors import UserError

TIME_FORMS = "MIN, MIN:SEC, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (e.g. 90, 04:00:00, 1-12)"
MEM_FORMS = "a whole number of megabytes, or one with a K, M, G or T suffix (e.g. 8000, 8G, 512000M)"
GRES_FORMS = "gpu, gpu:COUNT, gpu:TYPE or gpu:TYPE:COUNT (e.g. gpu:p100:1)"
NAME_FORMS = "letters, digits, '.', '_' and '-', not starting with '-'"
NODE_LIST_FORMS = "node names and ranges such as gpu[01-04],cpu07: letters, digits, '.', '_', '-', ',', '[', ']'"
SBATCH_FORMS = ("KEY=VALUE with KEY an sbatch long option without '--' (e.g. mail-type=END) and VALUE one line, "
                "or KEY alone for an option that takes no value (e.g. hold)")
CONSTRAINT_FORMS = "features joined by '&', '|', ',' with '[', ']' and '*COUNT' (e.g. a100&ib): letters, digits, '.', '_', '-'"

NAME = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]*")
NODE_LIST = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._,\[\]-]*")
CONSTRAINT = re.compile(r"[A-Za-z0-9._\[][A-Za-z0-9._,&|*\[\]-]*")
SBATCH_KEY = re.compile(r"[a-z][a-z0-9-]*")
# sbatch --dependency: TYPE:JOB[:JOB...] (a job may carry +MINUTES), or singleton, joined by ',' (all) or '?' (any)
_DEPENDENCY_ITEM = r"(?:(?:after|afterany|afterok|afternotok|aftercorr|afterburstbuffer)(?::[0-9]+(?:_[0-9]+)?(?:\+[0-9]+)?)+|singleton)"
DEPENDENCY = re.compile(rf"{_DEPENDENCY_ITEM}(?:[,?]{_DEPENDENCY_ITEM})*")
# Control characters (NUL, CR, LF, tab, ...) would end or split an #SBATCH line.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# sbatch's long options, as its getopt_long reads them (a `#SBATCH` line too): each takes a value
# ("required"), may take one ("optional") or takes none ("none"). Slurm 22.05's list, read from sbatch
# itself (each letter's ambiguity list, every alias probed), with the one 23.11 adds for GPUs
# (tres-per-task). getopt_long takes any unique prefix of a name: `dep=` is --dependency.
_NO_VALUE = ("contiguous help hold ignore-pbs no-requeue overcommit oversubscribe parsable quiet reboot requeue spread-job "
             "test-only usage use-min-nodes verbose version wait")
_OPTIONAL_VALUE = "exclusive get-user-env nice no-kill propagate"
_VALUE = ("account acctg-freq array batch bb bbf begin chdir cluster cluster-constraint clusters comment constraint container "
          "context core-spec cores-per-socket cpu-freq cpus-per-gpu cpus-per-task deadline delay-boot dependency "
          "distribution error exclude export export-file extra-node-info gid gpu-bind gpu-freq gpus gpus-per-node "
          "gpus-per-socket gpus-per-task gres gres-flags hint input job-name kill-on-invalid-dep licenses mail-type "
          "mail-user mcs-label mem mem-bind mem-per-cpu mem-per-gpu mincpus network nodefile nodelist nodes ntasks "
          "ntasks-per-core ntasks-per-gpu ntasks-per-node ntasks-per-socket ntasks-per-tres open-mode output partition "
          "power prefer priority profile qos reservation signal sockets-per-node switches tasks-per-node thread-spec "
          "threads-per-core time time-min tmp tres-per-task uid wait-all-nodes wckey wrap")
SBATCH_OPTIONS = {**dict.fromkeys(_VALUE.split(), "required"), **dict.fromkeys(_OPTIONAL_VALUE.split(), "optional"),
                  **dict.fromkeys(_NO_VALUE.split(), "none")}

_GPUS = "use --gres and --gpus-per-run (a GPU per rank)"
_RANKS = "use --gpus-per-run and --nodes-per-run (a task per rank)"
_LOGS = "submitit writes each job's log where `harness logs` reads it, every attempt appended"
_ANSWER = "submitit reads the job's id from sbatch's answer"
# The options the harness writes itself, and why: a sweep option of its own sets it, or the harness needs it so.
# Any other (--wckey, --mail-type, --comment, ...) reaches the batch scripts as given.
RESERVED = {
    "partition": "use --partition / --cpu-partition", "time": "use --time", "account": "use --account", "qos": "use --qos",
    "constraint": "use --constraint", "exclude": "use --exclude", "reservation": "use --reservation",
    **dict.fromkeys(("mem", "mem-per-cpu", "mem-per-gpu"), "use --mem"),
    **dict.fromkeys(("cpus-per-task", "cpus-per-gpu"), "use --cpus-per-task"),
    **dict.fromkeys(("gres", "gpus", "gpus-per-node", "gpus-per-task", "gpus-per-socket", "ntasks-per-gpu",
                     "ntasks-per-tres", "tres-per-task"), _GPUS),
    **dict.fromkeys(("nodes", "ntasks", "ntasks-per-node", "tasks-per-node"), _RANKS),
    "signal": "use signal_delay_s in the profile (submitit's checkpoint signal)",
    "array": "the training runs are one job array, a task per run",
    "job-name": "status and cancel find the sweep's jobs by their names",
    **dict.fromkeys(("output", "error", "open-mode"), _LOGS),
    "chdir": "the jobs start in the sweep's folder, so that they import its code snapshot",
    "export": "the jobs' environment carries the code snapshot's PYTHONPATH",
    "kill-on-invalid-dep": "a training array leaves the queue when its preprocessing job fails",
    "no-requeue": "a task that reaches its time limit requeues itself and resumes",
    "wrap": "the job is the batch script submitit writes",
    **dict.fromkeys(("parsable", "quiet"), _ANSWER),
    "test-only": "use sweep --check", "wait": "use sweep --wait (sbatch would wait for the job to end)",
    **dict.fromkeys(("cluster", "clusters"), "status and cancel ask this cluster's scheduler about the jobs"),
    **dict.fromkeys(("help", "usage", "version"), "it is no option of a job"),
}

# [0-9], not \d: \d also matches other scripts' digits, which sbatch does not read.
_TIME = re.compile(r"(?:(?P<days>[0-9]+)-(?P<dh>[0-9]+)(?::(?P<dm>[0-9]+)(?::(?P<ds>[0-9]+))?)?"
                   r"|(?P<a>[0-9]+)(?::(?P<b>[0-9]+)(?::(?P<c>[0-9]+))?)?)")
_MEM = re.compile(r"(?P<number>[0-9]+)(?P<unit>[KMGT]?)B?", re.IGNORECASE)
_COUNT = re.compile(r"[0-9]+")
_MB_PER_UNIT = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}


def _refuse(option: str, value: str, forms: str) -> UserError:
    return UserError(f"{option} {value!r} is not valid; accepted forms: {forms}")


def _time_fields(found: re.Match) -> tuple[int, int, int, int, bool]:
    """(days, hours, minutes, seconds, every field below its next unit) of a matched time."""
    parts = found.groupdict()
    if parts["days"] is not None:
        days, hours, minutes, seconds = (int(parts[k] or 0) for k in ("days", "dh", "dm", "ds"))
        return days, hours, minutes, seconds, hours < 24 and minutes < 60 and seconds < 60
    if parts["c"] is not None:  # HH:MM:SS
        hours, minutes, seconds = int(parts["a"]), int(parts["b"]), int(parts["c"])
        return 0, hours, minutes, seconds, minutes < 60 and seconds < 60
    minutes, seconds = int(parts["a"]), int(parts["b"] or 0)  # MIN or MIN:SEC
    return 0, 0, minutes, seconds, seconds < 60


def parse_time(text: str, option: str = "--time") -> int:
    """A time limit in whole minutes, seconds rounded up; refuses 0, UNLIMITED and anything sbatch would not read."""
    found = _TIME.fullmatch(text) if isinstance(text, str) else None
    if not found:
        unlimited = isinstance(text, str) and text.upper() in ("UNLIMITED", "INFINITE")
        raise _refuse(option, text, TIME_FORMS + (", a finite limit (a task must end)" if unlimited else ""))
    days, hours, minutes, seconds, in_range = _time_fields(found)
    if not in_range:
        raise _refuse(option, text, TIME_FORMS + ", with minutes and seconds below 60 and hours below 24 after D-")
    total = days * 1440 + hours * 60 + minutes + math.ceil(seconds / 60)
    if total < 1:
        raise _refuse(option, text, TIME_FORMS + ", at least one minute")
    return total


def format_time(minutes: int) -> str:
    """sbatch's own form: D-HH:MM:SS from a day on, HH:MM:SS below."""
    days, rest = divmod(minutes, 1440)
    clock = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{clock}" if days else clock


def parse_mem(text: str, option: str = "--mem") -> int:
    """Memory in megabytes; a bare number is megabytes, as sbatch reads it (not gigabytes)."""
    found = _MEM.fullmatch(text) if isinstance(text, str) else None
    if not found:
        raise _refuse(option, text, MEM_FORMS)
    megabytes = math.ceil(int(found["number"]) * _MB_PER_UNIT[found["unit"].upper()])
    if megabytes < 1:
        raise _refuse(option, text, MEM_FORMS + "; more than 0")
    return megabytes


def format_mem(megabytes: int) -> str:
    """sbatch text with an explicit unit, G where it divides evenly."""
    return f"{megabytes // 1024}G" if megabytes % 1024 == 0 else f"{megabytes}M"


def parse_gres(text: str, option: str = "--gres") -> tuple[str | None, int]:
    """(GPU type or None, count) from a GPU request as sbatch reads it; a bare TYPE:COUNT would name another GRES."""
    parts = text.split(":") if isinstance(text, str) else []
    if len(parts) == 2 and not _COUNT.fullmatch(parts[1]):
        parts.append("1")  # gpu:TYPE asks for one GPU of that type
    gpu_type, count = (parts[1] if len(parts) == 3 else None), (parts[-1] if len(parts) > 1 else "1")
    if (not parts or parts[0] != "gpu" or len(parts) > 3 or not _COUNT.fullmatch(count) or int(count) < 1
            or (gpu_type is not None and not NAME.fullmatch(gpu_type))):
        raise _refuse(option, text, GRES_FORMS)
    return gpu_type, int(count)


def format_gres(gpu_type: str | None, count: int = 1) -> str:
    return f"gpu:{gpu_type}:{count}" if gpu_type else f"gpu:{count}"


def _check(option: str, value: str, pattern: re.Pattern, forms: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _refuse(option, value, forms)
    return value


def check_slurm_name(option: str, value: str) -> str:
    """A partition, account, QoS, reservation or GPU type name."""
    return _check(option, value, NAME, NAME_FORMS)


def check_node_list(option: str, value: str) -> str:
    """A node list for --exclude (or --nodelist), in Slurm's hostlist form."""
    return _check(option, value, NODE_LIST, NODE_LIST_FORMS)


def check_constraint(option: str, value: str) -> str:
    """A --constraint expression: feature names and sbatch's operators, no spaces or shell characters."""
    return _check(option, value, CONSTRAINT, CONSTRAINT_FORMS)


def resolve_sbatch_key(key: str, item: str, option: str = "--sbatch") -> str:
    """The sbatch option a key names, as getopt_long reads it: the option of that name, else the one option
    it begins (a unique prefix); refused where sbatch has none or several."""
    if not isinstance(key, str) or not SBATCH_KEY.fullmatch(key):
        raise _refuse(option, item, SBATCH_FORMS)
    if key in SBATCH_OPTIONS:
        return key
    begun = [name for name in SBATCH_OPTIONS if name.startswith(key)]
    if not begun:
        raise UserError(f"{option} {item!r}: sbatch has no option --{key}")
    if len(begun) > 1:
        raise UserError(f"{option} {item!r}: --{key} is short for several sbatch options ({', '.join('--' + b for b in begun)}); "
                        "give the option's whole name")
    return begun[0]


def check_sbatch_option(key: str, value: str | bool, option: str = "--sbatch") -> tuple[str, str | bool]:
    """One further sbatch option, (KEY, VALUE) with KEY sbatch's long option without '--' (or a prefix that
    sbatch reads as one) and VALUE one line, or True for an option given alone: (its whole name, the value).
    Refused where the harness writes the option itself, or sbatch would not read the value."""
    item = key if value is True else f"{key}={value}"
    name = resolve_sbatch_key(key, item, option)
    spelled = f"--{key} is --{name} to sbatch: " if name != key else ""
    if name in RESERVED:
        raise UserError(f"{option} {item!r}: {spelled}the harness sets --{name} itself; {RESERVED[name]}")
    if value is True and SBATCH_OPTIONS[name] == "required":
        raise UserError(f"{option} {item!r}: {spelled}--{name} takes a value; give {name}=VALUE")
    if value is not True and SBATCH_OPTIONS[name] == "none":
        raise UserError(f"{option} {item!r}: {spelled}--{name} takes no value; give it alone, as {option} {name}")
    if value is not True and (not isinstance(value, str) or not value or CONTROL.search(value)):
        raise _refuse(option, item, SBATCH_FORMS)
    if name == "dependency" and not DEPENDENCY.fullmatch(str(value)):
        raise _refuse(f"{option} dependency=", str(value), "TYPE:JOBID[:JOBID...] with TYPE after, afterany, afterok, "
                      "afternotok, aftercorr or afterburstbuffer, or singleton, several joined by ',' (all) or '?' (any)")
    return name, value


def parse_sbatch_extra(items: list[str], option: str = "--sbatch") -> dict[str, str | bool]:
    """Repeatable sbatch options typed as KEY=VALUE, or KEY alone for an option that takes no value
    (check_sbatch_option); an option given twice, under any of its names, is refused."""
    pairs = []
    for item in items:
        key, equals, value = item.partition("=") if isinstance(item, str) else ("", "", "")
        if equals and not value:
            raise _refuse(option, item, SBATCH_FORMS)
        pairs.append((key, value if equals else True))
    return check_sbatch_options(pairs, option)


def check_sbatch_options(pairs: list[tuple[str, str | bool]], option: str = "--sbatch") -> dict[str, str | bool]:
    extra: dict[str, str | bool] = {}
    for key, value in pairs:
        name, value = check_sbatch_option(key, value, option)
        if name in extra:
            raise UserError(f"{option} {name}= is given twice ({extra[name]!r} and {value!r}); give it once")
        extra[name] = value
    return extra
