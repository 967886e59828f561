"""results/perflog.jsonl: entries built from records, appended whole under a lock, read back with
every broken line reported by number and skipped."""
import json
import multiprocessing
import random
import re

import pytest

from harness.errors import UserError
from harness.measure.system import collect_system, log_performance
from harness.store.figures import FIGURES, figures_of
from harness.store.paths import perflog
from harness.store.perflog import PerfEntry, append_entry, entry_from_record
from harness.store.perflog_index import read_perflog
from harness.store.records import read_spec

from patience import HUNG_S
from perf_helpers import entry, make_sweep, record


def test_an_entry_is_appended_as_one_line_and_read_back(tmp_path):
    first, second = entry("ResNet50-s0", 100.0), entry("VGG16-s1", None)
    assert append_entry(tmp_path, first) == perflog(tmp_path) == tmp_path / "perflog.jsonl"
    append_entry(tmp_path, second)
    lines = perflog(tmp_path).read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["run"] == "VGG16-s1"
    entries, problems = read_perflog(perflog(tmp_path))
    assert entries == [first, second] and problems == []
    assert entries[0].value("train_images_per_s") == 100.0 and entries[1].value("train_images_per_s") is None


def test_a_missing_log_is_empty(tmp_path):
    assert read_perflog(tmp_path / "perflog.jsonl") == ([], [])


def test_broken_lines_are_reported_by_number_and_skipped(tmp_path):
    good, other = json.dumps(entry().to_json()), json.dumps(entry("VGG16-s1").to_json())
    bad_type = json.dumps({**entry().to_json(), "seed": "zero"})
    bad_figure = json.dumps({**entry().to_json(), "figures": {"accuracy": {"value": "high", "unit": "fraction"}}})
    no_unit = json.dumps({**entry().to_json(), "figures": {"accuracy": {"value": 0.5}}})
    unknown = json.dumps({**entry().to_json(), "colour": "red"})
    bad_time = json.dumps({**entry().to_json(), "time": "yesterday"})
    nested = json.dumps({**entry().to_json(), "system": {"cluster": {"name": "x"}}})
    path = tmp_path / "perflog.jsonl"
    path.write_bytes("\n".join([good, "{not json", bad_type, "", bad_figure, no_unit, unknown, bad_time, nested,
                                "[1, 2]", other]).encode() + b"\n\xff\xfe\n")
    entries, problems = read_perflog(path)
    assert len(entries) == 2
    numbers = [int(p.split(" line ")[1].split(":")[0]) for p in problems]
    assert numbers == [2, 3, 5, 6, 7, 8, 9, 10, 12]
    assert all(p.endswith("; skipped") for p in problems)
    assert "field 'seed'" in problems[1] and "figure 'accuracy' has value 'high'" in problems[2]
    assert "unknown fields colour" in problems[4] and "not an ISO 8601 date" in problems[5]
    assert "system.cluster is dict" in problems[6] and "expected a JSON object" in problems[7]


def test_the_figures_fast_check_agrees_with_their_declared_types(tmp_path):
    """check_figures tests each known figure's unit and range itself (the generic check of FigureValues was half
    of a long perflog's first indexing): over random figures, a line is refused exactly where the declared
    types refuse it, with the same words, and read back whole where they take it."""
    from harness.store.perflog import FigureValues
    from harness.store.schema import DamagedFile, type_problem

    draw, names = random.Random(0), [*FIGURES, "later_harness_figure"]
    for _ in range(2000):
        figures = {}
        for name in draw.sample(names, draw.randint(0, 6)):
            unit = FIGURES[name].unit if name in FIGURES and draw.random() < 0.8 else draw.choice(["ms", "images/s", "%"])
            figures[name] = {"value": draw.choice([None, 0, 1, 0.5, 1.5, -0.01, -3, 2e9, draw.uniform(-1, 2)]), "unit": unit}
        declared = type_problem(figures, FigureValues, "figures")
        line = {**entry().to_json(), "figures": figures}
        if declared is None:
            assert PerfEntry.from_json(line, tmp_path).figures == figures
        else:
            with pytest.raises(DamagedFile, match=re.escape(f"field 'figures': {declared}")):
                PerfEntry.from_json(line, tmp_path)
    # a line damaged twice says what the checks before the figures' ranges find first, as it did
    wrong_unit = {"accuracy": {"value": 0.5, "unit": "ms"}}
    for changes, words in (({"schema_version": 2}, "newer harness"), ({"colour": "red"}, "unknown fields colour"),
                           ({"seed": "zero"}, "field 'seed'")):
        with pytest.raises(DamagedFile, match=words):
            PerfEntry.from_json({**entry().to_json(), "figures": wrong_unit, **changes}, tmp_path)


def test_a_line_cut_short_by_a_killed_writer_stays_its_own_line(tmp_path):
    path = tmp_path / "perflog.jsonl"
    path.write_text(json.dumps(entry().to_json())[:80])  # no newline: the writer died mid-line
    append_entry(tmp_path, entry("VGG16-s0"))
    entries, problems = read_perflog(path)
    assert [e.run for e in entries] == ["VGG16-s0"] and len(problems) == 1 and "line 1" in problems[0]


