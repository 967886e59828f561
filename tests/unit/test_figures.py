"""Figures read right: axes from the data's range, never an accuracy outside [0, 1], colour bars
in the units their titles name, a figure with nothing to show says so, log axes labelled in plain numbers.
Properties are read back from the matplotlib objects, not from pixels."""
import dataclasses

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from harness.analysis.figures import (
    completed_runs,
    confusion_matrices,
    draw_accuracy_vs_speed,
    draw_cross_generator_heatmaps,
    draw_robustness_heatmap,
    draw_training_curves,
    robustness_scope,
    unit_limits,
)
from harness.analysis.load import SweepResults
from harness.analysis.report import write_report

from perf_helpers import make_sweep, record


def _history(epochs: int, accuracy: float, loss: float = 0.4) -> pd.DataFrame:
    index = pd.Index(range(1, epochs + 1), name="epoch")
    return pd.DataFrame({"train_accuracy": accuracy, "val_accuracy": accuracy - 0.02,
                         "train_loss": loss, "val_loss": loss + 0.1}, index=index)


def _texts(fig: plt.Figure) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_accuracy_limits_come_from_the_data_and_stay_inside_0_1():
    assert unit_limits([0.91, 0.95]) == pytest.approx((0.86, 1.0))
    assert unit_limits([0.0, 0.02]) == pytest.approx((0.0, 0.07))
    assert unit_limits([0.4, 0.6]) == pytest.approx((0.35, 0.65))
    assert unit_limits([]) == (0.0, 1.0)
    assert unit_limits([float("nan"), 0.5]) == pytest.approx((0.45, 0.55))


def test_training_curves_of_perfect_accuracy_never_go_above_1():
    fig = draw_training_curves({"ResNet50": _history(5, 1.0), "VGG16": _history(5, 0.97)})
    accuracy, loss = fig.axes[:2]
    low, high = accuracy.get_ylim()
    assert 0.0 <= low and high <= 1.0 and low > 0.8  # zoomed on the data, not 0 to 1
    assert loss.get_ylim()[0] >= 0.0
    assert "one epoch" not in _texts(fig)
    assert all(line.get_marker() == "o" for line in accuracy.lines)


def test_a_one_epoch_training_curve_says_so_and_shows_its_points():
    fig = draw_training_curves({"MobileNetV2": _history(1, 0.5), "ResNet50": _history(1, 0.6)})
    accuracy, loss = fig.axes[:2]
    assert _texts(fig).count("one epoch: one point per run, no curve to draw") == 2
    assert list(accuracy.get_xticks()) == [1]
    for line in accuracy.lines:  # one visible point each, not an invisible zero-length line
        assert len(line.get_xdata()) == 1 and line.get_marker() == "o"
    assert 0.0 <= accuracy.get_ylim()[0] and accuracy.get_ylim()[1] <= 1.0


@pytest.mark.parametrize("speeds", [[35.0, 62.0], [8.0, 120.0, 4500.0]])
def test_the_speed_axis_is_log_with_plain_number_labels(speeds):
    table = pd.DataFrame({"model": [f"m{i}" for i in range(len(speeds))], "train_images_per_s": speeds,
                          "accuracy": np.linspace(0.9, 1.0, len(speeds)), "accuracy_lo": 0.85, "accuracy_hi": 1.0})
    fig = draw_accuracy_vs_speed(table)
    ax = fig.axes[0]
    fig.canvas.draw()
    assert ax.get_xscale() == "log"
    low, high = ax.get_xlim()
    assert low < min(speeds) and high > max(speeds)
    labels = [t.get_text() for t in ax.get_xticklabels() + ax.get_xticklabels(minor=True) if t.get_text()
              and low <= t.get_position()[0] <= high]
    assert labels, "a log axis within its range must label some ticks"
    for text in labels:
        assert "$" not in text and "^" not in text and "e" not in text, labels
        assert float(text.replace(",", "")) > 0
    assert 0.0 <= ax.get_ylim()[0] and ax.get_ylim()[1] <= 1.0  # the interval's top at 1.0 is not exceeded


