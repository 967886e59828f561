"""The paper's question made answerable, an honest comparison, and refusals of what cannot work: the
`paper` preprocessing per architecture, the ablation's variants, the weights' provenance,
the setting beside the paper's, the 100-column comparison table, the transfer/weights refusals."""
import csv
import dataclasses
import os
from pathlib import Path

import pytest
import timm
import torch
from rich.console import Console

from harness import sweeps
from harness.analysis.paper import paper_view, setting_line, setting_rows
from harness.cli.render import table
from harness.errors import UserError
from harness.store.records import RunSpec, SweepSpec
from harness.training.config import TrainConfig, train_options
from harness.zoo.lookup import preprocessing_for
from harness.zoo.models import build_model, check_imagenet_weights, weights_provenance
from harness.zoo.preprocessing import KERAS_MODES
from harness.zoo.registry import MODEL_NAMES, MODEL_SPECS

# What keras.applications' preprocess_input does for each of the paper's networks.
KERAS_APPLICATION_MODE = {"ResNet50": "caffe", "VGG16": "caffe", "VGG19": "caffe", "DenseNet121": "torch",
                          "MobileNetV2": "tf", "Xception": "tf", "NASNetMobile": "tf", "InceptionV3": "tf"}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_paper_preprocessing_is_each_architectures_keras_mode(name):
    spec = MODEL_SPECS[name]
    assert spec.keras_mode == KERAS_APPLICATION_MODE[name]
    pre = preprocessing_for(name, "paper", 96)
    mode = KERAS_MODES[spec.keras_mode]
    assert (pre.mode, pre.bgr, pre.mean, pre.std) == (spec.keras_mode, mode["bgr"], mode["mean"], mode["std"])
    # and Keras' resize: the whole image, no crop, bilinear; timm's centre-crops
    assert pre.resize_key == (96, "bilinear", 1.0, "keras") != preprocessing_for(name, "timm", 96).resize_key
    assert preprocessing_for(name, "timm", 96).crop_pct < 1


def test_paper_preprocessing_normalises_a_pixel_as_keras_does():
    red = torch.zeros(1, 1, 1, 3, dtype=torch.uint8)
    red[..., 0] = 255
    assert preprocessing_for("VGG19", "paper").normalise(red).flatten().tolist() == \
        pytest.approx([-103.939, -116.779, 255 - 123.68], abs=1e-3)
    assert preprocessing_for("DenseNet121", "paper").normalise(red).flatten()[0].item() == \
        pytest.approx((1 - 0.485) / 0.229, abs=1e-4)
    assert preprocessing_for("MobileNetV2", "paper").normalise(red).flatten().tolist() == pytest.approx([1.0, -1.0, -1.0])


def test_the_ablation_runs_each_distinct_input_once_and_covers_all_three():
    variants = {name: sweeps.preprocessing_variants(name) for name in MODEL_NAMES}
    assert [v for v, _ in variants["ResNet50"]] == ["timm", "paper-caffe"]  # Keras' mode for ResNet50 is caffe
    assert [v for v, _ in variants["DenseNet121"]] == ["timm", "paper", "caffe"]  # Keras' torch mode, but not timm's crop
    assert [v for v, _ in variants["MobileNetV2"]] == ["timm", "paper", "caffe"]  # timm's weights: ImageNet mean/std
    for name, found in variants.items():
        names = [n for variant, _ in found for n in variant.split("-")]
        assert sorted(names) == sorted(sweeps.ABLATION), name
        for variant, overrides in found:  # a shared variant is run with its first name, and feeds the others' input
            runs_with = preprocessing_for(name, overrides["preprocessing"])
            for other in variant.split("-"):
                assert runs_with.same_input(preprocessing_for(name, other))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_timm_input_sizes_are_keras_defaults(name):
    assert preprocessing_for(name).image_size == MODEL_SPECS[name].keras_input_size


def test_weights_provenance_names_timm_recipes_beside_keras():
    rows = {name: weights_provenance(name) for name in MODEL_NAMES}
    for name, row in rows.items():
        tag = timm.get_pretrained_cfg(MODEL_SPECS[name].timm_name).tag
        assert row["timm_weights"] == f"{MODEL_SPECS[name].timm_name}.{tag}" and row["keras_weights"] and row["timm_recipe"]
    assert rows["ResNet50"]["timm_weights"] == "resnet50.a1_in1k" and rows["ResNet50"]["same_weights"] is False
    assert "Caffe" in rows["ResNet50"]["keras_weights"] and "strikes back" in rows["ResNet50"]["timm_recipe"]
    assert rows["Xception"]["same_weights"] is True  # timm's legacy_xception is Keras' checkpoint, ported
    assert rows["NASNetMobile"]["exists"] is False and rows["NASNetMobile"]["same_weights"] is None


