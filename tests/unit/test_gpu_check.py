"""A torch that runs on the site's GPUs, known before anything is queued.

The site is an HPC-MARWAN-like Slurm cluster as scontrol describes it (data/marwan-*.txt, synthetic: P100
nodes with a typed GRES, a V100 node whose GRES is untyped but whose features say tesla_v100, a node that
says nothing), and the torch the jobs will run is a profile's `python`: a script printing the build it
stands for (torch 2.14's architecture list, today's on PyPI, or torch 2.7.1's, which holds sm_60).
"""
import json
import stat
from pathlib import Path

import pytest
import torch

from harness.cluster.slurm.site import parse_site
from harness.errors import UserError
from harness.gpus import arch_range, model_named, read_torch_build, runs_on
from harness.measure.meters import check_gpu_arch
from harness.training.config import TrainConfig
from harness.training.trainer import check_precision

from patience import HUNG_S

DATA = Path(__file__).parent / "data"
TORCH_2_14 = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]  # torch 2.14.1+cu130 from PyPI
TORCH_2_7 = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]  # torch 2.7.1+cu126 from PyPI
SWEEP = ("sweep", "--cluster", "slurm", "--models", "MobileNetV2", "--epochs", "1", "--image-size", "32")


@pytest.mark.parametrize("name, model, capability", [
    ("p100", "P100", (6, 0)), ("tesla_v100", "V100", (7, 0)), ("V100S-PCIE-32GB", "V100S", (7, 0)),
    ("Tesla P100-PCIE-16GB", "P100", (6, 0)), ("a100_80gb", "A100", (8, 0)), ("A100-SXM4-40GB", "A100", (8, 0)),
    ("h100-sxm", "H100", (9, 0)), ("NVIDIA H100 80GB HBM3", "H100", (9, 0)), ("h200", "H200", (9, 0)),
    ("gh200", "GH200", (9, 0)), ("a10", "A10", (8, 6)), ("A10G", "A10G", (8, 6)), ("a40", "A40", (8, 6)),
    ("NVIDIA GeForce RTX 3090", "RTX-3090", (8, 6)), ("rtx_a6000", "RTX-A6000", (8, 6)), ("l4", "L4", (8, 9)),
    ("l40", "L40", (8, 9)), ("L40S", "L40S", (8, 9)), ("t4", "T4", (7, 5)), ("k80", "K80", (3, 7)),
    ("b200", "B200", (10, 0)), ("gtx1080ti", "GTX1080TI", (6, 1))])
def test_gpu_names_as_sites_write_them(name, model, capability):
    found = model_named(name)
    assert found is not None and (found.name, found.capability) == (model, capability)


@pytest.mark.parametrize("name", ["gpu", "tesla", "xeon", "ib", "skylake", "a1000", "p1000", "h1", ""])
def test_names_that_say_no_gpu(name):
    assert model_named(name) is None


@pytest.mark.parametrize("capability, arch, runs", [
    ((6, 0), TORCH_2_14, False), ((7, 0), TORCH_2_14, False), ((7, 5), TORCH_2_14, True), ((8, 9), TORCH_2_14, True),
    ((6, 0), TORCH_2_7, True), ((6, 1), TORCH_2_7, True), ((7, 0), TORCH_2_7, True), ((10, 0), TORCH_2_7, False),
    ((6, 0), ["sm_61"], False),  # a binary runs on its own major, at its minor or later
    ((6, 0), ["sm_50", "compute_50"], True), ((12, 0), ["sm_90", "compute_90"], True),  # PTX compiles for later GPUs
    ((6, 0), [], False)])  # a CPU build
def test_which_builds_run_which_gpus(capability, arch, runs):
    assert runs_on(capability, arch) is runs


def test_a_builds_range_in_a_few_words():
    assert arch_range(TORCH_2_14) == "sm_75-sm_120"
    assert arch_range(["sm_50", "sm_90", "compute_90"]) == "sm_50-sm_90 and PTX compute_90"
    assert arch_range([]) == "no GPU code (a CPU build)"


