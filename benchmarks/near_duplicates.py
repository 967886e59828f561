"""How long `data prepare --near-duplicates` adds: the difference hash of one image (a CelebA-HQ-sized
1024 x 1024 photograph, decoded), and the grouping of N hashes (every pair compared), at each N given.
Prints one JSON line.

    python benchmarks/near_duplicates.py [--images 10000,30000] [--bits 6]

Goal: grouping tens of thousands of images in seconds, beside the minutes their decoding takes.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing
from harness.data.groups import near_duplicate_components  # noqa: E402
from harness.data.images import difference_hash  # noqa: E402

from record import emit  # noqa: E402


def hash_seconds(side: int = 1024, rounds: int = 20) -> float:
    """The median time of one difference hash of a decoded side x side RGB photograph."""
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8))
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        difference_hash(image)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def grouping_seconds(count: int, bits: int) -> float:
    hashes = np.random.default_rng(count).integers(0, 2**63, count, dtype=np.uint64)
    start = time.perf_counter()
    near_duplicate_components(hashes, bits)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="10000,30000", help="comma-separated numbers of images to group")
    parser.add_argument("--bits", type=int, default=6)
    args = parser.parse_args()
    counts = [int(n) for n in args.images.split(",")]
    emit("near_duplicates", {"hash_ms_1024px": round(hash_seconds() * 1e3, 2), "bits": args.bits,
                             "grouping_s": {str(n): round(grouping_seconds(n, args.bits), 2) for n in counts}})


if __name__ == "__main__":
    main()
