"""The per-node check of an every-node sweep (analysis.nodes.node_spread): outliers below median - 3 x MAD,
a floor on the MAD where the nodes agree closely, none named of fewer than three nodes; each case worked
out by hand. And the runs a plan pins to each node (sweeps.pinned)."""
import pytest

from harness.analysis.nodes import node_spread
from harness.errors import UserError
from harness.store.records import RunSpec
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