def fake_python(folder: Path, arch: list[str]) -> Path:
    """A python command for a profile that answers the harness's question as a build with arch would."""
    version = "2.7.1+cu126" if arch == TORCH_2_7 else "2.14.1+cu130"
    script = folder / f"python-{len(arch)}"
    script.write_text(f"#!/bin/sh\necho '{json.dumps({'torch': version, 'arch': arch})}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_the_build_is_read_from_the_jobs_python_or_this_one(tmp_path):
    build = read_torch_build(str(fake_python(tmp_path, TORCH_2_7)))
    assert (build.version, build.arch, build.unreadable) == ("2.7.1+cu126", tuple(TORCH_2_7), None)
    here = read_torch_build(None, timeout=HUNG_S)  # this interpreter, asked as the jobs' python is
    assert here.version == torch.__version__ and "this Python" in here.source
    assert list(here.arch) == (getattr(torch._C, "_cuda_getArchFlags", lambda: None)() or "").split()


@pytest.mark.parametrize("python, why", [("/nonexistent/apptainer exec x.sif python", "No such file"),
                                         ("python 'unbalanced", "not a command line"), ("/bin/echo", "no torch version")])
def test_a_python_that_cannot_run_here_is_said_so(python, why):
    build = read_torch_build(python)
    assert build.unreadable and why in build.unreadable and "did not run here" in build.describe()


def test_the_jobs_own_check_follows_the_same_rule():
    with pytest.raises(UserError, match=r"GPU Tesla P100-PCIE-16GB is compute capability 6\.0; install a torch build "
                                        r"with sm_60 .*torch==2\.7\.1 torchvision==0\.22\.1 \(docs/site\.md"):
        check_gpu_arch("Tesla P100-PCIE-16GB", (6, 0), TORCH_2_14)
    check_gpu_arch("Tesla P100-PCIE-16GB", (6, 0), TORCH_2_7)


def test_a_job_on_a_pascal_gpu_refuses_bf16_and_tf32_and_runs_fp16(monkeypatch):
    # the one thing that cannot exist here: an NVIDIA GPU (its name and capability, as torch reports them)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla P100-PCIE-16GB")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (6, 0))
    cuda = torch.device("cuda")
    with pytest.raises(UserError, match=r"^--precision bf16 needs compute capability 8\.0 \(Ampere\) or later, but the GPU "
                                        r"Tesla P100-PCIE-16GB is 6\.0: use --precision fp16"):
        check_precision(TrainConfig("MobileNetV2", precision="bf16"), cuda)
    with pytest.raises(UserError, match=r"^--tf32 needs compute capability 8\.0"):
        check_precision(TrainConfig("MobileNetV2", tf32=True), cuda)
    check_precision(TrainConfig("MobileNetV2", precision="fp16"), cuda)


# ---- the site, before anything is queued ---------------------------------------------------------

@pytest.fixture
def marwan(monkeypatch):
    """The harness sees the recorded site in place of the local cluster (which others use meanwhile)."""
    import harness.cluster.slurm.backend as slurm
    import harness.cluster.slurm.limits as limits

    site = parse_site(*((DATA / f"marwan-{kind}.txt").read_text() for kind in ("partition", "node", "config")))
    monkeypatch.setattr(slurm, "slurm_answers", lambda: None)
    monkeypatch.setattr(slurm, "read_site", lambda: site)
    monkeypatch.setattr(limits, "submission_limits", lambda account=None, qos=None: [])
    return site


def profile(folder: Path, arch: list[str], **keys: str) -> str:
    path = folder / f"site-{len(arch)}-{len(keys)}.toml"
    lines = [f'python = "{fake_python(folder, arch)}"', *(f'{key} = "{value}"' for key, value in keys.items())]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize("mode", ["--check", "--dry-run", None])
def test_a_partition_of_gpus_the_torch_cannot_run_is_refused_in_one_line(cli, marwan, tiny_demo, tmp_path, mode):
    results = tmp_path / "results"
    done = cli(*SWEEP, "--partition", "gpu", "--profile", profile(tmp_path, TORCH_2_14), "--dataset", tiny_demo,
               "--results", results, *([mode] if mode else []))
    assert done.code == 2 and done.out == "" and len(done.err.splitlines()) == 1
    assert done.err.startswith("error: partition gpu: the jobs' torch cannot run its P100 GPUs (compute capability 6.0): "
                               "torch 2.14.1+cu130 of python = ")
    assert "with sm_75-sm_120; install a torch build with sm_60" in done.err and "docs/site.md" in done.err
    assert not any(results.glob("*/sweep.json"))  # nothing written, nothing queued


def test_with_a_build_that_holds_sm_60_nothing_changes(cli, marwan, tiny_demo, tmp_path):
    done = cli(*SWEEP, "--partition", "gpu", "--profile", profile(tmp_path, TORCH_2_7), "--dataset", tiny_demo,
               "--results", tmp_path / "results", "--dry-run")
    assert done.code == 0, done.err
    assert "#SBATCH --partition=gpu" in done.out and "#SBATCH --gres=gpu:p100:1" in done.out


def test_cluster_shows_each_partitions_gpus_and_whether_the_torch_runs_them(cli, marwan, tmp_path):
    shown = cli("cluster", "--partition", "gpu", "--profile", profile(tmp_path, TORCH_2_14), "--format", "json", "--meta")
    assert shown.code == 0, shown.err
    rows = {row["partition"]: row for row in shown.json()["rows"]}
    columns = {name: (row["gpu_model"], row["capability"], row["torch_runs_it"]) for name, row in rows.items()}
    assert columns == {"gpu": (["P100"], ["6.0"], "no"), "volta": (["V100"], ["7.0"], "no"),
                       "untyped": (["unknown"], [], "unknown"), "compute": (None, None, None)}
    notes = shown.json()["gpu_notes"]
    assert notes[0].startswith("the jobs' torch: torch 2.14.1+cu130 of python = ") and notes[0].endswith("with sm_75-sm_120")
    assert any(n.startswith("partition untyped: the model of the GPUs of gx01 cannot be told") for n in notes)
    assert any(n.startswith("partition gpu: the jobs' torch cannot run its P100 GPUs") for n in notes)
    table = cli("cluster", "--partition", "gpu", "--profile", profile(tmp_path, TORCH_2_7))
    assert table.code == 0 and "partition gpu: the jobs' torch cannot run" not in table.err
    assert "gpu model" in table.out and "torch runs it" in table.out and "torch 2.7.1+cu126 of python" in table.err


def test_the_gpu_a_node_feature_names_is_checked_and_an_unknown_one_goes_through(cli, marwan, tiny_demo, tmp_path):
    common = (*SWEEP, "--dataset", tiny_demo, "--results", tmp_path / "results", "--dry-run")
    volta = cli(*common, "--partition", "volta", "--profile", profile(tmp_path, TORCH_2_14))
    assert volta.code == 2 and "partition volta: the jobs' torch cannot run its V100 GPUs (compute capability 7.0)" in volta.err
    untyped = cli(*common, "--partition", "untyped", "--profile", profile(tmp_path, TORCH_2_14))
    assert untyped.code == 0, untyped.err  # the job checks its GPU when it starts
    stated = cli(*common, "--partition", "untyped", "--profile", profile(tmp_path, TORCH_2_14, gpu_capability="6.0"))
    assert stated.code == 2 and "its UNTYPED GPUs (compute capability 6.0)" in stated.err


@pytest.mark.parametrize("options, refused", [
    (("--precision", "bf16"), "--precision bf16 needs compute capability 8.0 (Ampere) or later, but the GPU P100 is 6.0"),
    (("--tf32",), "--tf32 needs compute capability 8.0"),
    (("--precision", "fp16"), None),  # Pascal does fp16 (no tensor cores): its MFU is against the fp16 peak
    (("--precision", "bf16", "--device", "cpu"), None)])  # runs that do not use the GPUs
def test_arithmetic_the_gpu_cannot_do_is_refused_the_same_way(cli, marwan, tiny_demo, tmp_path, options, refused):
    done = cli(*SWEEP, "--partition", "gpu", "--profile", profile(tmp_path, TORCH_2_7), "--dataset", tiny_demo,
               "--results", tmp_path / "results", "--dry-run", *options)
    if refused:
        assert done.code == 2 and done.err.startswith(f"error: partition gpu: {refused}"), done.err
    else:
        assert done.code == 0, done.err


def test_a_profile_states_a_capability_only_as_major_dot_minor(tmp_path):
    from harness.cluster.slurm.profile import load_profile

    (tmp_path / "bad.toml").write_text('gpu_capability = "sm_60"\n')
    with pytest.raises(UserError, match=r"bad\.toml: gpu_capability: 'sm_60' is not a compute capability such as \"6\.0\""):
        load_profile(str(tmp_path / "bad.toml"))
    (tmp_path / "good.toml").write_text('gpu_capability = "6.0"\n')
    assert load_profile(str(tmp_path / "good.toml")).gpu_capability == "6.0"


def test_gpu_nodes_that_are_this_machine_without_a_gpu_run_the_jobs_on_the_cpu(cli, monkeypatch, tmp_path):
    """The local test clusters' fake P100s (NodeAddr 127.0.0.1, no NVIDIA GPU here): nothing to check."""
    import harness.cluster.slurm.backend as slurm
    import harness.cluster.slurm.gpus as gpus

    local = parse_site(*((DATA / f"harness-{kind}.txt").read_text() for kind in ("partition", "node", "config")))
    monkeypatch.setattr(slurm, "slurm_answers", lambda: None)
    monkeypatch.setattr(slurm, "read_site", lambda: local)
    monkeypatch.setattr(gpus, "has_nvidia_gpu", lambda: False)
    shown = cli("cluster", "--profile", profile(tmp_path, TORCH_2_14), "--format", "json", "--meta")
    row = next(row for row in shown.json()["rows"] if row["partition"] == "gpu")
    assert (row["gpu_model"], row["capability"], row["torch_runs_it"]) == (["P100"], ["6.0"], "on the CPU")
    assert shown.json()["gpu_notes"] == ["partition gpu: its GPU nodes are this machine (a loopback NodeAddr), which has "
                                         "no NVIDIA GPU: the jobs run on the CPU"]


def test_fp16_on_a_p100_is_measured_against_its_fp16_peak():
    from harness.measure.flops import compute_precision, model_flops_utilisation

    precision = compute_precision("fp16", {"matmul": "ieee", "cudnn_conv": "ieee"})
    mfu = model_flops_utilisation(10 ** 9, 1870.0, "Tesla P100-PCIE-16GB", precision)  # 1.87 TFLOP/s achieved
    assert (mfu["peak_tflops"], mfu["peak_precision"], mfu["mfu_reason"]) == (18.7, "fp16", None)
    assert mfu["mfu"] == pytest.approx(0.1)
