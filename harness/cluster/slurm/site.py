"""What a Slurm site offers, read from scontrol, and the sweep defaults that follow from it.

`read_site()` asks scontrol for partitions, nodes and configuration (three calls, argument lists, never
a shell); `derive_settings()` turns that into a sweep's partitions, GRES, CPUs, memory, time and array
throttle, each with a note of where it came from; `settings_as_toml()` writes them as a profile to edit
and keep. Imports nothing heavy: `python -m harness status` and `harness cluster` load it.
"""
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field

from harness.cluster.slurm.sbatch import format_gres, format_mem, format_time, parse_time
from harness.errors import UserError

SCONTROL_TIMEOUT_S = 15
TRAIN_TIME_FALLBACK_MIN = 240  # when a GPU partition sets no DefaultTime; also the cap on its MaxTime
PREPROCESS_TIME_FALLBACK_MIN = 120
PREPROCESS_MAX_CPUS = 16  # the image cache is built by a process pool: more cores help little
MAX_ARRAY_PARALLELISM = 8  # a polite default on a shared site; the profile can raise it
NO_LIMIT = {"UNLIMITED", "INFINITE", "NONE"}
GPU_PARTITION_OPTION = "--partition"  # the sweep's option naming the training tasks' partition
NO_SLURM = ("no Slurm answers here ({}); run this where sbatch works (a login node), "
            "or start the local cluster with slurm/local-cluster up")

# A key of `scontrol show ... -o` output: values may hold spaces (OS=Linux 6.1 #1 SMP, Reason=...).
_FIELD_KEY = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_]*)=")
_CONFIG_LINE = re.compile(r"(\S+)\s*=\s*(.*)")
_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_RANGE = re.compile(r"([0-9]+)(?:-([0-9]+))?")
_SOCKETS = re.compile(r"\([^)]*\)")  # gpu:a100:4(S:0-1): the socket binding, not part of the count


@dataclass(frozen=True)
class NodeInfo:
    name: str
    cpus: int
    mem_mb: int  # RealMemory less MemSpecLimit: what jobs may use
    gpus: int
    gpu_types: frozenset[str]
    features: frozenset[str] = frozenset()  # AvailableFeatures (Features before Slurm 17.11): --constraint's names
    addr: str = ""  # NodeAddr: where Slurm reaches the node


@dataclass(frozen=True)
class PartitionInfo:
    name: str
    nodes: tuple[str, ...]
    is_default: bool
    state: str  # UP, DOWN, DRAIN or INACTIVE
    max_time_min: int | None  # None: no limit
    default_time_min: int | None  # None: not set (a job gets MaxTime)
    cpus_per_node: int  # on its smallest node, so that a job fits on every node; 0 without nodes
    mem_mb_per_node: int
    gpus_per_node: int  # on its GPU node with the fewest GPUs; 0: no GPUs
    gpu_types: frozenset[str]
    gpu_nodes: int
    cpu_only_nodes: int
    total_gpus: int
    cpus_per_gpu: int  # a GPU's share of its node, the smallest over the GPU nodes
    mem_mb_per_gpu: int


@dataclass(frozen=True)
class Site:
    cluster_name: str
    max_array_size: int  # array indices run 0 .. max_array_size - 1
    partitions: dict[str, PartitionInfo]
    nodes: dict[str, NodeInfo] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """A sweep's defaults on one site; `sources` says, per field, where each value came from."""
    cluster_name: str
    gpu_partition: str
    gres: str
    cpus_per_task: int
    mem_mb: int
    time_min: int
    cpu_partition: str
    preprocess_cpus: int
    preprocess_mem_mb: int
    preprocess_time_min: int
    array_parallelism: int
    max_array_size: int
    sources: dict[str, str]


# ---- reading scontrol's output ------------------------------------------------------------------

def parse_fields(line: str) -> dict[str, str]:
    """KEY=VALUE pairs of one `scontrol show ... -o` line."""
    keys = list(_FIELD_KEY.finditer(line))
    ends = [key.start() for key in keys[1:]] + [len(line)]
    return {key.group(1): line[key.end():end].strip() for key, end in zip(keys, ends)}


