"""How long the commands a user types most take, as whole processes (imports included), on a finished
sweep: `--help`, `status`, `leaderboard`, `models`. Each round runs every command once, in turn, so
noise on a shared machine hits all alike; the medians of the rounds are printed as one JSON line.

    python benchmarks/cli_latency.py [--results DIR --sweep ID] [--rounds 5]

Without --results, a finished one-run sweep is made first (MobileNetV2, one epoch, --cluster local).
Goal: status and leaderboard under 1 s each.
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import emit


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited with {done.returncode}: {done.stderr.strip()[-300:]}")
    return elapsed


def finished_sweep(folder: Path) -> tuple[Path, str]:
    harness = [sys.executable, "-m", "harness"]
    subprocess.run([*harness, "data", "demo", "--out", str(folder / "demo"), "--per-class", "60", "--size", "64"],
                   check=True, capture_output=True)
    subprocess.run([*harness, "sweep", "--cluster", "local", "--dataset", str(folder / "demo"), "--models", "MobileNetV2",
                    "--epochs", "1", "--image-size", "64", "--results", str(folder / "results"), "--name", "latency",
                    "--wait"], check=True, capture_output=True)
    return folder / "results", "latency"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path)
    parser.add_argument("--sweep")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results, sweep = (args.results, args.sweep) if args.results else finished_sweep(Path(tmp))
        harness = [sys.executable, "-m", "harness"]
        commands = {
            "help": [*harness, "--help"],
            "status": [*harness, "status", sweep, "--results", str(results)],
            "leaderboard": [*harness, "leaderboard", sweep, "--results", str(results)],
            "models": [*harness, "models", "--format", "json"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, command in commands.items():
                times[name].append(seconds(command))
    emit("cli_latency", {**{f"{name}_median_s": round(statistics.median(t), 3) for name, t in times.items()},
                         "rounds": args.rounds, "goal": "status and leaderboard < 1 s as whole processes"})


if __name__ == "__main__":
    main()