def test_a_frozen_random_backbone_is_refused_unless_insisted_on():
    with pytest.raises(UserError, match="frozen random backbone.*--allow-random-backbone"):
        TrainConfig(model="MobileNetV2", mode="transfer", weights="none").check_workable()
    TrainConfig(model="MobileNetV2", mode="transfer", weights="none", allow_random_backbone=True).check_workable()
    TrainConfig(model="MobileNetV2", mode="finetune", weights="none").check_workable()
    TrainConfig(model="MobileNetV2", mode="transfer", weights="none").validate()  # a job of an older sweep still runs
    assert train_options()["allow_random_backbone"] is False  # recorded in every config


@pytest.fixture
def empty_caches(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch"))
    return tmp_path


def test_missing_imagenet_weights_are_named_all_at_once(empty_caches):
    with pytest.raises(UserError) as error:
        check_imagenet_weights(["ResNet50", "NASNetMobile", "VGG16"])
    message = str(error.value)
    assert "timm has no ImageNet weights for NASNetMobile" in message
    assert "ImageNet weights for ResNet50, VGG16 are not in the local cache" in message
    assert "'resnet50.a1_in1k'" in message and "'vgg16.tv_in1k'" in message and "login node" in message


def test_a_cached_weights_file_passes_the_check(empty_caches):
    url = timm.get_pretrained_cfg("legacy_xception").url
    cached = empty_caches / "empty-torch" / "hub" / "checkpoints" / url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    torch.save(build_model("Xception").backbone.state_dict(), cached)
    check_imagenet_weights(["Xception"])
    with pytest.raises(UserError, match="for MobileNetV2 are not in the local cache"):
        check_imagenet_weights(["Xception", "MobileNetV2"])


def _dataset(folder: Path, per_class: int) -> Path:
    folder.mkdir(parents=True)
    with open(folder / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split"])
        writer.writerows([f"{label}/{i}.png", label, "train"] for label in ("real", "fake") for i in range(per_class))
    return folder


def _spec(dataset: Path, models: list[str], **train) -> SweepSpec:
    options = train_options(**train)
    return SweepSpec(sweep_id="s", created="", dataset=str(dataset), cache_root="", models=models, seeds=1,
                     train=options, cluster={"executor": "local"}, runs=[RunSpec(f"{m}-s0", m, 0) for m in models])


def test_the_demo_setting_is_said_to_differ_from_the_papers(tmp_path):
    demo = _dataset(tmp_path / "results" / "datasets" / "demo-400x80px-seed0", 400)
    setting = {row["item"]: row for row in setting_rows(_spec(demo, ["ResNet50", "VGG16"], image_size=80))}
    assert setting["dataset"]["this sweep"] == "built-in demo" and setting["dataset"]["same"] == "no"
    assert setting["images per class"]["this sweep"] == "400 real, 400 fake" and setting["images per class"]["same"] == "no"
    assert setting["weights"]["same"] == setting["mode"]["same"] == setting["input size"]["same"] == "no"
    assert setting["epochs"]["same"] == "?"  # the paper does not state its epochs
    line = setting_line(list(setting.values()))
    assert line.startswith("Not the paper's setting: dataset, images per class, weights, mode, input size differ")
    assert "\n" not in line


@pytest.mark.parametrize("damage", ["not-utf8", "huge-field", "fifo"])
def test_a_manifest_that_cannot_be_read_now_leaves_the_images_unknown(tmp_path, damage):
    """The report's and leaderboard --compare paper's setting reads the manifest as status does: one it cannot
    read (bytes not UTF-8, a field past csv's limit, a FIFO in its place) gives "unknown", never a traceback or a hang."""
    faces = _dataset(tmp_path / "faces", 10)
    manifest = faces / "manifest.csv"
    if damage == "fifo":
        manifest.unlink()
        os.mkfifo(manifest)
    else:
        manifest.write_bytes(manifest.read_bytes() + (b"\xff\n" if damage == "not-utf8" else b"x" * 200_000 + b"\n"))
    setting = {row["item"]: row for row in setting_rows(_spec(faces, ["MobileNetV2"]))}
    assert setting["images per class"]["this sweep"] == "unknown (no manifest)"


@pytest.mark.parametrize("preprocessing, ablate, shown", [
    ("timm", False, ("timm", "centre (timm's crop_pct)")),
    ("paper", False, ("paper", "none (whole image resized)")),
    ("tf", False, ("tf", "none (whole image resized)")),
    ("timm", True, ("timm, paper, caffe", "timm: centre; paper, caffe: none")),
])
def test_compare_paper_names_the_crop(tmp_path, preprocessing, ablate, shown):
    spec = _spec(_dataset(tmp_path / "faces", 10), ["MobileNetV2"], preprocessing=preprocessing)
    if ablate:
        spec = dataclasses.replace(spec, runs=[RunSpec(f"MobileNetV2-{v}-s0", "MobileNetV2", 0, v, o)
                                               for v, o in sweeps.preprocessing_variants("MobileNetV2")])
    setting = {row["item"]: row for row in setting_rows(spec)}
    assert (setting["preprocessing"]["this sweep"], setting["crop"]["this sweep"]) == shown
    assert setting["crop"]["paper"] == "not stated (Keras: none)"


def test_the_papers_own_setting_is_said_to_be_the_same_where_the_paper_says(tmp_path):
    faces = _dataset(tmp_path / "faces", 5000)
    setting = {row["item"]: row for row in setting_rows(_spec(faces, ["Xception"], weights="imagenet", mode="transfer"))}
    assert setting["images per class"]["same"] == setting["mode"]["same"] == setting["input size"]["same"] == "yes"
    assert setting["weights"]["same"] == "yes"  # timm's Xception weights are Keras' own
    assert setting["dataset"]["same"] == "?"  # a folder: the harness cannot tell what is in it
    assert setting_line(list(setting.values())).startswith("The paper's setting where the paper states one")
    resnet = {row["item"]: row for row in setting_rows(_spec(faces, ["ResNet50"], weights="imagenet", mode="transfer"))}
    assert resnet["weights"]["same"] == "no" and "timm's, not Keras'" in resnet["weights"]["this sweep"]


def _board_rows(labels: list[tuple[str, str]], status: str) -> list[dict]:
    return [{"model": label, "architecture": arch, "variant": "", "seeds": 1, "status": status, "accuracy": 0.9123,
             "precision": 0.5, "recall": 1.0, "f1": 0.6667, "loss": 1.2345} for label, arch in labels]


def _rendered(rows: list[dict], columns: list[str]) -> list[str]:
    console = Console(width=400, record=True, file=open("/dev/null", "w"))  # as wide as it likes: its natural width
    console.print(table(rows, columns, title="ours [the paper's Table 2 in brackets]", caption="x" * 80, compact=True))
    return console.export_text().splitlines()


@pytest.mark.parametrize("labels, status", [
    ([(n, n) for n in MODEL_NAMES], "1 CANCELLED, 2 COMPLETED"),
    ([(f"{n} [{v}]", n) for n in MODEL_NAMES for v in ("timm-paper", "paper-caffe")], "COMPLETED"),
])
def test_compare_paper_fits_a_100_column_terminal(labels, status):
    view, columns = paper_view(_board_rows(labels, status))
    assert view[0]["accuracy"] == "91.2 [" + f"{100 * 0.9934:.1f}" + "]"  # ours, then Table 2's in brackets
    lines = _rendered(view, columns)
    assert max(len(line) for line in lines) <= 100, "\n".join(lines)
    assert not any("…" in line for line in lines)
    assert ("runs" in columns) == (status != "COMPLETED")
    if status != "COMPLETED":
        assert view[0]["runs"] == "1/3 done"


def test_the_report_lists_timm_weights_beside_keras_where_they_differ(tmp_path):
    from harness.analysis.report import weights_table
    faces = _dataset(tmp_path / "faces", 10)
    text, weights = weights_table(_spec(faces, ["ResNet50", "Xception", "NASNetMobile"], weights="imagenet", mode="transfer"))
    assert "timm's, not Keras' (the paper's), for ResNet50, NASNetMobile" in text
    rows = weights.set_index("model")
    assert rows.loc["ResNet50", "timm_weights"] == "resnet50.a1_in1k" and rows.loc["ResNet50", "same"] == "differ"
    assert rows.loc["Xception", "same"] == "same" and rows.loc["NASNetMobile", "same"] == "none in timm"


def test_the_paper_question_table_recreates_the_papers_condition(tmp_path):
    import pandas as pd

    from harness.analysis.report import paper_question
    faces = _dataset(tmp_path / "faces", 10)
    spec = _spec(faces, ["ResNet50", "DenseNet121", "MobileNetV2"], weights="imagenet", mode="transfer")
    board = pd.DataFrame([
        {"architecture": "ResNet50", "variant": "timm", "accuracy": 0.99},
        {"architecture": "ResNet50", "variant": "paper-caffe", "accuracy": 0.80},
        {"architecture": "DenseNet121", "variant": "timm", "accuracy": 0.95},
        {"architecture": "DenseNet121", "variant": "paper", "accuracy": 0.94},
        {"architecture": "DenseNet121", "variant": "caffe", "accuracy": 0.70},
        {"architecture": "MobileNetV2", "variant": "timm", "accuracy": 0.93},
        {"architecture": "MobileNetV2", "variant": "paper", "accuracy": 0.90},
        {"architecture": "MobileNetV2", "variant": "caffe", "accuracy": 0.60},
    ])
    text, table = paper_question(board, spec)
    rows = table.set_index("model")
    assert list(rows.index) == ["ResNet50", "DenseNet121", "MobileNetV2"]
    # the right input (timm) for the caffe-mode network, caffe input for the others
    assert rows["as hypothesised %"].tolist() == ["99.00", "70.00", "60.00"]
    assert rows.loc["ResNet50", "paper %"] == rows.loc["ResNet50", "caffe %"] == "80.00"  # one run, two cells
    assert (rows.loc["DenseNet121", "timm %"], rows.loc["DenseNet121", "paper %"]) == ("95.00", "94.00")
    # Keras' torch mode normalises as DenseNet121's timm weights expect (only the crop differs)
    assert rows.loc["DenseNet121", "right input for timm's weights"] == "timm, paper"
    assert rows.loc["MobileNetV2", "right input for timm's weights"] == "timm"
    assert "cannot answer" not in text
