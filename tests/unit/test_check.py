"""References with tolerances: the TOML format, checked on read; pass and fail at the bounds; a sweep
checked against them; --update-references; the paper's Table 2 as the first reference file."""
import csv
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness.analysis.check import Reference, References, check_sweep, parse_references, read_references, update_references
from harness.analysis.load import SweepResults
from harness.errors import UserError

from patience import HUNG_S
from perf_helpers import make_sweep, record

REPO = Path(__file__).resolve().parents[2]
GOOD = '''
description = "gpu partition"
[ResNet50]
accuracy = { value = 0.9934, lower = -0.05, upper = 0.05 }
train_images_per_s = { value = 400.0, lower = -0.10, unit = "images/s" }
["ResNet50 [caffe]"]
peak_gpu_memory_bytes = { value = 1073741824, upper = 0.1 }
'''


def parse(text: str) -> References:
    return parse_references(text, Path("refs.toml"))


def test_a_reference_file_is_read():
    refs = parse(GOOD)
    assert refs.description == "gpu partition"
    assert refs.find("ResNet50", "accuracy") == Reference("ResNet50", "accuracy", 0.9934, -0.05, 0.05)
    assert refs.find("ResNet50", "train_images_per_s").upper is None
    assert refs.find("ResNet50 [caffe]", "peak_gpu_memory_bytes").value == 2 ** 30


def test_bounds_are_fractions_of_the_value_as_reframe_writes_them():
    ref = Reference("ResNet50", "accuracy", 0.8, -0.05, 0.05)
    low, high = ref.bounds()
    assert low == pytest.approx(0.76) and high == pytest.approx(0.84)
    assert Reference("ResNet50", "accuracy", 0.99, -0.05, 0.05).bounds() == (pytest.approx(0.9405), 1.0)  # no 104% accuracy
    assert Reference("ResNet50", "train_images_per_s", 100.0, -1.0, 0.5).bounds() == (0.0, 150.0)
    assert ref.holds(0.76 + 1e-12) and ref.holds(0.84 - 1e-12) and ref.holds(0.8)
    assert not ref.holds(0.759) and not ref.holds(0.841)
    faster_is_fine = Reference("ResNet50", "train_images_per_s", 400.0, -0.10, None)
    assert faster_is_fine.bounds() == (pytest.approx(360.0), None)
    assert faster_is_fine.holds(10_000.0) and not faster_is_fine.holds(359.0)


@pytest.mark.parametrize("text, message", [
    ("[ResNet50\naccuracy = 1", "is not valid TOML"),
    ("[ResNet50]\naccuracy = [0.99, -0.05, 0.05]", "is not a table: write it as { value = 0.99"),
    ("[ResNet50]\nspeed = { value = 1.0, lower = -0.1 }", "[ResNet50] speed: unknown figure; known figures: accuracy"),
    ("[ResNet50]\naccuracy = { value = 0.9, lower = 0.05 }", "lower must be a fraction between -1 and 0"),
    ("[ResNet50]\naccuracy = { value = 0.9, lower = -5.0 }", "lower must be a fraction between -1 and 0"),
    ("[ResNet50]\naccuracy = { value = 0.9, upper = -0.05 }", "upper must be a fraction of at least 0"),
    ("[ResNet50]\naccuracy = { value = 0.9 }", "gives neither lower nor upper"),
    ("[ResNet50]\naccuracy = { value = \"high\", lower = -0.1 }", "value must be a number"),
    ("[ResNet50]\naccuracy = { value = true, lower = -0.1 }", "value must be a number"),
    ("[ResNet50]\naccuracy = { value = nan, lower = -0.1 }", "value must be a number"),
    ("[ResNet50]\naccuracy = { value = 99.3, lower = -0.1 }", "value must be a number from 0 to 1 (fraction), got 99.3"),
    ("[ResNet50]\ntrain_images_per_s = { value = -5.0, lower = -0.1 }", "value must be a number from 0 (images/s)"),
    ("[ResNet50]\naccuracy = { value = 0.9, lower = -0.1, tolerance = 1 }", "unknown keys tolerance"),
    ("[ResNet50]\naccuracy = { value = 0.9, lower = -0.1, unit = \"percent\" }", "measures accuracy in fraction"),
    ("ResNet50 = 0.99", "is not a table of figures"),
    ("description = 3\n[ResNet50]\naccuracy = { value = 0.9, lower = -0.1 }", "description must be text"),
    ("description = \"nothing\"", "holds no reference"),
])
def test_a_bad_reference_file_is_one_clear_line(text, message):
    with pytest.raises(UserError) as caught:
        parse(text)
    assert message in str(caught.value) and "refs.toml" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_reference_file_says_how_to_make_one(tmp_path):
    with pytest.raises(UserError, match="does not exist.*--update-references"):
        read_references(tmp_path / "none.toml")


