"""compare: ratios B/A, whether a difference exceeds the seeds' spread (Welch at 5%, "unknown" with one
seed), GPU-hours from the record (null with a reason on a CPU), on made-up records: what is on disk, no
scheduler asked."""
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
