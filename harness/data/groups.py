"""Which images come from one source (a person, a photograph): `data prepare`'s groups, read from a groups
file, a pattern over the path, or near-duplicates found by a perceptual hash.

Images of one person are not independent: a detector scored on a person it trained on, or twice on one
person, is scored on less than it seems. The splits are drawn by group (prepare.assign_splits), and the
leaderboard's tests and intervals count groups as their units (stats.crossed).

A groups file and a pattern come from the user, as untrusted as any file: a line that names two images, an
image given two groups, a group name with control characters, a file that is no regular file or too large
is refused in one line before anything is written.
"""
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import UserError
from harness.store.user_files import read_user_file

MAX_GROUPS_FILE_BYTES = 256 * 2**20  # a path and a name per image: far more than the largest face dataset's
MAX_GROUP_NAME = 200
LINE = re.compile(r"(.+?)[\t ,]+([^\t ,]+)")  # the image (a path or a file name, spaces allowed), then the group
PARENT = "{parent}"  # --group-pattern's shorthand: the name of the folder that holds the image
MAX_NEAR_DUPLICATE_BITS = 16  # of 64: beyond, photographs of nothing in common join
BLOCK_PAIRS = 2**22  # hash pairs compared at once (16 MiB of float32 products)
OWN_GROUP, NEAR_GROUP = "image:", "near:"  # the names of groups prepare makes, before an image's sha256


