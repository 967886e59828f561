"""compare: ratios B/A, whether a difference exceeds the seeds' spread (Welch at 5%; with one seed the timed
windows' ranges of a speed figure, "unknown" for the others), GPU-hours from the record (null with a reason
on a CPU), on made-up records: what is on disk, no scheduler asked."""
from dataclasses import replace

import pytest

from harness.analysis.compare import RunFigures, beyond_spread, compare_figures, compare_sweeps, gpu_hours, welch
from harness.analysis.load import SweepResults

from perf_helpers import make_sweep, record


def test_gpu_hours_from_the_record_else_null_with_a_reason():
    on_gpu = record(device="cuda")  # 600 s of wall time in the record
    assert gpu_hours(on_gpu) == (pytest.approx(600 / 3600), None)
    two = record(device="cuda", distributed={"world_size": 2, "nodes": 1})  # one GPU per rank
    assert gpu_hours(two)[0] == pytest.approx(1200 / 3600)
    hours, reason = gpu_hours(record())
    assert hours is None and "no GPU in use (device: cpu)" in reason


def test_welch_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for a, b in (([0.90, 0.92, 0.91], [0.95, 0.96, 0.97, 0.94]), ([100.0, 130.0], [90.0, 160.0, 120.0]),
                 ([1.0, 2.0], [1.5, 2.5])):
        p, how = welch(a, b)
        assert p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-6)
        assert how.startswith("Welch p=")


def test_beyond_spread():
    assert beyond_spread([0.90, 0.91, 0.90], [0.95, 0.96, 0.95])[0] == "yes"
    assert beyond_spread([0.90, 0.95], [0.91, 0.94])[0] == "no"
    verdict, how = beyond_spread([0.90], [0.99])
    assert verdict == "unknown" and "one seed" in how
    assert beyond_spread([0.90, 0.92], [0.99])[0] == "unknown"
    assert beyond_spread([0.9, 0.9], [0.9, 0.9]) == ("no", "no spread")
    assert beyond_spread([0.9, 0.9], [0.8, 0.8]) == ("yes", "no spread")
    assert beyond_spread([], [0.8]) == ("-", "no value")


def _runs(label: str, accuracies: list[float], speeds: list[float]) -> list[RunFigures]:
    return [RunFigures(f"{label}-s{i}", record(label, i), {"accuracy": a, "train_images_per_s": s})
            for i, (a, s) in enumerate(zip(accuracies, speeds))]


def test_compare_figures_per_architecture():
    a = {"ResNet50": _runs("ResNet50", [0.90, 0.91, 0.90], [100.0, 102.0, 98.0]), "VGG16": _runs("VGG16", [0.8], [50.0])}
    b = {"ResNet50": _runs("ResNet50", [0.90, 0.92, 0.91], [200.0, 204.0, 196.0]), "DenseNet121": _runs("DenseNet121", [0.85], [70.0])}
    rows = {(r["model"], r["figure"]): r for r in compare_figures(a, b, ["accuracy", "train_images_per_s"])}
    speed = rows["ResNet50", "train_images_per_s"]
    assert speed["a"] == 100.0 and speed["b"] == 200.0 and speed["ratio"] == 2.0 and speed["beyond_spread"] == "yes"
    assert speed["unit"] == "images/s" and speed["a_seeds"] == speed["b_seeds"] == 3
    assert rows["ResNet50", "accuracy"]["beyond_spread"] == "no"
    assert rows["VGG16", "accuracy"]["b"] is None and rows["VGG16", "accuracy"]["note"] == "only in sweep A"
    assert rows["DenseNet121", "accuracy"]["a"] is None and rows["DenseNet121", "accuracy"]["note"] == "only in sweep B"
    assert [model for model, _ in rows][::2] == ["ResNet50", "VGG16", "DenseNet121"]


