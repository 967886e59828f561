"""manifest.csv: one row per image of a dataset (schema below), the single input of every sweep.

Columns: path (relative to the manifest's folder, or absolute), label (real|fake), split
(train|val|test), sha256, width, height, format (the file's codec), generator (the fake's generator,
empty for real images), group (images of one group never straddle two splits).
"""
import hashlib
from pathlib import Path

import pandas as pd

from harness.store.atomic import write_atomic
from harness.errors import UserError

MANIFEST_NAME = "manifest.csv"
COLUMNS = ["path", "label", "split", "sha256", "width", "height", "format", "generator", "group"]
LABELS = {"real": 0, "fake": 1}  # the fake class is the positive class, as the paper counts TP/FP
SPLITS = ("train", "val", "test")


def write_manifest(frame: pd.DataFrame, folder: Path) -> Path:
    path = Path(folder) / MANIFEST_NAME
    write_atomic(path, lambda tmp: frame[COLUMNS].to_csv(tmp, index=False))
    return path


def manifest_path(dataset: Path) -> Path:
    dataset = Path(dataset)
    if not dataset.exists():
        raise UserError(f"dataset folder {dataset} does not exist")
    path = dataset / MANIFEST_NAME if dataset.is_dir() else dataset
    if not path.is_file():
        raise UserError(f"{dataset} has no {MANIFEST_NAME}; build one with: python -m harness data prepare --real DIR --fake DIR --out {dataset}")
    return path


def read_manifest(dataset: Path) -> pd.DataFrame:
    """The manifest with absolute paths, checked to hold both classes in every split."""
    path = manifest_path(dataset)
    try:
        frame = pd.read_csv(path, dtype={"generator": str, "group": str}, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not a readable manifest: {err}") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(f"{path} lacks the columns {', '.join(missing)}")
    frame["path"] = [str(p if Path(p).is_absolute() else (path.parent / p)) for p in frame["path"]]
    for split in SPLITS:
        for label in LABELS:
            if not ((frame["split"] == split) & (frame["label"] == label)).any():
                raise UserError(f"{path} has no {label} images in its {split} split")
    return frame


def manifest_digest(dataset: Path) -> str:
    return hashlib.sha256(manifest_path(dataset).read_bytes()).hexdigest()
