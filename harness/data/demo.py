"""The built-in demo dataset: no download, built from photographs that ship inside scikit-image.

Real images are crops of those photographs. Fakes are crops of the same photographs taken down to
half size and brought back up by a GAN-style upsampler, which imprints the periodic spectral
artifacts of GAN generators (Zhang, Karaman and Chang, 2019). Both classes are PNG at one size.
Train, val and test are split by source photograph, so no photograph feeds two splits.
"""
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

import skimage

from harness.data.images import decode, sha256_of
from harness.data.manifest import write_manifest
from harness.errors import UserError

# Photographs inside scikit-image's wheel (nothing that scikit-image would fetch over the network).
PHOTOGRAPHS = (
    "astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg", "retina.jpg",
    "hubble_deep_field.jpg", "ihc.png", "camera.png", "brick.png", "grass.png", "gravel.png", "moon.png",
    "coins.png", "page.png",
)
SPLIT_OF_PHOTOGRAPH_SHARE = (("test", 0.2), ("val", 0.2))  # the rest train


def _photographs() -> dict[str, np.ndarray]:
    folder = Path(skimage.__file__).parent / "data"
    return {Path(name).stem: np.asarray(decode(folder / name)[0]) for name in PHOTOGRAPHS}


def _seeded_kernel(generator: torch.Generator, base: torch.Tensor, jitter: float) -> torch.Tensor:
    """A per-channel (depthwise) kernel: base plus seeded noise, as an untrained generator layer has."""
    noise = torch.randn((3, 1, *base.shape), generator=generator) * jitter
    return base.expand(3, 1, *base.shape) + noise


