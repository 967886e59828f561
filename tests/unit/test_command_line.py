"""The command line's own surface, as a site's user meets it: the console script, --version, the
defaults in --help, and the results folder named once in the environment."""
import json
import os
import subprocess
import sys
from pathlib import Path

import harness
from harness.analysis.columns import SORTABLE
from harness.cli import build_parser

from patience import HUNG_S
from perf_helpers import make_sweep, record

SCRIPT = Path(sys.executable).parent / "harness"  # where `pip install -e .` puts the console script


def run(*command: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=HUNG_S)


def test_the_console_script_and_python_m_are_one_command(tmp_path):
    for command in ([str(SCRIPT)], [sys.executable, "-m", "harness"]):
        done = run(*command, "--version", cwd=tmp_path)
        assert (done.returncode, done.stdout) == (0, f"harness {harness.__version__}\n"), done.stderr
    assert run(str(SCRIPT), "status", "--help", cwd=tmp_path).stdout.startswith("usage: harness status")


def test_a_checkout_run_by_a_python_without_the_dependencies_says_how_to_install_them(tmp_path):
    """`python -m harness ...` in a clone, by a Python harness was never installed into (-S: no site-packages,
    so none of its dependencies): --help still answers, and a command says in one line what to install."""
    checkout = Path(harness.__file__).resolve().parents[1]
    bare = (sys.executable, "-S", "-m", "harness")
    assert run(*bare, "--help", cwd=checkout, PYTHONPATH="").returncode == 0
    for command in (("models",), ("sweep", "--cluster", "local", "--models", "MobileNetV2", "--epochs", "1", "--wait")):
        done = run(*bare, *command, cwd=checkout, PYTHONPATH="", HARNESS_RESULTS=str(tmp_path / "results"))
        assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith(f"error: this Python ({sys.executable}) has no module ")
        assert done.stderr.rstrip().endswith("with `python -m pip install -e '.[demo]'` in the checkout, as the README's first "
                                             "command does (README, \"The two commands\")")
    assert not list(tmp_path.glob("results/*"))  # no sweep begun


def test_a_command_started_with_its_output_closed_says_so_and_does_nothing(tmp_path):
    """`harness sweep ... >&-`: one line, exit 2, and no sweep begun (it submitted, then failed on a traceback)."""
    for command in (("status",), ("sweep", "--cluster", "local", "--models", "MobileNetV2", "--epochs", "1")):
        done = run("sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "harness", *command, cwd=tmp_path,
                   HARNESS_RESULTS=str(tmp_path / "results"))
        assert done.returncode == 2 and done.stderr == "error: standard output is closed (`>&-`): send it somewhere, " \
                                                       "`> /dev/null` to drop it\n", done.stderr
    assert not (tmp_path / "results").exists()


def test_the_demo_without_its_extra_says_how_to_install_it(tmp_path):
    """scikit-image, whose photographs the demo is made from, comes with the `demo` extra alone: a Python
    installed without it builds no demo and says in one line what to install."""
    hide_scikit_image = "import sys; sys.modules['skimage'] = None; from harness.cli import main; sys.exit(main(sys.argv[1:]))"
    for command in (("data", "demo", "--out", "demo"), ("sweep", "--cluster", "local", "--dry-run"),
                    ("sweep", "--cluster", "local", "--check"), ("sweep", "--cluster", "local", "--models", "MobileNetV2", "--wait")):
        done = run(sys.executable, "-c", hide_scikit_image, *command, cwd=tmp_path)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, (command, done.stderr)
        assert done.stderr.startswith("error: the built-in demo is made from photographs that ship with scikit-image")
        assert "python -m pip install -e '.[demo]'" in done.stderr
        assert list(tmp_path.iterdir()) == [], command  # nothing written: no demo, no results folder, no lock


