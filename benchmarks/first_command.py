"""The README's first command as a newcomer meets it: a fresh clone of this checkout's HEAD, then
`python -m harness sweep --wait` timed as a whole process (imports, the demo's build, the eight runs)
from the clone, with an empty results folder; then each architecture's test accuracy and AUC.

    python benchmarks/first_command.py [-- SWEEP OPTIONS]

The clone runs with the Python and packages of this environment (the install is timed apart: it is
pip's, not the harness's). Without Slurm on the machine the sweep runs on the local backend, as a
newcomer's would. Goal: under 300 s, and every architecture clearly above chance.
"""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import emit

REPO = Path(__file__).resolve().parent.parent


def main(options: list[str]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        clone = Path(scratch) / "harness"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        results = Path(scratch) / "results"
        start = time.perf_counter()
        sweep = subprocess.run([sys.executable, "-m", "harness", "sweep", "--wait", "--results", str(results), *options],
                               cwd=clone, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if sweep.returncode != 0:
            raise SystemExit(f"the sweep exited with {sweep.returncode}: {sweep.stderr.strip()[-500:]}")
        board = subprocess.run([sys.executable, "-m", "harness", "leaderboard", "--format", "json", "--results", str(results)],
                               cwd=clone, capture_output=True, text=True, check=True)
        executor = json.loads(next(results.glob("*/sweep.json")).read_text())["cluster"]["executor"]
    rows = json.loads(board.stdout)
    emit("first_command", {"seconds": round(seconds, 1), "executor": executor, "options": options,
                           "test": {row["model"]: {"accuracy": row["accuracy"], "auc": row["auc"]} for row in rows}})


if __name__ == "__main__":
    main([a for a in sys.argv[1:] if a != "--"])