def parse_config(text: str) -> dict[str, str]:
    """`scontrol show config`: the `Key = Value` lines up to the first blank line after them."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() and values:
            break  # later sections (plugins, controller status) are not slurm.conf settings
        found = _CONFIG_LINE.fullmatch(line.strip())
        if found:
            values[found.group(1)] = found.group(2).strip()
    return values


def _split_outside_brackets(text: str) -> list[str]:
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    return [item for item in items + [text[start:]] if item]


def _expand_host(item: str) -> list[str]:
    found = _BRACKET.search(item)
    if not found:
        return [item]
    prefix, suffix, names = item[:found.start()], item[found.end():], []
    for part in found.group(1).split(","):
        bounds = _RANGE.fullmatch(part)
        if not bounds:
            raise UserError(f"cannot read the Slurm node list {item!r}: {part!r} is not N or N-M")
        low, high = bounds.group(1), bounds.group(2) or bounds.group(1)
        for number in range(int(low), int(high) + 1):
            names += _expand_host(f"{prefix}{number:0{len(low)}d}{suffix}")
    return names


def expand_hostlist(text: str) -> list[str]:
    """Slurm's node list form, `gpu[01-02],cpu01` or `r[1-2]n[01,03]`, as node names (zero padding kept)."""
    return [name for item in _split_outside_brackets(text) for name in _expand_host(item)]


def parse_gpus(gres: str) -> tuple[int, frozenset[str]]:
    """(GPU count, GPU types) of a node's Gres: gpu:TYPE:N or gpu:N, comma-separated, maybe with (S:0-1)."""
    count, types = 0, set()
    for item in _SOCKETS.sub("", gres).split(","):
        parts = item.split(":")
        if parts[0] != "gpu" or len(parts) < 2 or not parts[-1].isdigit():
            continue  # (null), or another GRES (mps, shard)
        count += int(parts[-1])
        if len(parts) >= 3:
            types.add(parts[1])
    return count, frozenset(types)


def _int(fields: dict[str, str], key: str, what: str) -> int:
    value = fields.get(key, "")
    if not value.isdigit():
        raise UserError(f"cannot read {what}: {key}={value!r} is not a whole number")
    return int(value)


def _node(fields: dict[str, str]) -> NodeInfo:
    what = f"scontrol show node ({fields.get('NodeName', '?')})"
    cpus = _int(fields, "CPUEfctv" if "CPUEfctv" in fields else "CPUTot", what)
    mem = _int(fields, "RealMemory", what) - (_int(fields, "MemSpecLimit", what) if "MemSpecLimit" in fields else 0)
    gpus, types = parse_gpus(fields.get("Gres", ""))
    features = fields.get("AvailableFeatures", fields.get("Features", ""))
    return NodeInfo(fields["NodeName"], cpus, mem, gpus, types,
                    frozenset(f for f in features.split(",") if f and f != "(null)"), fields.get("NodeAddr", ""))


def parse_nodes(text: str) -> dict[str, NodeInfo]:
    """`scontrol show node -o`, one node a line."""
    nodes = (_node(fields) for fields in map(parse_fields, text.splitlines()) if "NodeName" in fields)
    return {node.name: node for node in nodes}


def _limit_min(value: str, what: str) -> int | None:
    return None if value.upper() in NO_LIMIT else parse_time(value, option=what)


def _cap(value: int, limit: str) -> int:
    """A node's CPUs or memory under a partition's MaxCPUsPerNode / MaxMemPerNode."""
    return min(value, int(limit)) if limit.isdigit() else value