def test_a_speed_figure_without_speeds_says_so():
    table = pd.DataFrame({"model": ["m"], "train_images_per_s": [None], "accuracy": [0.7],
                          "accuracy_lo": [None], "accuracy_hi": [None]})
    fig = draw_accuracy_vs_speed(table)
    assert "no completed run recorded both a test accuracy and a training speed" in _texts(fig)


def test_the_robustness_colour_bar_is_in_percent_as_its_title_says():
    table = pd.DataFrame({"clean": [0.95, 0.62], "jpeg50": [0.81, 0.41]}, index=["ResNet50", "VGG16"])
    fig = draw_robustness_heatmap(table)
    heat, bar = fig.axes
    assert "(%)" in heat.get_title() and "(%)" in bar.get_ylabel()
    image = heat.images[0]
    assert image.get_clim() == (40.0, 100.0)  # 50 (chance) to 100, down to the data's 41
    assert image.get_array().max() == pytest.approx(95.0)
    assert bar.get_ylim() == pytest.approx((40.0, 100.0))
    assert "95.0" in _texts(fig) and "41.0" in _texts(fig)


def test_the_robustness_table_and_figure_name_the_test_images_they_score(tmp_path):
    """On the demo the perturbed passes score 50 of its 400 test images: the clean column is on those 50, so
    it differs from the leaderboard's accuracy, and the report's table and heat map say which images."""
    scored = {"accuracy": 0.9, "auc": 0.95, "count": 50}
    runs = [record(model, sweep="s1", test={"accuracy": 0.88, "auc": 0.94, "count": 400},
                   robustness={"none": dict(scored), "jpeg50": {**scored, "accuracy": 0.7}}) for model in ("ResNet50", "VGG16")]
    sweep = make_sweep(tmp_path, "s1", runs)
    assert robustness_scope(completed_runs(SweepResults(sweep))) == "50 of 400 test images"
    html = write_report(SweepResults(sweep)).read_text()
    assert "Robustness (test accuracy % and AUC %, on 50 of 400 test images: clean and perturbed on the same images)" in html
    table = pd.DataFrame({"clean": [0.9], "jpeg50": [0.7]}, index=["ResNet50"])
    assert "(on 50 of 400 test images)" in draw_robustness_heatmap(table, "50 of 400 test images").axes[0].get_title()
    whole = make_sweep(tmp_path, "s2", [record("VGG16", sweep="s2", robustness={"none": {**scored, "count": 400}},
                                               test={"accuracy": 0.88, "auc": 0.94, "count": 400})])
    assert robustness_scope(completed_runs(SweepResults(whole))) == "all 400 test images"
    older = make_sweep(tmp_path, "s3", [record("VGG16", sweep="s3", robustness={"jpeg50": dict(scored)})])  # no "none"
    assert robustness_scope(completed_runs(SweepResults(older))) == ""
    assert "Robustness (test accuracy % and AUC %)" in write_report(SweepResults(older)).read_text()


def test_the_cross_generator_colour_bar_is_in_percent():
    table = pd.DataFrame([[0.99, 0.7], [0.55, 0.98]], index=["a", "b"], columns=["a", "b"])
    fig = draw_cross_generator_heatmaps({"ResNet50": table, "VGG16": table})
    bar = fig.axes[-1]
    assert "AUC (%)" in bar.get_ylabel() and "(%)" in fig._suptitle.get_text()
    assert bar.get_ylim() == pytest.approx((50.0, 100.0))
    assert all(ax.images[0].get_clim() == (50.0, 100.0) for ax in fig.axes[:2])


def test_the_confusion_figure_draws_the_records_that_hold_a_matrix(tmp_path):
    """A record without a test confusion matrix (written by hand, or cut short) is left out of the figure,
    which draws the others, or is left out itself when none holds one; the report is written either way."""
    matrix = record("ResNet50", sweep="s1")
    matrix = dataclasses.replace(matrix, test={**matrix.test, "confusion_matrix": [[40, 2], [3, 35]]})
    sweeps = [make_sweep(tmp_path, "s1", [matrix, record("MobileNetV2", sweep="s1")]),
              make_sweep(tmp_path, "s2", [record("MobileNetV2", sweep="s2")])]
    drawn = [confusion_matrices(completed_runs(SweepResults(sweep))) for sweep in sweeps]
    assert drawn[0] is not None and drawn[1] is None
    for sweep in sweeps:
        assert write_report(SweepResults(sweep)).is_file()


