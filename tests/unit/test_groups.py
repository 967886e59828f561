"""`data prepare`'s groups: a groups file, a pattern over the path, near-duplicates by a perceptual hash, and
splits drawn by group, each on real image files."""
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harness.data.groups import GroupSource, compile_pattern, groups_from_file, near_duplicate_components, read_groups_file
from harness.data.images import difference_hash
from harness.data.prepare import assign_splits, prepare_dataset
from harness.errors import UserError


def _face(person: int, shot: int, size: int = 32) -> np.ndarray:
    """A smooth image of one 'person' (a seeded low-frequency field), each shot shifted and lit a little apart."""
    rng = np.random.default_rng(person)
    coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((size + 8, size + 8), Image.Resampling.BICUBIC), dtype=np.int16)
    shifted = image[shot % 3:shot % 3 + size, shot // 3:shot // 3 + size] + 4 * shot
    return np.clip(shifted, 0, 255).astype(np.uint8)


def _people(tmp_path: Path, people: int = 8, shots: int = 3, fakes: int = 16) -> tuple[Path, Path]:
    """real/person<P>/shot<S>.png, several shots of each person, and fake/<N>.png (no identity)."""
    real, fake = tmp_path / "real", tmp_path / "fake"
    for person in range(people):
        (real / f"person{person}").mkdir(parents=True)
        for shot in range(shots):
            Image.fromarray(_face(person, shot)).save(real / f"person{person}" / f"shot{shot}.png")
    fake.mkdir()
    for index in range(fakes):
        Image.fromarray(_face(1000 + index, 0)).save(fake / f"{index}.png")
    return real, fake


def _groups_file(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "groups.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_groups_file_takes_tabs_commas_spaces_comments_and_paths_with_spaces(tmp_path):
    path = _groups_file(tmp_path, ["# image group", "", "a.jpg\t17", "b.jpg,17", "my photos/c.jpg   42", "d.jpg 42\r"])
    assert read_groups_file(path) == [(3, "a.jpg", "17"), (4, "b.jpg", "17"), (5, "my photos/c.jpg", "42"), (6, "d.jpg", "42")]


@pytest.mark.parametrize("lines, words", [
    (["a.jpg 1\x1b[2J"], ("line 1", "control character")),
    (["a.jpg"], ("line 1", "is not an image and its group")),
    (["a.jpg " + "x" * 201], ("at most 200 characters",)),
    (["# only a comment"], ("holds no line",)),
])
def test_a_bad_groups_file_is_one_line(tmp_path, lines, words):
    with pytest.raises(UserError) as raised:
        read_groups_file(_groups_file(tmp_path, lines))
    assert all(word in str(raised.value) for word in words) and "\n" not in str(raised.value)


def test_a_line_names_the_images_whose_path_ends_with_it(tmp_path):
    paths = ["/data/real/anna/1.jpg", "/data/real/ben/1.jpg", "/data/real/ben/2.jpg", "/data/fake/9.png"]
    lines = [(1, "anna/1.jpg", "anna"), (2, "/data/real/ben/1.jpg", "ben"), (3, "2.jpg", "ben"), (4, "elsewhere.jpg", "x")]
    assert groups_from_file(paths, lines, Path("g.txt")) == (["anna", "ben", "ben", ""], 1)
    with pytest.raises(UserError, match="'1.jpg' names 2 images"):
        groups_from_file(paths, [(1, "1.jpg", "anna")], Path("g.txt"))
    for twice in ("anna/1.jpg", "real/anna/1.jpg"):
        with pytest.raises(UserError, match="line 2: /data/real/anna/1.jpg is in group 'anna' on line 1 and in 'ben' here"):
            groups_from_file(paths, [(1, "anna/1.jpg", "anna"), (2, twice, "ben")], Path("g.txt"))


@pytest.mark.parametrize("pattern, path, group", [
    ("{parent}", "anna/1.jpg", "anna"), ("{parent}", "1.jpg", ""), ("{parent}", "batch/anna/1.jpg", "anna"),
    (r"^([^/]+)/", "anna/2019/1.jpg", "anna"), (r"([^/_]+)_\d+\.jpg$", "anna_0003.jpg", "anna"),
])
def test_a_pattern_names_the_group_from_the_path_below_the_class_folder(pattern, path, group):
    frame = pd.DataFrame({"relative": [path], "label": ["fake"], "sha256": ["0" * 64], "found": ["/x"]})
    assigned, _ = GroupSource(pattern=compile_pattern(pattern)).assign(frame)
    assert assigned.iloc[0] == (group or "image:" + "0" * 16)  # a fake it does not name is a group of its own


@pytest.mark.parametrize("pattern, words", [("([a-z]+", "not a regular expression"), ("[a-z]+", "0 capture groups"),
                                            ("(a)(b)", "2 capture groups")])
def test_a_bad_pattern_is_one_line(pattern, words):
    with pytest.raises(UserError, match=words):
        compile_pattern(pattern)


def test_the_difference_hash_keeps_a_resized_recompressed_copy_and_tells_photographs_apart():
    one, other = (Image.fromarray(_face(seed, 0, 256)) for seed in (1, 2))
    buffer = io.BytesIO()
    one.resize((128, 128)).save(buffer, "JPEG", quality=60)
    copy = Image.open(buffer)
    assert bin(difference_hash(one) ^ difference_hash(copy)).count("1") <= 3
    assert bin(difference_hash(one) ^ difference_hash(other)).count("1") > 12


def test_near_duplicates_join_through_chains_as_a_pairwise_comparison_would():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, 300, dtype=np.uint64)
    hashes[10] = hashes[3] ^ np.uint64(0b111)  # 3 bits from image 3
    hashes[20] = hashes[10] ^ np.uint64(0b11 << 40)  # 2 bits from image 10, 5 from image 3
    components = near_duplicate_components(hashes, 3)
    assert components[3] == components[10] == components[20]
    assert len(set(components)) == 298
    bits = np.unpackbits(hashes.view(np.uint8).reshape(-1, 8), axis=1)
    distances = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
    parent = list(range(len(hashes)))  # a looser distance, against a union-find over every pair

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(distances <= 12)):
        parent[root(i)] = root(j)
    expected = [root(i) for i in range(len(hashes))]
    loose = near_duplicate_components(hashes, 12)
    assert len(set(zip(expected, loose))) == len(set(expected)) == len(set(loose)) < 300


