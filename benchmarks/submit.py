"""On the local Slurm cluster (slurm/local-cluster up): the time to submit a sweep of 64 tasks
(8 architectures x 8 seeds) and the time one `status` of it takes. The jobs are cancelled after.

    python benchmarks/submit.py [--seeds 8]

Goal: submission under 2 s, status under 1 s (both measured in-process, after Python's imports).
"""
import argparse
import contextlib
import io
import subprocess
import tempfile
import time
from pathlib import Path

from record import emit

from harness.cli import main as harness
from harness.data.demo import make_demo
from harness.store.paths import SweepPaths
from harness.store.submissions import read_submissions
from harness.cluster.slurm import SlurmBackend


def timed(*args: str) -> float:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = harness(list(args))
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"harness {' '.join(args)} exited with {code}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args()
    reason = SlurmBackend().available()
    if reason:
        raise SystemExit(f"no Slurm here: {reason}")
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        make_demo(Path(tmp) / "demo", per_class=30, size=76)
        results = Path(tmp) / "results"
        submit_s = timed("sweep", "--partition", "gpu", "--dataset", str(Path(tmp) / "demo"), "--seeds", str(args.seeds),
                         "--epochs", "1", "--image-size", "76", "--results", str(results), "--name", "bench")
        status_s = timed("status", "bench", "--results", str(results), "--format", "json")
        submission = read_submissions(SweepPaths(results / "bench"))[-1]
        jobs = {submission.preprocess_job, *(j.split("_")[0] for j in submission.tasks.values())}
        subprocess.run(["scancel", *jobs], check=False)
    emit("submit", {"tasks": len(submission.tasks), "sbatch_calls": len(jobs), "submit_seconds": round(submit_s, 3),
                    "status_seconds": round(status_s, 3), "goal": "submit < 2 s, status < 1 s"})


if __name__ == "__main__":
    main()