def _partition(fields: dict[str, str], all_nodes: dict[str, NodeInfo]) -> PartitionInfo:
    name = fields["PartitionName"]
    listed = fields.get("Nodes", "")
    names = list(all_nodes) if listed == "ALL" else expand_hostlist("" if listed == "(null)" else listed)
    nodes = [all_nodes[n] for n in names if n in all_nodes]
    gpu_nodes = [n for n in nodes if n.gpus]
    cpus = {n.name: _cap(n.cpus, fields.get("MaxCPUsPerNode", "")) for n in nodes}
    mem = {n.name: _cap(n.mem_mb, fields.get("MaxMemPerNode", "")) for n in nodes}
    return PartitionInfo(
        name=name, nodes=tuple(names), is_default=fields.get("Default") == "YES", state=fields.get("State", ""),
        max_time_min=_limit_min(fields.get("MaxTime", "UNLIMITED"), f"partition {name} MaxTime"),
        default_time_min=_limit_min(fields.get("DefaultTime", "NONE"), f"partition {name} DefaultTime"),
        cpus_per_node=min(cpus.values(), default=0), mem_mb_per_node=min(mem.values(), default=0),
        gpus_per_node=min((n.gpus for n in gpu_nodes), default=0),
        gpu_types=frozenset().union(*(n.gpu_types for n in gpu_nodes)),
        gpu_nodes=len(gpu_nodes), cpu_only_nodes=len(nodes) - len(gpu_nodes), total_gpus=sum(n.gpus for n in gpu_nodes),
        cpus_per_gpu=min((cpus[n.name] // n.gpus for n in gpu_nodes), default=0),
        mem_mb_per_gpu=min((mem[n.name] // n.gpus for n in gpu_nodes), default=0))


def parse_partitions(text: str, nodes: dict[str, NodeInfo]) -> dict[str, PartitionInfo]:
    """`scontrol show partition -o`, one partition a line, in scontrol's order."""
    found = (fields for fields in map(parse_fields, text.splitlines()) if "PartitionName" in fields)
    return {fields["PartitionName"]: _partition(fields, nodes) for fields in found}


def parse_site(partition_text: str, node_text: str, config_text: str) -> Site:
    config = parse_config(config_text)
    for key in ("ClusterName", "MaxArraySize"):
        if key not in config:
            raise UserError(f"cannot read scontrol show config: it prints no {key}")
    max_array = _int(config, "MaxArraySize", "scontrol show config")
    nodes = parse_nodes(node_text)
    return Site(config["ClusterName"], max_array, parse_partitions(partition_text, nodes), nodes)


def _scontrol(*args: str) -> str:
    command = ["scontrol", *args]
    if shutil.which("scontrol") is None:
        raise UserError(NO_SLURM.format("scontrol is not on PATH"))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=SCONTROL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UserError(NO_SLURM.format(f"{' '.join(command)} did not answer within {SCONTROL_TIMEOUT_S} s")) from None
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise UserError(NO_SLURM.format(f"{' '.join(command)}: {why}"))
    return done.stdout


def read_site() -> Site:
    """This site as scontrol describes it; one UserError when Slurm does not answer."""
    return parse_site(_scontrol("show", "partition", "-o"), _scontrol("show", "node", "-o"),
                      _scontrol("show", "config"))


# ---- deriving a sweep's settings ----------------------------------------------------------------

def _named(site: Site, option: str, name: str) -> PartitionInfo:
    if name not in site.partitions:
        raise UserError(f"{option} {name!r} is not a partition of cluster {site.cluster_name}; "
                        f"it has: {', '.join(site.partitions) or 'none'}")
    if not site.partitions[name].nodes:
        raise UserError(f"{option} {name!r}: partition {name} has no nodes")
    return site.partitions[name]


def _named_source(option: str, partition: PartitionInfo) -> str:
    return f"named with {option}" + ("" if partition.state == "UP" else f"; the partition is {partition.state}")


def _gpu_partition(site: Site, name: str | None) -> tuple[PartitionInfo, str]:
    if name is not None:
        partition = _named(site, GPU_PARTITION_OPTION, name)
        if not partition.total_gpus:
            names = [p.name for p in site.partitions.values() if p.total_gpus]
            raise UserError(f"{GPU_PARTITION_OPTION} {name!r} has no GPUs; partitions with GPUs: {', '.join(names) or 'none'}")
        return partition, _named_source(GPU_PARTITION_OPTION, partition)
    with_gpus = [p for p in site.partitions.values() if p.total_gpus]
    usable = [p for p in with_gpus if p.state == "UP"]
    if len(usable) == 1:
        return usable[0], "the only partition with GPUs that is UP"
    listed = ", ".join(f"{p.name} ({p.state}, {p.total_gpus} GPUs)" for p in with_gpus) or "none"
    raise UserError(f"choose the GPU partition with {GPU_PARTITION_OPTION}; cluster {site.cluster_name} has "
                    f"{'several' if usable else 'no'} partitions with GPUs that are UP: {listed}")


def _cpu_partition(site: Site, name: str | None, gpu: PartitionInfo) -> tuple[PartitionInfo, str]:
    if name is not None:
        partition = _named(site, "--cpu-partition", name)
        return partition, _named_source("--cpu-partition", partition)
    default = next((p for p in site.partitions.values() if p.is_default), None)
    if default and default.state == "UP" and default.nodes and not default.gpu_nodes:
        return default, "the cluster's default partition, CPU-only"
    cpu_only = [p for p in site.partitions.values() if p.state == "UP" and p.cpu_only_nodes]
    if cpu_only:
        best = max(cpu_only, key=lambda p: p.cpu_only_nodes)  # the first in scontrol's order on a tie
        return best, f"the partition with the most CPU-only nodes ({best.cpu_only_nodes})"
    return gpu, "no partition has CPU-only nodes: the GPU partition, asking no GPU"


def _gres(gpu: PartitionInfo) -> tuple[str, str]:
    if len(gpu.gpu_types) == 1:
        (only,) = gpu.gpu_types
        return format_gres(only), f"{gpu.name} has one GPU type"
    if gpu.gpu_types:
        return format_gres(None), f"{gpu.name} has GPU types {', '.join(sorted(gpu.gpu_types))}: any of them"
    return format_gres(None), f"{gpu.name}'s GPUs have no type"


def _time(partition: PartitionInfo, fallback_min: int) -> tuple[int, str]:
    """DefaultTime, else MaxTime up to the fallback, else the fallback."""
    if partition.default_time_min is not None:
        return partition.default_time_min, f"DefaultTime of {partition.name}"
    if partition.max_time_min is not None:
        if partition.max_time_min <= fallback_min:
            return partition.max_time_min, f"MaxTime of {partition.name} (no DefaultTime)"
        return fallback_min, f"MaxTime {format_time(partition.max_time_min)} of {partition.name}, capped at {format_time(fallback_min)}"
    return fallback_min, f"{partition.name} sets neither DefaultTime nor MaxTime: the harness's {format_time(fallback_min)}"


def derive_settings(site: Site, gpu_partition: str | None = None, cpu_partition: str | None = None) -> Settings:
    """A sweep's defaults on this site: one GPU per training task with its node's share of CPUs and memory."""
    gpu, gpu_source = _gpu_partition(site, gpu_partition)
    cpu, cpu_source = _cpu_partition(site, cpu_partition, gpu)
    gres, gres_source = _gres(gpu)
    time_min, time_source = _time(gpu, TRAIN_TIME_FALLBACK_MIN)
    pre_time, pre_time_source = _time(cpu, PREPROCESS_TIME_FALLBACK_MIN)
    pre_cpus = min(cpu.cpus_per_node, PREPROCESS_MAX_CPUS)
    parallelism = max(1, min(gpu.total_gpus, MAX_ARRAY_PARALLELISM))
    share = f"the smallest over its {gpu.gpu_nodes} GPU nodes"
    return Settings(
        cluster_name=site.cluster_name, gpu_partition=gpu.name, gres=gres,
        cpus_per_task=max(1, gpu.cpus_per_gpu), mem_mb=gpu.mem_mb_per_gpu, time_min=time_min,
        cpu_partition=cpu.name, preprocess_cpus=pre_cpus,
        preprocess_mem_mb=cpu.mem_mb_per_node * pre_cpus // cpu.cpus_per_node, preprocess_time_min=pre_time,
        array_parallelism=parallelism, max_array_size=site.max_array_size,
        sources={
            "gpu_partition": gpu_source, "gres": gres_source,
            "cpus_per_task": f"{gpu.name}: a node's CPUs / its GPUs, {share}",
            "mem_mb": f"{gpu.name}: a node's memory / its GPUs, {share}", "time_min": time_source,
            "cpu_partition": cpu_source,
            "preprocess_cpus": f"{cpu.name}: a node's {cpu.cpus_per_node} CPUs, at most {PREPROCESS_MAX_CPUS}",
            "preprocess_mem_mb": f"{cpu.name}: a node's memory, in proportion to those CPUs",
            "preprocess_time_min": pre_time_source,
            "array_parallelism": f"the {gpu.total_gpus} GPUs of {gpu.name}, at most {MAX_ARRAY_PARALLELISM}",
            "max_array_size": f"MaxArraySize of cluster {site.cluster_name}: array indices 0-{site.max_array_size - 1}",
        })


# ---- showing and keeping them -------------------------------------------------------------------

def _profile_values(settings: Settings) -> list[tuple[str, str | int, str]]:
    """(profile key, value, source) in the order a profile lists them; memory and time as sbatch text."""
    s, why = settings, settings.sources
    return [
        ("cpu_partition", s.cpu_partition, why["cpu_partition"]),
        ("gpu_partition", s.gpu_partition, why["gpu_partition"]),
        ("gres", s.gres, why["gres"]),
        ("cpus_per_task", s.cpus_per_task, why["cpus_per_task"]),
        ("mem", format_mem(s.mem_mb), why["mem_mb"]),
        ("time", format_time(s.time_min), why["time_min"]),
        ("preprocess_cpus", s.preprocess_cpus, why["preprocess_cpus"]),
        ("preprocess_mem", format_mem(s.preprocess_mem_mb), why["preprocess_mem_mb"]),
        ("preprocess_time", format_time(s.preprocess_time_min), why["preprocess_time_min"]),
        ("array_parallelism", s.array_parallelism, why["array_parallelism"]),
    ]


def settings_table(settings: Settings) -> list[tuple[str, str, str]]:
    """(setting, value, source) rows for the `harness cluster` table."""
    rows = [(key, str(value), source) for key, value, source in _profile_values(settings)]
    return rows + [("max_array_size", str(settings.max_array_size), settings.sources["max_array_size"])]


def settings_as_toml(settings: Settings) -> str:
    """A profile for this site, each derived value with its source: edit it and keep it under slurm/profiles/."""
    lines = [f"# Derived from Slurm cluster {settings.cluster_name} by `harness cluster`: edit and keep.",
             f"# MaxArraySize is {settings.max_array_size}: a job array here holds at most that many tasks.",
             "# Memory and time are sbatch text: 8000M, 8G; 90, 04:00:00, 1-12:00:00."]
    # json.dumps writes a valid TOML basic string (quotes, backslashes and control characters escaped).
    lines += [f"{key} = {json.dumps(value)}  # {source}" for key, value, source in _profile_values(settings)]
    lines += [
        '# account = "my-project"',
        '# qos = "normal"',
        '# constraint = "a100&ib"  # sbatch --constraint',
        '# exclude = "gpu[07-08]"  # sbatch --exclude',
        '# reservation = "my-reservation"',
        '# python = "apptainer exec --nv /shared/harness.sif python"  # the Python the jobs run: its torch must have the GPUs\' sm_XY',
        '# gpu_capability = "6.0"  # the GPUs\' compute capability, where no GRES type or node feature names their model',
        "# shell lines each job runs first, e.g. [\"module load cuda/12.1\", \"source /shared/venv/bin/activate\"]",
        "setup = []",
        "",
        "# further sbatch options, KEY = \"VALUE\" (sbatch's long option without --), or KEY = true for one that takes none",
        "[sbatch]",
        '# wckey = "my-project"  # the site\'s accounting key: without one, the site\'s default for you',
        '# mail-type = "END"',
    ]
    return "\n".join(lines) + "\n"
