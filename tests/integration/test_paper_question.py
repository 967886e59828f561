"""The paper's question through the command line: refusals before anything is written, the three-way preprocessing
ablation on a tiny sweep, `leaderboard --compare paper` in 100 columns beside the paper's setting, and the
report's paper-question, weights and robustness tables."""
import json

import pytest
from PIL import Image

# One pytest-xdist worker runs the module: the sweep its tests share (ablation) is made once, not once per worker.
pytestmark = pytest.mark.xdist_group("paper-question")


def _one_line_error(result, *fragments: str) -> None:
    assert result.code == 2, (result.out, result.err)
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    for fragment in fragments:
        assert fragment in result.err, result.err


def test_a_frozen_random_backbone_is_refused_before_anything_is_written(cli, tmp_path, tiny_demo):
    results = tmp_path / "results"
    refused = cli("sweep", "--cluster", "local", "--dataset", tiny_demo, "--models", "MobileNetV2", "--mode", "transfer",
                  "--weights", "none", "--results", results)
    _one_line_error(refused, "--mode transfer --weights none", "frozen random backbone", "--allow-random-backbone")
    assert not results.exists()


def test_missing_imagenet_weights_are_refused_at_submission_naming_each(cli, tmp_path, tiny_demo, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch"))
    results = tmp_path / "results"
    refused = cli("sweep", "--cluster", "local", "--dataset", tiny_demo, "--models", "ResNet50,NASNetMobile,InceptionV3",
                  "--weights", "imagenet", "--mode", "transfer", "--image-size", "96", "--results", results)
    _one_line_error(refused, "timm has no ImageNet weights for NASNetMobile",
                    "ImageNet weights for ResNet50, InceptionV3 are not in the local cache", "'inception_v3.tv_in1k'")
    assert not results.exists()


def test_a_cached_imagenet_file_lets_the_plan_through(tmp_path, tiny_demo, monkeypatch):
    import timm
    import torch

    from harness import sweeps
    from harness.training.config import train_options
    from harness.zoo.models import build_model

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = tmp_path / "torch" / "hub" / "checkpoints" / timm.get_pretrained_cfg("legacy_xception").url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    torch.save(build_model("Xception").backbone.state_dict(), cached)
    request = sweeps.SweepRequest(dataset=str(tiny_demo), models=["Xception"], seeds=1, results=tmp_path / "results",
                                  train=train_options(weights="imagenet", mode="transfer", image_size=76))
    _, spec = sweeps.plan(request, {"executor": "local"})
    assert [r.run_id for r in spec.runs] == ["Xception-s0"] and not (tmp_path / "results").exists()


@pytest.fixture(scope="module")
def ablation(tmp_path_factory, tiny_demo):
    """The three-way ablation for two architectures, one epoch at 32 px, on a frozen random backbone (insisted
    on), by one worker (a worker's start, torch's import, costs more CPU than a run here)."""
    from harness.cli import main
    results = tmp_path_factory.mktemp("paper-question") / "results"
    code = main(["sweep", "--cluster", "local", "--max-parallel", "1", "--dataset", str(tiny_demo), "--models",
                 "MobileNetV2,DenseNet121", "--ablate-preprocessing", "--mode", "transfer", "--weights", "none",
                 "--allow-random-backbone", "--epochs", "1", "--image-size", "32", "--results", str(results), "--name", "abl",
                 "--wait"])
    assert code == 0
    return results


def _record(results, run_id: str) -> dict:
    return json.loads((results / "abl" / "runs" / run_id / "result.json").read_text())


def test_the_ablation_runs_own_keras_and_caffe_input_once_each(cli, ablation):
    board = cli("leaderboard", "abl", "--format", "json", "--results", ablation).json()
    assert sorted(r["model"] for r in board) == ["DenseNet121 [caffe]", "DenseNet121 [paper]", "DenseNet121 [timm]",
                                                 "MobileNetV2 [caffe]", "MobileNetV2 [paper]", "MobileNetV2 [timm]"]
    paper = _record(ablation, "MobileNetV2-paper-s0")
    assert paper["config"]["preprocessing"] == "paper" and paper["preprocessing"]["mode"] == "tf"
    assert paper["preprocessing"]["mean"] == [0.5, 0.5, 0.5]
    assert paper["config"]["allow_random_backbone"] is True and paper["config"]["mode"] == "transfer"
    # DenseNet121's Keras mode (torch) normalises as its timm weights do; Keras' resize keeps it a run of its own
    own, keras = _record(ablation, "DenseNet121-timm-s0")["preprocessing"], _record(ablation, "DenseNet121-paper-s0")["preprocessing"]
    assert own["mean"] == keras["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert (own["crop_pct"], keras["crop_pct"], keras["interpolation"]) == (0.875, 1.0, "bilinear")
    assert _record(ablation, "DenseNet121-caffe-s0")["preprocessing"]["bgr"] is True


def test_compare_paper_fits_100_columns_and_says_where_the_setting_differs(cli, ablation):
    shown = cli("leaderboard", "abl", "--compare", "paper", "--results", ablation)
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert max(len(line) for line in lines) <= 100, shown.out
    assert "…" not in shown.out
    assert "[74.0]" in shown.out and "[86.7]" in shown.out  # Table 2's accuracy beside ours
    text = " ".join(shown.out.split())
    assert "Not the paper's setting: images per class, weights, input size differ" in text  # transfer, as the paper
    for item in ("images per class", "30 real, 30 fake", "5,000 real, 5,000 fake", "none (random init)", "32 px",
                 "timm: centre; paper, caffe: none"):  # the crop each input takes
        assert item in shown.out
    machine = cli("leaderboard", "abl", "--compare", "paper", "--format", "csv", "--results", ablation)
    assert machine.code == 0 and "paper_accuracy" in machine.out.splitlines()[0]
    assert machine.err.startswith("Not the paper's setting:") and machine.err.count("\n") == 1


def test_the_report_answers_with_three_inputs_weights_and_auc(cli, ablation):
    assert cli("report", "abl", "--format", "markdown", "--results", ablation).code == 0
    report = (ablation / "abl" / "report.md").read_text()
    assert "The paper's question" in report and "as hypothesised %" in report
    assert "cannot answer it" in report  # --weights none: the sweep says it cannot test the hypothesis
    assert "This sweep's setting beside the paper's" in report and "Not the paper's setting" in report
    assert "neither the paper's Keras ImageNet weights nor timm's" in report
    assert "clean AUC" in report and "blur AUC" in report  # robustness: AUC beside accuracy
    figures = ablation / "abl" / "figures"
    for name in ("training_curves", "roc", "accuracy_vs_speed", "confusion", "robustness"):
        with Image.open(figures / f"{name}.png") as image:
            assert image.width >= 300 and image.height >= 200