PER_SYSTEM = '''
description = "accuracy anywhere; speed per system"
[ResNet50]
accuracy = { value = 0.90, lower = -0.05, upper = 0.05 }
train_images_per_s = { value = 100.0, lower = -0.10 }
[systems."*:*:NVIDIA H100*".ResNet50]
train_images_per_s = { value = 3000.0, lower = -0.10 }
[systems."marwan:gpu:*P100*".ResNet50]
train_images_per_s = { value = 400.0, lower = -0.10 }
[systems."marwan:gpu".VGG16]
train_images_per_s = { value = 300.0, lower = -0.10 }
'''


def test_a_reference_is_for_the_most_specific_system_that_names_the_sweeps():
    refs = parse(PER_SYSTEM)
    speed = {system: refs.for_system("ResNet50", "train_images_per_s", system) for system in
             ("local:local:cpu", "lab:gpu:NVIDIA H100 80GB HBM3", "marwan:gpu:Tesla P100-PCIE-16GB", "MARWAN:GPU:tesla p100")}
    assert [ref.value for ref in speed.values()] == [100.0, 3000.0, 400.0, 400.0]
    assert refs.for_system("VGG16", "train_images_per_s", "marwan:gpu:Tesla V100") is not None
    assert refs.for_system("VGG16", "train_images_per_s", "local:local:cpu") is None  # only for marwan's gpu partition
    assert refs.find("ResNet50", "train_images_per_s", "*:*:NVIDIA H100*").value == 3000.0


def test_a_sweep_on_a_system_the_references_do_not_name_gets_no_reference_not_a_failure(tmp_path, cli):
    sweep = make_sweep(tmp_path, "a", [record("ResNet50", 0, accuracy=0.90, train_ips=100.0)])
    path = tmp_path / "h100.toml"
    path.write_text('[systems."*:*:NVIDIA H100*".ResNet50]\ntrain_images_per_s = { value = 3000.0, lower = -0.10 }\n')
    (row,) = check_sweep(SweepResults(sweep), read_references(path))
    assert (row["verdict"], row["system"]) == ("no reference", "local:local:cpu") and "*:*:NVIDIA H100*" in row["reason"]
    done = cli("check", "--references", path, "--results", tmp_path)
    assert done.code == 3 and "no reference for this system (local:local:cpu)" in done.err
    on_h100 = make_sweep(tmp_path / "gpu", "b", [record("ResNet50", 0, sweep="b", device="cuda", train_ips=3100.0)])
    (row,) = check_sweep(SweepResults(on_h100), read_references(path))
    assert row["verdict"] == "pass" and row["system"] == "local:local:NVIDIA H100"


def test_update_references_keeps_the_files_comments_and_description(tmp_path):
    sweep = make_sweep(tmp_path, "a", [record("ResNet50", 0, accuracy=0.91, train_ips=120.0)])
    path = tmp_path / "refs.toml"
    path.write_text("# our partition's references: keep this line\n" + PER_SYSTEM.replace("[ResNet50]", "[ResNet50]  # the paper's"))
    assert update_references(SweepResults(sweep), path) == (4, "local:local:cpu", [])
    text = path.read_text()
    assert "# our partition's references: keep this line" in text and "# the paper's" in text
    assert 'description = "accuracy anywhere; speed per system"' in text
    written = read_references(path)
    assert written.find("ResNet50", "accuracy").value == 0.90  # the reference for every system stays as it was
    mine = written.find("ResNet50", "accuracy", "local:local:cpu")  # this system's own, with the tolerance it was checked by
    assert (mine.value, mine.lower, mine.upper) == (0.91, -0.05, 0.05)
    assert written.find("ResNet50", "train_images_per_s", "local:local:cpu").value == 120.0
    assert written.find("ResNet50", "train_images_per_s", "*:*:NVIDIA H100*").value == 3000.0  # other systems' stay
    assert written.find("ResNet50", "auc", "local:local:cpu").value == pytest.approx(0.93)
    assert text.count("# from sweep a") == 4  # each entry written says where it is from


