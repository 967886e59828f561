"""`data demo --out` where it cannot write, and the demo built once for sweeps that start together."""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.data.demo import ensure_demo

from patience import HUNG_S

REPO = Path(__file__).resolve().parents[2]
SMALL = ("--per-class", "22", "--size", "16")


@pytest.mark.parametrize("where, message", [
    ("a file", "is a file"),
    ("below a file", "cannot write the demo to"),
    ("under /proc", "cannot write the demo to"),
    ("a folder with files", "already holds files"),
])
def test_demo_out_that_cannot_take_a_demo_is_one_line_and_writes_nothing(cli, tmp_path, where, message):
    (tmp_path / "notes.txt").write_text("keep me\n")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep me too\n")
    out = {"a file": tmp_path / "notes.txt", "below a file": tmp_path / "notes.txt" / "demo",
           "under /proc": Path("/proc/harness-demo"), "a folder with files": tmp_path / "full"}[where]
    before = sorted(tmp_path.rglob("*"))
    result = cli("data", "demo", "--out", out, *SMALL)
    assert result.code == 2 and message in result.err and result.err.count("\n") == 1, result.err
    assert sorted(tmp_path.rglob("*")) == before
    assert (tmp_path / "notes.txt").read_text() == "keep me\n"


def test_demo_into_an_empty_folder_is_allowed(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    assert cli("data", "demo", "--out", tmp_path / "empty", *SMALL).code == 0
    assert (tmp_path / "empty" / "manifest.csv").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]


def test_sweeps_starting_together_build_the_demo_once_and_see_it_whole(tmp_path):
    folder = tmp_path / "datasets" / "demo"
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / f".demo.tmp-{2**22 + 1}").mkdir()  # left by a builder that died
    script = ("import sys, pandas as pd; from pathlib import Path; from harness.data.demo import ensure_demo;"
              "folder = ensure_demo(Path(sys.argv[1]), per_class=30, size=16, seed=0);"
              "paths = pd.read_csv(folder / 'manifest.csv')['path'];"
              "print(len(paths), all((folder / p).is_file() for p in paths))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    starts = [subprocess.Popen([sys.executable, "-c", script, str(folder)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    answers = [process.communicate(timeout=HUNG_S) for process in starts]
    for process, (out, err) in zip(starts, answers):
        assert process.returncode == 0, err
        assert out.split() == ["60", "True"]
    assert sorted(p.name for p in (tmp_path / "datasets").iterdir()) == [".demo.lock", "demo"]
    manifest = pd.read_csv(folder / "manifest.csv")
    assert ensure_demo(folder, per_class=30, size=16, seed=0) == folder
    assert pd.read_csv(folder / "manifest.csv").equals(manifest)
