"""The built-in demo dataset: no download, built from photographs that ship inside installed packages.

Both classes are crops of those photographs taken down to half size and brought back up: a real
image by a clean resize (bilinear), a fake by a GAN-style upsampler with seeded weights (Zhang,
Karaman and Chang, 2019). Then every image carries a 2x2 periodic gain pattern of one strength: its
generator's for a fake, its own for a real image (PHASE_GAIN). So the classes share their content's
resolution, colour (a grey photograph gives grey fakes), brightness, edges (padding replicates the
border), codec (PNG, one size) and the pattern's energy: only the generator's own pattern tells them
apart, and tests/unit/test_demo_shortcuts.py checks that no simple per-image statistic does.
Train, val and test are split by source photograph, so no photograph feeds two splits.
"""
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from harness.data import DEMO
from harness.data.images import decode, sha256_of
from harness.data.manifest import MANIFEST_NAME, write_manifest
from harness.data.photographs import PHOTOGRAPH_COUNT, PHOTOGRAPHS, photograph_folders
from harness.errors import UserError
from harness.progress import progress_bar
from harness.store.staging import staging_folder
from harness.store.user_files import check_output_place

# Photographs per split, the rest train. Ten test photographs: the test split's images are clustered by
# photograph, and an interval over fewer groups cannot reach its nominal coverage.
PHOTOGRAPHS_PER_SPLIT = (("test", 10), ("val", 2))


def _photographs() -> dict[str, np.ndarray]:
    folders = photograph_folders()
    return {Path(name).stem: np.asarray(decode(folders[package] / name)[0])
            for package, (_, names) in PHOTOGRAPHS.items() for name in names}


def _seeded_kernel(generator: torch.Generator, base: torch.Tensor, jitter: float) -> torch.Tensor:
    """A depthwise kernel: base plus seeded noise, as a generator's layer has after training.

    The noise has a seeded direction and a fixed size (jitter per tap, root mean square). One draw serves
    the three channels, so a grey photograph gives a grey fake; the kernel is rescaled to the base's sum,
    so a fake keeps the photograph's brightness.
    """
    noise = torch.randn(base.shape, generator=generator)
    kernel = base + noise * (jitter / noise.square().mean().sqrt())
    kernel = kernel * (base.sum() / kernel.sum())
    return kernel.expand(3, 1, *base.shape)


# Every upsampler pads by replicating the edge, never with zeros: zero padding darkens a 1-px frame
# that tells a fake from a real image without the generator's artefact.
def _replicate_edge(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (1, 1, 1, 1), mode="replicate")


