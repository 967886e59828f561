"""Scaling figures: speedup and efficiency against one rank, NVIDIA's figures beside them, a sweep's
placements, its span, and a run's GPU figures from its ranks'."""
import dataclasses
from datetime import datetime

import pytest

from harness.analysis.makespan import allocated_gpus, elapsed_seconds, peak_gpus
from harness.analysis.scaling import dle_table, scaling_rows, with_dle
from harness.measure.meters import over_ranks
from harness.store.records import RunRecord
from harness.sweeps import scaling_variants
from harness.training.config import TrainConfig


def _record(model: str, seed: int, ranks: int, rate: float, gpu: str | None = None, **config) -> RunRecord:
    return RunRecord(sweep_id="s", run_id=f"{model}-x{ranks}-s{seed}", model=model, seed=seed, status="COMPLETED",
                     config=dataclasses.asdict(TrainConfig(model=model, seed=seed, world_size=ranks, **config)),
                     finished_at="2026-01-01T00:00:00+00:00", throughput={"train_images_per_s": rate},
                     distributed={"world_size": ranks, "nodes": 1},
                     environment={"device": "cuda" if gpu else "cpu", "device_name": gpu})


def test_speedup_is_per_seed_against_the_same_seed_on_one_rank():
    records = {"R [x1]": [_record("R", 0, 1, 100.0), _record("R", 1, 1, 200.0)],
               "R [x4]": [_record("R", 0, 4, 300.0), _record("R", 1, 4, 700.0)]}
    rows = {row["ranks"]: row for row in scaling_rows(records)}
    assert rows[4]["speedup"] == pytest.approx((3.0 + 3.5) / 2)  # not 500 / 150, the ratio of the means
    assert rows[4]["efficiency"] == pytest.approx(3.25 / 4)
    # Student's t with 1 degree of freedom (12.706) on the two seeds' speedups, 3.0 and 3.5
    assert rows[4]["speedup_lo"] == pytest.approx(3.25 - 12.7062 * 0.25, abs=1e-3)
    assert rows[4]["speedup_lo"] >= 0 and rows[4]["efficiency_hi"] == pytest.approx(rows[4]["speedup_hi"] / 4)
    assert rows[1]["speedup"] == 1.0 and rows[1]["speedup_lo"] is None and rows[1]["efficiency_lo"] is None


def test_an_architecture_never_run_on_one_rank_has_no_speedup():
    assert scaling_rows({"R [x2]": [_record("R", 0, 2, 10.0)], "R [x4]": [_record("R", 0, 4, 20.0)]}) == []
    assert scaling_rows({"R": [_record("R", 0, 1, 10.0)]}) == []


def test_nvidia_figures_stand_beside_ours_where_gpu_and_precision_match():
    records = {"ResNet50 [x1]": [_record("ResNet50", 0, 1, 900.0, "NVIDIA A100-SXM4-80GB", tf32=True)],
               "ResNet50 [x8]": [_record("ResNet50", 0, 8, 7000.0, "NVIDIA A100-SXM4-80GB", tf32=True)],
               "ResNet50 [x2]": [_record("ResNet50", 0, 2, 1800.0, "NVIDIA A100-SXM4-80GB", tf32=True)]}
    rows = {row["ranks"]: row for row in with_dle(scaling_rows(records))}
    assert rows[8]["dle_speedup"] == 7.72 and rows[8]["dle_efficiency"] == pytest.approx(0.965)  # as the issue quotes it
    assert rows[8]["dle_gpu"] == "A100 80GB"
    assert rows[2]["dle_speedup"] is None and "at 1, 8 GPUs" in rows[2]["dle_reason"]
    on_cpu = with_dle(scaling_rows({"R [x1]": [_record("ResNet50", 0, 1, 1.0)], "R [x2]": [_record("ResNet50", 0, 2, 2.0)]}))
    assert on_cpu[1]["dle_speedup"] is None and on_cpu[1]["dle_reason"] == "no GPU in use"
    bf16 = with_dle(scaling_rows({"a": [_record("ResNet50", 0, 1, 1.0, "NVIDIA A100-SXM4-80GB", precision="bf16")],
                                  "b": [_record("ResNet50", 0, 8, 8.0, "NVIDIA A100-SXM4-80GB", precision="bf16")]}))
    assert bf16[1]["dle_speedup"] is None and "no ResNet50 figure" in bf16[1]["dle_reason"]


