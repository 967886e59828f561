"""`data prepare`: from a folder of real and a folder of fake images to a checked, split manifest."""
import functools
import hashlib
import io
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.data.groups import GroupSource, group_summary
from harness.data.images import ImageInfo, decode, find_images, inspect_image
from harness.data.manifest import COLUMNS, LABELS, MANIFEST_NAME, write_manifest
from harness.data.pool import decoding_pool
from harness.errors import UserError
from harness.progress import progress_bar
from harness.store.user_files import check_output

SPLIT_FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}
MIN_PER_CLASS = 4  # the fewest images (or groups) of each class that split with one of each class in every split
NO_GROUPS = ("no groups (--groups, --group-pattern or --near-duplicates): the splits are drawn by image, and every test and "
             "interval counts images as independent; where a person stands in several images, they are not")


LOSSY_FORMATS = {"JPEG", "WEBP", "MPO"}  # codecs that leave a compression history PNG cannot undo
MAX_FAKE_SHARE_GAP = 0.05  # a split's fake share may stray this far from one half before prepare warns


@dataclass
class PrepareReport:
    manifest: Path
    counts: dict[str, dict[str, int]]  # label -> split -> images
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    duplicates_bytes: int = 0  # copies dropped with the same file bytes as a kept image
    duplicates_pixels: int = 0  # copies dropped with other bytes (metadata, codec) but the same decoded pixels
    in_both_classes: list[str] = field(default_factory=list)  # pixel sha256 of images found as real and as fake
    format_warnings: list[str] = field(default_factory=list)  # codec and size, judged on the original files
    balance_warnings: list[str] = field(default_factory=list)
    fake_share: dict[str, float] = field(default_factory=dict)  # split -> share of fake images
    notes: list[str] = field(default_factory=list)  # what --reencode resolved, groups file lines that named no image
    groups: str = NO_GROUPS  # what the groups are, or that there are none

    @property
    def duplicates_dropped(self) -> int:
        return self.duplicates_bytes + self.duplicates_pixels

    @property
    def warnings(self) -> list[str]:
        return self.format_warnings + self.balance_warnings


def parse_reencode(text: str | None) -> tuple[str, int] | None:
    """'png' -> ('PNG', 0); 'jpeg:90' -> ('JPEG', 90); None -> None."""
    if text is None:
        return None
    codec, _, quality = text.lower().partition(":")
    if codec == "png" and not quality:
        return ("PNG", 0)
    if codec in ("jpeg", "jpg") and quality.isdecimal() and 1 <= int(quality) <= 100:
        return ("JPEG", int(quality))
    raise UserError(f"--reencode takes png or jpeg:Q with Q in 1..100, not {text!r}")


def _inspect_all(paths: list[Path], description: str, perceptual_hash: bool) -> list[ImageInfo]:
    workers = max(1, len(os.sched_getaffinity(0)))
    inspect = functools.partial(inspect_image, perceptual_hash=perceptual_hash)
    with decoding_pool(workers) as pool, progress_bar() as progress:
        task = progress.add_task(description, total=len(paths))
        infos = []
        try:
            for info in pool.map(inspect, paths, chunksize=16):
                infos.append(info)
                progress.advance(task)
        except OSError as err:  # a file that cannot be read is a fault of the storage, not an image to skip
            failed = err.filename or paths[len(infos)]  # results come in order: the failing one is next
            raise UserError(f"cannot read {failed}: {err.strerror or err}") from None
    return infos


def format_bias_warnings(frame: pd.DataFrame, codec: tuple[str, int] | None = None) -> tuple[list[str], list[str]]:
    """(warnings, notes) on the original files: where real and fake differ in codec or size, a detector
    can learn the file instead of the face. Only a JPEG re-encoding of both classes resolves a codec
    difference that involves JPEG: PNG keeps the JPEG class's compression history."""
    warnings: list[str] = []
    notes: list[str] = []
    by_label = {label: group for label, group in frame.groupby("label")}
    if set(by_label) != {"real", "fake"}:
        return warnings, notes
    formats = {label: Counter(group["format"]) for label, group in by_label.items()}
    if formats["real"].most_common(1)[0][0] != formats["fake"].most_common(1)[0][0] or set(formats["real"]) != set(formats["fake"]):
        difference = f"the classes differ in codec (real: {dict(formats['real'])}, fake: {dict(formats['fake'])})"
        lossy = sorted(label for label, counts in formats.items() if LOSSY_FORMATS & set(counts))
        if codec and (codec[0] == "JPEG" or not lossy):
            notes.append(f"{difference}; resolved by --reencode, which passes both classes through one {codec[0]} encoder")
        else:
            kept = f" (--reencode png keeps the {' and '.join(lossy)} images' JPEG history)" if codec else ""
            warnings.append(f"{difference}; a detector can learn the codec: re-encode both classes with "
                            f"--reencode jpeg:95{kept}")
    sizes = {label: Counter(zip(group["width"], group["height"])) for label, group in by_label.items()}
    if sizes["real"].most_common(1)[0][0] != sizes["fake"].most_common(1)[0][0]:
        warnings.append(
            f"the classes differ in image size (most common real: {sizes['real'].most_common(1)[0][0]}, "
            f"fake: {sizes['fake'].most_common(1)[0][0]}); a detector can learn the resampling"
        )
    return warnings, notes