def test_update_references_writes_for_every_system_only_when_asked(tmp_path, cli):
    make_sweep(tmp_path, "a", [record("ResNet50", 0, accuracy=0.5, train_ips=120.0)])
    path = tmp_path / "refs.toml"
    path.write_text("[ResNet50]\naccuracy = { value = 0.9, lower = -0.05, upper = 0.05 }  # the paper's 90%\n")
    path.chmod(0o600)
    done = cli("check", "--references", path, "--update-references", "--results", tmp_path)
    assert done.code == 0 and "for system local:local:cpu" in done.err, done.err
    assert read_references(path).find("ResNet50", "accuracy").value == 0.9 and "# the paper's 90%" in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # the file keeps its mode
    done = cli("check", "--references", path, "--update-references", "--all-systems", "--results", tmp_path)
    assert done.code == 0 and "for every system" in done.err, done.err
    assert read_references(path).find("ResNet50", "accuracy").value == 0.5 and "# the paper's" not in path.read_text()
    assert "# from sweep a" in path.read_text() and stat.S_IMODE(path.stat().st_mode) == 0o600
    refused = cli("check", "--references", path, "--all-systems", "--results", tmp_path)
    assert refused.code == 2 and "--all-systems" in refused.err and "--update-references" in refused.err


UPDATE = """
import sys
from harness.analysis.check import update_references
from harness.analysis.load import SweepResults
from harness.store.paths import SweepPaths
update_references(SweepResults(SweepPaths(sys.argv[1])), sys.argv[2])
"""


def test_two_updates_at_once_lose_nothing(tmp_path):
    """Two sweeps from two systems update one file at the same moment, five times over: every entry of
    both is there (the lock spans the read and the write)."""
    sweeps = {name: make_sweep(tmp_path / name, name, [record("ResNet50", 0, sweep=name, device=device)])
              for name, device in (("cpu", "cpu"), ("gpu", "cuda"))}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    for attempt in range(5):
        path = tmp_path / f"refs{attempt}.toml"
        workers = [subprocess.Popen([sys.executable, "-c", UPDATE, str(sweep.folder), str(path)], env=env)
                   for sweep in sweeps.values()]
        assert [worker.wait(timeout=HUNG_S) for worker in workers] == [0, 0]
        systems = {ref.system for ref in read_references(path).references}
        assert systems == {"local:local:cpu", "local:local:NVIDIA H100"}, (attempt, path.read_text())


def test_the_papers_table_2_is_a_reference_file_of_its_accuracies():
    refs = read_references(REPO / "slurm" / "references" / "paper-table2.toml")
    with open(REPO / "harness" / "resources" / "paper_table2.csv", newline="") as handle:
        table = {row["model"]: float(row["accuracy"]) for row in csv.DictReader(handle)}
    assert {(r.architecture, r.figure): r.value for r in refs.references} == {(m, "accuracy"): a for m, a in table.items()}
    assert all(r.lower == -0.05 and r.upper == 0.05 for r in refs.references)


@pytest.mark.parametrize("path", sorted((REPO / "slurm" / "references").glob("*.toml")), ids=lambda p: p.name)
def test_every_example_reference_file_is_valid(path):
    assert read_references(path).references


