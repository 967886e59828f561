"""The per-node check of an every-node sweep (analysis.nodes.node_spread): outliers below median - 3 x MAD,
a floor on the MAD where the nodes agree closely, none named of fewer than three nodes; each case worked
out by hand. And the runs a plan pins to each node (sweeps.pinned), as sweep.json keeps them."""
import dataclasses
import json
from types import SimpleNamespace

import pytest

from harness.analysis.nodes import node_rows, node_spread, outlier_lines
from harness.errors import UserError
from harness.store.records import RunRecord, RunSpec, SweepSpec
from harness.store.schema import DamagedFile
from harness.sweeps import pinned


def test_one_slow_node_among_identical_ones_is_the_outlier():
    # median 100, MAD 0 -> the floor, 5% of 100 = 5 -> threshold 100 - 3 x 5 = 85: only d lies below
    spread = node_spread({"a": 100.0, "b": 100.0, "c": 100.0, "d": 10.0})
    assert (spread.median, spread.mad, spread.threshold, spread.outliers) == (100.0, 0.0, 85.0, ["d"])


def test_identical_figures_name_no_outlier():
    spread = node_spread(dict.fromkeys("abcd", 42.0))
    assert spread.outliers == [] and spread.threshold == pytest.approx(42 * 0.85)


def test_noise_within_the_floor_is_no_outlier():
    # median 100, deviations 0, 1, 1, 12 -> MAD 1, floor 5 -> threshold 85: 88 is 12% slow, not an outlier
    assert node_spread({"a": 100.0, "b": 101.0, "c": 99.0, "d": 88.0}).outliers == []


def test_the_mad_counts_where_it_is_above_the_floor():
    # median 98; deviations 2, 0, 4, 1, 38 -> MAD 2, under the floor 4.9 -> threshold 98 - 14.7 = 83.3
    spread = node_spread({"a": 100.0, "b": 98.0, "c": 102.0, "d": 97.0, "e": 60.0})
    assert (spread.median, spread.mad, spread.outliers) == (98.0, 2.0, ["e"])
    assert spread.threshold == pytest.approx(83.3)
    # median 100; deviations 0, 20, 20, 10, 10 -> MAD 10 -> threshold 70: 80 is within the spread
    wide = node_spread({"a": 100.0, "b": 80.0, "c": 120.0, "d": 90.0, "e": 110.0})
    assert (wide.mad, wide.threshold, wide.outliers) == (10.0, 70.0, [])


def test_a_fast_node_is_no_outlier_and_several_slow_ones_are_named_slowest_first():
    # median of 100, 100, 100, 100, 300, 20, 30 is 100, MAD 0 -> threshold 85
    spread = node_spread({"a": 100.0, "b": 100.0, "c": 100.0, "d": 100.0, "fast": 300.0, "slow": 20.0, "slower": 30.0})
    assert spread.outliers == ["slow", "slower"]


def test_fewer_than_three_nodes_name_no_outlier_and_say_why():
    spread = node_spread({"a": 100.0, "b": 10.0})
    assert spread.outliers == [] and spread.threshold is None and "no outlier can be named" in spread.reason
    assert spread.median == 55.0


def test_an_unmeasured_node_is_left_out_of_the_spread():
    # three measured: median 100, MAD 0 -> threshold 85; the failed node counts for nothing
    spread = node_spread({"a": 100.0, "b": 100.0, "c": 10.0, "failed": None})
    assert spread.outliers == ["c"] and spread.median == 100.0
    assert node_spread({"a": None}).reason == "no node measured"


def test_a_plan_pins_each_run_to_each_node_with_the_node_in_its_variant():
    runs = [RunSpec("MobileNetV2-synthetic-s0", "MobileNetV2", 0, "synthetic"), RunSpec("VGG16-s0", "VGG16", 0)]
    assert [(r.run_id, r.variant, r.node) for r in pinned(runs, ["gpu01", "gpu02"])] == [
        ("MobileNetV2-synthetic-gpu01-s0", "synthetic-gpu01", "gpu01"),
        ("MobileNetV2-synthetic-gpu02-s0", "synthetic-gpu02", "gpu02"),
        ("VGG16-gpu01-s0", "gpu01", "gpu01"), ("VGG16-gpu02-s0", "gpu02", "gpu02")]
    with pytest.raises(UserError, match="no plain name"):
        pinned(runs, ["gpu 01"])


def test_a_pinned_node_is_kept_in_the_spec_and_one_that_is_no_plain_name_is_damage(tmp_path):
    run = RunSpec("MobileNetV2-synthetic-gpu01-s0", "MobileNetV2", 0, "synthetic-gpu01", node="gpu01")
    spec = SweepSpec("s", "2026-01-01T00:00:00+00:00", "", str(tmp_path), ["MobileNetV2"], 1, {"synthetic": True},
                     {"executor": "slurm"}, [run])
    data = json.loads(json.dumps(spec.to_json()))
    assert SweepSpec.from_json(data, tmp_path / "sweep.json").runs == [run]
    # a run the scheduler places is written without a node key, as before 1.7, and read back as one
    placed = dataclasses.replace(spec, runs=[RunSpec("MobileNetV2-s0", "MobileNetV2", 0)])
    assert "node" not in placed.to_json()["runs"][0]
    assert SweepSpec.from_json(json.loads(json.dumps(placed.to_json())), tmp_path / "sweep.json").runs == placed.runs
    data["runs"][0]["node"] = "gpu01\n#SBATCH --uid=0"  # it would land in an #SBATCH line of its own
    with pytest.raises(DamagedFile, match="not a plain node name"):
        SweepSpec.from_json(data, tmp_path / "sweep.json")


def test_the_per_node_table_takes_each_nodes_runs_and_names_the_outlier():
    figures = {"gpu01": [100.0, 104.0], "gpu02": [101.0], "gpu03": [99.0], "gpu04": [20.0], "gpu05": []}
    runs = [RunSpec(f"MobileNetV2-{node}-s{seed}", "MobileNetV2", seed, node, node=node)
            for node, values in figures.items() for seed in range(max(1, len(values)))]
    records = {run.run_id: RunRecord("s", run.run_id, run.model, run.seed, "COMPLETED", {}, "2026-01-01T00:00:00+00:00",
                                     throughput={"train_images_per_s": figures[run.node][run.seed]},
                                     environment={"node": run.node})
               for run in runs if figures[run.node]}
    results = SimpleNamespace(spec=SimpleNamespace(runs=runs), records={**dict.fromkeys(r.run_id for r in runs), **records})
    rows = {row["node"]: row for row in node_rows(results)}
    # gpu01: the median of its two runs, 102; nodes 102, 101, 99, 20 -> median 100, MAD 1.5, floor 5 -> threshold 85
    assert rows["gpu01"]["train_images_per_s"] == 102.0 and rows["gpu01"]["threshold"] == 85.0
    assert {node: row["verdict"] for node, row in rows.items()} == {
        "gpu01": "ok", "gpu02": "ok", "gpu03": "ok", "gpu04": "OUTLIER", "gpu05": "not measured"}
    assert outlier_lines(list(rows.values())) == ["gpu04: MobileNetV2 at 20.0 images/s, below 85.0 (median 100.0)"]