def balance_warnings(frame: pd.DataFrame) -> tuple[dict[str, float], list[str]]:
    """(fake share per split, warnings): a detector scored on an unbalanced split can win by guessing the majority."""
    share = {split: float((group["label"] == "fake").mean()) for split, group in frame.groupby("split")}
    warnings = [f"the {split} split is {fake:.0%} fake, not 50%: accuracy there rewards guessing the majority class"
                for split, fake in share.items() if abs(fake - 0.5) > MAX_FAKE_SHARE_GAP]
    counts = frame["label"].value_counts()
    if not warnings and abs(counts["real"] - counts["fake"]) > MAX_FAKE_SHARE_GAP * counts.max():
        warnings.append(f"the classes hold different numbers of images ({counts['real']} real, {counts['fake']} fake); "
                        "use --per-class to sample them evenly")
    return share, warnings


def check_folders(real: Path, fakes: list[Path], out: Path) -> None:
    """Refuse an --out inside an input folder (its re-encoded images would be read as input next time) and
    input folders that overlap (one image would be both real and fake), before anything is written."""
    inputs = [("--real", Path(real).resolve())] + [("--fake", Path(f).resolve()) for f in fakes]
    target = Path(out).resolve()
    for option, folder in inputs:
        if target.is_relative_to(folder):
            raise UserError(f"--out {out} is inside the {option} folder {folder}; choose a folder outside the input folders")
    for index, (option, folder) in enumerate(inputs):
        for other_option, other in inputs[index + 1:]:
            if folder.is_relative_to(other) or other.is_relative_to(folder):
                raise UserError(f"the {option} folder {folder} and the {other_option} folder {other} overlap; "
                                "each image must belong to one class")


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
        rows.append({**row._asdict(), "path": str(target.relative_to(out)), "format": name,
                     "sha256": hashlib.sha256(buffer.getvalue()).hexdigest()})  # the bytes the cache will check
    return pd.DataFrame(rows)


def assign_splits(frame: pd.DataFrame, seed: int) -> pd.Series:
    """Each image's split, drawn by unit (its group where groups are given, else the image), so that no unit
    feeds two splits; reproducible for a seed. The units of each kind (holding both classes, reals only,
    fakes only) apart, shuffled, dealt to test until it holds the nearest it can to its share of that kind's
    images (one unit at least), then to val, the rest to train: each split keeps the classes' balance."""
    units = frame["group"].where(frame["group"] != "", "image:" + frame["sha256"])
    sizes = units.value_counts()
    kinds = frame.groupby(units)["label"].agg(lambda labels: " and ".join(sorted(set(labels))))
    per_class = {label: int(kinds.str.contains(label).sum()) for label in LABELS}
    if min(per_class.values()) < MIN_PER_CLASS:
        word = "groups" if (frame["group"] != "").any() else "images"
        raise UserError(f"{per_class['real']} real and {per_class['fake']} fake {word} are too few for each split to hold "
                        f"one of each class; give at least {MIN_PER_CLASS} of each")
    rng, split_of = np.random.default_rng(seed), {}
    for kind in sorted(set(kinds)):
        members = sorted(kinds.index[kinds == kind])
        dealt = [members[i] for i in rng.permutation(len(members))]
        total = int(sizes[members].sum())
        for split in ("test", "val"):
            held, share = 0, SPLIT_FRACTIONS[split] * total
            while dealt and (held == 0 or held + sizes[dealt[0]] / 2 <= share):  # one unit at least, then the nearest share
                unit = dealt.pop(0)
                split_of[unit], held = split, held + int(sizes[unit])
        split_of.update(dict.fromkeys(dealt, "train"))
    splits = units.map(split_of)
    for split in SPLIT_FRACTIONS:
        if set(frame["label"][splits == split]) != set(LABELS):
            raise UserError(f"the {split} split holds no image of a class: its groups are too few or too unequal for "
                            f"each split to hold both (the largest holds {sizes.iloc[0]} images)")
    return splits


def _image_folders(real: Path, fakes: list[Path], out: Path) -> list[tuple[str, Path, list[Path]]]:
    """(label, folder, its images) for the real folder and each fake one, checked."""
    folders = [("real", Path(real))] + [("fake", Path(f)) for f in fakes]
    for label, folder in folders:
        if not folder.is_dir():
            raise UserError(f"the {label} folder {folder} does not exist")
    found = [(label, folder, find_images(folder)) for label, folder in folders]
    for label, folder, images in found:
        if not images:
            raise UserError(f"the {label} folder {folder} holds no .jpg/.jpeg/.png/.webp/.bmp images")
    check_folders(real, fakes, out)
    return found


