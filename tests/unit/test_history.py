"""history: the perflog read with pandas, one series per (architecture, system, settings), one point
per sweep; filters; the PNG; a broken line is a warning, never a crash."""
import subprocess
import sys
from dataclasses import replace

import pytest

from harness.analysis.history import history_rows, load_history, plot_history
from harness.errors import UserError
from harness.store.paths import perflog
from harness.store.perflog import append_entry

from patience import HUNG_S
from perf_helpers import entry

P100 = {"cluster": "marwan", "partition": "p100", "gpu_name": "Tesla P100", "gpu_count": 1, "driver": "535", "torch": "2.4"}
V100 = {**P100, "partition": "v100", "gpu_name": "Tesla V100"}


def _log(results, sweep: str, month: int, system: dict, values: list[float], **settings) -> None:
    for seed, value in enumerate(values):
        made = entry(f"ResNet50-s{seed}", value, sweep=sweep, time=f"2026-{month:02d}-01T0{seed}:00:00+00:00", system=system)
        append_entry(results, replace(made, settings={**made.settings, **settings}))


@pytest.fixture
def results(tmp_path):
    _log(tmp_path, "p-jan", 1, P100, [400.0, 410.0])
    _log(tmp_path, "v-jan", 1, V100, [900.0, 910.0, 920.0])
    _log(tmp_path, "p-feb", 2, {**P100, "driver": "550"}, [300.0, 310.0])
    _log(tmp_path, "p-mar", 3, {**P100, "driver": "550"}, [500.0], batch_size=64)  # other settings: its own series
    return tmp_path


def test_one_point_per_sweep_one_series_per_system_and_settings(results):
    points, problems = load_history(results, "train_images_per_s")
    rows = history_rows(points, "train_images_per_s")
    assert problems == []
    assert [(r["sweep"], r["seeds"], r["train_images_per_s"]) for r in rows] == [
        ("p-jan", 2, 405.0), ("v-jan", 3, 910.0), ("p-feb", 2, 305.0), ("p-mar", 1, 500.0)]
    change = {r["sweep"]: r["change"] for r in rows}
    assert change["p-feb"] == pytest.approx(305.0 / 405.0)  # the same series, a month later
    assert change["p-jan"] is None and change["v-jan"] is None and change["p-mar"] is None  # first of their series
    assert {r["sweep"]: r["driver"] for r in rows}["p-feb"] == "550"
    assert rows[0]["system"] == "marwan/p100 Tesla P100 x1" and rows[0]["unit"] == "images/s"


def test_a_run_rerun_by_resume_counts_once_with_its_last_figures(tmp_path):
    """A record set aside and its run completed again appends a second line: history neither counts it
    as a second seed nor averages the old attempt in."""
    _log(tmp_path, "one-seed", 1, P100, [400.0])
    _log(tmp_path, "one-seed", 1, P100, [600.0])  # the same sweep and run, completed again
    rows = history_rows(load_history(tmp_path, "train_images_per_s")[0], "train_images_per_s")
    assert [(r["sweep"], r["seeds"], r["train_images_per_s"]) for r in rows] == [("one-seed", 1, 600.0)]


def test_filters_and_what_they_leave(results):
    points, _ = load_history(results, "train_images_per_s", partition="v100")
    assert list(points["sweep"]) == ["v-jan"]
    points, _ = load_history(results, "train_images_per_s", model="ResNet50", partition="p100")
    assert list(points["sweep"]) == ["p-jan", "p-feb", "p-mar"]
    with pytest.raises(UserError, match="matches --model VGG16; it has models ResNet50 and partitions p100, v100"):
        load_history(results, "train_images_per_s", model="VGG16")
    with pytest.raises(UserError, match="unknown metric 'speed'"):
        load_history(results, "speed")


def test_a_broken_line_is_a_warning_with_its_number(results):
    with open(perflog(results), "a") as handle:
        handle.write('{"half a line\n')
    points, problems = load_history(results, "train_images_per_s")
    assert len(points) == 4 and len(problems) == 1 and "line 9: not a JSON object" in problems[0]


def test_no_log_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="no performance log at .*perflog.jsonl"):
        load_history(tmp_path, "accuracy")


def test_the_png_is_written_whole(results):
    points, _ = load_history(results, "train_images_per_s")
    path = plot_history(points, "train_images_per_s", results / "figures" / "history.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(path.parent.glob(".*.tmp"))


def test_the_perf_modules_import_no_heavy_library():
    code = ("import sys; import harness.store.perflog, harness.analysis.check, harness.analysis.compare, harness.measure.system; "
            "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=HUNG_S)
    assert {"torch", "timm", "submitit", "pandas", "numpy", "matplotlib"}.isdisjoint(done.stdout.split())


def test_a_point_whose_seeds_ran_on_several_drivers_names_each(tmp_path):
    _log(tmp_path, "mixed", 1, P100, [400.0])
    append_entry(tmp_path, entry("ResNet50-s1", 410.0, sweep="mixed", time="2026-01-01T02:00:00+00:00",
                                 system={**P100, "driver": "550"}))
    _log(tmp_path, "unknown", 2, {**P100, "driver": None}, [500.0])
    rows = history_rows(load_history(tmp_path, "train_images_per_s")[0], "train_images_per_s")
    assert [(r["sweep"], r["driver"], r["torch"], r["seeds"]) for r in rows] == [("mixed", "535, 550", "2.4", 2),
                                                                                 ("unknown", "-", "2.4", 1)]
