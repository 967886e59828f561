"""Perturbed copies of a test split: the compression and resampling a detector meets outside the lab, in
the order they happen there. Each perturbation hits the original image (the file as decoded, at its own
size), as a site re-encodes or shrinks a photograph; the network's preprocessing (the run's resize, then
its normalisation) comes after, as for any image it is given.

A perturbation is a function of the image alone, so it hits real and fake images identically.
"""
import functools
import hashlib
import io
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from harness.data.cache import CHUNK, resize_image
from harness.data.images import UndecodableImage, decode_bytes, read_image_file
from harness.data.pool import decoding_pool

Perturbation = Callable[[Image.Image], Image.Image]


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def jpeg(quality: int) -> Perturbation:
    """Re-encoding as JPEG at quality (Pillow's encoder, its default chroma subsampling), decoded again."""
    return functools.partial(_jpeg, quality=quality)


def downscale_half(image: Image.Image) -> Image.Image:
    """The image at half its width and height (Pillow's bilinear, antialiased as a site's resizer is)."""
    return image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.BILINEAR)


def blur(image: Image.Image) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius=1.0))


PERTURBATIONS: dict[str, Perturbation] = {
    "jpeg90": jpeg(90),
    "jpeg75": jpeg(75),
    "jpeg50": jpeg(50),
    "downscale_half": downscale_half,
    "blur": blur,
}


def _perturb_chunk(args: tuple[list[str], list[str | None], Mapping[str, Perturbation], tuple]) -> list[list[np.ndarray] | str]:
    """Each file's perturbed copies at the network's input size (in the order of the perturbations), or why
    it has none (it no longer reads, decodes or matches its manifest's sha256)."""
    paths, digests, perturbations, resize = args
    out: list[list[np.ndarray] | str] = []
    for path, digest in zip(paths, digests):
        try:
            data = read_image_file(Path(path))
            if digest is not None and hashlib.sha256(data).hexdigest() != digest:
                out.append(f"{path} changed since its manifest was written")
                continue
            original = decode_bytes(data)[0]
        except (UndecodableImage, OSError) as err:
            out.append(f"{path}: {getattr(err, 'strerror', None) or err}")
            continue
        out.append([resize_image(apply(original), resize) for apply in perturbations.values()])
    return out


def perturbed_copies(paths: Sequence[str], digests: Sequence[str | None], perturbations: Mapping[str, Perturbation],
                     resize: tuple, workers: int | None = None) -> dict[str, np.ndarray] | str:
    """Each perturbation applied to each original file, then resized as the run resizes (resize: the run's
    zoo.preprocessing.Resize): N x H x W x 3 uint8 per perturbation, in the files' order. Each file is read
    and decoded once, by `workers` processes. Where a file no longer reads or matches its sha256 (digests:
    the manifest's; None: not checked), the reason instead: a perturbed split missing an image is another split."""
    chunks = [(list(paths[i:i + CHUNK]), list(digests[i:i + CHUNK]), perturbations, resize) for i in range(0, len(paths), CHUNK)]
    workers = workers or max(1, len(os.sched_getaffinity(0)))
    if workers == 1 or len(chunks) == 1:
        done = [_perturb_chunk(chunk) for chunk in chunks]
    else:
        with decoding_pool(min(workers, len(chunks))) as pool:
            done = list(pool.map(_perturb_chunk, chunks))
    copies = [item for chunk in done for item in chunk]
    if problem := next((item for item in copies if isinstance(item, str)), None):
        return problem
    return {name: np.stack([item[i] for item in copies]) for i, name in enumerate(perturbations)}
