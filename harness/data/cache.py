"""The uint8 image cache: every image decoded, converted to RGB and resized once, per split.

A cache folder holds, per split, `<split>.npy` (N x H x W x 3 uint8, memory-mappable),
`<split>.csv` (path, label, generator of each row) and `header.json`. It is keyed by the
manifest's hash and the resize settings, so architectures that share an input size share it and a
second sweep reuses it. It is built in a temporary folder and renamed into place: a reader sees a
whole cache or none.

Builders of one cache take turns under a POSIX record lock (fcntl.lockf), which belongs to the
builder's process alone: its decoding workers do not hold it, so a builder killed with SIGKILL
releases it at once (its workers, which end a second or so later: data.pool, have no part in it), and the
next builder clears the dead one's temporary folder.
"""
import fcntl
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from PIL import Image

from harness.data.images import UndecodableImage, decode_bytes, read_image_file
from harness.data.manifest import LABELS, SPLITS, manifest_digest, read_manifest
from harness.data.pool import decoding_pool
from harness.errors import UserError
from harness.store.atomic import read_json, write_json_atomic
from harness.store.staging import staging_folder
from harness.zoo.preprocessing import Resize

CACHE_SCHEMA = 1
CHUNK = 64
PIL_INTERPOLATION = {
    "nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
}
ProgressCallback = Callable[[int, int, float], None]  # (done, total, images per second)


def resize_center_crop(image: Image.Image, size: int, interpolation: str, crop_pct: float) -> np.ndarray:
    """timm's eval transform: shorter side to size / crop_pct, then a centred size x size crop (Pillow's
    filters, which antialias when they shrink)."""
    scale = size / crop_pct / min(image.size)
    width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    image = image.resize((width, height), PIL_INTERPOLATION[interpolation])
    left, top = (width - size) // 2, (height - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def _bilinear_weights(inputs: int, outputs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """tf.image.resize's bilinear sampling along one axis (half-pixel centres, no antialiasing): each output
    pixel's two source pixels and the weight of the second."""
    position = (np.arange(outputs) + 0.5) * (inputs / outputs) - 0.5
    below = np.floor(position)
    return (np.clip(below, 0, inputs - 1).astype(np.int64), np.clip(below + 1, 0, inputs - 1).astype(np.int64),
            position - below)


def keras_resize(image: Image.Image, size: int, interpolation: str) -> np.ndarray:
    """Keras' resize: the whole image to size x size, squashed where it is not square, no antialiasing.
    bilinear: tf.image.resize's (image_dataset_from_directory, the Resizing layer), its float result
    rounded to uint8; nearest: Pillow's NEAREST, which is what load_img and ImageDataGenerator call."""
    if interpolation == "nearest":
        return np.asarray(image.resize((size, size), Image.Resampling.NEAREST), dtype=np.uint8)
    pixels = np.asarray(image, dtype=np.float64)
    top, bottom, down = _bilinear_weights(image.height, size)
    left, right, across = _bilinear_weights(image.width, size)
    rows = pixels[top] + (pixels[bottom] - pixels[top]) * down[:, None, None]
    out = rows[:, left] + (rows[:, right] - rows[:, left]) * across[None, :, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def resize_image(image: Image.Image, resize: tuple) -> np.ndarray:
    """An image at the network's input size, as the key says (zoo.preprocessing.Resize; a 3-tuple is timm's)."""
    size, interpolation, crop_pct, method = Resize(*resize)
    return keras_resize(image, size, interpolation) if method == "keras" else resize_center_crop(image, size, interpolation, crop_pct)


def cache_key(digest: str, resize: tuple) -> str:
    size, interpolation, crop_pct, method = Resize(*resize)
    return f"{digest[:16]}-{size}px-{interpolation}-crop{crop_pct:g}" + ("-keras" if method == "keras" else "")


def _decode_chunk(args: tuple[list[str], list[str], tuple]) -> list[np.ndarray | str]:
    """Each path's pixels, or the reason it is skipped (it does not decode, or its bytes are no longer
    those the manifest's sha256 names); a file that cannot be read stops the build."""
    paths, digests, resize = args
    out: list[np.ndarray | str] = []
    for path, digest in zip(paths, digests):
        try:
            data = read_image_file(Path(path))
            found = hashlib.sha256(data).hexdigest()
            if found != digest:
                out.append(f"changed since its manifest was written (sha256 {found[:12]}..., the manifest says {digest[:12]}...)")
                continue
            out.append(resize_image(decode_bytes(data)[0], resize))
        except UndecodableImage as err:
            out.append(str(err))
        except OSError as err:  # missing, no permission, an I/O error, an unmounted path: not the image's fault
            raise UserError(f"cannot read {path}: {err.strerror or err}; the cache is not built") from None
    return out


@dataclass(frozen=True)
class CachedSplit:
    images: np.ndarray  # N x H x W x 3 uint8, memory-mapped
    labels: np.ndarray  # N int64, 1 = fake
    index: pd.DataFrame  # path, label, generator per row


def _write_split(folder: Path, split: str, rows: pd.DataFrame, resize: Resize, workers: int,
                 report: Callable[[int], None]) -> list[dict[str, str]]:
    size = resize[0]
    images = np.lib.format.open_memmap(folder / f"{split}.npy", mode="w+", dtype=np.uint8, shape=(len(rows), size, size, 3))
    paths, digests = rows["path"].tolist(), rows["sha256"].tolist()
    chunks = [(paths[i:i + CHUNK], digests[i:i + CHUNK], resize) for i in range(0, len(paths), CHUNK)]
    kept, skipped, cursor = [], [], 0
    with decoding_pool(workers) as pool:
        for chunk_start, decoded in zip(range(0, len(paths), CHUNK), pool.map(_decode_chunk, chunks)):
            for offset, item in enumerate(decoded):
                if isinstance(item, str):
                    skipped.append({"path": paths[chunk_start + offset], "reason": item})
                    continue
                images[cursor] = item
                kept.append(chunk_start + offset)
                cursor += 1
            report(len(decoded))
    images.flush()
    del images
    if cursor < len(rows):  # some files did not decode: keep the decoded prefix only
        full = np.load(folder / f"{split}.npy", mmap_mode="r")
        np.save(folder / f"{split}.part.npy", np.asarray(full[:cursor]))
        del full
        os.replace(folder / f"{split}.part.npy", folder / f"{split}.npy")
    index = rows.iloc[kept][["path", "label", "generator", "group"]]
    for label in LABELS:
        if not (index["label"] == label).any():
            raise UserError(f"no {label} image of the {split} split decodes ({len(skipped)} skipped, e.g. "
                            f"{skipped[0]['path'] if skipped else 'none'}); the cache is not built")
    index.to_csv(folder / f"{split}.csv", index=False)
    return skipped


def build_cache(dataset: Path, resize: tuple, cache_root: Path, workers: int | None = None,
                on_progress: ProgressCallback | None = None) -> Path:
    """Build (or reuse) the cache of dataset at one resize setting (a zoo.preprocessing.Resize; a 3-tuple
    is timm's); returns its folder."""
    resize = Resize(*resize)
    digest = manifest_digest(dataset)
    folder = Path(cache_root) / cache_key(digest, resize)
    if (folder / "header.json").exists():
        return folder
    Path(cache_root).mkdir(parents=True, exist_ok=True)
    with open(Path(cache_root) / f"{folder.name}.lock", "a") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)  # a second builder waits, then finds the cache built
        if (folder / "header.json").exists():
            return folder
        frame = read_manifest(dataset)
        workers = workers or max(1, len(os.sched_getaffinity(0)))
        done, total, start = 0, len(frame), time.perf_counter()

        def report(count: int) -> None:
            nonlocal done
            done += count
            if on_progress:
                on_progress(done, total, done / max(time.perf_counter() - start, 1e-9))

        skipped = []
        with staging_folder(folder) as tmp:
            for split in SPLITS:
                skipped += _write_split(tmp, split, frame[frame["split"] == split], resize, workers, report)
            seconds = time.perf_counter() - start
            write_json_atomic(tmp / "header.json", {
                "schema": CACHE_SCHEMA, "manifest_sha256": digest, "image_size": resize[0], "interpolation": resize[1],
                "crop_pct": resize[2], "resize": resize.method, "images": total - len(skipped), "skipped": skipped,
                "seconds": round(seconds, 3), "images_per_s": round(total / max(seconds, 1e-9), 1), "workers": workers,
            })
            os.replace(tmp, folder)
    return folder


