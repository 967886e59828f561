"""The GPUs of a partition as the site names them (the GRES type, gpu:p100:2, else a node feature such as
tesla_v100), and whether the torch the jobs will run can run them (harness.gpus holds the names and the
rule): `harness cluster` shows it for every GPU partition, and a sweep to a partition whose GPUs that
torch cannot run, or cannot do the arithmetic asked (bf16, TF32), is refused before anything is queued.

Where the model cannot be told (an untyped GRES, no feature naming a GPU) nothing is refused: the job
checks its GPU when it starts. Where every GPU node is this machine (a loopback NodeAddr, as on the
local test clusters) and it has no NVIDIA GPU, the jobs run on the CPU and there is nothing to check.
"""
import ipaddress
import re
from dataclasses import dataclass

from harness.cluster.slurm.profile import Profile
from harness.cluster.slurm.site import NodeInfo, Site, expand_hostlist
from harness.errors import UserError
from harness.gpus import (
    Capability,
    GpuModel,
    TorchBuild,
    capability_text,
    has_nvidia_gpu,
    install_fix,
    model_named,
    parse_capability,
    precision_refusal,
    read_torch_build,
    runs_on,
)

# A --constraint of feature names joined by '&' (every one required), the form this check reads; with any
# other ('|', brackets, counts) it cannot tell which nodes a job may get.
_ALL_OF = re.compile(r"[A-Za-z0-9_.\-]+(&[A-Za-z0-9_.\-]+)*")
GPU_COLUMNS = ("gpu_model", "capability", "torch_runs_it")  # harness cluster's, for each partition with GPUs


def node_models(node: NodeInfo) -> tuple[GpuModel, ...]:
    """The GPU models a node's GRES types name, else those its features name; () where neither tells."""
    for names in (node.gpu_types, node.features):
        models = {model for model in map(model_named, names) if model}
        if models:
            return tuple(sorted(models, key=lambda model: model.capability))
    return ()


def _loopback(addr: str) -> bool:
    try:
        return addr == "localhost" or ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class PartitionGpus:
    """The GPUs a partition's jobs may be given: the models named (or stated by a profile's gpu_capability,
    where the name says nothing), and the nodes whose GPUs' model cannot be told."""

    partition: str
    models: tuple[GpuModel, ...]
    unknown: tuple[str, ...]
    stated: tuple[GpuModel, ...]  # those of models a profile's gpu_capability stands for
    cpu_here: bool  # every GPU node is this machine, which has no NVIDIA GPU: the jobs run on the CPU


def partition_gpus(name: str, nodes: list[NodeInfo], stated: Capability | None = None) -> PartitionGpus:
    """What these GPU nodes of partition `name` hold; stated: the capability of those no name tells."""
    named: set[GpuModel] = set()
    by_profile: set[GpuModel] = set()
    unknown = []
    for node in nodes:
        found = node_models(node)
        named.update(found)
        if not found and stated:
            by_profile.add(GpuModel(min(node.gpu_types, default="untyped").upper(), stated))
        elif not found:
            unknown.append(node.name)
    cpu_here = bool(nodes) and all(_loopback(node.addr) for node in nodes) and not has_nvidia_gpu()
    return PartitionGpus(name, tuple(sorted(named | by_profile, key=lambda m: (m.capability, m.name))), tuple(unknown),
                         tuple(by_profile), cpu_here)


def stated_capability(profile: Profile) -> Capability | None:
    return parse_capability(profile.gpu_capability) if profile.gpu_capability else None


def _gpu_nodes(site: Site, partition: str, gpus: bool = True) -> list[NodeInfo]:
    """The partition's nodes that Slurm describes: those with GPUs, or all where gpus is False."""
    names = site.partitions[partition].nodes if partition in site.partitions else ()
    return [site.nodes[n] for n in names if n in site.nodes and (site.nodes[n].gpus or not gpus)]


def sweep_nodes(site: Site, profile: Profile, gpus: bool = True) -> tuple[list[NodeInfo], bool]:
    """The nodes a sweep's training jobs may be given (its partition's: with GPUs of its GRES type, or any where
    `gpus` is False, as for --device cpu runs; less --exclude, with every feature of --constraint), and whether
    that is all of them (False where the constraint is of a form this check does not read)."""
    nodes = _gpu_nodes(site, profile.gpu_partition or "", gpus)
    if gpus and profile.gpu_type:
        nodes = [n for n in nodes if profile.gpu_type in n.gpu_types]
    if profile.exclude:
        excluded = set(expand_hostlist(profile.exclude))
        nodes = [n for n in nodes if n.name not in excluded]
    if not profile.constraint:
        return nodes, True
    if not _ALL_OF.fullmatch(profile.constraint):
        return nodes, False
    wanted = set(profile.constraint.split("&"))
    return [n for n in nodes if wanted <= n.features], True