def test_the_published_speedups_agree_with_the_published_throughputs():
    """NVIDIA's printed speedups, recomputed from its printed images/s: within 0.025 (its own rounding of
    figures from other runs), every one of them above 1 and at most the GPU count."""
    table = dle_table()
    rates = {(row["gpu"], row["precision"], row["gpus"]): row for row in table}
    eights = [row for row in table if row["gpus"] == 8]
    assert len(eights) == 6 and all(rates[(r["gpu"], r["precision"], 1)]["speedup"] == 1.0 for r in eights)
    for row in eights:
        ratio = row["images_per_s"] / rates[(row["gpu"], row["precision"], 1)]["images_per_s"]
        assert row["speedup"] == pytest.approx(ratio, abs=0.025) and 1 < row["speedup"] <= 8


def test_a_scaling_sweep_places_each_size_on_the_nodes_it_needs():
    assert scaling_variants([1, 2, 4, 8], 2) == [("x1", {"world_size": 1, "nodes": 1}), ("x2", {"world_size": 2, "nodes": 1}),
                                                 ("x4", {"world_size": 4, "nodes": 1}), ("x8", {"world_size": 8, "nodes": 2})]
    assert [v["nodes"] for _, v in scaling_variants([1, 2, 4], 1)] == [1, 1, 1]


@pytest.mark.parametrize("text, seconds", [("00:00:30", 30), ("01:02:03", 3723), ("2-01:00:00", 176400),
                                           ("05:07", 307), ("00:00:01.5", 1.5), ("", None), ("INVALID", None)])
def test_sacct_elapsed(text, seconds):
    assert elapsed_seconds(text) == seconds


def test_allocated_gpus_from_alloc_tres():
    assert allocated_gpus("billing=1,cpu=1,gres/gpu=1,mem=1000M,node=1") == 1
    assert allocated_gpus("cpu=8,gres/gpu:a100=4,gres/gpu=4,mem=64G") == 4
    assert allocated_gpus("billing=1,cpu=1,mem=1000M,node=1") is None and allocated_gpus("") is None


def test_peak_gpus_counts_what_is_held_at_one_moment():
    t = [datetime(2026, 1, 1, 0, minute) for minute in range(6)]
    assert peak_gpus([(t[0], t[2], 2), (t[1], t[3], 4), (t[2], t[4], 1)]) == 6  # an end frees before a start takes
    assert peak_gpus([(t[0], t[1], 8), (t[1], t[2], 8)]) == 8
    assert peak_gpus([]) == 0


def test_a_runs_gpu_figures_sum_energy_over_its_ranks():
    rank = {"util_mean": 0.5, "util_median": 0.6, "util_period_s": 0.1, "samples": 10, "memory_used_max_bytes": 5,
            "power_mean_w": 200.0, "reason": None, "energy_j": 30.0, "energy_source": "nvml_counter", "images": 100,
            "energy_per_image_j": 0.3, "energy_reason": None}
    other = {**rank, "util_mean": 0.7, "energy_j": 50.0, "memory_used_max_bytes": 9}
    both = over_ranks([rank, other])
    assert both["energy_j"] == 80.0 and both["images"] == 200 and both["energy_per_image_j"] == pytest.approx(0.4)
    assert both["util_mean"] == pytest.approx(0.6) and both["memory_used_max_bytes"] == 9 and both["samples"] == 20
    assert both["per_rank"] == [rank, other]
    assert over_ranks([rank]) is rank  # a run of one: its rank's figures as they are
    unknown = over_ranks([rank, {**other, "energy_j": None, "energy_reason": "NVML's energy counter: not supported"}])
    assert unknown["energy_j"] is None and unknown["energy_per_image_j"] is None
    assert unknown["energy_reason"] == "rank 1: NVML's energy counter: not supported"
