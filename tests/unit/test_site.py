"""harness.cluster.slurm.site: scontrol's output read into a Site, and a sweep's defaults derived from it.

The recordings: the local cluster (slurm/local-cluster: gpu with 2 x gpu:p100:2 nodes, compute with two
CPU nodes, both without time limits), and a synthetic second site in scontrol's own format (batch, the
CPU-only default partition with DefaultTime; a100 with 3 x gpu:a100:4(S:0-1), 64 CPUs, 512000 MB, MaxTime
2 days; MaxArraySize=5). See data/README.md.
"""
import shutil
import subprocess
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from harness.cluster.slurm import site as site_module
from harness.cluster.slurm.sbatch import parse_gres, parse_mem, parse_time
from harness.cluster.slurm.site import (
    derive_settings,
    expand_hostlist,
    parse_config,
    parse_fields,
    parse_gpus,
    parse_site,
    read_site,
    settings_as_toml,
    settings_table,
)
from harness.errors import UserError

from patience import HUNG_S

DATA = Path(__file__).parent / "data"


def recorded(name: str) -> tuple[str, str, str]:
    return tuple((DATA / f"{name}-{kind}.txt").read_text() for kind in ("partition", "node", "config"))


@pytest.fixture
def local():
    return parse_site(*recorded("harness"))


@pytest.fixture
def other():
    return parse_site(*recorded("othersite"))


def test_local_cluster_as_scontrol_describes_it(local):
    assert (local.cluster_name, local.max_array_size, list(local.partitions)) == ("harness", 1001, ["gpu", "compute"])
    gpu, compute = local.partitions["gpu"], local.partitions["compute"]
    assert gpu.nodes == ("gpu01", "gpu02") and not gpu.is_default and gpu.state == "UP"
    assert (gpu.max_time_min, gpu.default_time_min) == (None, None)  # MaxTime=UNLIMITED, DefaultTime=NONE
    assert (gpu.cpus_per_node, gpu.mem_mb_per_node, gpu.gpus_per_node, gpu.gpu_types) == (4, 8000, 2, {"p100"})
    assert (gpu.gpu_nodes, gpu.cpu_only_nodes, gpu.total_gpus, gpu.cpus_per_gpu, gpu.mem_mb_per_gpu) == (2, 0, 4, 2, 4000)
    assert compute.is_default and compute.nodes == ("cpu01", "cpu02")
    assert (compute.gpu_nodes, compute.cpu_only_nodes, compute.total_gpus, compute.gpu_types) == (0, 2, 0, set())


def test_local_cluster_settings(local):
    settings = derive_settings(local)
    assert (settings.gpu_partition, settings.gres, settings.cpus_per_task, settings.mem_mb) == ("gpu", "gpu:p100:1", 2, 4000)
    assert settings.time_min == 240 and "neither DefaultTime nor MaxTime" in settings.sources["time_min"]
    assert settings.cpu_partition == "compute" and "default partition" in settings.sources["cpu_partition"]
    assert (settings.preprocess_cpus, settings.preprocess_mem_mb, settings.preprocess_time_min) == (4, 8000, 120)
    assert (settings.array_parallelism, settings.max_array_size) == (4, 1001)
    assert settings.sources["gpu_partition"] == "the only partition with GPUs that is UP"


def test_other_site_settings(other):
    settings = derive_settings(other)
    assert (settings.cluster_name, settings.gpu_partition, settings.gres) == ("othersite", "a100", "gpu:a100:1")
    assert (settings.cpus_per_task, settings.mem_mb) == (16, 128000)  # 64 CPUs, 512000 MB per 4 GPUs
    assert settings.time_min == 240 and settings.sources["time_min"] == "MaxTime 2-00:00:00 of a100, capped at 04:00:00"
    assert settings.cpu_partition == "batch"
    assert (settings.preprocess_cpus, settings.preprocess_mem_mb) == (16, 32000)  # 16 of 128 CPUs, 256000 MB
    assert settings.preprocess_time_min == 60 and settings.sources["preprocess_time_min"] == "DefaultTime of batch"
    assert (settings.array_parallelism, settings.max_array_size) == (8, 5)
    assert settings.sources["max_array_size"] == "MaxArraySize of cluster othersite: array indices 0-4"


def test_a_node_line_keeps_values_with_spaces():
    line = (DATA / "othersite-node.txt").read_text().splitlines()[-1]
    fields = parse_fields(line)
    assert fields["NodeName"] == "ga03" and fields["OS"] == "Linux 6.18.44-fc-v595 #1 SMP PREEMPT_DYNAMIC @0"
    assert fields["Reason"] == "GPU ECC error on gpu2 [root@2026-11-20T10:00:00]"
    assert (fields["Gres"], fields["State"], fields["CfgTRES"]) == \
        ("gpu:a100:4(S:0-1)", "DOWN+DRAIN", "cpu=64,mem=512000M,billing=64,gres/gpu=4")


