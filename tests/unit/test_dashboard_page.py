"""The dashboard's page read as HTML and its trend figure as matplotlib objects (tests/integration/test_dashboard.py
renders it in a browser): what needs attention first, no empty chart, a single sweep's point on a readable axis,
a long history summarised."""
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import matplotlib.dates as mdates

from harness.analysis.dashboard import dashboard_html, draw_trends
from harness.analysis.history import perflog_frame
from harness.store.paths import perflog
from harness.store.perflog import append_entry
from harness.store.perflog_index import read_columns

from perf_helpers import entry, make_sweep, record


def _one_cpu_sweep(results):
    for model in ("ResNet50", "VGG16"):  # one sweep on this machine's CPU: no energy, no GPU held
        made = entry(f"{model}-s0", 100.0, sweep="only", time="2026-03-01T10:00:00+00:00")
        append_entry(results, replace(made, architecture=model, figures={**made.figures, "auc": {"value": 0.9, "unit": "fraction"}}))
    make_sweep(results, "only", [record("ResNet50", sweep="only"), record("VGG16", sweep="only")])


def test_without_references_or_costs_the_page_says_so_in_a_line_each(tmp_path):
    _one_cpu_sweep(tmp_path)
    page = dashboard_html(tmp_path, None)
    headings = re.findall(r"<h2>([^<]+)</h2>", page)
    assert headings[0] == "Needs attention" and "Check of the latest sweep" not in headings
    assert "No references given (dashboard --references FILE): nothing checked." in page
    assert "No run measured an energy or held a GPU" in page
    assert len(re.findall(r"<img ", page)) == 1  # the trends alone: no frame around nothing


def test_a_single_sweeps_trend_is_its_point_on_a_days_axis(tmp_path):
    _one_cpu_sweep(tmp_path)
    frame = perflog_frame(read_columns(perflog(tmp_path), ["train_images_per_s", "auc", "energy_per_image_j", "wall_time_s"]))
    for ax in draw_trends(frame, None).axes:
        low, high = ax.get_xlim()
        assert 0.9 < high - low < 1.1  # days (matplotlib's unit): the sweep's day, not years around it
        assert low < mdates.datestr2num("2026-03-01T10:00") < high


def test_a_long_history_is_its_median_per_week_between_its_quartiles(tmp_path):
    """200 sweeps over two years on one system: a weekly median line shaded between the quartiles, not 200
    markers in a band; a short history on another system keeps a point per sweep."""
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    for day in range(0, 800, 4):  # 200 sweeps, every four days
        made = entry("ResNet50-s0", 100.0 + day % 7, sweep=f"long-{day}", time=(start + timedelta(days=day)).isoformat())
        append_entry(tmp_path, replace(made, architecture="ResNet50"))
    for day in (0, 30):
        made = entry("ResNet50-s0", 50.0, sweep=f"short-{day}", time=(start + timedelta(days=day)).isoformat(),
                     system={"cluster": "other", "partition": "p100", "gpu_name": "Tesla P100", "gpu_count": 1})
        append_entry(tmp_path, replace(made, architecture="ResNet50"))
    frame = perflog_frame(read_columns(perflog(tmp_path), ["train_images_per_s", "auc", "energy_per_image_j", "wall_time_s"]))
    (ax,) = draw_trends(frame, None).axes
    lines = {line.get_label(): line for line in ax.lines}
    (weekly,) = [label for label in lines if label.endswith("weekly median")]
    assert 100 <= len(lines[weekly].get_xdata()) <= 120 and len(ax.collections) == 1  # ~115 weeks, one shaded band
    (short,) = [label for label in lines if not label.endswith("median")]
    assert len(lines[short].get_xdata()) == 2 and lines[short].get_marker() not in (None, "None", "")