def upsample_transposed(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Transposed convolution, kernel 4 stride 2: uneven overlap gives the checkerboard pattern."""
    base = torch.tensor([0.25, 0.75, 0.75, 0.25])
    return F.conv_transpose2d(x, _seeded_kernel(g, torch.outer(base, base), 0.08), stride=2, padding=1, groups=3)


def upsample_zero_insertion(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Zero insertion, then a small smoothing kernel that does not fully remove the spectral replicas."""
    n, c, h, w = x.shape
    up = torch.zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x * 4
    base = torch.tensor([[0.0625, 0.125, 0.0625], [0.125, 0.25, 0.125], [0.0625, 0.125, 0.0625]])
    return F.conv2d(up, _seeded_kernel(g, base, 0.03), padding=1, groups=3)


def upsample_nearest_conv(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Nearest-neighbour upsampling, then a 3x3 convolution."""
    up = F.interpolate(x, scale_factor=2, mode="nearest")
    base = torch.full((3, 3), 1 / 9)
    return F.conv2d(up, _seeded_kernel(g, base, 0.05), padding=1, groups=3)


def upsample_bilinear_conv(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Bilinear upsampling, then a seeded 3x3 sharpening convolution: a different upsampler's fingerprint."""
    up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    base = torch.tensor([[0.0, -0.25, 0.0], [-0.25, 2.0, -0.25], [0.0, -0.25, 0.0]])
    return F.conv2d(up, _seeded_kernel(g, base, 0.05), padding=1, groups=3)


UPSAMPLERS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "transposed": upsample_transposed,
    "zero_insertion": upsample_zero_insertion,
    "nearest_conv": upsample_nearest_conv,
    "bilinear_conv": upsample_bilinear_conv,
}
# Kinds of fake (the manifest's generator column): the GAN-style upsamplers in turn, a different
# upsampler, and a DCGAN trained on the real crops.
GENERATORS = {"upsampler": ("transposed", "zero_insertion", "nearest_conv"), "bilinear_conv": ("bilinear_conv",), "dcgan": ()}
DCGAN_STEPS = 600


def _random_crop(photo: np.ndarray, rng: np.random.Generator, size: int) -> Image.Image:
    h, w = photo.shape[:2]
    side = int(rng.integers(min(size, h, w), min(h, w) // 2 + 1)) if min(h, w) // 2 >= size else min(h, w)
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    return Image.fromarray(photo[top:top + side, left:left + side])


def _fake_from(crop: Image.Image, size: int, upsampler: str, g: torch.Generator) -> Image.Image:
    half = np.asarray(crop.resize((size // 2, size // 2), Image.Resampling.LANCZOS), dtype=np.float32)
    x = torch.from_numpy(half).permute(2, 0, 1).unsqueeze(0)
    y = UPSAMPLERS[upsampler](x, g)[0].permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).numpy()
    return Image.fromarray(y[:size, :size])


def photograph_splits(names: list[str], seed: int) -> dict[str, str]:
    order = list(np.random.default_rng(seed).permutation(names))
    split_of, start = {}, 0
    for split, share in SPLIT_OF_PHOTOGRAPH_SHARE:
        count = max(1, round(share * len(order)))
        split_of.update(dict.fromkeys(order[start:start + count], split))
        start += count
    split_of.update(dict.fromkeys(order[start:], "train"))
    return split_of


def make_demo(out: Path, per_class: int = 400, size: int = 64, seed: int = 0,
              generators: tuple[str, ...] = ("upsampler",), dcgan_steps: int = DCGAN_STEPS) -> Path:
    """Write out/{real,fake}/*.png and out/manifest.csv; the same files for the same arguments.

    generators: the kinds of fake (GENERATORS), sharing the per_class fakes evenly.
    """
    unknown = [g for g in generators if g not in GENERATORS]
    if unknown or not generators:
        raise UserError(f"unknown generator {', '.join(unknown) or '(none)'}; choose from {', '.join(GENERATORS)}")
    if per_class < len(PHOTOGRAPHS):
        raise UserError(f"--per-class must be at least {len(PHOTOGRAPHS)} (one image per source photograph), got {per_class}")
    if size < 16 or size % 2:
        raise UserError(f"--size must be an even number of pixels, at least 16, got {size}")
    out = Path(out)
    photos = _photographs()
    split_of = photograph_splits(list(photos), seed)
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    names = list(photos)
    dcgan = _dcgan_samples(photos, split_of, per_class, seed, dcgan_steps) if "dcgan" in generators else None
    rows = []
    for label in ("real", "fake"):
        (out / label).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            source = names[index % len(names)]
            crop = _random_crop(photos[source], rng, size)
            cycle = index // len(names)  # every photograph is faked by every kind in turn
            kind = "" if label == "real" else generators[cycle % len(generators)]
            group = source
            if label == "real":
                image = crop.resize((size, size), Image.Resampling.LANCZOS)
            elif kind == "dcgan":  # sampled from noise: no source photograph, spread over the splits as photographs are
                image = Image.fromarray(dcgan[index]).resize((size, size), Image.Resampling.LANCZOS)
                group = f"dcgan-{index}"
            else:
                upsamplers = GENERATORS[kind]
                image = _fake_from(crop, size, upsamplers[(cycle // len(generators)) % len(upsamplers)], g)
            path = out / label / f"{label}_{index:05d}_{kind or source}.png"
            image.save(path, "PNG")
            rows.append({"path": str(path.relative_to(out)), "label": label, "split": split_of[source],
                         "sha256": sha256_of(path), "width": size, "height": size, "format": "PNG",
                         "generator": kind, "group": group})
    return write_manifest(pd.DataFrame(rows), out)


def _dcgan_samples(photos: dict[str, np.ndarray], split_of: dict[str, str], count: int, seed: int, steps: int) -> np.ndarray:
    """Train the DCGAN on 32 px crops of the training photographs only, then sample count images."""
    from harness.data.dcgan import SIDE, sample, train_dcgan
    rng = np.random.default_rng(seed + 1)
    train_photos = [p for name, p in photos.items() if split_of[name] == "train"]
    crops = np.stack([np.asarray(_random_crop(train_photos[i % len(train_photos)], rng, SIDE).resize((SIDE, SIDE)))
                      for i in range(2048)])
    return sample(train_dcgan(crops, steps, seed), count, seed)
