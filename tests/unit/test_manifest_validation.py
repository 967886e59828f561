"""manifest.csv is untrusted input: every row is checked, and a bad one is named by file and line."""
from pathlib import Path

import pandas as pd
import pytest

from harness.data.manifest import COLUMNS, check_manifest_files, read_manifest
from harness.errors import UserError


def _write(folder: Path, rows: list[dict[str, str]] | None = None, text: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.csv"
    if text is not None:
        path.write_text(text)
    else:
        pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    return path


def _rows(folder: Path) -> list[dict[str, str]]:
    """One real and one fake image per split, all present on disk."""
    rows = []
    for split in ("train", "val", "test"):
        for label in ("real", "fake"):
            name = f"{label}-{split}.png"
            (folder / name).write_bytes(b"not read by these checks")
            rows.append({"path": name, "label": label, "split": split, "sha256": "0" * 64, "width": "8", "height": "8",
                         "format": "PNG", "generator": "" if label == "real" else "gan", "group": ""})
    return rows


def test_a_valid_manifest_reads_with_absolute_paths_and_integer_sizes(tmp_path):
    _write(tmp_path, _rows(tmp_path))
    frame = read_manifest(tmp_path)
    assert all(Path(p).is_absolute() for p in frame["path"])
    assert frame["width"].dtype.kind == "i" and frame["height"].dtype.kind == "i"
    check_manifest_files(tmp_path)


@pytest.mark.parametrize("column, value, message", [
    ("label", "Real", "line 3: label 'Real' is not one of real, fake"),
    ("label", "1", "line 3: label '1' is not one of real, fake"),
    ("split", "validation", "line 3: split 'validation' is not one of train, val, test"),
    ("width", "8.5", "line 3: width '8.5' is not a whole number of pixels"),
    ("height", "", "line 3: height '' is not a whole number of pixels"),
    ("path", "", "line 3: path '' is not a file path"),
    ("width", "9" * 30, f"line 3: width '{'9' * 30}' is not a whole number of pixels"),  # once an overflow
    ("sha256", "abc", "line 3: sha256 'abc' is not a sha256 (64 hex digits)"),
    ("path", "real-train.png", "line 3: path 'real-train.png' is not listed once"),  # the row before it, again
])
def test_a_bad_row_is_named_by_file_and_line(tmp_path, column, value, message):
    rows = _rows(tmp_path)
    rows[1][column] = value
    path = _write(tmp_path, rows)
    with pytest.raises(UserError) as raised:
        read_manifest(tmp_path)
    assert str(raised.value).startswith(f"{path} {message}")


def test_one_file_in_two_splits_by_two_spellings_is_refused(tmp_path):
    """A train image listed again as a test image (through a second path to it) would be tested on what
    the network trained on."""
    rows = _rows(tmp_path)
    (tmp_path / "sub").mkdir()
    rows[5]["path"] = "sub/../real-train.png"
    _write(tmp_path, rows)
    with pytest.raises(UserError, match="line 7: path 'sub/../real-train.png' is not listed once"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    (",".join(COLUMNS) + "\n", "has a header but no rows"),
    ("path,label,split\nx.png,real,train\n", "lacks the columns sha256, width, height, format, generator, group"),
])
def test_an_empty_or_incomplete_manifest_is_one_line(tmp_path, text, message):
    _write(tmp_path, text=text)
    with pytest.raises(UserError, match=message) as raised:
        read_manifest(tmp_path)
    assert "\n" not in str(raised.value)


def test_missing_image_files_are_found_before_any_job_runs(tmp_path):
    rows = _rows(tmp_path)
    (tmp_path / rows[2]["path"]).unlink()
    (tmp_path / rows[4]["path"]).unlink()
    path = _write(tmp_path, rows)
    with pytest.raises(UserError) as raised:
        check_manifest_files(tmp_path)
    assert str(raised.value) == (f"{path}: 2 of 6 images are missing or not files, the first "
                                 f"{tmp_path / rows[2]['path']} (line 4)")
