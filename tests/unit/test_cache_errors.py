"""The cache build: a file that does not decode is skipped and listed; one that cannot be read, or a class
left empty, fails the build with a clear line and publishes nothing."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harness.data.cache import build_cache, cache_header, load_split
from harness.data.images import sha256_of
from harness.data.manifest import COLUMNS
from harness.errors import UserError

RESIZE = (16, "bilinear", 1.0)


def _dataset(folder: Path, per_cell: int = 2) -> pd.DataFrame:
    """per_cell decodable PNGs per (split, label); returns the manifest rows, written to folder."""
    rng = np.random.default_rng(0)
    rows = []
    for split in ("train", "val", "test"):
        for label in ("real", "fake"):
            for i in range(per_cell):
                name = f"{label}-{split}-{i}.png"
                Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / name)
                rows.append({"path": name, "label": label, "split": split, "sha256": sha256_of(folder / name), "width": 20,
                             "height": 20, "format": "PNG", "generator": "" if label == "real" else "gan", "group": ""})
    return pd.DataFrame(rows, columns=COLUMNS)


def _save(frame: pd.DataFrame, folder: Path) -> None:
    frame.to_csv(folder / "manifest.csv", index=False)


def _published(cache_root: Path) -> list[Path]:
    return [p for p in cache_root.iterdir() if not p.name.endswith(".lock")] if cache_root.exists() else []


def test_a_file_that_does_not_decode_is_skipped_and_listed(tmp_path):
    frame = _dataset(tmp_path)
    (tmp_path / frame["path"][0]).write_text("not an image")
    _save(frame, tmp_path)
    folder = build_cache(tmp_path, RESIZE, tmp_path / "cache")
    assert [s["path"] for s in cache_header(folder)["skipped"]] == [str(tmp_path / frame["path"][0])]
    assert load_split(folder, "train").images.shape == (3, 16, 16, 3)


def test_an_image_changed_since_its_manifest_was_written_is_skipped_and_listed(tmp_path):
    frame = _dataset(tmp_path)
    changed = tmp_path / frame["path"][0]
    Image.new("RGB", (20, 20), "white").save(changed)  # decodes, but is no longer the image the manifest names
    _save(frame, tmp_path)
    folder = build_cache(tmp_path, RESIZE, tmp_path / "cache")
    (skipped,) = cache_header(folder)["skipped"]
    assert skipped["path"] == str(changed) and "changed since its manifest was written" in skipped["reason"]


@pytest.mark.parametrize("fault", ["missing", "directory"])
def test_a_file_that_cannot_be_read_fails_the_build_naming_it(tmp_path, fault):
    frame = _dataset(tmp_path)
    broken = tmp_path / frame["path"][5]
    broken.unlink()
    if fault == "directory":  # what an unreadable mount point or a mix-up of folders looks like
        broken.mkdir()
    _save(frame, tmp_path)
    with pytest.raises(UserError, match=f"cannot read {broken}: .*; the cache is not built"):
        build_cache(tmp_path, RESIZE, tmp_path / "cache")
    assert _published(tmp_path / "cache") == []


def test_a_class_left_empty_after_skipping_fails_the_build(tmp_path):
    frame = _dataset(tmp_path)
    for path in frame[(frame["split"] == "val") & (frame["label"] == "fake")]["path"]:
        (tmp_path / path).write_bytes(b"")
    _save(frame, tmp_path)
    with pytest.raises(UserError, match="no fake image of the val split decodes"):
        build_cache(tmp_path, RESIZE, tmp_path / "cache")
    assert _published(tmp_path / "cache") == []


def test_resplit_draws_a_new_split_by_source_group_and_keeps_each_splits_size_and_balance(tiny_demo, tmp_path):
    from harness.data.cache import build_cache, load_split, resplit

    folder = build_cache(tiny_demo, (32, "bicubic", 0.875), tmp_path / "cache", 1)
    splits = {name: load_split(folder, name) for name in ("train", "val", "test")}
    one, two = resplit(splits, 0), resplit(splits, 1)
    assert sum(len(s.labels) for s in one.values()) == sum(len(s.labels) for s in splits.values())
    assert set(one["test"].index["path"]) != set(two["test"].index["path"])
    for drawn in (one, two):
        groups = [set(drawn[name].index["group"]) for name in ("train", "val", "test")]
        assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])  # no photograph in two splits
        for number, name in enumerate(("train", "val", "test")):  # as many photographs as the fixed split, both classes
            assert len(groups[number]) == splits[name].index["group"].nunique() and set(drawn[name].labels) == {0, 1}
            # 30 crops per class from 21 photographs: one or two of each class per photograph
            assert abs(len(drawn[name].labels) - len(splits[name].labels)) <= 2 * len(groups[number])
