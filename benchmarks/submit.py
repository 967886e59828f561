"""On the local Slurm cluster: how long submitting a large sweep and reading its status take, as whole
processes (imports included), as a user types them. The jobs are cancelled after.

    python benchmarks/submit.py [--tasks 1000] [--rounds 3]

The sweep is --seeds N of one architecture (N = --tasks), so its runs outnumber the site's
MaxArraySize when --tasks exceeds it and are split into several arrays. Goal: submit < 5 s, one
status < 1 s.
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.cluster.slurm.backend import SlurmBackend
from harness.store.paths import SweepPaths
from harness.store.submissions import read_submissions

from record import emit


def timed(*args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"harness {' '.join(args)} exited with {done.returncode}: {done.stderr.strip()[-300:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="status calls timed")
    args = parser.parse_args()
    reason = SlurmBackend().available()
    if reason:
        raise SystemExit(f"no Slurm here: {reason}")
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        demo = Path(tmp) / "demo"
        subprocess.run([sys.executable, "-m", "harness", "data", "demo", "--out", str(demo), "--per-class", "30",
                        "--size", "64"], check=True, capture_output=True)
        results = Path(tmp) / "results"
        # held in the queue while it is measured: nothing trains
        subprocess.run(["scontrol", "update", "partitionname=compute", "state=down"], check=True)
        try:
            submit_s = timed("sweep", "--partition", "gpu", "--cpu-partition", "compute", "--dataset", str(demo), "--models", "MobileNetV2",
                             "--seeds", str(args.tasks), "--epochs", "1", "--image-size", "64", "--results", str(results),
                             "--name", "bench")
            status_s = [timed("status", "bench", "--results", str(results), "--format", "json") for _ in range(args.rounds)]
            submission = read_submissions(SweepPaths(results / "bench"))[-1]
            jobs = sorted({submission.preprocess_job or "", *(j.split("_")[0] for j in submission.tasks.values())} - {""})
            subprocess.run(["scancel", *jobs], check=False)
        finally:
            subprocess.run(["scontrol", "update", "partitionname=compute", "state=up"], check=False)
    emit("submit", {"tasks": len(submission.tasks), "sbatch_calls": len(jobs), "submit_seconds": round(submit_s, 3),
                    "status_seconds_median": round(statistics.median(status_s), 3),
                    "goal": "submit < 5 s, status < 1 s, as whole processes"})


if __name__ == "__main__":
    main()