def test_config_stops_at_the_controller_status():
    config = parse_config((DATA / "harness-config.txt").read_text())
    assert (config["ClusterName"], config["MaxArraySize"], config["DefMemPerCPU"]) == ("harness", "1001", "1000")
    assert not any(key.startswith("Slurmctld(primary)") for key in config)


@pytest.mark.parametrize("gres, parsed", [
    ("(null)", (0, set())), ("", (0, set())), ("gpu:2", (2, set())), ("gpu:p100:2", (2, {"p100"})),
    ("gpu:a100:4(S:0-1)", (4, {"a100"})), ("gpu:a100:2(S:0),gpu:v100:2(S:1)", (4, {"a100", "v100"})),
    ("mps:200,gpu:1", (1, set())), ("gpu:a100:2(S:0,2)", (2, {"a100"}))])
def test_parse_gpus(gres, parsed):
    assert parse_gpus(gres) == parsed


HOSTLISTS = {
    "gpu[01-02],cpu01": ["gpu01", "gpu02", "cpu01"],
    "cn[001-003,010]": ["cn001", "cn002", "cn003", "cn010"],
    "node[8-10]": ["node8", "node9", "node10"],
    "r[1-2]n[01,03]": ["r1n01", "r1n03", "r2n01", "r2n03"],
    "gpu01": ["gpu01"],
    "a-b.c[1-2]": ["a-b.c1", "a-b.c2"],
}


@pytest.mark.parametrize("text", HOSTLISTS)
def test_expand_hostlist(text):
    assert expand_hostlist(text) == HOSTLISTS[text]


# Found at import, before conftest fences Slurm's commands off: `scontrol show hostnames` expands locally and
# asks no controller, so this test needs no cluster.
SCONTROL = shutil.which("scontrol")


@pytest.mark.skipif(SCONTROL is None, reason="scontrol is not on PATH")
@pytest.mark.parametrize("text", HOSTLISTS)
def test_expand_hostlist_agrees_with_scontrol(text):
    done = subprocess.run([str(SCONTROL), "show", "hostnames", text], capture_output=True, text=True, timeout=HUNG_S)
    assert expand_hostlist(text) == done.stdout.split()


def test_expand_hostlist_refuses_a_range_it_cannot_read():
    with pytest.raises(UserError, match=r"cannot read the Slurm node list 'gpu\[a-b\]'"):
        expand_hostlist("gpu[a-b]")


def test_time_is_max_time_when_below_the_cap(other):
    a100 = replace(other.partitions["a100"], max_time_min=120)
    settings = derive_settings(replace(other, partitions={**other.partitions, "a100": a100}))
    assert settings.time_min == 120 and settings.sources["time_min"] == "MaxTime of a100 (no DefaultTime)"


def test_several_gpu_partitions_need_a_name(other):
    v100 = replace(other.partitions["a100"], name="v100", gpu_types=frozenset({"v100"}))
    site = replace(other, partitions={**other.partitions, "v100": v100})
    with pytest.raises(UserError, match=r"^choose the GPU partition with --partition; cluster othersite has "
                                        r"several partitions with GPUs that are UP: a100 \(UP, 12 GPUs\), v100"):
        derive_settings(site)
    settings = derive_settings(site, gpu_partition="v100")
    assert (settings.gpu_partition, settings.gres, settings.sources["gpu_partition"]) == ("v100", "gpu:v100:1", "named with --partition")


def test_a_partition_of_two_gpu_types_asks_any_gpu(other):
    mixed = replace(other.partitions["a100"], gpu_types=frozenset({"a100", "v100"}))
    settings = derive_settings(replace(other, partitions={**other.partitions, "a100": mixed}))
    assert settings.gres == "gpu:1" and settings.sources["gres"] == "a100 has GPU types a100, v100: any of them"


def test_gpus_without_a_type_ask_any_gpu(other):
    untyped = replace(other.partitions["a100"], gpu_types=frozenset())
    settings = derive_settings(replace(other, partitions={**other.partitions, "a100": untyped}))
    assert settings.gres == "gpu:1" and settings.sources["gres"] == "a100's GPUs have no type"


def test_a_gpu_partition_that_is_down_is_not_chosen(other):
    down = replace(other.partitions["a100"], state="DOWN")
    site = replace(other, partitions={**other.partitions, "a100": down})
    with pytest.raises(UserError, match=r"has no partitions with GPUs that are UP: a100 \(DOWN, 12 GPUs\)"):
        derive_settings(site)
    assert derive_settings(site, gpu_partition="a100").sources["gpu_partition"] == "named with --partition; the partition is DOWN"


@pytest.mark.parametrize("options, message", [
    ({"gpu_partition": "nope"}, r"^--partition 'nope' is not a partition of cluster othersite; it has: batch, a100$"),
    ({"gpu_partition": "batch"}, r"^--partition 'batch' has no GPUs; partitions with GPUs: a100$"),
    ({"cpu_partition": "gpu\n"}, r"^--cpu-partition 'gpu\\n' is not a partition of cluster othersite"),
])
def test_named_partitions_are_checked(other, options, message):
    with pytest.raises(UserError, match=message):
        derive_settings(other, **options)