def test_a_sweep_against_its_references(tmp_path):
    sweep = make_sweep(tmp_path, "a", [record("ResNet50", 0, accuracy=0.90, train_ips=100.0),
                                       record("ResNet50", 1, accuracy=0.94, train_ips=110.0),
                                       record("VGG16", 0, accuracy=0.70)], models=["ResNet50", "VGG16", "DenseNet121"])
    refs = parse('''
[ResNet50]
accuracy = { value = 0.92, lower = -0.01, upper = 0.01 }
train_images_per_s = { value = 140.0, lower = -0.10 }
gpu_util_mean = { value = 0.9, lower = -0.1 }
[VGG16]
accuracy = { value = 0.99, lower = -0.05, upper = 0.05 }
[DenseNet121]
accuracy = { value = 0.87, lower = -0.05, upper = 0.05 }
[InceptionV3]
accuracy = { value = 0.67, lower = -0.05, upper = 0.05 }
''')
    rows = {(r["model"], r["figure"]): r for r in check_sweep(SweepResults(sweep), refs)}
    assert rows["ResNet50", "accuracy"]["verdict"] == "pass" and rows["ResNet50", "accuracy"]["value"] == pytest.approx(0.92)
    assert rows["ResNet50", "accuracy"]["seeds"] == 2
    assert rows["ResNet50", "train_images_per_s"]["verdict"] == "FAIL"  # 105 < 126
    assert rows["ResNet50", "train_images_per_s"]["reason"] == "below the reference's range"
    assert rows["ResNet50", "gpu_util_mean"]["verdict"] == "FAIL"  # measured nowhere: a CPU run
    assert rows["ResNet50", "gpu_util_mean"]["reason"] == "no value (not measured)"
    assert rows["VGG16", "accuracy"]["verdict"] == "FAIL" and rows["VGG16", "accuracy"]["ratio"] == pytest.approx(0.70 / 0.99)
    assert rows["DenseNet121", "accuracy"]["verdict"] == "FAIL"  # in the sweep, but no completed run
    assert rows["DenseNet121", "accuracy"]["reason"] == "no value (no completed run)"
    assert rows["InceptionV3", "accuracy"]["verdict"] == "not run"


def test_update_references_keeps_tolerances_and_other_architectures(tmp_path):
    sweep = make_sweep(tmp_path, "a", [record("ResNet50", 0, accuracy=0.90, train_ips=100.0)])
    path = tmp_path / "refs.toml"
    update_references(SweepResults(sweep), path)
    first = read_references(path)
    assert {(r.figure, r.lower, r.upper) for r in first.references} == {
        ("accuracy", -0.05, 0.05), ("auc", -0.05, 0.05), ("train_images_per_s", -0.10, None),
        ("infer_images_per_s", -0.10, None)}
    assert {r.system for r in first.references} == {"local:local:cpu"}
    path.write_text(path.read_text().replace("lower = -0.1,", "lower = -0.2,", 1)
                    + '\n[VGG16]\naccuracy = { value = 0.97, lower = -0.05, upper = 0.05 }\n')
    again = make_sweep(tmp_path, "b", [record("ResNet50", 0, sweep="b", accuracy=0.95, train_ips=200.0)])
    update_references(SweepResults(again), path)
    second, system = read_references(path), "local:local:cpu"
    assert second.find("ResNet50", "accuracy", system).value == 0.95
    assert second.find("ResNet50", "train_images_per_s", system) == Reference("ResNet50", "train_images_per_s", 200.0, -0.2, None, system)
    assert second.find("VGG16", "accuracy").value == 0.97
    assert "references from sweep a" in path.read_text()  # the description the file had



def timed(train_ips: float, q1: float, q3: float) -> dict:
    """A record's throughput with its timed windows' spread (median train_ips, quartiles q1 and q3)."""
    windows = [q1 * 0.99, q1, train_ips, q3, q3 * 1.01]
    spread = {"images_per_s": windows, "median": train_ips, "q1": q1, "q3": q3, "min": windows[0], "max": windows[-1]}
    return {"train_images_per_s": train_ips, "train_spread": spread, "infer_images_per_s": 3 * train_ips,
            "data_wait_fraction": 0.01, "mfu": None, "compile_seconds": None}


SHARED = {"alone": False, "shared_by": ["node gpu01: job 1234 sleep (alice)"]}
SPEED = '''
[ResNet50]
accuracy = { value = 0.90, lower = -0.05, upper = 0.05 }
train_images_per_s = { value = 100.0, lower = -0.10 }
'''


