"""The GPU check on the real local cluster: its fake P100s (gpu:p100 GRES on nodes at 127.0.0.1) are this
machine's, which has no NVIDIA GPU, so the jobs run on the CPU and a torch without sm_60 is no reason to
refuse (the refusal itself is tested on a recorded site with nodes of their own: tests/unit/test_gpu_check.py)."""
import json
import stat

import pytest

from harness.gpus import has_nvidia_gpu

pytestmark = pytest.mark.skipif(has_nvidia_gpu(), reason="this machine has an NVIDIA GPU: the local cluster's GPUs are not fake")


def test_the_local_clusters_gpus_are_read_from_slurm_and_its_jobs_run_on_the_cpu(cli, slurm_cluster, tiny_demo, tmp_path):
    described = cli("cluster", "--format", "json", "--meta")
    assert described.code == 0, described.err
    gpu = next(row for row in described.json()["rows"] if row["partition"] == "gpu")
    assert (gpu["gpu_model"], gpu["capability"], gpu["torch_runs_it"]) == (["P100"], ["6.0"], "on the CPU")
    python = tmp_path / "python"  # a build that cannot run a P100: torch 2.14's list
    python.write_text("#!/bin/sh\necho '" + json.dumps({"torch": "2.14.1+cu130", "arch": ["sm_75", "sm_120"]}) + "'\n")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "site.toml").write_text(f'python = "{python}"\n')
    shown = cli("sweep", "--partition", "gpu", "--profile", tmp_path / "site.toml", "--dataset", tiny_demo, "--models",
                "MobileNetV2", "--epochs", "1", "--image-size", "32", "--results", tmp_path / "results", "--dry-run")
    assert shown.code == 0, shown.err
