"""The harness's training-step throughput against a bare timm training loop, measured alternately in
one process: same network, batch, resolution, precision and optimiser; the bare loop's batches are
already normalised in memory, the harness's come from its uint8 cache and are normalised on the device.

    python benchmarks/overhead.py --model ResNet50 --image-size 64 [--batch-size 32] [--steps 10] [--rounds 5]

Goal: ratio (harness / bare) at least 0.97.
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from harness.data.cache import load_split
from harness.data.demo import make_demo
from harness.measure.meters import StepMeter, synchronize
from harness.store.paths import RunPaths
from harness.training.config import TrainConfig
from harness.training.trainer import DTYPES, DeviceSplit, Trainer, make_optimizer
from harness.zoo.models import build_model

from record import emit


def bare_rate(model, optimizer, x: torch.Tensor, y: torch.Tensor, batch: int, dtype, device) -> float:
    model.train()
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    synchronize(device)
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = F.binary_cross_entropy_with_logits(model(x[i:i + batch]).float(), y[i:i + batch])
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    synchronize(device)
    return len(x) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ResNet50")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="training steps per measured round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--precision", choices=list(DTYPES), default="fp32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dataset", type=Path, help="a prepared dataset to read (default: a demo made for the run)")
    args = parser.parse_args()
    images = args.steps * args.batch_size
    config = TrainConfig(model=args.model, batch_size=args.batch_size, image_size=args.image_size, precision=args.precision,
                         channels_last=args.channels_last, device=args.device)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = args.dataset or Path(tmp) / "demo"
        if args.dataset is None:
            per_class = max(60, images * 5 // 4)  # the demo's train split holds about 42% of its 2 x per_class images
            make_demo(dataset, per_class=per_class, size=max(16, args.image_size + args.image_size % 2))
        run = Trainer(config, dataset, Path(tmp) / "cache", RunPaths(Path(tmp) / "run"))
        data = DeviceSplit.load(load_split(run.cache, "train"), run.device)
        if len(data) < images:
            raise SystemExit(f"the dataset's train split has {len(data)} images; {images} are needed")
        data = DeviceSplit(data.images[:images], data.labels[:images])
        # the bare loop: the same network, its batches already normalised in memory
        bare = build_model(args.model).to(run.device)
        if args.channels_last:
            bare = bare.to(memory_format=torch.channels_last)
        bare_optimizer = make_optimizer(config.optimizer, list(bare.parameters()), config.lr, run.device)
        x = run.inputs(data.images.to(run.device))
        y = data.labels.to(run.device)
        harness, plain = [], []
        for round_ in range(args.rounds + 1):  # round 0 warms both up and is not counted
            meter = StepMeter(run.device, warmup=0)
            synchronize(run.device)
            start = time.perf_counter()
            run.train_epoch(data, round_, meter)
            synchronize(run.device)
            harness_rate = images / (time.perf_counter() - start)
            plain_rate = bare_rate(bare, bare_optimizer, x, y, args.batch_size, DTYPES[args.precision], run.device)
            if round_:
                harness.append(harness_rate)
                plain.append(plain_rate)
    ratio = statistics.median(harness) / statistics.median(plain)
    emit("overhead", {
        "model": args.model, "image_size": args.image_size, "batch_size": args.batch_size, "precision": args.precision,
        "channels_last": args.channels_last, "device": str(run.device), "steps_per_round": args.steps, "rounds": args.rounds,
        "harness_images_per_s": round(statistics.median(harness), 1), "bare_images_per_s": round(statistics.median(plain), 1),
        "ratio": round(ratio, 3), "goal": "ratio >= 0.97",
    })


if __name__ == "__main__":
    main()