def test_cpu_partition_when_the_default_has_gpus(local):
    partitions = {"gpu": replace(local.partitions["gpu"], is_default=True),
                  "compute": replace(local.partitions["compute"], is_default=False)}
    settings = derive_settings(replace(local, partitions=partitions))
    assert settings.cpu_partition == "compute"
    assert settings.sources["cpu_partition"] == "the partition with the most CPU-only nodes (2)"


def test_without_cpu_only_nodes_preprocessing_runs_on_the_gpu_partition(other):
    settings = derive_settings(replace(other, partitions={"a100": other.partitions["a100"]}))
    assert settings.cpu_partition == "a100" and "no partition has CPU-only nodes" in settings.sources["cpu_partition"]
    assert (settings.preprocess_cpus, settings.preprocess_mem_mb, settings.preprocess_time_min) == (16, 128000, 120)


@pytest.mark.parametrize("name", ["harness", "othersite"])
def test_settings_as_toml_is_a_profile_that_reads_back(name):
    settings = derive_settings(parse_site(*recorded(name)))
    text = settings_as_toml(settings)
    profile = tomllib.loads(text)
    assert list(profile) == ["cpu_partition", "gpu_partition", "gres", "cpus_per_task", "mem", "time", "preprocess_cpus",
                             "preprocess_mem", "preprocess_time", "array_parallelism", "setup", "sbatch"]
    assert (profile["setup"], profile["sbatch"]) == ([], {})
    assert (profile["cpu_partition"], profile["gpu_partition"]) == (settings.cpu_partition, settings.gpu_partition)
    assert parse_gres(profile["gres"])[1] == 1 and profile["gres"] == settings.gres
    assert (parse_mem(profile["mem"]), parse_time(profile["time"])) == (settings.mem_mb, settings.time_min)
    assert (parse_mem(profile["preprocess_mem"]), parse_time(profile["preprocess_time"])) == (
        settings.preprocess_mem_mb, settings.preprocess_time_min)
    for key in ("cpus_per_task", "preprocess_cpus", "array_parallelism"):
        assert profile[key] == getattr(settings, key)
    # each derived value says where it came from
    assert f'time = "{profile["time"]}"  # {settings.sources["time_min"]}' in text.splitlines()


def test_settings_table_lists_every_value_with_its_source(other):
    table = settings_table(derive_settings(other))
    assert [row[0] for row in table][-1] == "max_array_size"
    assert ("mem", "125G", "a100: a node's memory / its GPUs, the smallest over its 3 GPU nodes") in table
    assert all(value and source for _, value, source in table)


def _fake_scontrol(monkeypatch, answer):
    calls = []

    def run(args, **kwargs):
        calls.append((args, kwargs))
        return answer(args)
    monkeypatch.setattr(site_module.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(site_module.subprocess, "run", run)
    return calls


def test_read_site_asks_scontrol_three_times_with_argument_lists(monkeypatch):
    texts = dict(zip(("partition", "node", "config"), recorded("othersite")))
    calls = _fake_scontrol(monkeypatch, lambda args: subprocess.CompletedProcess(args, 0, texts[args[2]], ""))
    assert read_site() == parse_site(*recorded("othersite"))
    assert [args for args, _ in calls] == [["scontrol", "show", "partition", "-o"], ["scontrol", "show", "node", "-o"],
                                           ["scontrol", "show", "config"]]
    assert all(kwargs.get("timeout") and not kwargs.get("shell") for _, kwargs in calls)


def test_read_site_when_the_controller_does_not_answer(monkeypatch):
    stderr = "slurm_load_partitions: Unable to contact slurm controller (connect failure)\n"
    _fake_scontrol(monkeypatch, lambda args: subprocess.CompletedProcess(args, 1, "", stderr))
    with pytest.raises(UserError, match=r"^no Slurm answers here \(scontrol show partition -o: slurm_load_partitions: "
                                        r"Unable to contact slurm controller \(connect failure\)\); run this where sbatch works"):
        read_site()


def test_read_site_when_scontrol_hangs(monkeypatch):
    def hang(args):
        raise subprocess.TimeoutExpired(args, 15)
    _fake_scontrol(monkeypatch, hang)
    with pytest.raises(UserError, match=r"^no Slurm answers here \(scontrol show partition -o did not answer within 15 s\)"):
        read_site()


def test_read_site_without_slurm(monkeypatch):
    monkeypatch.setattr(site_module.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match=r"^no Slurm answers here \(scontrol is not on PATH\)"):
        read_site()


def test_a_config_without_max_array_size_is_refused():
    partitions, nodes, config = recorded("harness")
    config = "\n".join(line for line in config.splitlines() if not line.startswith("MaxArraySize"))
    with pytest.raises(UserError, match="^cannot read scontrol show config: it prints no MaxArraySize$"):
        parse_site(partitions, nodes, config)
