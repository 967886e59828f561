"""`data prepare`: from a folder of real and a folder of fake images to a checked, split manifest."""
import io
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from harness.data.images import ImageInfo, decode, find_images, inspect_image
from harness.data.manifest import COLUMNS, LABELS, write_manifest
from harness.errors import UserError
from harness.progress import progress_bar

SPLIT_FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


@dataclass
class PrepareReport:
    manifest: Path
    counts: dict[str, dict[str, int]]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    duplicates_dropped: int = 0
    in_both_classes: list[str] = field(default_factory=list)  # sha256 of images found as real and as fake
    format_warnings: list[str] = field(default_factory=list)


def parse_reencode(text: str | None) -> tuple[str, int] | None:
    """'png' -> ('PNG', 0); 'jpeg:90' -> ('JPEG', 90); None -> None."""
    if text is None:
        return None
    codec, _, quality = text.lower().partition(":")
    if codec == "png" and not quality:
        return ("PNG", 0)
    if codec in ("jpeg", "jpg") and quality.isdigit() and 1 <= int(quality) <= 100:
        return ("JPEG", int(quality))
    raise UserError(f"--reencode takes png or jpeg:Q with Q in 1..100, not {text!r}")


def _inspect_all(paths: list[Path], description: str) -> list[ImageInfo]:
    workers = max(1, len(os.sched_getaffinity(0)))
    with ProcessPoolExecutor(workers) as pool, progress_bar() as progress:
        task = progress.add_task(description, total=len(paths))
        infos = []
        for info in pool.map(inspect_image, paths, chunksize=16):
            infos.append(info)
            progress.advance(task)
    return infos


def format_bias_warnings(frame: pd.DataFrame) -> list[str]:
    """Where real and fake differ in codec or size, a detector can learn the file instead of the face."""
    warnings = []
    by_label = {label: group for label, group in frame.groupby("label")}
    if set(by_label) != {"real", "fake"}:
        return warnings
    formats = {label: Counter(group["format"]) for label, group in by_label.items()}
    if formats["real"].most_common(1)[0][0] != formats["fake"].most_common(1)[0][0] or set(formats["real"]) != set(formats["fake"]):
        warnings.append(
            f"the classes differ in codec (real: {dict(formats['real'])}, fake: {dict(formats['fake'])}); "
            "a detector can learn the codec: consider --reencode png or --reencode jpeg:95"
        )
    sizes = {label: Counter(zip(group["width"], group["height"])) for label, group in by_label.items()}
    if sizes["real"].most_common(1)[0][0] != sizes["fake"].most_common(1)[0][0]:
        warnings.append(
            f"the classes differ in image size (most common real: {sizes['real'].most_common(1)[0][0]}, "
            f"fake: {sizes['fake'].most_common(1)[0][0]}); a detector can learn the resampling"
        )
    return warnings


def _reencode(frame: pd.DataFrame, out: Path, codec: tuple[str, int]) -> pd.DataFrame:
    name, quality = codec
    suffix = ".png" if name == "PNG" else ".jpg"
    rows = []
    for row in frame.itertuples(index=False):
        image, _ = decode(Path(row.path))
        target = out / "images" / row.label / f"{row.sha256[:20]}{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        image.save(buffer, name, **({"quality": quality} if name == "JPEG" else {}))
        target.write_bytes(buffer.getvalue())
        rows.append({**row._asdict(), "path": str(target.relative_to(out)), "format": name})
    return pd.DataFrame(rows)


def assign_splits(frame: pd.DataFrame, seed: int) -> pd.Series:
    """Stratified by label (and by group where groups are given), reproducible for a seed."""
    groups = frame["group"].where(frame["group"] != "", frame["sha256"])
    keys = frame.assign(key=groups).drop_duplicates("key")[["key", "label"]]
    test_size = SPLIT_FRACTIONS["test"]
    val_size = SPLIT_FRACTIONS["val"] / (1 - test_size)
    rest, test = train_test_split(keys, test_size=test_size, stratify=keys["label"], random_state=seed)
    train, val = train_test_split(rest, test_size=val_size, stratify=rest["label"], random_state=seed)
    split_of = {**dict.fromkeys(train["key"], "train"), **dict.fromkeys(val["key"], "val"), **dict.fromkeys(test["key"], "test")}
    return groups.map(split_of)


def prepare_dataset(
    real: Path,
    fakes: list[Path],
    out: Path,
    per_class: int | None = None,
    seed: int = 0,
    reencode: str | None = None,
) -> PrepareReport:
    """Check, deduplicate, sample, optionally re-encode and split; write out/manifest.csv.

    fakes: one folder per generator; a fake's generator is its folder's name.
    """
    codec = parse_reencode(reencode)
    if per_class is not None and per_class < 3:
        raise UserError(f"--per-class must be at least 3 (one image per split), got {per_class}")
    folders = [("real", Path(real))] + [("fake", Path(f)) for f in fakes]
    for label, folder in folders:
        if not folder.is_dir():
            raise UserError(f"the {label} folder {folder} does not exist")
    paths = [(label, folder, find_images(folder)) for label, folder in folders]
    for label, folder, found in paths:
        if not found:
            raise UserError(f"the {label} folder {folder} holds no .jpg/.jpeg/.png/.webp/.bmp images")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create {out}: {err.strerror}") from None

    report = PrepareReport(manifest=out / "manifest.csv", counts={})
    rows = []
    for label, folder, found in paths:
        for info in _inspect_all(found, f"checking {folder}"):
            if info.error:
                report.skipped.append((str(info.path), info.error))
            else:
                rows.append({"path": str(info.path.resolve()), "label": label, "sha256": info.sha256, "width": info.width,
                             "height": info.height, "format": info.format, "generator": "" if label == "real" else folder.name,
                             "group": ""})
    frame = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "split"])
    labels_of = frame.groupby("sha256")["label"].nunique()
    report.in_both_classes = sorted(labels_of[labels_of > 1].index)
    before = len(frame)
    frame = frame[~frame["sha256"].isin(report.in_both_classes)].drop_duplicates("sha256")
    report.duplicates_dropped = before - len(frame)

    rng = np.random.default_rng(seed)
    sampled = []
    for label in LABELS:
        members = frame[frame["label"] == label]
        if len(members) < 3:
            raise UserError(f"the {label} folder has {len(members)} usable images; at least 3 are needed (one per split)")
        take = len(members) if per_class is None else min(per_class, len(members))
        sampled.append(members.iloc[np.sort(rng.choice(len(members), take, replace=False))])
    frame = pd.concat(sampled, ignore_index=True)
    if codec:
        frame = _reencode(frame, out, codec)
    report.format_warnings = format_bias_warnings(frame)
    frame["split"] = assign_splits(frame, seed)
    write_manifest(frame, out)
    report.counts = {label: frame[frame["label"] == label]["split"].value_counts().to_dict() for label in LABELS}
    return report
