"""Trustworthy results: intervals, perturbations, figures, the report, predict."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harness.analysis.load import SweepResults
from harness.data.cache import resize_image
from harness.data.images import decode, sha256_of
from harness.data.perturb import PERTURBATIONS, jpeg, perturbed_copies
from harness.stats.metrics import detection_metrics, equal_error_rate

# One pytest-xdist worker runs the module: the sweep its tests share (trained) is made once, not once per worker.
pytestmark = pytest.mark.xdist_group("science")


def test_equal_error_rate_and_threshold_metrics():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])
    assert equal_error_rate(labels, scores) == pytest.approx(0.25)
    metrics = detection_metrics(labels, scores, threshold=0.65)
    assert metrics["accuracy"] == pytest.approx(0.75) and metrics["accuracy_at_threshold"] == pytest.approx(0.875)
    assert metrics["confusion_matrix"] == [[3, 1], [1, 3]]


def originals(folder: Path) -> list[str]:
    """Two files of one picture (a real and a fake made alike) and another, at 300 x 200 pixels."""
    rng = np.random.default_rng(0)
    image, other = (rng.integers(0, 256, (200, 300, 3), dtype=np.uint8) for _ in range(2))
    paths = [folder / "real.png", folder / "fake.png", folder / "other.png"]
    for path, pixels in zip(paths, (image, image, other)):
        Image.fromarray(pixels).save(path)
    return [str(p) for p in paths]


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_a_perturbation_hits_both_classes_identically_before_the_resize(tmp_path, name):
    paths = originals(tmp_path)
    copies = perturbed_copies(paths, [None] * 3, PERTURBATIONS, (32, "bilinear", 1.0, "keras"), workers=1)[name]
    clean = np.stack([resize_image(decode(Path(p))[0], (32, "bilinear", 1.0, "keras")) for p in paths])
    assert copies.shape == (3, 32, 32, 3) and copies.dtype == np.uint8
    assert np.array_equal(copies[0], copies[1])  # a perturbation sees pixels, never labels
    assert not np.array_equal(copies[0], clean[0])  # it does change the picture


def test_a_jpeg_copy_goes_the_same_path_as_the_image_itself(tmp_path, tiny_demo):
    """A real photograph re-encoded at JPEG quality 30, as a site would: the perturbation applied to the
    original file, then the run's resize, gives exactly what the cache makes of the JPEG copy as a file."""
    manifest = pd.read_csv(tiny_demo / "manifest.csv", keep_default_na=False)
    real = str(tiny_demo / manifest[manifest["label"] == "real"]["path"].iloc[0])
    copy = tmp_path / "copy.jpg"
    decode(Path(real))[0].save(copy, "JPEG", quality=30)
    for resize in ((48, "bilinear", 1.0, "keras"), (48, "bicubic", 0.875, "timm")):
        perturbed = perturbed_copies([real], [sha256_of(Path(real))], {"jpeg30": jpeg(30)}, resize, workers=1)["jpeg30"][0]
        assert np.array_equal(perturbed, resize_image(decode(copy)[0], resize))
    changed = perturbed_copies([real], ["0" * 64], {"jpeg30": jpeg(30)}, (48, "bilinear", 1.0, "keras"), workers=1)
    assert changed == f"{real} changed since its manifest was written"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_demo):
    """Two architectures, two seeds each, on the tiny demo: the paper's MobileNetV2 and timm's resnet10t (a run of
    ResNet50 costs four of it here: 25 M weights to step and to write in every checkpoint); at 32 px, by one worker (a worker's
    start, torch's import, costs more CPU than a run here)."""
    from harness.cli import main
    results = tmp_path_factory.mktemp("science") / "results"
    code = main(["sweep", "--cluster", "local", "--max-parallel", "1", "--dataset", str(tiny_demo), "--models",
                 "MobileNetV2,resnet10t", "--seeds", "2", "--epochs", "2", "--image-size", "32", "--results", str(results),
                 "--name", "sci", "--wait"])
    assert code == 0
    return results


