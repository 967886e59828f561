"""A dataset whose images repeat identities, as a user prepares and benchmarks it: with a groups file, no
identity stands in two splits and the leaderboard's tests and intervals count identities; without one,
`data prepare`, `status` and the leaderboard say that every image counts as independent."""
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SWEEP = ("--cluster", "local", "--models", "MobileNetV2", "--epochs", "1", "--image-size", "32", "--wait")


@pytest.fixture(scope="module")
def people(tmp_path_factory) -> Path:
    """real/<photograph>/*.png, two crops of each of the demo's 21 photographs (an identity each), fake/*.png,
    and groups.txt mapping each real file name to its photograph (the fakes, like StyleGAN's, have none)."""
    from harness.data.demo import make_demo

    folder = tmp_path_factory.mktemp("people")
    make_demo(folder / "demo", per_class=42, size=32)
    demo = pd.read_csv(folder / "demo" / "manifest.csv", keep_default_na=False)
    lines = []
    for row in demo.itertuples():
        target = folder / row.label / (row.group if row.label == "real" else "") / Path(row.path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / "demo" / row.path, target)
        if row.label == "real":
            lines.append(f"{target.name}\t{row.group}")
    (folder / "groups.txt").write_text("# file, identity\n" + "\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def grouped(people, tmp_path_factory):
    """The dataset prepared with its groups file and benchmarked (three preprocessings: pairs to test)."""
    from harness.cli import main

    results = tmp_path_factory.mktemp("grouped") / "results"
    assert main(["data", "prepare", "--real", str(people / "real"), "--fake", str(people / "fake"),
                 "--out", str(people / "grouped"), "--groups", str(people / "groups.txt")]) == 0
    assert main(["sweep", *SWEEP, "--ablate-preprocessing", "--dataset", str(people / "grouped"),
                 "--results", str(results), "--name", "people"]) == 0
    return people / "grouped", results


def test_no_identity_crosses_the_splits(grouped):
    manifest = pd.read_csv(grouped[0] / "manifest.csv", keep_default_na=False)
    reals = manifest[manifest["label"] == "real"]
    assert reals["group"].nunique() == 21 and reals.groupby("group").size().eq(2).all()
    assert manifest.groupby("group")["split"].nunique().max() == 1
    assert manifest[manifest["label"] == "fake"]["group"].is_unique  # each fake a group of its own


def test_the_test_scores_carry_each_images_identity(grouped):
    dataset, results = grouped
    manifest = pd.read_csv(dataset / "manifest.csv", keep_default_na=False)
    test = manifest[manifest["split"] == "test"]
    labels, _, groups = np.load(results / "people" / "runs" / "MobileNetV2-timm-s0" / "test_scores.npy")
    assert len(labels) == len(test) and len(set(groups)) == test["group"].nunique() < len(test)


def test_the_leaderboards_tests_and_intervals_count_identities(cli, grouped):
    _, results = grouped
    board = cli("leaderboard", "people", "--format", "json", "--results", results).json()
    units = len(set(np.load(results / "people" / "runs" / "MobileNetV2-timm-s0" / "test_scores.npy")[2]))
    for row in board:
        assert row["interval_population"] == "new test groups" and row["accuracy_lo"] is not None
        assert row["separability_test"].startswith(f"paired test on accuracy over {units} test groups")
    caption = " ".join(cli("leaderboard", "people", "--results", results).out.split())
    assert "test units: the dataset's groups" in caption and "no groups" not in caption
    status = cli("status", "people", "--format", "json", "--meta", "--results", results).json()
    assert status["dataset_groups"] == 21 + 42 and status["dataset_groups_reason"] is None


def test_a_dataset_without_groups_says_so_when_prepared_in_status_and_in_the_leaderboard(cli, people, tmp_path):
    prepared = cli("data", "prepare", "--real", people / "real", "--fake", people / "fake", "--out", tmp_path / "plain")
    assert prepared.code == 0
    assert "no groups" in prepared.err and "counts images as independent" in " ".join(prepared.err.split())
    results = tmp_path / "results"
    assert cli("sweep", *SWEEP, "--dataset", tmp_path / "plain", "--results", results, "--name", "plain").code == 0
    status = " ".join(cli("status", "plain", "--results", results).out.split())
    assert "has no groups (data prepare --groups): every test and interval counts its images as independent" in status
    meta = cli("status", "plain", "--format", "json", "--meta", "--results", results).json()
    assert meta["dataset_groups"] is None and "has no groups" in meta["dataset_groups_reason"]
    board = cli("leaderboard", "plain", "--format", "json", "--results", results).json()
    assert board[0]["interval_population"] == "new test images"
    caption = " ".join(cli("leaderboard", "plain", "--results", results).out.split())
    assert "the dataset has no groups (data prepare --groups): every test and interval counts its test images as independent" \
        in caption