def _conv3x3(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """A 3x3 depthwise convolution that keeps the size, its border padded by replication."""
    return F.conv2d(_replicate_edge(x), kernel, groups=3)


def upsample_transposed(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Transposed convolution, kernel 4 stride 2: uneven overlap gives the checkerboard pattern."""
    # One replicated input pixel per side becomes two output pixels per side, cropped again.
    return F.conv_transpose2d(_replicate_edge(x), kernel, stride=2, padding=1, groups=3)[:, :, 2:-2, 2:-2]


def upsample_zero_insertion(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Zero insertion, then a small smoothing kernel that does not fully remove the spectral replicas."""
    # The edge is replicated before the zeros go in, so the kernel sees the image's own pattern there too.
    padded = _replicate_edge(x)
    n, c, h, w = padded.shape
    up = torch.zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = padded * 4
    return F.conv2d(up, kernel, groups=3)[:, :, 1:-1, 1:-1]


def upsample_nearest_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour upsampling, then a 3x3 convolution."""
    return _conv3x3(F.interpolate(x, scale_factor=2, mode="nearest"), kernel)


def upsample_bilinear_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Bilinear upsampling, then a 3x3 sharpening convolution: a different upsampler's fingerprint."""
    return _conv3x3(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), kernel)


@dataclass(frozen=True)
class Upsampler:
    apply: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (half-size image, kernel) -> full size
    base: torch.Tensor  # the clean kernel
    jitter: float  # root mean square noise per tap: how the kernel's shape departs from the clean one


_TRANSPOSED_TAPS = torch.tensor([0.25, 0.75, 0.75, 0.25])
UPSAMPLERS = {
    "transposed": Upsampler(upsample_transposed, torch.outer(_TRANSPOSED_TAPS, _TRANSPOSED_TAPS), 0.004),
    "zero_insertion": Upsampler(upsample_zero_insertion, torch.tensor(
        [[0.0625, 0.125, 0.0625], [0.125, 0.25, 0.125], [0.0625, 0.125, 0.0625]]), 0.0015),
    "nearest_conv": Upsampler(upsample_nearest_conv, torch.full((3, 3), 1 / 9), 0.0075),
    "bilinear_conv": Upsampler(upsample_bilinear_conv, torch.tensor(
        [[0.0, -0.25, 0.0], [-0.25, 2.0, -0.25], [0.0, -0.25, 0.0]]), 0.015),
}


def generator_kernels(seed: int) -> dict[str, torch.Tensor]:
    """Each upsampler's kernel for a seed: drawn once, as a trained generator's weights are fixed."""
    g = torch.Generator().manual_seed(seed)
    return {name: _seeded_kernel(g, u.base, u.jitter) for name, u in UPSAMPLERS.items()}


# The fingerprint. Every image, real or fake, leaves the pipeline with a 2x2 periodic gain pattern of one
# strength (pixel (i, j) times 1 + PHASE_GAIN * pattern[i % 2, j % 2], the pattern of mean 0 and root mean
# square 1), as stride-2 upsampling stamps on a generator's output and demosaicing on a camera's. A
# generator's pattern is fixed with its weights, so all its fakes share one (one per kind of fake, the
# manifest's generator: the three upsamplers of "upsampler" share it); each real image has its own.
# The energy the pattern adds (high-frequency share, file size) is the same for both classes: what tells a
# fake is that its pattern is its generator's. The strength is what the eight architectures,
# trained from scratch, pick up within the first command's few CPU minutes.
PHASE_GAIN = 0.25


def _phase_pattern(rng: np.random.Generator) -> np.ndarray:
    pattern = rng.standard_normal((2, 2))
    pattern -= pattern.mean()
    return pattern / np.sqrt(np.square(pattern).mean())


def generator_patterns(seed: int) -> dict[str, np.ndarray]:
    """Each kind of fake's gain pattern for a seed (drawn apart from the photographs' own)."""
    rng = np.random.default_rng([seed, 2])
    return {kind: _phase_pattern(rng) for kind in GENERATORS}


def with_phase_gains(image: Image.Image, pattern: np.ndarray) -> Image.Image:
    """The image with its 2x2 gain pattern applied (the same gain for the three channels: grey stays grey)."""
    pixels = np.asarray(image, dtype=np.float64)
    rows, columns = np.indices(pixels.shape[:2]) % 2
    gains = 1 + PHASE_GAIN * pattern[rows, columns]
    return Image.fromarray(np.clip(np.round(pixels * gains[:, :, None]), 0, 255).astype(np.uint8))


# Kinds of fake (the manifest's generator column): the GAN-style upsamplers in turn, a different
# upsampler, and a DCGAN trained on the real crops.
GENERATORS = {"upsampler": ("transposed", "zero_insertion", "nearest_conv"), "bilinear_conv": ("bilinear_conv",), "dcgan": ()}
DCGAN_STEPS = 600


def _random_crop(photo: np.ndarray, rng: np.random.Generator, size: int) -> Image.Image:
    h, w = photo.shape[:2]
    side = int(rng.integers(min(size, h, w), min(h, w) // 2 + 1)) if min(h, w) // 2 >= size else min(h, w)
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    return Image.fromarray(photo[top:top + side, left:left + side])


# Both classes hold half-resolution content brought back up to full size: a real image by a clean
# resize, a fake by a GAN-style upsampler. Only the upsampler's fingerprint tells them apart, not a
# sharper real image.
def _half_size(image: Image.Image, size: int) -> Image.Image:
    return image.resize((size // 2, size // 2), Image.Resampling.LANCZOS)


def _real_from(crop: Image.Image, size: int) -> Image.Image:
    return _half_size(crop, size).resize((size, size), Image.Resampling.BILINEAR)


def _fake_from(crop: Image.Image, size: int, upsampler: str, kernel: torch.Tensor) -> Image.Image:
    half = np.asarray(_half_size(crop, size), dtype=np.float32)
    x = torch.from_numpy(half).permute(2, 0, 1).unsqueeze(0)
    y = UPSAMPLERS[upsampler].apply(x, kernel)[0].permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).numpy()
    return Image.fromarray(y)


def photograph_splits(names: list[str], seed: int) -> dict[str, str]:
    order = list(np.random.default_rng(seed).permutation(names))
    split_of, start = {}, 0
    for split, count in PHOTOGRAPHS_PER_SPLIT:
        split_of.update(dict.fromkeys(order[start:start + count], split))
        start += count
    split_of.update(dict.fromkeys(order[start:], "train"))
    return split_of


def make_demo(out: Path, per_class: int = DEMO["per_class"], size: int = DEMO["size"], seed: int = DEMO["seed"],
              generators: tuple[str, ...] = ("upsampler",), dcgan_steps: int = DCGAN_STEPS) -> Path:
    """Write out/{real,fake}/*.png and out/manifest.csv; the same files for the same arguments. Returns
    the manifest's path.

    generators: the kinds of fake (GENERATORS), sharing the per_class fakes evenly. The demo is built in
    a temporary folder beside out and renamed into place: out holds a whole demo or nothing, and a
    temporary left by a build that was killed is removed by the next (harness.store.staging).
    """
    unknown = [g for g in generators if g not in GENERATORS]
    if unknown or not generators:
        raise UserError(f"unknown generator {', '.join(unknown) or '(none)'}; choose from {', '.join(GENERATORS)}")
    if per_class < PHOTOGRAPH_COUNT:
        raise UserError(f"--per-class must be at least {PHOTOGRAPH_COUNT} (one image per source photograph), got {per_class}")
    if size < 16 or size % 2:
        raise UserError(f"--size must be an even number of pixels, at least 16, got {size}")
    out = Path(out)
    check_output_place(out, "--out", folder=True)
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"--out {out} already holds files; the demo needs a new or empty folder")
    try:
        with staging_folder(out) as tmp:
            _write_demo(tmp, per_class, size, seed, generators, dcgan_steps)
            os.replace(tmp, out)  # out is absent or empty: the rename replaces it whole
    except OSError as err:
        raise UserError(f"cannot write the demo to {out}: {err.strerror or err}") from None
    return out / MANIFEST_NAME


def ensure_demo(folder: Path, **params: Any) -> Path:
    """The demo at folder, built once with make_demo(folder, **params); returns folder.

    Callers that start at once (two sweeps) take turns under a file lock beside folder: the first
    builds, the others wait and find the demo whole. A builder that died left only a temporary folder,
    which make_demo clears.
    """
    folder = Path(folder)
    if (folder / MANIFEST_NAME).is_file():
        return folder
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        lock = open(folder.parent / f".{folder.name}.lock", "a")
    except OSError as err:
        raise UserError(f"cannot write the demo to {folder}: {err.strerror or err}") from None
    with lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)  # per process: released when the holder dies, however it dies
        if not (folder / MANIFEST_NAME).is_file():
            make_demo(folder, **params)
    return folder


def _write_demo(out: Path, per_class: int, size: int, seed: int, generators: tuple[str, ...], dcgan_steps: int) -> None:
    photos = _photographs()
    split_of = photograph_splits(list(photos), seed)
    rng = np.random.default_rng(seed)
    kernels, patterns = generator_kernels(seed), generator_patterns(seed)
    names = list(photos)
    dcgan = _dcgan_samples(photos, split_of, per_class, seed, dcgan_steps) if "dcgan" in generators else None
    rows = []
    with progress_bar() as bar:
        task = bar.add_task("building the demo dataset", total=2 * per_class)
        for label in ("real", "fake"):
            (out / label).mkdir()
            for index in range(per_class):
                source = names[index % len(names)]
                crop = _random_crop(photos[source], rng, size)
                cycle = index // len(names)  # every photograph is faked by every kind in turn
                kind = "" if label == "real" else generators[cycle % len(generators)]
                group = source
                if label == "real":
                    image = with_phase_gains(_real_from(crop, size), _phase_pattern(rng))
                elif kind == "dcgan":  # sampled from noise: no source photograph, spread over the splits as photographs are
                    assert dcgan is not None  # drawn above whenever "dcgan" is among the generators
                    image = _real_from(_dcgan_colour(Image.fromarray(dcgan[index]), photos[source]), size)
                    group = f"dcgan-{index}"
                else:
                    upsamplers = GENERATORS[kind]
                    upsampler = upsamplers[(cycle // len(generators)) % len(upsamplers)]
                    image = _fake_from(crop, size, upsampler, kernels[upsampler])
                if label == "fake":
                    image = with_phase_gains(image, patterns[kind])
                path = out / label / f"{label}_{index:05d}_{kind or source}.png"
                image.save(path, "PNG")
                rows.append({"path": str(path.relative_to(out)), "label": label, "split": split_of[source],
                             "sha256": sha256_of(path), "width": size, "height": size, "format": "PNG",
                             "generator": kind, "group": group})
                bar.advance(task)
    write_manifest(pd.DataFrame(rows), out)


def _dcgan_colour(sample: Image.Image, photograph: np.ndarray) -> Image.Image:
    """A grey sample in a grey photograph's place: every grey real has grey fakes beside it in its split."""
    is_grey = not np.any(photograph.max(axis=2) - photograph.min(axis=2))
    return sample.convert("L").convert("RGB") if is_grey else sample


def _dcgan_samples(photos: dict[str, np.ndarray], split_of: dict[str, str], count: int, seed: int, steps: int) -> np.ndarray:
    """Train the DCGAN on 32 px crops of the training photographs only, then sample count images."""
    from harness.data.dcgan import SIDE, sample, train_dcgan
    rng = np.random.default_rng(seed + 1)
    train_photos = [p for name, p in photos.items() if split_of[name] == "train"]
    crops = np.stack([np.asarray(_random_crop(train_photos[i % len(train_photos)], rng, SIDE).resize((SIDE, SIDE)))
                      for i in range(2048)])
    return sample(train_dcgan(crops, steps, seed), count, seed)