def cache_header(folder: Path) -> dict:
    return read_json(Path(folder) / "header.json")


def load_split(folder: Path, split: str) -> CachedSplit:
    index = pd.read_csv(Path(folder) / f"{split}.csv", dtype={"generator": str, "group": str}, keep_default_na=False)
    images = np.load(Path(folder) / f"{split}.npy", mmap_mode="r")
    labels = index["label"].map(LABELS).to_numpy(dtype=np.int64)
    return CachedSplit(images=images, labels=labels, index=index)


def resplit(splits: dict[str, CachedSplit], seed: int) -> dict[str, CachedSplit]:
    """The three splits pooled and drawn again with seed, so that an interval over seeds also covers which
    images were held out (--resplit). Drawn by unit (the source group where the manifest gives one, else
    the image), units of each kind (those holding both classes, reals only, fakes only) apart: each split
    gets as many units of each kind as the fixed split holds, so it keeps its number of test units and its
    class balance, both classes in every split, and no unit feeds two splits."""
    index = pd.concat([splits[name].index.assign(split=name) for name in SPLITS], ignore_index=True)
    images = np.concatenate([np.asarray(splits[name].images) for name in SPLITS])
    labels = np.concatenate([splits[name].labels for name in SPLITS])
    groups = index["group"].fillna("") if "group" in index else pd.Series("", index=index.index)
    units = groups.where(groups != "", "image:" + index["path"])
    kinds = pd.Series(labels, index=index.index).groupby(units).agg(lambda found: tuple(sorted(set(found))))
    home = index["split"].groupby(units).first()  # a unit's split in the manifest (of its first image)
    rng, split_of = np.random.default_rng(seed), {}
    for kind in sorted(set(kinds)):
        members = sorted(kinds.index[kinds == kind])
        drawn = [members[i] for i in rng.permutation(len(members))]
        start = 0
        for name in ("test", "val"):
            count = int((home[members] == name).sum())
            split_of.update(dict.fromkeys(drawn[start:start + count], name))
            start += count
        split_of.update(dict.fromkeys(drawn[start:], "train"))
    assigned = units.map(split_of).to_numpy()
    index = index.drop(columns="split")
    return {name: CachedSplit(images=images[assigned == name], labels=labels[assigned == name],
                              index=index[assigned == name].reset_index(drop=True)) for name in SPLITS}