def read_groups_file(path: Path) -> list[tuple[int, str, str]]:
    """(line number, image, group) of each line of a groups file: `image group`, separated by a tab, a
    comma or spaces (the group is the last field: it holds none of them; the image, a path or a file name,
    may hold spaces). Blank lines and lines starting with # are skipped."""
    try:
        data = read_user_file(Path(path), "--groups", MAX_GROUPS_FILE_BYTES)
    except FileNotFoundError:
        raise UserError(f"--groups {path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"--groups {path} is a folder, not a file to read") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UserError(f"--groups {path} is not UTF-8 text (byte {err.start})") from None
    lines: list[tuple[int, str, str]] = []
    for number, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.replace("\t", " ").isprintable():
            raise UserError(f"--groups {path} line {number}: {line[:80]!r} holds a control character")
        found = LINE.fullmatch(line.strip())
        if found is None or not Path(found.group(1)).name or len(found.group(2)) > MAX_GROUP_NAME:
            raise UserError(f"--groups {path} line {number}: {line[:80]!r} is not an image and its group (a name of at "
                            f"most {MAX_GROUP_NAME} characters)")
        lines.append((number, found.group(1), found.group(2)))
    if not lines:
        raise UserError(f"--groups {path} holds no line of an image and its group")
    return lines


def groups_from_file(paths: list[str], lines: list[tuple[int, str, str]], source: Path) -> tuple[list[str], int]:
    """Each image's group ('' where the file names none) and how many lines named no image. A line names
    the images whose path ends with its path (a file name alone, a path below the class folder, or the
    whole path); one that names two images, or an image that two lines give two groups, is refused."""
    by_name: dict[str, list[int]] = {}
    parts = [Path(p).parts for p in paths]
    for index, found_parts in enumerate(parts):
        by_name.setdefault(found_parts[-1], []).append(index)
    groups, set_by = [""] * len(paths), [0] * len(paths)
    unused = 0
    for number, image, group in lines:
        key = Path(image).parts
        found = [i for i in by_name.get(key[-1], []) if parts[i][-len(key):] == key]
        if len(found) > 1:
            raise UserError(f"--groups {source} line {number}: {image!r} names {len(found)} images ({paths[found[0]]}, "
                            f"{paths[found[1]]}); give more of its path")
        if not found:
            unused += 1
            continue
        index = found[0]
        if groups[index] and groups[index] != group:
            raise UserError(f"--groups {source} line {number}: {paths[index]} is in group {groups[index]!r} on line "
                            f"{set_by[index]} and in {group!r} here; an image belongs to one group")
        groups[index], set_by[index] = group, number
    return groups, unused


def compile_pattern(text: str) -> re.Pattern[str]:
    """--group-pattern: {parent} (the image's folder below its class folder), or a regular expression with
    one capture group, searched in the image's path below its class folder (folders joined by /)."""
    if text == PARENT:
        return re.compile(r"([^/]+)/[^/]+$")
    try:
        pattern = re.compile(text)
    except re.error as err:
        raise UserError(f"--group-pattern {text!r} is not a regular expression: {err}") from None
    if pattern.groups != 1:
        raise UserError(f"--group-pattern {text!r} has {pattern.groups} capture groups; give one, around the part of "
                        "the path that names the group (e.g. '^([^/]+)/' for a folder per person), or {parent}")
    return pattern


def groups_from_pattern(relative_paths: list[str], pattern: re.Pattern[str]) -> list[str]:
    """Each image's group, the pattern's capture in its path below its class folder ('' where it does not match)."""
    groups = []
    for path in relative_paths:
        found = pattern.search(path)
        group = found.group(1) if found and found.group(1) else ""
        if not group.isprintable() or len(group) > MAX_GROUP_NAME:
            raise UserError(f"--group-pattern {pattern.pattern!r} gives {path!r} the group {group[:80]!r}: a group name "
                            f"is printable, at most {MAX_GROUP_NAME} characters")
        groups.append(group)
    return groups


def near_duplicate_components(hashes: np.ndarray, max_distance: int) -> np.ndarray:
    """Each hash's component (0..C-1): hashes within max_distance bits of each other are joined, and so on
    through chains. Every pair is compared, in blocks of a matrix product of the hashes' bits as +1/-1 (a
    pair's product is 64 minus twice its Hamming distance): n^2 / 2 products, seconds for tens of thousands."""
    bits = np.unpackbits(np.asarray(hashes, dtype=np.uint64).view(np.uint8).reshape(-1, 8), axis=1)
    signs = bits.astype(np.float32) * 2 - 1  # products of 64 terms of +-1: exact in float32
    count, start = len(signs), 0
    rows, cols = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    while start < count:  # rows start.. against columns start..: each pair once
        stop = min(count, start + max(1, BLOCK_PAIRS // (count - start)))
        i, j = np.nonzero(signs[start:stop] @ signs[start:].T >= 64 - 2 * max_distance)
        keep = i < j  # not an image with itself, nor a pair twice
        rows.append(start + i[keep])
        cols.append(start + j[keep])
        start = stop
    return connected(count, np.concatenate(rows), np.concatenate(cols))


def connected(count: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The connected components (numbered 0..C-1 in order of their smallest node) of count nodes joined by
    the edges first[k]-second[k]: each node takes the smallest label among its neighbours' and its
    label's label, until none changes."""
    labels = np.arange(count)
    while True:
        low = np.minimum(labels[first], labels[second])
        new = labels.copy()
        np.minimum.at(new, first, low)
        np.minimum.at(new, second, low)
        new = new[new]
        if np.array_equal(new, labels):
            return np.unique(labels, return_inverse=True)[1]
        labels = new


def near_duplicate_groups(frame: pd.DataFrame, max_distance: int) -> pd.Series:
    """The near-duplicate group of each row (its difference hash, `dhash`, within max_distance bits of
    another's), named after its first member's sha256; a row with none is a group of its own."""
    components = near_duplicate_components(frame["dhash"].to_numpy(dtype=np.uint64), max_distance)
    heads = pd.Series(frame["sha256"].str[:16].to_numpy())
    alone = np.bincount(components)[components] == 1
    return pd.Series(np.where(alone, OWN_GROUP + heads, NEAR_GROUP + heads.groupby(components).transform("first")),
                     index=frame.index)


@dataclass(frozen=True)
class GroupSource:
    """Where `data prepare`'s groups come from: a groups file's lines (read_groups_file), or a pattern over
    the path, and near-duplicates (the most bits two hashes may differ by) for the images these leave out."""

    lines: list[tuple[int, str, str]] | None = None
    file: Path | None = None
    pattern: re.Pattern[str] | None = None
    near_duplicates: int | None = None

    @classmethod
    def from_options(cls, groups_file: Path | None, group_pattern: str | None, near_duplicates: int | None) -> "GroupSource":
        """The options read and checked: one line, and nothing read further, where one is wrong."""
        if groups_file is not None and group_pattern is not None:
            raise UserError("--groups and --group-pattern both name the groups; give one of them")
        if near_duplicates is not None and not 0 <= near_duplicates <= MAX_NEAR_DUPLICATE_BITS:
            raise UserError(f"--near-duplicates takes 0..{MAX_NEAR_DUPLICATE_BITS} bits of 64, not {near_duplicates}")
        return cls(lines=None if groups_file is None else read_groups_file(groups_file), file=groups_file,
                   pattern=None if group_pattern is None else compile_pattern(group_pattern), near_duplicates=near_duplicates)

    @property
    def names(self) -> str | None:
        """The option that names the groups, as typed; None where none does."""
        if self.lines is not None:
            return f"--groups {self.file}"
        return None if self.pattern is None else f"--group-pattern {self.pattern.pattern!r}"

    def assign(self, frame: pd.DataFrame) -> tuple[pd.Series, int]:
        """Each image's group and how many lines of the groups file named no image. The file's lines (matched
        on the `found` path) or the pattern (over the `relative` path) name the groups; a real image they
        leave out is refused, a fake (StyleGAN's have no identity) is a group of its own. With
        near_duplicates, the images left without a group are grouped by their difference hash (`dhash`)
        instead. Nothing given: no groups ('' for every image), each image its own unit."""
        groups, unused = pd.Series("", index=frame.index), 0
        if self.lines is not None:
            found, unused = groups_from_file(frame["found"].tolist(), self.lines, self.file or Path())
            groups[:] = found
        elif self.pattern is not None:
            groups[:] = groups_from_pattern(frame["relative"].tolist(), self.pattern)
        left = groups == ""
        if self.near_duplicates is not None:
            groups[left] = near_duplicate_groups(frame[left], self.near_duplicates)
        elif self.names:
            reals = left & (frame["label"] == "real")
            if reals.any():
                raise UserError(f"{self.names} gives no group to {int(reals.sum())} of {int((frame['label'] == 'real').sum())} "
                                f"real images, the first {frame['found'][reals].iloc[0]}; give each one, or add "
                                "--near-duplicates to group the rest by their pixels")
            groups[left] = OWN_GROUP + frame["sha256"][left].str[:16]
        return groups, unused


def group_summary(frame: pd.DataFrame) -> str:
    """One line on a prepared dataset's groups: per class, its images, its groups, those of one image."""
    parts = []
    for label, members in frame.groupby("label", sort=False):
        sizes = members["group"].value_counts()
        alone, near = int((sizes == 1).sum()), int(sizes.index.str.startswith(NEAR_GROUP).sum())
        kinds = ["each of one image" if alone == len(sizes) else f"{alone} of one image" if alone else "",
                 f"{near} of near-duplicates" if near else ""]
        detail = ", ".join(kind for kind in kinds if kind)
        parts.append(f"{len(members)} {label} images in {len(sizes)} groups" + (f" ({detail})" if detail else ""))
    both = int((frame.groupby("group")["label"].nunique() > 1).sum())
    return (f"groups: {', '.join(parts)}" + (f"; {both} groups hold both classes" if both else "")
            + "; no group stands in two splits, and the tests and intervals count groups")
