"""The README's first command as a newcomer meets it: a fresh clone of this checkout's HEAD, then
`python -m harness sweep --wait` typed in the clone's root, with the default results folder, and timed as a
whole process (imports, the demo's build, the eight runs); then each architecture's test accuracy and AUC.

    python benchmarks/first_command.py [-- SWEEP OPTIONS]

The clone runs with the Python and packages of this environment (the install is timed apart: it is
pip's, not the harness's). Slurm is hidden from it (SLURM_CONF names no file), so the sweep runs on the
local backend, as a newcomer's would on a machine without Slurm. Goal: under 300 s, and every architecture clearly above chance.
"""
import json
import os
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
        env = {**os.environ, "SLURM_CONF": str(Path(scratch) / "no-slurm.conf")}
        env.pop("PYTHONPATH", None)
        start = time.perf_counter()
        sweep = subprocess.run([sys.executable, "-m", "harness", "sweep", "--wait", *options], cwd=clone, env=env,
                               capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if sweep.returncode != 0:
            raise SystemExit(f"the sweep exited with {sweep.returncode}: {sweep.stderr.strip()[-500:]}")
        board = subprocess.run([sys.executable, "-m", "harness", "leaderboard", "--format", "json"],
                               cwd=clone, env=env, capture_output=True, text=True, check=True)
        executor = json.loads(next((clone / "results").glob("*/sweep.json")).read_text())["cluster"]["executor"]
    rows = json.loads(board.stdout)
    emit("first_command", {"seconds": round(seconds, 1), "executor": executor, "options": options,
                           "test": {row["model"]: {"accuracy": row["accuracy"], "auc": row["auc"]} for row in rows}})


if __name__ == "__main__":
    main([a for a in sys.argv[1:] if a != "--"])
