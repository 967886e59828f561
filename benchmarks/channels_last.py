"""Channels first (NCHW) against channels last (NHWC) on this machine's CPU: each of the eight detectors at its
input size on the demo, one thread, a training step and an inference pass of one batch, the two layouts
alternated step by step (so that noise on a shared machine hits both alike). Prints one JSON line: per
architecture, the median seconds of each and the speedup of channels last. The demo runs its
depthwise-separable networks channels last (ModelSpec.separable), which gain the most here; DenseNet121 gains
up to 1.3x too, and is left as it is.

    python benchmarks/channels_last.py [--rounds 5] [--batch-size 32]
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from harness.data import DEMO_IMAGE_SIZE
from harness.zoo.models import build_model
from harness.zoo.registry import MODEL_SPECS, nearest_image_size

from record import emit

LAYOUTS = {"nchw": torch.contiguous_format, "nhwc": torch.channels_last}


def timed(step, x: torch.Tensor) -> float:
    started = time.perf_counter()
    step(x)
    return time.perf_counter() - started


def compare(model_name: str, rounds: int, batch: int) -> dict:
    size = nearest_image_size(MODEL_SPECS[model_name], DEMO_IMAGE_SIZE)
    model = build_model(model_name)
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)
    images, labels = torch.randn(batch, 3, size, size), torch.randint(0, 2, (batch,)).float()

    def train(x: torch.Tensor) -> None:
        optimizer.zero_grad()
        F.binary_cross_entropy_with_logits(model(x).reshape(-1), labels).backward()
        optimizer.step()

    def infer(x: torch.Tensor) -> None:
        with torch.inference_mode():
            model(x)

    seconds: dict[str, list[float]] = {f"{phase}_{layout}": [] for phase in ("train", "infer") for layout in LAYOUTS}
    for round_ in range(rounds + 1):  # the first round warms both layouts up, untimed
        for layout, memory_format in LAYOUTS.items():
            model.to(memory_format=memory_format)
            x = images.contiguous(memory_format=memory_format)
            model.train()
            train_s = timed(train, x)
            model.eval()
            infer_s = timed(infer, x)
            if round_:
                seconds[f"train_{layout}"].append(train_s)
                seconds[f"infer_{layout}"].append(infer_s)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    return {"image_size": size, **{f"{name}_s": round(value, 4) for name, value in medians.items()},
            "train_speedup": round(medians["train_nchw"] / medians["train_nhwc"], 2),
            "infer_speedup": round(medians["infer_nchw"] / medians["infer_nhwc"], 2),
            "separable": MODEL_SPECS[model_name].separable}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as each of the demo's two local workers runs
    torch.manual_seed(0)
    emit("channels_last", {"batch_size": args.batch_size, "rounds": args.rounds, "threads": 1,
                           "models": {name: compare(name, args.rounds, args.batch_size) for name in MODEL_SPECS}})


if __name__ == "__main__":
    main()
