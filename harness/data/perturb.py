"""Perturbed copies of a test split: the compression and resampling a detector meets outside the lab.

A perturbation is a function of the image alone, so it hits real and fake images identically.
"""
import io
from typing import Callable

import numpy as np
from PIL import Image, ImageFilter


def _jpeg(quality: int) -> Callable[[Image.Image], Image.Image]:
    def apply(image: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return apply


def _downscale_half(image: Image.Image) -> Image.Image:
    small = image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.BILINEAR)
    return small.resize(image.size, Image.Resampling.BILINEAR)


def _blur(image: Image.Image) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius=1.0))


PERTURBATIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg90": _jpeg(90),
    "jpeg75": _jpeg(75),
    "jpeg50": _jpeg(50),
    "downscale_half": _downscale_half,
    "blur": _blur,
}


def perturb(images: np.ndarray, name: str) -> np.ndarray:
    """N x H x W x 3 uint8 -> the same images, each passed through the perturbation."""
    apply = PERTURBATIONS[name]
    return np.stack([np.asarray(apply(Image.fromarray(np.asarray(image))), dtype=np.uint8) for image in images])
