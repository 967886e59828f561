"""`data prepare`: duplicates by pixels, codec and size judged on the originals, class balance, and
output folders that would feed back into the input."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, PngImagePlugin

from harness.data.prepare import prepare_dataset
from harness.errors import UserError


def _photo(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _folders(tmp_path: Path, reals: int = 6, fakes: int = 6, real_format: str = "png") -> tuple[Path, Path]:
    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir()
    fake.mkdir()
    for i in range(reals):
        Image.fromarray(_photo(i)).save(real / f"r{i}.{real_format}", **({"quality": 90} if real_format == "jpg" else {}))
    for i in range(fakes):
        Image.fromarray(_photo(100 + i)).save(fake / f"f{i}.png")
    return real, fake


def _with_metadata(source: Path, target: Path, text: str) -> None:
    """The same pixels as source, other bytes: a PNG text chunk."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", text)
    Image.open(source).save(target, pnginfo=info)


def test_duplicates_by_bytes_and_by_pixels_are_counted_apart_and_dropped(tmp_path):
    real, fake = _folders(tmp_path)
    (real / "r0_byte_copy.png").write_bytes((real / "r0.png").read_bytes())
    _with_metadata(real / "r1.png", real / "r1_metadata_copy.png", "copied")
    _with_metadata(real / "r2.png", fake / "r2_as_fake.png", "stolen")  # one image in both classes, by pixels only
    report = prepare_dataset(real, [fake], tmp_path / "out")
    assert (report.duplicates_bytes, report.duplicates_pixels) == (1, 1)
    assert len(report.in_both_classes) == 1
    manifest = pd.read_csv(report.manifest)
    names = {Path(p).name for p in manifest["path"]}
    assert "r2.png" not in names and "r2_as_fake.png" not in names  # dropped from both classes
    assert len(names & {"r0.png", "r0_byte_copy.png"}) == 1 and len(names & {"r1.png", "r1_metadata_copy.png"}) == 1
    assert len(manifest) == 5 + 6


@pytest.mark.parametrize("reencode, warned, noted", [
    (None, True, False),
    ("png", True, False),  # PNG keeps the reals' JPEG history
    ("jpeg:95", False, True),
])
def test_the_codec_warning_is_judged_on_the_originals(tmp_path, reencode, warned, noted):
    real, fake = _folders(tmp_path, real_format="jpg")
    report = prepare_dataset(real, [fake], tmp_path / "out", reencode=reencode)
    codec_warnings = [w for w in report.format_warnings if "differ in codec" in w]
    assert bool(codec_warnings) == warned and bool(report.notes) == noted
    if warned:
        assert "--reencode jpeg:95" in codec_warnings[0]
    if noted:
        assert "resolved by --reencode" in report.notes[0]


def test_the_size_warning_is_judged_on_the_originals(tmp_path):
    real, fake = _folders(tmp_path)
    for i in range(6):
        Image.fromarray(_photo(200 + i, 48)).save(fake / f"big{i}.png")
        (fake / f"f{i}.png").unlink()
    report = prepare_dataset(real, [fake], tmp_path / "out", reencode="jpeg:95")
    assert any("differ in image size" in w for w in report.format_warnings)


def test_unbalanced_classes_are_reported_per_split_and_warned(tmp_path):
    real, fake = _folders(tmp_path, reals=12, fakes=6)
    report = prepare_dataset(real, [fake], tmp_path / "out")
    assert set(report.fake_share) == {"train", "val", "test"}
    assert report.balance_warnings and all("not 50%" in w for w in report.balance_warnings)
    balanced = prepare_dataset(real, [fake], tmp_path / "even", per_class=6)
    assert balanced.balance_warnings == [] and balanced.fake_share["train"] == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("layout, message", [
    ("out in real", "is inside the --real folder"),
    ("out in fake", "is inside the --fake folder"),
    ("real is fake", "overlap"),
    ("fake in real", "overlap"),
])
def test_folders_that_feed_back_into_the_input_are_refused_before_writing(tmp_path, monkeypatch, layout, message):
    real, fake = _folders(tmp_path)
    monkeypatch.chdir(tmp_path)
    out, fakes = {"out in real": (Path("real/../real/out"), [fake]), "out in fake": (Path("fake/prepared"), [fake]),
                  "real is fake": (tmp_path / "out", [Path("real/.")]),
                  "fake in real": (tmp_path / "out", [real / "sub"])}[layout]
    (real / "sub").mkdir()
    Image.fromarray(_photo(300)).save(real / "sub" / "x.png")
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(UserError, match=message) as raised:
        prepare_dataset(real, fakes, out)
    assert "\n" not in str(raised.value)
    assert sorted(p for p in tmp_path.rglob("*")) == before