def test_each_architecture_keeps_one_colour_on_every_figure():
    """The paper's eight in eight colours, the same on the training curves and on accuracy against speed (and,
    by the same function, the ROC, the scaling, the dashboard's and history's figures); a variant takes its
    architecture's colour and a marker of its own; any other architecture a colour none of the eight has."""
    from harness.analysis.colours import architecture_colours
    from harness.zoo.registry import MODEL_NAMES

    others = ["resnet10t", "resnet34", "resnet18", "regnety_008", "convnext_small", "efficientnet_b1", "vit_small_patch16_224"]
    colours = architecture_colours([*MODEL_NAMES, *others, "ResNet50 [x2]"])
    assert len(set(colours.values())) == len(MODEL_NAMES) + len(others)  # no two architectures on one page alike
    assert architecture_colours(["ResNet50", "resnet10t"]) == {name: colours[name] for name in ("ResNet50", "resnet10t")}
    assert colours["ResNet50 [x2]"] == colours["ResNet50"]

    def architecture_colour(name: str) -> str:
        return colours[name]

    to_rgb = matplotlib.colors.to_hex
    curves = draw_training_curves({"VGG16": _history(3, 0.8), "ResNet50": _history(3, 0.9), "ResNet50 [x2]": _history(3, 0.9)})
    lines = {line.get_label(): line for line in curves.axes[0].lines if not line.get_label().startswith("_")}
    resnet, vgg = architecture_colour("ResNet50"), architecture_colour("VGG16")
    assert {label: to_rgb(line.get_color()) for label, line in lines.items()} == {"VGG16": vgg, "ResNet50": resnet,
                                                                                 "ResNet50 [x2]": resnet}
    assert lines["ResNet50"].get_marker() != lines["ResNet50 [x2]"].get_marker()
    table = pd.DataFrame({"model": ["ResNet50", "VGG16"], "train_images_per_s": [40.0, 30.0], "accuracy": [0.9, 0.8],
                          "accuracy_lo": [0.85, 0.75], "accuracy_hi": [0.95, 0.85]})
    points = draw_accuracy_vs_speed(table).axes[0].containers
    assert [to_rgb(container.lines[0].get_color()) for container in points] == [resnet, vgg]


def test_the_reports_hpc_figures_give_each_its_unit_and_why_one_is_not_measured(tmp_path):
    """The report's first table after the leaderboard: a GPU run's utilisation, energy and GPU-hours; a CPU run's
    'not measured' with its record's reason; the queue's wait from jobs.json's submission to the run's start."""
    from harness.analysis.report import hpc_table
    from harness.store.submissions import Submission, record_submission

    gpu = record("ResNet50", sweep="s1", device="cuda")
    gpu = dataclasses.replace(gpu, gpu={"util_mean": 0.8, "energy_per_image_j": 2.5, "reason": None},
                              distributed={"world_size": 2, "nodes": 1})
    sweep = make_sweep(tmp_path, "s1", [gpu, record("MobileNetV2", sweep="s1")])
    record_submission(sweep, Submission("local", None, {"ResNet50-s0": "4194305@1", "MobileNetV2-s0": "4194306@1"},
                                        submitted="2026-01-02T02:58:30+00:00"))
    table = hpc_table(SweepResults(sweep)).set_index("figure")
    assert list(table.columns) == ["unit", "ResNet50", "MobileNetV2", "not measured because"]
    assert table.loc["GPU util"].tolist() == ["%", "80.00", "not measured", "no NVIDIA GPU in use"]
    assert table.loc["train J/image"].tolist()[:3] == ["J/image", "2.5", "not measured"]
    assert table.loc["queue wait", "unit"] == "s" and table.loc["queue wait", "ResNet50"] == "90.0"  # 02:58:30 to 03:00
    # ten minutes on two GPUs
    assert table.loc["GPU-hours", "ResNet50"] == "0.333" and table.loc["GPU-hours", "MobileNetV2"] == "not measured"
    assert table.loc["train img/s", "not measured because"] == "-"