def _inspected(folders: list[tuple[str, Path, list[Path]]], report: PrepareReport, perceptual_hash: bool) -> pd.DataFrame:
    """One row per image that decodes (those that do not go to report.skipped), with where it was found
    (`found`, absolute; `relative`, below its class folder: what groups are read from) and, where asked
    for, its perceptual hash."""
    rows = []
    for label, folder, found in folders:
        for info in _inspect_all(found, f"checking {folder}", perceptual_hash):
            if info.error:
                report.skipped.append((str(info.path), info.error))
            else:
                rows.append({"path": str(info.path.resolve()), "label": label, "sha256": info.sha256,
                             "pixel_sha256": info.pixel_sha256, "width": info.width, "height": info.height,
                             "format": info.format, "generator": "" if label == "real" else folder.name, "group": "",
                             "found": os.path.abspath(info.path), "relative": info.path.relative_to(folder).as_posix(),
                             "dhash": info.dhash})
    return pd.DataFrame(rows, columns=[*(c for c in COLUMNS if c != "split"), "pixel_sha256", "found", "relative", "dhash"])


def _deduplicated(frame: pd.DataFrame, report: PrepareReport) -> pd.DataFrame:
    """Same pixels is the same image, whatever its metadata or codec: a copy in the other class is dropped
    from both, a copy in its own class once (the first in path order is kept)."""
    labels_of = frame.groupby("pixel_sha256")["label"].nunique()
    report.in_both_classes = sorted(labels_of[labels_of > 1].index)
    frame = frame[~frame["pixel_sha256"].isin(report.in_both_classes)]
    before = len(frame)
    frame = frame.drop_duplicates("sha256")
    report.duplicates_bytes = before - len(frame)
    before = len(frame)
    frame = frame.drop_duplicates("pixel_sha256")
    report.duplicates_pixels = before - len(frame)
    return frame


def _sampled(frame: pd.DataFrame, per_class: int | None, seed: int) -> pd.DataFrame:
    """per_class images of each class (all of them when None), drawn with the seed, in path order."""
    rng = np.random.default_rng(seed)
    sampled = []
    for label in LABELS:
        members = frame[frame["label"] == label]
        if len(members) < 3:
            raise UserError(f"the {label} folder has {len(members)} usable images; at least 3 are needed (one per split)")
        take = len(members) if per_class is None else min(per_class, len(members))
        sampled.append(members.iloc[np.sort(rng.choice(len(members), take, replace=False))])
    return pd.concat(sampled, ignore_index=True)


def prepare_dataset(
    real: Path,
    fakes: list[Path],
    out: Path,
    per_class: int | None = None,
    seed: int = 0,
    reencode: str | None = None,
    force: bool = False,
    groups_file: Path | None = None,
    group_pattern: str | None = None,
    near_duplicates: int | None = None,
) -> PrepareReport:
    """Check, deduplicate, sample, group, optionally re-encode and split; write out/manifest.csv, where the
    user could mean it (check_output: an existing manifest.csv is replaced, another file only with force).

    fakes: one folder per generator; a fake's generator is its folder's name.
    groups_file, group_pattern, near_duplicates: where the groups come from (groups.GroupSource); the
    splits are drawn by group.
    """
    check_output(Path(out) / MANIFEST_NAME, "--out", ",".join(COLUMNS).encode(), force)
    codec = parse_reencode(reencode)
    if per_class is not None and per_class < MIN_PER_CLASS:
        raise UserError(f"--per-class must be at least {MIN_PER_CLASS} (each split one image of each class at the "
                        f"fractions {SPLIT_FRACTIONS}), got {per_class}")
    source = GroupSource.from_options(groups_file, group_pattern, near_duplicates)
    out = Path(out)
    folders = _image_folders(real, fakes, out)
    report = PrepareReport(manifest=out / "manifest.csv", counts={})
    frame = _sampled(_deduplicated(_inspected(folders, report, near_duplicates is not None), report), per_class, seed)
    report.format_warnings, report.notes = format_bias_warnings(frame, codec)  # the originals, before --reencode
    frame["group"], unused = source.assign(frame)
    if unused:
        report.notes.append(f"{unused} lines of --groups {groups_file} name no image of the dataset (not sampled, a "
                            "duplicate, or not in the folders): not used")
    frame["split"] = assign_splits(frame, seed)  # every check done before out is created
    new = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        if codec:
            frame = _reencode(frame, out, codec)
        write_manifest(frame, out)
    except BaseException as err:  # a full disk, an interrupt: no folder of ours left half-made
        if new:
            shutil.rmtree(out, ignore_errors=True)
        if isinstance(err, OSError):
            raise UserError(f"cannot write {out}: {err.strerror or err}") from None
        raise
    report.counts = {label: frame[frame["label"] == label]["split"].value_counts().to_dict() for label in LABELS}
    report.fake_share, report.balance_warnings = balance_warnings(frame)
    if (frame["group"] != "").any():
        report.groups = group_summary(frame)
    return report
