"""Images per second delivered to the training loop: the harness's uint8 cache against a plain
torchvision ImageFolder + PIL transforms DataLoader with the same workers, on the same images.

    python benchmarks/input_pipeline.py [--per-class 600] [--size 512] [--image-size 224] [--epochs 2]

Goal: the cache path at least 5 times faster on a two-core machine. On a GPU it also times a split
held on the host (one too large for the GPU): through the pinned staging, and copied from pageable memory.
"""
import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from harness.data.cache import build_cache, load_split
from harness.data.demo import make_demo
from harness.measure.meters import resolve_device, synchronize
from harness.training.trainer import DeviceSplit
from harness.zoo.lookup import preprocessing_for

from record import emit


def image_folder_rate(root: Path, image_size: int, batch: int, workers: int, epochs: int, device: torch.device) -> float:
    pre = preprocessing_for("ResNet50", image_size=image_size)
    transform = transforms.Compose([
        transforms.Resize(int(image_size / pre.crop_pct), interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(image_size), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
        transforms.Normalize(pre.mean, pre.std),
    ])
    loader = DataLoader(datasets.ImageFolder(str(root), transform), batch_size=batch, shuffle=True,
                        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    images, start = 0, time.perf_counter()
    for _ in range(epochs):
        for x, _ in loader:
            x = x.to(device, non_blocking=True)
            images += len(x)
    synchronize(device)
    return images / (time.perf_counter() - start)


def cache_rate(data: DeviceSplit, image_size: int, batch: int, epoch: int, device: torch.device,
               take: Callable[[torch.Tensor], torch.Tensor]) -> tuple[int, float, float]:
    """One epoch through the cache path: images, seconds, and seconds the loop spent in take (data wait)."""
    pre = preprocessing_for("ResNet50", image_size=image_size)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(epoch)).to(data.images.device)
    waited, start = 0.0, time.perf_counter()
    for i in range(0, len(order), batch):
        fetch = time.perf_counter()
        x = take(order[i:i + batch])
        waited += time.perf_counter() - fetch
        x = pre.normalise(x, flip=torch.rand(x.shape[0], device=x.device) < 0.5)
    synchronize(device)
    return len(order), time.perf_counter() - start, waited


def cache_paths(dataset: Path, cache_root: Path, image_size: int, batch: int, epochs: int,
                device: torch.device) -> tuple[dict[str, dict[str, float]], float]:
    """Images/s and data wait of the cache path with the split on the device and, on a GPU, held on the
    host: through the pinned staging, and copied straight from an index of the pinned split (pageable,
    as before the staging), the variants alternating epoch by epoch."""
    pre = preprocessing_for("ResNet50", image_size=image_size)
    start = time.perf_counter()
    folder = build_cache(dataset, pre.resize_key, cache_root)
    build_seconds = time.perf_counter() - start
    resident = DeviceSplit.load(load_split(folder, "train"), device)
    # each variant: the split whose device its batch indices live on, and how it takes a batch
    variants = {"resident": (resident, lambda index: resident.take(index, device))}
    if device.type == "cuda":
        host = DeviceSplit.on_host(resident.images.cpu(), resident.labels.cpu(), device)
        variants["host_staged"] = (host, lambda index: host.take(index, device))
        variants["host_pageable"] = (host, lambda index: host.images[index].to(device, non_blocking=True))
    totals = {name: [0, 0.0, 0.0] for name in variants}
    for epoch in range(epochs):
        for name, (data, take) in variants.items():
            for slot, value in enumerate(cache_rate(data, image_size, batch, epoch, device, take)):
                totals[name][slot] += value
    return {name: {"images_per_s": round(images / seconds, 1), "data_wait_fraction": round(waited / seconds, 3)}
            for name, (images, seconds, waited) in totals.items()}, build_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=600)
    parser.add_argument("--size", type=int, default=512, help="side of the demo images on disk (CelebA-HQ: 1024)")
    parser.add_argument("--image-size", type=int, default=224, help="side fed to the model")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    workers = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "demo"
        make_demo(dataset, args.per_class, args.size)
        # ImageFolder reads the same training images: real/ and fake/ of the train split, linked.
        import pandas as pd
        manifest = pd.read_csv(dataset / "manifest.csv")
        train = manifest[manifest["split"] == "train"]
        for row in train.itertuples():
            link = Path(tmp) / "folder" / row.label / Path(row.path).name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(dataset / row.path)
        folder_ips = image_folder_rate(Path(tmp) / "folder", args.image_size, args.batch_size, workers, args.epochs, device)
        cache, build_seconds = cache_paths(dataset, Path(tmp) / "cache", args.image_size, args.batch_size, args.epochs, device)
    emit("input_pipeline", {
        "images": int(len(train)), "image_size": args.image_size, "workers": workers, "device": str(device),
        "cache_images_per_s": cache["resident"]["images_per_s"], "image_folder_images_per_s": round(folder_ips, 1),
        "speedup": round(cache["resident"]["images_per_s"] / folder_ips, 2), "cache_build_seconds": round(build_seconds, 2),
        "cache_paths": cache,
        "goal": "speedup >= 5",
    })


if __name__ == "__main__":
    main()