def test_leaderboard_says_why_two_seeds_give_no_interval_and_tests_over_seeds_and_photographs(cli, trained):
    board = cli("leaderboard", "sci", "--format", "json", "--results", trained).json()
    for row in board:
        assert row["seeds"] == 2 and row["accuracy_lo"] is None
        assert row["interval_reason"].startswith("2 seeds: too few for an interval that counts seed variance (3 needed)")
        assert "eer" in row and "average_precision" in row and "accuracy_at_threshold" in row
    table = cli("leaderboard", "sci", "--results", trained)
    assert "group" in table.out and "no acc 95% CI where 2 seeds" in " ".join(table.out.split())
    # the caption: the crossed test over seeds and the demo's photographs, or why it could not run
    caption = ("group: architectures that share a letter are not separable (crossed paired test on accuracy over seeds x "
               "test units (two-way random effects, t at most seeds - 1 df), Holm over 1 pair, 5%)"
               if board[0]["separability_test"] else "group: no pair tested; not tested where every seed and unit differs")
    assert caption in " ".join(table.out.split())
    assert cli("leaderboard", "sci", "--format", "markdown", "--results", trained).out.splitlines()[-1].startswith(caption)
    this = cli("leaderboard", "sci", "--population", "this-test-set", "--format", "json", "--results", trained).json()
    assert this[0]["separability_test"].startswith("paired t-test on per-seed accuracy over seeds, conditional on this test set")


def test_each_run_tests_its_most_accurate_validation_epoch(trained):
    import json
    for folder in (trained / "sci" / "runs").iterdir():
        history = pd.read_csv(folder / "history.csv")
        record = json.loads((folder / "result.json").read_text())
        best = history.sort_values(["val_accuracy", "val_loss"], ascending=[False, True], kind="stable").iloc[0]
        assert record["config"]["select_by"] == "accuracy" and record["best_epoch"] == best["epoch"]
        # the weights tested are that epoch's: they score its validation accuracy again
        assert record["val"]["accuracy"] == pytest.approx(best["val_accuracy"])


def test_every_run_is_evaluated_under_every_perturbation(trained):
    import json
    record = json.loads((trained / "sci" / "runs" / "resnet10t-s1" / "result.json").read_text())
    assert set(record["robustness"]) == {"none", *PERTURBATIONS}
    test = record["test"]
    unperturbed = {k: v for k, v in record["robustness"]["none"].items() if k in ("accuracy", "auc", "count")}
    assert unperturbed == {k: v for k, v in test.items() if k in ("accuracy", "auc", "count")}  # the whole split: the test's figures
    low, high = test["accuracy_interval"]  # the demo's test photographs are its groups: the interval is between them
    assert 0 <= low <= test["accuracy"] <= high <= 1 and test["interval_unit"] == "groups" and test["accuracy_interval_reason"] is None
    units = test["interval_units"]
    assert test["accuracy_interval_method"].startswith(f"Wilson with a design effect over {units} groups (t, ")
    assert test["accuracy_interval_method"].endswith("1 run: seed variance not counted")
    scores = np.load(trained / "sci" / "runs" / "resnet10t-s1" / "test_scores.npy")  # labels, probabilities, groups
    assert scores.shape == (3, test["count"]) and int(scores[2].max()) + 1 == test["interval_units"]
    for metrics in record["robustness"].values():
        assert 0 <= metrics["accuracy"] <= 1 and metrics["count"] == record["test"]["count"]


def test_report_holds_every_table_and_figure(cli, trained):
    result = cli("report", "sci", "--results", trained)
    assert result.code == 0
    html = (trained / "sci" / "report.html").read_text()
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', html)) == 5
    for title in ("Settings", "Leaderboard", "Table 2", "Robustness"):
        assert title in html
    for figure in ("training_curves", "roc", "accuracy_vs_speed", "confusion", "robustness"):
        with Image.open(trained / "sci" / "figures" / f"{figure}.png") as image:
            assert image.width >= 300 and image.height >= 200
    assert cli("report", "sci", "--format", "markdown", "--results", trained).code == 0
    markdown = (trained / "sci" / "report.md").read_text()
    assert "![" in markdown and "| MobileNetV2 |" in markdown


def test_report_asks_no_scheduler(cli, trained, monkeypatch):
    """A report reads what is on disk: the runs' records, not their jobs' states."""
    from harness.cluster.local import LocalBackend

    queries = []
    states = LocalBackend.states
    monkeypatch.setattr(LocalBackend, "states", lambda self, job_ids: queries.append(job_ids) or states(self, job_ids))
    assert cli("report", "sci", "--results", trained).code == 0
    assert queries == []