def test_splits_are_drawn_by_group_keeping_both_classes_and_their_balance(tmp_path):
    real, fake = _people(tmp_path, people=10, shots=4, fakes=40)
    report = prepare_dataset(real, [fake], tmp_path / "out", group_pattern="{parent}", seed=3)
    manifest = pd.read_csv(report.manifest, keep_default_na=False)
    assert manifest.groupby("group")["split"].nunique().max() == 1  # no person in two splits
    for split in ("train", "val", "test"):
        assert set(manifest[manifest["split"] == split]["label"]) == {"real", "fake"}
    reals = manifest[manifest["label"] == "real"]
    assert reals["group"].nunique() == 10 and reals.groupby("group").size().eq(4).all()
    assert (manifest[manifest["label"] == "fake"]["group"].str.startswith("image:")).all()  # each fake its own group
    assert report.groups.startswith("groups: 40 real images in 10 groups, 40 fake images in 40 groups (each of one image)")
    again = prepare_dataset(real, [fake], tmp_path / "again", group_pattern="{parent}", seed=3)
    assert pd.read_csv(again.manifest)[["sha256", "split"]].equals(manifest[["sha256", "split"]])


def test_a_group_holding_both_classes_stays_in_one_split():
    frame = pd.DataFrame({"label": ["real", "fake"] * 12, "sha256": [f"{i:064x}" for i in range(24)],
                          "group": [f"photo{i // 2}" for i in range(24)]})
    splits = assign_splits(frame, seed=0)
    assert frame.assign(split=splits).groupby("group")["split"].nunique().max() == 1
    assert set(splits) == {"train", "val", "test"}


def test_every_real_image_needs_a_group_and_a_fake_without_one_is_its_own(tmp_path):
    real, fake = _people(tmp_path, people=5)
    lines = [f"person{p}/shot{s}.png p{p}" for p in range(5) for s in range(3) if (p, s) != (4, 2)]
    with pytest.raises(UserError, match=r"gives no group to 1 of 15 real images, the first .*person4/shot2.png"):
        prepare_dataset(real, [fake], tmp_path / "out", groups_file=_groups_file(tmp_path, lines))
    assert not (tmp_path / "out").exists()
    report = prepare_dataset(real, [fake], tmp_path / "out", groups_file=_groups_file(tmp_path, lines), near_duplicates=6)
    manifest = pd.read_csv(report.manifest, keep_default_na=False)
    assert (manifest["group"] != "").all()


def test_near_duplicates_alone_join_copies_of_one_photograph(tmp_path):
    real, fake = _people(tmp_path, people=6, shots=1, fakes=6)
    Image.open(real / "person0" / "shot0.png").resize((64, 64)).save(real / "person0" / "bigger.jpg", quality=70)
    report = prepare_dataset(real, [fake], tmp_path / "out", near_duplicates=6)
    manifest = pd.read_csv(report.manifest, keep_default_na=False)
    copies = manifest[manifest["path"].str.contains("person0")]
    assert copies["group"].nunique() == 1 and copies["group"].iloc[0].startswith("near:")
    assert manifest["group"].nunique() == len(manifest) - 1
    assert "1 of near-duplicates" in report.groups


def test_without_groups_every_image_is_its_own_unit_and_the_report_says_so(tmp_path):
    real, fake = _people(tmp_path, people=4, shots=2, fakes=8)
    report = prepare_dataset(real, [fake], tmp_path / "out")
    assert (pd.read_csv(report.manifest, keep_default_na=False)["group"] == "").all()
    assert report.groups.startswith("no groups") and "counts images as independent" in report.groups


def test_too_few_groups_for_three_splits_are_refused(tmp_path):
    real, fake = _people(tmp_path, people=3, shots=4)
    with pytest.raises(UserError, match="3 real and 16 fake groups are too few .* at least 4 of each"):
        prepare_dataset(real, [fake], tmp_path / "out", group_pattern="{parent}")