def test_a_speed_figure_of_a_run_that_shared_its_node_is_not_comparable_and_accuracy_is_still_checked(tmp_path, cli):
    sweep = make_sweep(tmp_path, "shared", [record("ResNet50", 0, accuracy=0.5, throughput=timed(50.0, 48.0, 52.0),
                                                   sharing=SHARED)])
    path = tmp_path / "refs.toml"
    path.write_text(SPEED)
    rows = {r["figure"]: r for r in check_sweep(SweepResults(sweep), read_references(path))}
    assert rows["train_images_per_s"]["verdict"] == "not comparable"
    assert rows["train_images_per_s"]["reason"] == "shared ResNet50-s0: node gpu01: job 1234 sleep (alice)"
    assert rows["accuracy"]["verdict"] == "FAIL"  # the run's own, whoever shared its node
    failed = cli("check", "shared", "--references", path, "--results", tmp_path)
    assert failed.code == 1 and "1 figures not comparable" in failed.err and "ResNet50 accuracy" in failed.err
    path.write_text(SPEED.replace("0.90", "0.50"))  # accuracy passes: a pass and a figure not comparable
    passed = cli("check", "shared", "--references", path, "--results", tmp_path)
    assert passed.code == 0 and "not comparable" in passed.out and "not comparable" in passed.err
    path.write_text("[ResNet50]\ntrain_images_per_s = { value = 100.0, lower = -0.10 }\n")  # nothing else to check
    nothing = cli("check", "shared", "--references", path, "--results", tmp_path)
    assert nothing.code == 3 and "nothing checked: every figure with a reference for this system is not comparable" in nothing.err


@pytest.mark.parametrize("median, q1, q3, verdict, reason", [
    (95.0, 92.0, 97.0, "pass", ""),  # within the band (from 90)
    (88.0, 85.0, 91.0, "pass", "below the reference's range, but its windows' interquartile range reaches into it"),
    (80.0, 78.0, 89.0, "FAIL", "below the reference's range, its windows' interquartile range too"),
])
def test_a_run_alone_fails_only_where_its_windows_interquartile_range_lies_outside_the_band(tmp_path, median, q1, q3,
                                                                                             verdict, reason):
    sweep = make_sweep(tmp_path, "alone", [record("ResNet50", 0, throughput=timed(median, q1, q3))])
    (row,) = check_sweep(SweepResults(sweep), parse("[ResNet50]\ntrain_images_per_s = { value = 100.0, lower = -0.10 }"))
    assert (row["verdict"], row["reason"]) == (verdict, reason)
    assert (row["value"], row["q1"], row["q3"]) == (median, q1, q3)


def test_over_seeds_the_band_is_met_by_the_mean_of_their_quartiles(tmp_path):
    sweep = make_sweep(tmp_path, "two", [record("ResNet50", 0, throughput=timed(86.0, 84.0, 88.0)),
                                         record("ResNet50", 1, throughput=timed(87.0, 86.0, 93.0))])
    (row,) = check_sweep(SweepResults(sweep), parse("[ResNet50]\ntrain_images_per_s = { value = 100.0, lower = -0.10 }"))
    assert row["verdict"] == "pass" and (row["q1"], row["q3"]) == (85.0, 90.5)  # the mean q3 reaches the band's 90


def test_a_record_that_does_not_say_whether_it_shared_is_checked_and_says_so(tmp_path):
    sweep = make_sweep(tmp_path, "old", [record("ResNet50", 0, train_ips=50.0, sharing=None)])
    (row,) = check_sweep(SweepResults(sweep), parse("[ResNet50]\ntrain_images_per_s = { value = 100.0, lower = -0.10 }"))
    assert row["verdict"] == "FAIL"
    assert row["reason"] == "below the reference's range; whether ResNet50-s0 had its node and GPU alone is not known"


def test_update_references_leaves_out_the_speed_figures_of_runs_that_shared(tmp_path, cli):
    sweep = make_sweep(tmp_path, "shared", [record("ResNet50", 0, accuracy=0.9, sharing=SHARED)])
    path = tmp_path / "refs.toml"
    written, system, left_out = update_references(SweepResults(sweep), path)
    assert left_out == ["ResNet50"] and {r.figure for r in read_references(path).references} == {"accuracy", "auc"}
    made = cli("check", "shared", "--references", tmp_path / "more.toml", "--update-references", "--results", tmp_path)
    assert made.code == 0 and "not written: the speed figures of ResNet50, whose runs shared their node or GPU" in made.err
