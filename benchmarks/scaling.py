"""Data-parallel scaling on this machine: one architecture trained on 1 and on 2 ranks through the harness
as a user runs it (`sweep --scaling 1,2`, one run at a time), and the speedup and efficiency its
leaderboard reports. On a CPU the ranks are processes under gloo that share the cores one rank had, so
this is a check of the machinery (the ranks meet, train their shares, are timed between the same
barriers), not a figure to tune; on a GPU machine, `--scaling 1,2,...` over its GPUs is the figure.

    python benchmarks/scaling.py [--model ResNet50] [--image-size 64] [--batch-size 16] [--epochs 2] [--seeds 2]
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.data.demo import make_demo

from record import emit


def harness(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"harness {' '.join(args[:2])} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ResNet50")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16, help="images per rank per step")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--per-class", type=int, default=200, help="demo images per class (60%% of them train)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dataset, results = Path(tmp) / "demo", Path(tmp) / "results"
        make_demo(dataset, per_class=args.per_class, size=args.image_size)
        harness("sweep", "--cluster", "local", "--max-parallel", "1", "--dataset", str(dataset), "--models", args.model,
                "--scaling", "1,2", "--seeds", str(args.seeds), "--epochs", str(args.epochs), "--batch-size",
                str(args.batch_size), "--image-size", str(args.image_size), "--results", str(results), "--wait")
        rows = {row["ranks"]: row for row in json.loads(harness("leaderboard", "--results", str(results), "--format", "json"))}
    two = rows[2]
    emit("scaling", {
        "model": args.model, "image_size": args.image_size, "batch_size_per_rank": args.batch_size, "epochs": args.epochs,
        "seeds": args.seeds, "backend": "gloo", "images_per_s_1": rows[1]["train_images_per_s"],
        "images_per_s_2": two["train_images_per_s"], "speedup": two["speedup"],
        "speedup_95ci": [two["speedup_lo"], two["speedup_hi"]], "efficiency": two["efficiency"],
        "note": "CPU ranks share the cores: a check of the machinery, not a figure to tune",
    })


if __name__ == "__main__":
    main()
