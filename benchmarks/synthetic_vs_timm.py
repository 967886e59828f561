"""`sweep --synthetic` beside timm's own benchmark.py: the same architecture, input size and batch on the same
machine, training and inference images/s from each. Rounds alternate the two, so that noise on a shared
machine hits both alike; the medians of the rounds are printed as one JSON line.

    python benchmarks/synthetic_vs_timm.py --timm-benchmark PATH [--model MobileNetV2] [--image-size 128]
                                           [--batch-size 32] [--channels-last] [--rounds 3]

PATH is benchmark.py from a checkout of pytorch-image-models (it is not in timm's wheel). The harness side is
`python -m harness sweep --synthetic --cluster local --max-parallel 1` (one worker holding the machine's
cores, as timm's one process does), its figure the median of its timed windows after warm-up; timm's is the
mean over its timed steps after its warm-up. The networks differ in their heads alone: the harness's carries
the paper's (global pooling, a dense layer of 512 and one logit), timm's its 1,000-class classifier. Both take
their inputs channels first (NCHW), or both channels last with --channels-last.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from harness.zoo.registry import MODEL_SPECS

from record import emit


def harness_round(model: str, size: int, batch: int, layout: list[str], results: Path, name: str) -> tuple[float, float]:
    done = subprocess.run([sys.executable, "-m", "harness", "sweep", "--synthetic", "--cluster", "local", "--max-parallel", "1",
                           "--models", model, "--image-size", str(size), "--batch-size", str(batch), *layout, "--name", name,
                           "--results", str(results), "--wait"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the synthetic sweep exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    (record,) = [json.loads(p.read_text()) for p in (results / name / "runs").glob("*/result.json")]
    return record["throughput"]["train_images_per_s"], record["throughput"]["infer_images_per_s"]


def timm_round(benchmark: Path, model: str, size: int, batch: int, layout: list[str], results: Path) -> tuple[float, float]:
    out = results / "timm.json"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    done = subprocess.run([sys.executable, str(benchmark), "--model", model, "--img-size", str(size), "-b", str(batch),
                           "--device", device, "--bench", "both", *layout, "--results-file", str(out), "--results-format", "json"],
                          capture_output=True, text=True)
    if done.returncode != 0 or not out.is_file():
        raise SystemExit(f"timm's benchmark.py exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    found = json.loads(out.read_text())
    row = found[0] if isinstance(found, list) else found
    return row["train_samples_per_sec"], row["infer_samples_per_sec"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timm-benchmark", type=Path, required=True, help="benchmark.py of a pytorch-image-models checkout")
    parser.add_argument("--model", default="MobileNetV2", choices=sorted(MODEL_SPECS))
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--channels-last", action="store_true", help="both sides take their inputs channels last")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    layout = ["--channels-last"] if args.channels_last else []
    timm_name = MODEL_SPECS[args.model].timm_name
    figures: dict[str, list[tuple[float, float]]] = {"harness": [], "timm": []}
    with tempfile.TemporaryDirectory() as scratch:
        for number in range(args.rounds):
            figures["harness"].append(harness_round(args.model, args.image_size, args.batch_size, layout, Path(scratch), f"r{number}"))
            figures["timm"].append(timm_round(args.timm_benchmark, timm_name, args.image_size, args.batch_size, layout, Path(scratch)))
    emit("synthetic_vs_timm", {
        "model": args.model, "timm_model": timm_name, "image_size": args.image_size, "batch_size": args.batch_size,
        "channels_last": args.channels_last,
        "rounds": args.rounds, **{f"{side}_{kind}_images_per_s": round(statistics.median(v[i] for v in rounds), 1)
                                  for side, rounds in figures.items() for i, kind in enumerate(("train", "infer"))},
        "each_round": figures})


if __name__ == "__main__":
    main()