def test_the_results_folder_can_be_named_once_in_the_environment(tmp_path):
    shared = tmp_path / "project" / "results"
    make_sweep(shared, "s1", [record("ResNet50", sweep="s1")])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run(sys.executable, "-m", "harness", "leaderboard", "--format", "csv", cwd=elsewhere, HARNESS_RESULTS=str(shared))
    assert done.returncode == 0 and done.stdout.startswith("model,") and "ResNet50" in done.stdout, done.stderr
    given = run(sys.executable, "-m", "harness", "status", "--results", str(elsewhere), cwd=elsewhere, HARNESS_RESULTS=str(shared))
    assert given.returncode == 2 and f"no sweep under {elsewhere}" in given.stderr  # the option wins over the variable


def subcommands(parser):
    (commands,) = [action for action in parser._actions if action.choices and isinstance(action.choices, dict)]
    return commands.choices


def test_every_option_with_a_default_shows_it_in_help():
    for name, command in subcommands(build_parser()).items():
        text = " ".join(command.format_help().split("\n\n", 1)[1].split())  # the options, below the usage
        for action in command._actions:
            if action.option_strings and action.default not in (None, False, [], "==SUPPRESS=="):
                flag = action.option_strings[-1]
                assert "default" in text.split(flag, 1)[1][:400], (name, flag)


def test_sort_lists_what_it_can_rank_by():
    text = " ".join(subcommands(build_parser())["leaderboard"].format_help().split())
    assert all(metric in text for metric in SORTABLE)


def test_following_a_sweep_on_slurm_backs_off_to_a_minute():
    from harness.sweeps import POLL_FIRST, POLL_MOST, poll_interval

    looks, gaps = [0.0], []
    while looks[-1] < 3600:  # an hour of a sweep followed
        gaps.append(poll_interval(looks[-1], None, scheduler=True))
        looks.append(looks[-1] + gaps[-1])
    assert gaps[0] == POLL_FIRST and max(gaps) == POLL_MOST and gaps == sorted(gaps)
    assert len(looks) < 100  # about 95 sacct calls, not the 1,800 of a 2 s loop
    assert all(gap <= max(POLL_FIRST, start / 10) for start, gap in zip(looks, gaps))  # an ending is seen at most 10% late
    assert {poll_interval(t, None, scheduler=False) for t in (0, 60, 3600)} == {POLL_FIRST}  # this machine's files
    assert {poll_interval(t, 7.5, scheduler=True) for t in (0, 60, 3600)} == {7.5}