def test_predict_on_an_image_outside_the_dataset(cli, trained, tmp_path):
    from pathlib import Path

    import skimage
    # horse.png ships with scikit-image but is not among the demo's photographs
    source = Path(skimage.__file__).parent / "data" / "horse.png"
    stranger = tmp_path / "stranger.jpg"
    Image.open(source).convert("RGB").resize((120, 90)).save(stranger, quality=90)
    result = cli("predict", "--run", "sci/resnet10t", stranger, "--format", "json", "--meta", "--results", trained)
    assert result.code == 0, result.err
    prediction = result.json()["rows"][0]
    assert 0.0 <= prediction["p_fake"] <= 1.0 and prediction["verdict"] in ("real", "fake")
    assert result.json()["run"].endswith("resnet10t-s0")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    partly = cli("predict", "--run", "sci/resnet10t-s1", stranger, broken, "--format", "json", "--results", trained)
    assert partly.code == 1 and partly.json()[1]["p_fake"] is None
    missing = cli("predict", "--run", "sci/VGG16", stranger, "--results", trained)
    assert missing.code == 2 and "no run 'VGG16'" in missing.err


def test_cross_generator_matrix_on_a_tiny_demo(cli, tmp_path):
    from harness.data.demo import make_demo
    dataset = tmp_path / "three-generators"
    # a DCGAN of 3 steps draws poor fakes, but fakes of a third kind all the same (its steps are most of the build)
    make_demo(dataset, per_class=45, size=64, generators=("upsampler", "bilinear_conv", "dcgan"), dcgan_steps=3)
    results = tmp_path / "results"
    sweep = cli("sweep", "--cluster", "local", "--max-parallel", "1", "--dataset", dataset, "--models", "MobileNetV2",
                "--cross-generator",
                "--epochs", "1", "--image-size", "32", "--results", results, "--name", "xgen", "--wait")
    assert sweep.code == 0, sweep.err
    board = cli("leaderboard", "xgen", "--format", "json", "--results", results).json()
    assert sorted(row["model"] for row in board) == [f"MobileNetV2 [{g}]" for g in ("bilinear_conv", "dcgan", "upsampler")]
    from harness.analysis.figures import cross_generator_tables
    from harness.store.paths import SweepPaths
    matrix = cross_generator_tables(SweepResults(SweepPaths(results / "xgen")))["MobileNetV2"]
    assert matrix.shape == (3, 3) and list(matrix.index) == list(matrix.columns) == ["bilinear_conv", "dcgan", "upsampler"]
    assert ((matrix >= 0) & (matrix <= 1)).all().all()
    # each generator's recall recomputed from the run's test scores and the cache's generator column
    run = results / "xgen" / "runs" / "MobileNetV2-dcgan-s0"
    record = json.loads((run / "result.json").read_text())
    labels, probs = np.load(run / "test_scores.npy")[:2]
    generators = pd.read_csv(Path(record["cache"]) / "test.csv", keep_default_na=False)["generator"].to_numpy()
    for generator, metrics in record["cross_generator"].items():
        fakes = (labels == 1) & (generators == generator)
        assert metrics["recall"] == pytest.approx(np.mean(probs[fakes] >= 0.5), abs=1e-12)  # the paper's five: at 0.5
        assert metrics["count"] == 2 * fakes.sum()
        # each cell's interval over the photographs (or the DCGAN's samples) its images come from
        low, high = metrics["accuracy_interval"] or (None, None)
        assert metrics["interval_unit"] == "groups" and (metrics["accuracy_interval_reason"] or low <= metrics["accuracy"] <= high)
    assert cli("report", "xgen", "--results", results).code == 0
    html = (results / "xgen" / "report.html").read_text()
    assert "across generators" in html and html.count("<img") == 6


def test_cross_generator_needs_two_generators(cli, tiny_demo, tmp_path):
    result = cli("sweep", "--cluster", "local", "--dataset", tiny_demo, "--cross-generator", "--results", tmp_path)
    assert result.code == 2 and "two generators or more" in result.err


def test_the_papers_question_own_preprocessing_against_caffe(cli, tiny_demo, tmp_path):
    sweep = cli("sweep", "--cluster", "local", "--max-parallel", "1", "--dataset", tiny_demo, "--models", "MobileNetV2",
                "--ablate-preprocessing", "--epochs", "1", "--image-size", "32", "--results", tmp_path, "--name", "ablation",
                "--wait")
    assert sweep.code == 0, sweep.err
    table = cli("leaderboard", "ablation", "--results", tmp_path)
    assert "MobileNetV2 [timm]" in table.out and "MobileNetV2 [caffe]" in table.out
    import json
    caffe = json.loads((tmp_path / "ablation" / "runs" / "MobileNetV2-caffe-s0" / "result.json").read_text())
    assert caffe["preprocessing"]["mode"] == "caffe" and caffe["preprocessing"]["bgr"] is True
    assert cli("report", "ablation", "--results", tmp_path).code == 0
    assert "The paper&#x27;s question" in (tmp_path / "ablation" / "report.html").read_text()
