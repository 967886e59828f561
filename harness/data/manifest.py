"""manifest.csv: one row per image of a dataset (schema below), the single input of every sweep.

Columns: path (relative to the manifest's folder, or absolute), label (real|fake), split
(train|val|test), sha256, width, height, format (the file's codec), generator (the fake's generator,
empty for real images), group (images of one group never straddle two splits).
"""
import hashlib
import os
from pathlib import Path

import pandas as pd

from harness.errors import UserError
from harness.store.atomic import write_atomic

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
        raise UserError(f"{dataset} has no {MANIFEST_NAME}; build one with: "
                        f"python -m harness data prepare --real DIR --fake DIR --out {dataset}")
    return path


def _first_bad_row(path: Path, frame: pd.DataFrame, column: str, is_valid: pd.Series, expected: str) -> None:
    """Raise naming the first row whose column fails is_valid; line numbers count the header as line 1."""
    if not is_valid.all():
        row = int((~is_valid).to_numpy().argmax())
        raise UserError(f"{path} line {row + 2}: {column} {frame[column].iloc[row]!r} is not {expected}")


def read_manifest(dataset: Path) -> pd.DataFrame:
    """The manifest with absolute paths, every row checked, both classes in every split.

    The file may come from anywhere: a label or split that is not exactly one of ours would train
    silently on garbage (a label 'Real' once became INT64_MIN), so every row is validated.
    """
    path = manifest_path(dataset)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise UserError(f"{path} is empty; expected a header ({','.join(COLUMNS)}) and one row per image") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not a readable manifest: {err}") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(f"{path} lacks the columns {', '.join(missing)}")
    if frame.empty:
        raise UserError(f"{path} has a header but no rows")
    _first_bad_row(path, frame, "path", frame["path"] != "", "a file path")
    _first_bad_row(path, frame, "label", frame["label"].isin(list(LABELS)), f"one of {', '.join(LABELS)}")
    _first_bad_row(path, frame, "split", frame["split"].isin(SPLITS), f"one of {', '.join(SPLITS)}")
    _first_bad_row(path, frame, "sha256", frame["sha256"].str.fullmatch(r"[0-9a-f]{64}"), "a sha256 (64 hex digits)")
    for column in ("width", "height"):  # nine digits at most: no image comes near, and the number stays an int
        _first_bad_row(path, frame, column, frame[column].str.fullmatch(r"[0-9]{1,9}"), "a whole number of pixels")
        frame[column] = frame[column].astype(int)
    written = frame.copy()
    frame["path"] = [str(p if Path(p).is_absolute() else (path.parent / p)) for p in frame["path"]]
    resolved = pd.Series([os.path.realpath(p) for p in frame["path"]])
    _first_bad_row(path, written, "path", ~resolved.duplicated(), "listed once (an image listed twice, perhaps in two "
                   "splits, would be tested on what it trained on)")
    for split in SPLITS:
        for label in LABELS:
            if not ((frame["split"] == split) & (frame["label"] == label)).any():
                raise UserError(f"{path} has no {label} images in its {split} split")
    return frame


def check_manifest_files(dataset: Path) -> None:
    """Fail in one line, before any job is submitted, when an image the manifest lists is not a file."""
    frame = read_manifest(dataset)
    missing = [row for row, image in enumerate(frame["path"]) if not Path(image).is_file()]
    if missing:
        raise UserError(f"{manifest_path(dataset)}: {len(missing)} of {len(frame)} images are missing or not files, "
                        f"the first {frame['path'].iloc[missing[0]]} (line {missing[0] + 2})")


def manifest_digest(dataset: Path) -> str:
    return hashlib.sha256(manifest_path(dataset).read_bytes()).hexdigest()
