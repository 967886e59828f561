"""Datasets as a user meets them: `data demo`, `data prepare` on messy folders, the uint8 cache."""
import hashlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harness.data.cache import build_cache, load_split


def _photo(seed: int, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def messy(tmp_path):
    """Real and fake folders with every kind of file a user's folder may hold."""
    real, fake = tmp_path / "real", tmp_path / "fake" / "deep" / "er"
    real.mkdir()
    fake.mkdir(parents=True)
    for i in range(8):
        Image.fromarray(_photo(i)).save(real / f"r{i}.png")
        Image.fromarray(_photo(100 + i)).save(fake / f"f{i}.png")
    Image.fromarray(_photo(20)).save(real / "UPPER.JPG", quality=90)
    Image.fromarray(_photo(21)).save(fake / "UPPER.PNG")
    Image.fromarray(_photo(22)[..., 0]).save(real / "grey.png")  # mode L
    Image.fromarray(np.dstack([_photo(23), np.full((48, 48), 128, np.uint8)])).save(fake / "rgba.png")
    sixteen = (np.linspace(0, 65535, 48 * 48).reshape(48, 48)).astype(np.uint16)
    Image.fromarray(sixteen).save(real / "sixteen.png")  # 16-bit greyscale, mode I;16
    (real / "empty.jpg").write_bytes(b"")
    (fake / "notes.jpg").write_text("this is not an image\n")
    whole = (real / "r0.png").read_bytes()
    Image.fromarray(_photo(30, 96)).save(tmp_path / "full.jpg", quality=95)
    (fake / "truncated.jpg").write_bytes((tmp_path / "full.jpg").read_bytes()[:1500])
    (fake / "same_as_real.png").write_bytes(whole)  # one image in both classes
    (real / "r0_copy.png").write_bytes(whole)  # a duplicate within a class, of the image in both
    (fake / "f1_copy.png").write_bytes((fake / "f1.png").read_bytes())  # another, byte for byte
    Image.open(fake / "f2.png").save(fake / "f2_other_bytes.png", pnginfo=_text_chunk())  # the same pixels
    return tmp_path


def _text_chunk():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "a copy that differs in metadata only")
    return info


def test_prepare_skips_bad_files_drops_duplicates_and_splits(cli, messy):
    out = messy / "prepared"
    result = cli("data", "prepare", "--real", messy / "real", "--fake", messy / "fake", "--out", out, "--seed", "1")
    assert result.code == 0, result.err
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert list(manifest.columns)[:7] == ["path", "label", "split", "sha256", "width", "height", "format"]
    names = {p.rsplit("/", 1)[1] for p in manifest["path"]}
    # skipped, and listed with the reason
    for bad in ("empty.jpg", "notes.jpg", "truncated.jpg"):
        assert bad not in names and bad in result.err
    assert "empty file" in result.err
    # odd but valid images are kept, upper-case extensions included
    assert {"UPPER.JPG", "UPPER.PNG", "grey.png", "rgba.png", "sixteen.png"} <= names
    # an image present in both classes is reported and dropped from both; duplicates collapse
    assert "both real and fake" in result.err
    assert "dropped 2 duplicates: 1 byte-identical, 1 pixel-identical" in result.err and "fake share" in result.err
    assert result.out == f"{out / 'manifest.csv'}\n"  # the file written, alone on stdout
    assert _sha(messy / "real" / "r0.png") not in set(manifest["sha256"])
    assert manifest["sha256"].is_unique
    assert set(manifest["split"]) == {"train", "val", "test"}
    for split in ("train", "val", "test"):
        assert set(manifest[manifest["split"] == split]["label"]) == {"real", "fake"}


def test_prepare_is_reproducible_and_samples_per_class(cli, messy):
    runs = []
    for name in ("a", "b"):
        out = messy / name
        assert cli("data", "prepare", "--real", messy / "real", "--fake", messy / "fake", "--out", out,
                   "--per-class", "6", "--seed", "3").code == 0
        runs.append(pd.read_csv(out / "manifest.csv")[["sha256", "split"]])
    assert runs[0].equals(runs[1])
    assert len(runs[0]) == 12


def test_sixteen_bit_and_rgba_images_decode_to_sensible_rgb(messy):
    from harness.data.images import decode
    sixteen, _ = decode(messy / "real" / "sixteen.png")
    array = np.asarray(sixteen)
    assert sixteen.mode == "RGB" and array.min() == 0 and array.max() == 255
    assert 100 < array.mean() < 155  # scaled, not clipped to white
    rgba, _ = decode(messy / "fake" / "deep" / "er" / "rgba.png")
    assert rgba.mode == "RGB"


def test_prepare_warns_of_format_bias_and_reencode_removes_it(cli, tmp_path):
    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir()
    fake.mkdir()
    for i in range(6):
        Image.fromarray(_photo(i)).save(real / f"{i}.jpg", quality=90)
        Image.fromarray(_photo(50 + i)).save(fake / f"{i}.png")
    biased = cli("data", "prepare", "--real", real, "--fake", fake, "--out", tmp_path / "biased")
    assert biased.code == 0 and "warning: the classes differ in codec" in biased.err
    # PNG cannot remove the reals' JPEG history: the warning stays; only a JPEG pass for both resolves it
    kept = cli("data", "prepare", "--real", real, "--fake", fake, "--out", tmp_path / "png", "--reencode", "png")
    assert kept.code == 0 and "warning: the classes differ in codec" in kept.err
    fair = cli("data", "prepare", "--real", real, "--fake", fake, "--out", tmp_path / "fair", "--reencode", "jpeg:95")
    assert fair.code == 0 and "warning: the classes differ in codec" not in fair.err and "resolved by --reencode" in fair.err
    manifest = pd.read_csv(tmp_path / "fair" / "manifest.csv")
    assert set(manifest["format"]) == {"JPEG"}
    assert all((tmp_path / "fair" / p).is_file() for p in manifest["path"])


