"""A benchmark across sweeps on a real Slurm cluster (slurm/local-cluster): two sweeps on the gpu
partition write one performance log with the cluster's name, partition and node; each record says which
other jobs Slurm ran on its node; compare's GPU-hours come from the records (null: the jobs train on the
CPU); check passes against references made from the first sweep and fails against an impossible one."""
import json
import re

import pytest

from harness.store.paths import perflog
from harness.store.perflog_index import read_perflog

from slurm_helpers import sacct_rows, submission

pytestmark = pytest.mark.usefixtures("slurm_cluster")
TINY = ["--partition", "gpu", "--epochs", "1", "--image-size", "32", "--batch-size", "8"]


def test_two_sweeps_on_the_gpu_partition(cli, results, tiny_demo, tmp_path):
    for name in ("before", "after"):
        sweep = cli("sweep", *TINY, "--dataset", tiny_demo, "--models", "MobileNetV2,efficientnet_b0", "--seeds", "2",
                    "--results", results, "--name", name, "--wait")
        assert sweep.code == 0, sweep.err
    entries, problems = read_perflog(perflog(results))
    assert problems == [] and len(entries) == 8
    assert {e.sweep for e in entries} == {"before", "after"}
    assert {e.architecture for e in entries} == {"MobileNetV2", "efficientnet_b0"}
    for entry in entries:
        assert entry.system["cluster"] == "harness"  # SLURM_CLUSTER_NAME, the local cluster's ClusterName
        assert entry.system["partition"] == "gpu" and entry.system["node"].startswith("gpu")
    # one series per architecture (same system, same settings), a point per sweep
    rows = cli("history", "--metric", "accuracy", "--partition", "gpu", "--format", "json", "--results", results).json()
    assert sorted((r["model"], r["sweep"], r["seeds"]) for r in rows) == [
        ("MobileNetV2", "after", 2), ("MobileNetV2", "before", 2), ("efficientnet_b0", "after", 2), ("efficientnet_b0", "before", 2)]
    assert all(r["system"] == "harness/gpu cpu" for r in rows)
    png = cli("history", "--format", "png", "--out", tmp_path / "history.png", "--results", results)
    assert png.code == 0 and (tmp_path / "history.png").stat().st_size > 0

    # compare: two seeds a side, so the spread test runs; GPU-hours from the records, which say the runs used
    # no GPU (the fake p100s are allocated, as sacct shows, but the jobs train on the CPU)
    compared = cli("compare", "before", "after", "--format", "json", "--results", results).json()
    rows = {(r["model"], r["figure"]): r for r in compared}
    assert rows["MobileNetV2", "accuracy"]["beyond_spread"] in ("yes", "no")
    assert rows["MobileNetV2", "accuracy"]["a_seeds"] == rows["MobileNetV2", "accuracy"]["b_seeds"] == 2
    for figure in ("gpu_hours", "accuracy_per_gpu_hour"):
        row = rows["MobileNetV2", figure]
        assert row["a"] is None and row["b"] is None and "no GPU in use (device: cpu)" in row["note"], row
    task = sacct_rows(submission(results / "before")["tasks"]["MobileNetV2-s0"])[0]
    assert "gres/gpu=1" in task["AllocTRES"]
    # what shared each run's node, as Slurm saw it from inside the job: the sweep's other tasks on that node
    records = [json.loads(path.read_text()) for path in (results / "before").glob("runs/*/result.json")]
    assert len(records) == 4
    for record in records:
        sharing, node = record["sharing"], record["environment"]["node"]
        assert sharing["node"]["source"] == f"squeue -w {node}" and sharing["node"]["reason"] is None, sharing
        others = sharing["node"]["others"]
        assert all(line.startswith("job ") and "before-train" in line for line in others), others
        assert sharing["alone"] is False if sharing["shared_by"] else sharing["alone"] in (True, None)
        assert any(line.startswith(f"node {node}: job ") for line in sharing["shared_by"]) == bool(others)

    # check: references from the first sweep hold for it; one impossible figure fails with exit 1
    references = tmp_path / "gpu.toml"
    assert cli("check", "before", "--references", references, "--update-references", "--results", results).code == 0
    assert cli("check", "before", "--references", references, "--results", results).code == 0
    impossible = tmp_path / "impossible.toml"
    impossible.write_text(re.sub(r"(accuracy = \{ ?value = )[^,]+", r"\g<1>1e-6", references.read_text(), count=1))
    failed = cli("check", "before", "--references", impossible, "--results", results)
    assert failed.code == 1 and "FAIL" in failed.out