def arch_refusal(gpus: PartitionGpus, model: GpuModel, build: TorchBuild) -> str:
    """One line: the partition, its GPU, the capability, the build's range, the fix."""
    return (f"partition {gpus.partition}: the jobs' torch cannot run its {model.name} GPUs (compute capability "
            f"{capability_text(model.capability)}): {build.describe()}; {install_fix(model.capability)}")


def check_sweep_gpus(site: Site, profile: Profile, precisions: set[str]) -> None:
    """Refuse, in one line, a sweep whose GPUs cannot do the arithmetic asked, or cannot run the torch the
    jobs will run (the profile's python, else this one: asked only where there is a GPU to check). With
    a constraint this check cannot read, only where none of the partition's GPUs would do."""
    nodes, every_node = sweep_nodes(site, profile)
    gpus = partition_gpus(profile.gpu_partition or "", nodes, stated_capability(profile))
    if gpus.cpu_here or not gpus.models:
        return
    refusals = [why for why in (precision_refusal(m.name, m.capability, precisions) for m in gpus.models) if why]
    if refusals and (every_node or len(refusals) == len(gpus.models) and not gpus.unknown):
        raise UserError(f"partition {gpus.partition}: {refusals[0]}")
    build = read_torch_build(profile.python)
    if build.unreadable:
        return  # the job's own check stands, when it starts
    cannot = [m for m in gpus.models if not runs_on(m.capability, build.arch)]
    if cannot and (every_node or len(cannot) == len(gpus.models) and not gpus.unknown):
        raise UserError(arch_refusal(gpus, cannot[0], build))


def _verdict(gpus: PartitionGpus, build: TorchBuild | None) -> str:
    if gpus.cpu_here:
        return "on the CPU"
    if build is None or build.unreadable or not gpus.models:
        return "unknown"
    runs = [runs_on(m.capability, build.arch) for m in gpus.models]
    return ("yes" if all(runs) else "no" if not any(runs) else "some") + (", some unknown" if gpus.unknown else "")


def _notes(gpus: PartitionGpus, build: TorchBuild | None) -> list[str]:
    name = gpus.partition
    if gpus.cpu_here:
        return [f"partition {name}: its GPU nodes are this machine (a loopback NodeAddr), which has no NVIDIA GPU: "
                "the jobs run on the CPU"]
    notes = [f"partition {name}: the model of the GPUs of {', '.join(gpus.unknown)} cannot be told (an untyped GRES, "
             "no node feature naming one): a sweep goes through, and the job checks its GPU when it starts; a profile's "
             'gpu_capability = "6.0" states it'] if gpus.unknown else []
    if build is not None and not build.unreadable:
        notes += [arch_refusal(gpus, m, build) for m in gpus.models if not runs_on(m.capability, build.arch)]
    return notes


def gpu_columns(site: Site, stated_for: tuple[str, Capability] | None, python: str | None) -> tuple[dict[str, dict], list[str]]:
    """`harness cluster`'s GPU columns of each GPU partition (its GPU models, their compute capability, and
    whether the jobs' torch runs them), and the lines under the table that say why. stated_for: the
    partition a profile's gpu_capability speaks of, and the capability; python: the profile's."""
    stated = dict([stated_for] if stated_for else [])
    nodes = {name: _gpu_nodes(site, name) for name in site.partitions}
    partitions = [partition_gpus(name, nodes[name], stated.get(name)) for name in site.partitions if nodes[name]]
    needs_build = any(gpus.models and not gpus.cpu_here for gpus in partitions)
    build = read_torch_build(python) if needs_build else None
    columns = {gpus.partition: dict(zip(GPU_COLUMNS, (
        [m.name for m in gpus.models] + (["unknown"] if gpus.unknown else []),
        [capability_text(m.capability) + (" (stated)" if m in gpus.stated else "") for m in gpus.models],
        _verdict(gpus, build)))) for gpus in partitions}
    notes = ([f"the jobs' torch: {build.describe()}"] if build else []) + [n for gpus in partitions for n in _notes(gpus, build)]
    return columns, notes
