"""The registry of figures is the one place a figure is defined: a figure added to it, with its reader
of a run's record, shows in the leaderboard, in the perflog line a completed run appends, in `check`
and in the report; each figure is read one way everywhere; docs/results.md lists the registry as it is."""
import json
from pathlib import Path

import pytest

from harness.measure.system import log_performance
from harness.store.figures import FIGURES, Figure, doc_table
from harness.store.paths import perflog
from harness.store.perflog import entry_from_record
from harness.store.perflog_index import read_perflog
from harness.store.records import read_spec

from perf_helpers import entry, make_sweep, record

REPO = Path(__file__).resolve().parents[2]
TEST = {"accuracy": 0.9, "auc": 0.92, "f1": 0.9, "loss": 0.3, "confusion_matrix": [[5, 1], [1, 5]]}


def trainable_share(made):
    """trainable_params / params"""
    return made.trainable_params / made.params


@pytest.fixture
def trainable(monkeypatch):
    """A figure the harness does not have, added to the registry alone."""
    figure = Figure("trainable_share", "fraction", False, "trainable", trainable_share, tolerance=(-0.01, 0.01))
    monkeypatch.setitem(FIGURES, figure.name, figure)
    return figure


def test_a_figure_added_to_the_registry_shows_in_every_reader(cli, tmp_path, trainable, monkeypatch):
    monkeypatch.delenv("SLURM_CLUSTER_NAME", raising=False)
    results = tmp_path / "results"
    runs = [record(model, sweep="new", test=TEST, trainable_params=share) for model, share in (("ResNet50", 250), ("VGG16", 500))]
    sweep = make_sweep(results, "new", runs)

    board = {row["model"]: row for row in cli("leaderboard", "--format", "json", "--results", results).json()}
    assert (board["ResNet50"]["trainable_share"], board["VGG16"]["trainable_share"]) == (0.25, 0.5)

    for run in runs:  # as each job does once its record is written
        log_performance(run, sweep.run(run.run_id))
    logged, problems = read_perflog(perflog(results))
    assert problems == [] and [e.figures["trainable_share"] for e in logged] == [{"value": 0.25, "unit": "fraction"},
                                                                                  {"value": 0.5, "unit": "fraction"}]

    references = tmp_path / "refs.toml"
    references.write_text("[ResNet50]\ntrainable_share = { value = 0.25, lower = -0.01, upper = 0.01 }\n"
                          "[VGG16]\ntrainable_share = { value = 0.25, lower = -0.01, upper = 0.01, unit = \"fraction\" }\n")
    checked = cli("check", "--references", references, "--format", "json", "--results", results)
    assert checked.code == 1 and [(r["model"], r["verdict"]) for r in checked.json()] == [("ResNet50", "pass"), ("VGG16", "FAIL")]
    kept = tmp_path / "kept.toml"
    assert cli("check", "--references", kept, "--update-references", "--results", results).code == 0
    assert "trainable_share = {value = 0.25, lower = -0.01, upper = 0.01" in kept.read_text()  # its own tolerance

    assert cli("report", "--format", "markdown", "--results", results).code == 0
    report = (sweep.folder / "report.md").read_text()
    every = report.split("## Every figure")[1].split("##")[0]
    assert "| trainable % |" in every and "| 25.00 |" in every


def test_gpu_utilisation_is_one_statistic_and_energy_one_key_in_every_reader(cli, tmp_path):
    gpu = {"util_mean": 0.6, "util_median": 0.9, "samples": 10, "energy_per_image_j": 0.25, "images": 100,
           "infer": {"energy_per_image_j": 0.05, "images": 40}}
    made = record(gpu=gpu, test=TEST)
    sweep = make_sweep(tmp_path / "results", "gpu", [made])
    (row,) = cli("leaderboard", "--format", "json", "--results", tmp_path / "results").json()
    logged = entry_from_record(made, read_spec(sweep), {})
    for figure, value in (("gpu_util_mean", 0.6), ("energy_per_image_j", 0.25), ("infer_energy_per_image_j", 0.05)):
        assert row[figure] == logged.value(figure) == value, figure
    assert "gpu_util_median" not in row and "gpu_util_median" not in logged.figures  # the mean: the share of time busy


def test_a_perflog_line_whose_figure_leaves_the_registrys_range_or_unit_is_skipped(tmp_path):
    good = entry().to_json()
    lines = [{**good, "figures": {**good["figures"], "accuracy": {"value": 1.5, "unit": "fraction"}}},
             {**good, "figures": {**good["figures"], "train_images_per_s": {"value": 9.0, "unit": "images/h"}}},
             {**good, "figures": {**good["figures"], "a_later_figure": {"value": 3.0, "unit": "widgets"}}}]
    perflog(tmp_path).write_text("".join(json.dumps(line) + "\n" for line in lines))
    entries, problems = read_perflog(perflog(tmp_path))
    assert [e.value("a_later_figure") for e in entries] == [3.0]  # a figure the registry does not know passes
    assert "figures.accuracy.value is 1.5, outside [0, 1]" in problems[0]
    assert "figures.train_images_per_s.unit is 'images/h', not one of images/s" in problems[1]


def test_the_docs_list_the_registry_as_it_is():
    doc = (REPO / "docs" / "results.md").read_text()
    assert doc_table() in doc, "docs/results.md's table of figures: paste `python -m harness.store.figures` into it"