def test_compare_two_sweeps_from_their_records(tmp_path):
    a = make_sweep(tmp_path, "a", [record("ResNet50", s, accuracy=0.9, train_ips=100.0 + s, device="cuda") for s in range(2)])
    b = make_sweep(tmp_path, "b", [record("ResNet50", s, sweep="b", accuracy=0.9, train_ips=300.0 + s) for s in range(2)])
    rows = {r["figure"]: r for r in compare_sweeps(SweepResults(a), SweepResults(b))}
    assert rows["train_images_per_s"]["ratio"] == pytest.approx(300.5 / 100.5)
    assert rows["gpu_hours"]["a"] == pytest.approx(600 / 3600) and rows["gpu_hours"]["b"] is None
    assert rows["accuracy_per_gpu_hour"]["a"] == pytest.approx(0.9 * 3600 / 600)
    assert rows["gpu_hours"]["note"] == "no GPU in use (device: cpu)"


def test_compare_reads_the_records_alone_even_beside_a_damaged_jobs_file(tmp_path):
    a = make_sweep(tmp_path, "a", [record("ResNet50", 0, device="cuda")])
    (a.folder / "jobs.json").write_text('{"submissions": [')
    hours = next(r for r in compare_sweeps(SweepResults(a), SweepResults(a)) if r["figure"] == "gpu_hours")
    assert hours["a"] == pytest.approx(600 / 3600) and hours["note"] == ""


def windowed(ips: float, low: float, high: float, **changes) -> "RunFigures":
    """A run whose training images/s over its timed windows spans low to high."""
    spread = {"images_per_s": [low, ips, high], "median": ips, "q1": (low + ips) / 2, "q3": (ips + high) / 2,
              "min": low, "max": high}
    base = record(train_ips=ips, **changes)
    made = replace(base, throughput={**base.throughput, "train_spread": spread})
    return RunFigures(made.run_id, made, {"train_images_per_s": ips, "accuracy": 0.9})


@pytest.mark.parametrize("b, verdict, test", [
    (windowed(130.0, 125.0, 135.0), "yes", "one seed: the windows' ranges 95.0-105.0 and 125.0-135.0 do not overlap"),
    (windowed(104.0, 101.0, 110.0), "no", "one seed: the windows' ranges 95.0-105.0 and 101.0-110.0 overlap"),
])
def test_with_one_seed_a_speed_figure_is_judged_by_the_runs_timed_windows(b, verdict, test):
    a = windowed(100.0, 95.0, 105.0)
    rows = {r["figure"]: r for r in compare_figures({"ResNet50": [a]}, {"ResNet50": [b]}, ["train_images_per_s", "accuracy"])}
    assert rows["train_images_per_s"]["beyond_spread"] == verdict and rows["train_images_per_s"]["test"].startswith(test)
    assert rows["accuracy"]["beyond_spread"] == "unknown"  # no windows: one run says nothing of the seeds' spread


def test_with_one_seed_and_no_windows_a_speed_figure_is_unknown():
    a, b = record(train_ips=100.0), record(train_ips=130.0)  # records from before the timed windows
    rows = compare_figures({"ResNet50": [RunFigures(a.run_id, a, {"train_images_per_s": 100.0})]},
                           {"ResNet50": [RunFigures(b.run_id, b, {"train_images_per_s": 130.0})]}, ["train_images_per_s"])
    assert rows[0]["beyond_spread"] == "unknown" and "needs 2 seeds" in rows[0]["test"]


def test_a_run_that_shared_its_node_says_so_beside_its_speed_figures():
    shared = windowed(100.0, 95.0, 105.0, sharing={"alone": False, "shared_by": ["GPU: process 4242"]})
    rows = {r["figure"]: r for r in compare_figures({"ResNet50": [windowed(100.0, 95.0, 105.0)]}, {"ResNet50": [shared]},
                                                    ["train_images_per_s", "accuracy"])}
    assert rows["train_images_per_s"]["note"] == "B ResNet50-s0 shared its node or GPU (GPU: process 4242)"
    assert rows["accuracy"]["note"] == ""