def test_a_perflog_planted_as_a_link_is_not_written_through(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("")
    (tmp_path / "perflog.jsonl").symlink_to(target)
    with pytest.raises(UserError, match="symbolic link"):
        append_entry(tmp_path, entry())
    assert target.read_text() == ""


def _append_many(folder: str, worker: int, count: int) -> None:
    for i in range(count):
        # ~20 kB a line: well past PIPE_BUF (4 kB) and a page, where a write without the lock could tear
        append_entry(folder, entry(f"M{worker}-s{i}", float(i), pad=str(worker) * 20_000))


def test_concurrent_appends_never_produce_a_broken_line(tmp_path):
    workers, count = 4, 60
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_append_many, args=(str(tmp_path), w, count)) for w in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(HUNG_S)
        assert process.exitcode == 0
    entries, problems = read_perflog(perflog(tmp_path))
    assert problems == []
    assert sorted(e.run for e in entries) == sorted(f"M{w}-s{i}" for w in range(workers) for i in range(count))
    for e in entries:  # each line holds its own writer's padding, whole
        assert e.settings["note"] == e.run[1] * 20_000
    assert perflog(tmp_path).read_bytes().count(b"\n") == workers * count


def test_an_entry_from_a_record_carries_settings_system_and_figures_with_units(tmp_path):
    sweep = make_sweep(tmp_path, "a", [record()])
    made = entry_from_record(record(accuracy=0.75, throughput={"train_images_per_s": 120.0,
                                                              "infer_images_per_s": float("nan"),
                                                              "compile_seconds": 12.5},
                                    environment={"device": "cpu", "host": "n1", "cluster": "marwan", "partition": "gpu",
                                                 "node": "gpu01", "torch": "2.5", "timm": "1.0", "cuda": None}),
                             read_spec(sweep), collect_system("cpu"))
    assert made.figures["accuracy"] == {"value": 0.75, "unit": "fraction"}
    assert made.figures["train_images_per_s"] == {"value": 120.0, "unit": "images/s"}
    assert made.value("infer_images_per_s") is None  # NaN is no figure
    assert made.value("compile_seconds") == 12.5 and made.value("wall_time_s") == 600.0
    assert set(made.figures) == set(FIGURES)
    assert made.settings == {"image_size": 64, "batch_size": 32, "lr": 0.001, "warmup_epochs": 0, "optimizer": "adam",
                             "precision": "fp32", "tf32": None, "channels_last": False, "compile": False, "mode": "finetune",
                             "epochs": 1, "world_size": 1, "lr_scaling": "none", "sync_bn": False, "synthetic": False}
    assert made.alone is True and made.shared_by == [] and made.spread == {}  # a record without timed windows
    assert made.system["cluster"] == "marwan" and made.system["partition"] == "gpu" and made.system["node"] == "gpu01"
    assert made.system["gpu_name"] is None and made.system["gpu_count"] == 0
    assert made.system["git_commit"] == "abc123" and made.system["harness_version"] == "0.1.0"
    PerfEntry.from_json(json.loads(json.dumps(made.to_json())), tmp_path)  # what is written reads back


def test_a_record_from_before_the_backend_named_its_system_keeps_its_system(tmp_path):
    """A record of schema 1.2 named where it ran after its scheduler (slurm_cluster, ...): read back, its
    perflog system is the one it ran on, as a reference's key reads it."""
    from harness.store.records import RunRecord

    sweep = make_sweep(tmp_path, "s", [record()])
    old = {**record().to_json(), "schema_minor": 2,
           "environment": {"device": "cpu", "host": "n1", "slurm_cluster": "marwan", "slurm_partition": "gpu",
                           "slurm_node": "gpu01", "slurm_job_id": "7"}}
    made = entry_from_record(RunRecord.from_json(old, tmp_path / "result.json"), read_spec(sweep), {})
    assert (made.system["cluster"], made.system["partition"], made.system["node"]) == ("marwan", "gpu", "gpu01")


def test_energy_is_read_where_the_gpu_sampler_puts_it():
    assert figures_of(record(gpu={"util_median": 0.9, "energy_per_image_j": 0.25}))["energy_per_image_j"] == 0.25
    assert figures_of(record())["energy_per_image_j"] is None


def test_a_run_of_a_sweep_logs_itself_once_its_record_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_CLUSTER_NAME", raising=False)
    made = record()
    sweep = make_sweep(tmp_path, "a", [made])
    assert log_performance(made, sweep.run(made.run_id)) == perflog(tmp_path)
    entries, _ = read_perflog(perflog(tmp_path))
    assert [(e.sweep, e.run, e.system["cluster"]) for e in entries] == [("a", "ResNet50-s0", "local")]
    # outside a sweep (a benchmark's own folder) nothing is logged; a failure to log is a warning only
    from harness.store.paths import RunPaths
    assert log_performance(made, RunPaths(tmp_path / "bench" / "run")) is None


def test_a_failure_to_log_is_a_warning_not_a_failed_run(tmp_path, monkeypatch, caplog):
    made = record()
    sweep = make_sweep(tmp_path, "a", [made])

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("harness.measure.system.append_entry", full_disk)
    assert log_performance(made, sweep.run(made.run_id)) is None
    assert "not added to the performance log" in caplog.text and "No space left" in caplog.text