@pytest.mark.parametrize("args, message", [
    (["--real", "missing-real", "--fake", "fake"], "does not exist"),
    (["--real", "real", "--fake", "empty"], "holds no .jpg"),
    (["--real", "real", "--fake", "fake", "--reencode", "gif"], "--reencode takes png or jpeg:Q"),
])
def test_prepare_bad_input_is_one_clear_line(cli, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    for folder in ("real", "fake"):
        (tmp_path / folder).mkdir()
        for i in range(3):
            Image.fromarray(_photo(i + (0 if folder == "real" else 9))).save(tmp_path / folder / f"{i}.png")
    (tmp_path / "empty").mkdir()
    result = cli("data", "prepare", *args, "--out", "out")
    assert result.code == 2
    assert message in result.err and result.err.count("\n") == 1
    assert not (tmp_path / "out" / "manifest.csv").exists()


def test_demo_is_deterministic_split_by_photograph_and_codec_fair(cli, tmp_path):
    for name in ("one", "two"):
        assert cli("data", "demo", "--out", tmp_path / name, "--per-class", "30", "--size", "32", "--seed", "4").code == 0
    one = pd.read_csv(tmp_path / "one" / "manifest.csv", keep_default_na=False)
    two = pd.read_csv(tmp_path / "two" / "manifest.csv", keep_default_na=False)
    assert one["sha256"].tolist() == two["sha256"].tolist()
    assert (one.groupby("group")["split"].nunique() == 1).all()  # no photograph feeds two splits
    # enough photographs for a test interval over them: ten test photographs, nine to train on
    assert one.groupby("split")["group"].nunique().to_dict() == {"test": 10, "train": 9, "val": 2}
    assert set(one["format"]) == {"PNG"} and set(one["width"]) == {32} and set(one["height"]) == {32}
    for path in one["path"]:
        with Image.open(tmp_path / "one" / path) as image:
            assert image.format == "PNG" and image.size == (32, 32) and image.mode == "RGB"
    assert set(one[one["label"] == "fake"]["generator"]) == {"upsampler"}
    other_seed = cli("data", "demo", "--out", tmp_path / "three", "--per-class", "30", "--size", "32", "--seed", "5")
    assert other_seed.code == 0
    assert pd.read_csv(tmp_path / "three" / "manifest.csv")["sha256"].tolist() != one["sha256"].tolist()


def test_cache_holds_every_image_once_resized_and_is_reused(tiny_demo, tmp_path):
    folder = build_cache(tiny_demo, (64, "bicubic", 0.875), tmp_path / "cache")
    train = load_split(folder, "train")
    manifest = pd.read_csv(tiny_demo / "manifest.csv")
    assert train.images.shape == ((manifest["split"] == "train").sum(), 64, 64, 3)
    assert train.images.dtype == np.uint8
    assert set(train.labels.tolist()) == {0, 1}
    mtime = (folder / "train.npy").stat().st_mtime_ns
    assert build_cache(tiny_demo, (64, "bicubic", 0.875), tmp_path / "cache") == folder
    assert (folder / "train.npy").stat().st_mtime_ns == mtime


def test_prepare_takes_one_fake_folder_per_generator(cli, tmp_path):
    real, style, diffusion = tmp_path / "real", tmp_path / "stylegan", tmp_path / "diffusion"
    for folder, offset in ((real, 0), (style, 100), (diffusion, 200)):
        folder.mkdir()
        for i in range(6):
            Image.fromarray(_photo(offset + i)).save(folder / f"{i}.png")
    result = cli("data", "prepare", "--real", real, "--fake", style, "--fake", diffusion, "--out", tmp_path / "out")
    assert result.code == 0, result.err
    manifest = pd.read_csv(tmp_path / "out" / "manifest.csv", keep_default_na=False)
    assert set(manifest[manifest["label"] == "fake"]["generator"]) == {"stylegan", "diffusion"}
    assert set(manifest[manifest["label"] == "real"]["generator"]) == {""}


@pytest.mark.parametrize("source", ["demo", "prepared"])
def test_resplit_keeps_each_splits_size_and_class_balance(cli, messy, tmp_path, source):
    """--resplit draws new photographs (the demo's groups) or images (a prepared folder has none) for each
    split: as many as the fixed split, of each class, so that sweeps with and without it compare."""
    from harness.data.cache import resplit

    dataset = tmp_path / source
    made = cli("data", "demo", "--out", dataset, "--per-class", "42", "--size", "32") if source == "demo" else \
        cli("data", "prepare", "--real", messy / "real", "--fake", messy / "fake", "--out", dataset)
    assert made.code == 0, made.err
    folder = build_cache(dataset, (32, "bilinear", 1.0), tmp_path / "cache", 1)
    fixed = {name: load_split(folder, name) for name in ("train", "val", "test")}
    tests = []
    for seed in (0, 1, 2):
        drawn = resplit(fixed, seed)
        tests.append(set(drawn["test"].index["path"]))
        for name in ("train", "val", "test"):
            assert np.bincount(drawn[name].labels, minlength=2).tolist() == np.bincount(fixed[name].labels, minlength=2).tolist()
            assert drawn[name].index["group"].nunique() == fixed[name].index["group"].nunique()
    assert len(set(map(frozenset, tests))) == 3  # each seed its own test split