def test_a_piped_watch_prints_a_timestamped_line_per_change(tmp_path):
    from datetime import datetime

    results = tmp_path / "results"
    make_sweep(results, "s1", [record("ResNet50", sweep="s1"), record("VGG16", sweep="s1")])
    done = run(sys.executable, "-m", "harness", "status", "--watch", "--results", str(results), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (line,) = done.stderr.splitlines()
    stamp, text = line.split(" ", 1)
    assert datetime.fromisoformat(stamp).tzinfo is not None
    assert text == "s1: preprocessing NOT SUBMITTED; ResNet50-s0 COMPLETED 1/1; VGG16-s0 COMPLETED 1/1"  # epochs: the record's


EIGHT = ["ResNet50", "VGG16", "VGG19", "DenseNet121", "MobileNetV2", "Xception", "NASNetMobile", "InceptionV3"]


def test_the_tables_read_whole_at_100_columns_and_at_80(tmp_path):
    """leaderboard, status, compare and check on eight architectures of two seeds each: no line wider than
    the terminal, no cell cut; what makes way is named (--wide shows it)."""
    results = tmp_path / "results"
    for name, speed in (("before", 100.0), ("after", 120.0)):
        make_sweep(results, name, [record(model, seed=seed, sweep=name, accuracy=0.80 + 0.01 * i + 0.004 * seed, train_ips=speed + seed)
                                   for i, model in enumerate(EIGHT) for seed in (0, 1)])
    references = tmp_path / "refs.toml"
    references.write_text("".join(f'[{model}]\naccuracy = {{ value = 0.85, lower = -0.05, upper = 0.05 }}\n' for model in EIGHT))
    commands = [("leaderboard", "after"), ("status", "after"), ("compare", "before", "after"),
                ("check", "after", "--references", str(references))]
    for width in (100, 80):
        for command in commands:
            done = run(sys.executable, "-m", "harness", *command, "--results", str(results), cwd=tmp_path, COLUMNS=str(width))
            assert done.returncode in (0, 1), done.stderr
            lines = done.stdout.splitlines()
            assert max(map(len, lines)) <= width and "…" not in done.stdout, (width, command, done.stdout)
            assert all(model in done.stdout for model in EIGHT), (width, command)
        wide = run(sys.executable, "-m", "harness", "leaderboard", "after", "--wide", "--results", str(results), cwd=tmp_path,
                   COLUMNS=str(width))
        assert "infer" in wide.stdout and "recall" in wide.stdout and "--wide for" not in wide.stdout and "…" not in wide.stdout
    narrow = run(sys.executable, "-m", "harness", "leaderboard", "after", "--results", str(results), cwd=tmp_path, COLUMNS="80")
    assert "--wide for" in narrow.stdout and "infer img/s" in narrow.stdout.split("--wide for")[1]


def test_every_json_output_is_rows_pandas_reads_as_they_are(tmp_path):
    import io

    import pandas as pd

    results = tmp_path / "results"
    for name in ("before", "after"):
        make_sweep(results, name, [record(model, seed=seed, sweep=name, accuracy=0.8 + 0.01 * i + 0.004 * seed * (i + 1))
                                   for i, model in enumerate(EIGHT[:3]) for seed in (0, 1, 2)])
    references = tmp_path / "refs.toml"
    references.write_text('[ResNet50]\naccuracy = { value = 0.85, lower = -0.05, upper = 0.05 }\n')
    for command in (("leaderboard",), ("status",), ("compare", "before", "after"), ("check", "--references", str(references))):
        done = run(sys.executable, "-m", "harness", *command, "--format", "json", "--results", str(results), cwd=tmp_path)
        frame = pd.read_json(io.StringIO(done.stdout))
        assert len(frame) >= 1 and {"model", "run_id"} & set(frame.columns), (command, done.stderr)
        assert len(frame) == len(json.loads(done.stdout)), command
    board = json.loads(run(sys.executable, "-m", "harness", "leaderboard", "--format", "json", "--results", str(results),
                           cwd=tmp_path).stdout)
    assert all(isinstance(row["not_separable_from"], list) for row in board)
    meta = json.loads(run(sys.executable, "-m", "harness", "status", "--format", "json", "--meta", "--results", str(results),
                          cwd=tmp_path).stdout)
    assert set(meta) == {"sweep_id", "bytes", "preprocess", "span", "dataset_groups", "dataset_groups_reason", "rows"}
    assert meta["sweep_id"] == "after"
    assert meta["span"] is None  # a local sweep: no scheduler keeps its jobs' times


def test_a_notebook_loads_a_sweep_as_pandas_frames(tmp_path):
    import harness

    results = tmp_path / "results"
    sweep = make_sweep(results, "nb", [record("ResNet50", accuracy=0.9, sweep="nb"), record("VGG16", accuracy=0.8, sweep="nb")],
                       models=["ResNet50", "VGG16", "DenseNet121"])
    sweep.run("VGG16-s0").result.write_text("{not json")
    loaded = harness.load(results)
    runs = loaded.runs.set_index("run_id")
    assert loaded.sweep_id == "nb" and list(runs.index) == ["ResNet50-s0", "VGG16-s0", "DenseNet121-s0"]
    assert list(runs["state"]) == ["COMPLETED", "DAMAGED", "NOT SUBMITTED"] and runs.loc["ResNet50-s0", "test.accuracy"] == 0.9
    assert "not whole JSON" in runs.loc["VGG16-s0", "reason"]
    assert list(loaded.leaderboard["model"]) == ["ResNet50", "VGG16", "DenseNet121"]
    assert loaded.perflog.empty  # no run of this made-up sweep wrote the perflog
