"""`status` on a sweep of more runs than a screen holds: its runs counted by architecture and state, then the
runs that need attention (capped, saying how many were left out); --all and the machine formats list every run."""
import json
from dataclasses import replace

import pytest

from harness.cli.track import ATTENTION_ROWS, SHOWN_RUNS

from perf_helpers import make_sweep, record


@pytest.fixture
def big(tmp_path, monkeypatch):
    """SHOWN_RUNS completed ResNet50 runs (one of them damaged), ATTENTION_ROWS + 2 failed VGG16 runs and a
    DenseNet121 run never submitted."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    failed = [replace(record("VGG16", seed), status="FAILED", error="out of memory") for seed in range(ATTENTION_ROWS + 2)]
    sweep = make_sweep(tmp_path / "results", "a", [record("ResNet50", seed) for seed in range(SHOWN_RUNS)] + failed,
                       models=["ResNet50", "VGG16", "DenseNet121"])
    sweep.run("ResNet50-s7").result.write_text("{not json")
    return sweep


def test_a_big_sweep_shows_its_states_counted_and_the_runs_that_need_attention(cli, big):
    shown = cli("status", "--results", big.results)
    assert shown.code == 0
    counts = next(line for line in shown.out.splitlines() if " all " in line).split()
    assert counts[:5] == ["│", "all", "│", f"{SHOWN_RUNS + ATTENTION_ROWS + 3}", "│"] and f"{SHOWN_RUNS - 1}" in counts
    assert "DAMAGED" in shown.out and "NOT SUBMITTED" in shown.out
    assert "ResNet50-s7" in shown.out and "ResNet50-s8" not in shown.out  # the damaged run, not the completed ones
    listed = [rid for rid in (f"VGG16-s{seed}" for seed in range(ATTENTION_ROWS + 2)) if f" {rid} " in shown.out]
    assert 0 < len(listed) < ATTENTION_ROWS + 2
    assert f"the {ATTENTION_ROWS + 4} runs that need attention, the first {ATTENTION_ROWS}" in shown.out
    assert f"not listed: 4 more that need attention and {SHOWN_RUNS - 1} completed runs; status --all lists every run" in \
        " ".join(shown.out.split())


def test_all_and_the_machine_formats_list_every_run(cli, big):
    every = cli("status", "--all", "--wide", "--results", big.results)
    assert every.code == 0 and all(f" ResNet50-s{seed} " in every.out for seed in range(SHOWN_RUNS))
    rows = json.loads(cli("status", "--format", "json", "--results", big.results).out)
    assert len(rows) == SHOWN_RUNS + ATTENTION_ROWS + 3
    refused = cli("status", "--all", "--format", "csv", "--results", big.results)
    assert refused.code == 2 and "--format csv lists every run already" in refused.err


def test_a_big_sweep_where_every_run_completed_says_so(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sweep = make_sweep(tmp_path / "results", "a", [record("ResNet50", seed) for seed in range(SHOWN_RUNS + 1)])
    shown = cli("status", "--results", sweep.results)
    said = " ".join(shown.out.split())
    assert shown.code == 0 and f"no run needs attention: status --all lists each of the {SHOWN_RUNS + 1} runs" in said


def test_a_small_sweep_lists_every_run(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sweep = make_sweep(tmp_path / "results", "a", [record("ResNet50", seed) for seed in range(SHOWN_RUNS)])
    shown = cli("status", "--results", sweep.results)
    assert shown.code == 0 and "on disk" in shown.out and "by architecture and state" not in shown.out
    assert all(f" ResNet50-s{seed} " in shown.out for seed in range(SHOWN_RUNS))


def test_watch_follows_a_big_sweep_by_its_summary():
    from rich.console import Console

    from harness.analysis.status import RunStatus
    from harness.cli.track import _status_table

    statuses = [RunStatus(f"ResNet50-s{seed}", "ResNet50", seed, "RUNNING" if seed == 3 else "COMPLETED")
                for seed in range(SHOWN_RUNS + 1)]
    console = Console(width=200, record=True)
    console.print(_status_table("a", statuses, {"state": "COMPLETED"}))
    shown = " ".join(console.export_text().split())
    assert f"{SHOWN_RUNS + 1} runs by architecture and state" in shown and "ResNet50-s3" in shown and "ResNet50-s4" not in shown
