"""The model zoo as a user sees it: `models`, parameter counts, NASNetMobile's wiring, weights, preprocessing."""
import pytest
import timm
import torch

from harness.errors import UserError
from harness.zoo.lookup import preprocessing_for
from harness.zoo.models import build_model, keras_param_count
from harness.zoo.registry import MODEL_NAMES, MODEL_SPECS

TABLE2_EXACT = {"VGG16": 14_977_857, "VGG19": 20_287_553, "DenseNet121": 7_562_817, "MobileNetV2": 2_914_369,
                "Xception": 21_911_081, "NASNetMobile": 4_811_413}


def test_models_json_lists_the_eight_with_table2_counts(cli):
    result = cli("models", "--format", "json")
    assert result.code == 0
    rows = {r["model"]: r for r in result.json()}
    assert list(rows) == ["ResNet50", "VGG16", "VGG19", "DenseNet121", "MobileNetV2", "Xception", "NASNetMobile", "InceptionV3"]
    for name, count in TABLE2_EXACT.items():
        assert rows[name]["params"] == count == rows[name]["paper_params"]
    # Structural differences of the Keras networks, each explained.
    assert rows["ResNet50"]["delta"] == -26_560 and "bias" in rows["ResNet50"]["note"]
    assert rows["InceptionV3"]["delta"] == 17_216 and "scale" in rows["InceptionV3"]["note"]


@pytest.mark.parametrize("name", ["MobileNetV2", "NASNetMobile"])
def test_a_count_on_the_meta_device_is_the_built_networks(name):
    """`models` counts on torch's meta device (shapes, no values): the same count as the network built."""
    with torch.device("meta"):
        shapes_only = build_model(name)
    assert next(shapes_only.parameters()).is_meta
    assert keras_param_count(shapes_only) == keras_param_count(build_model(name))


def test_models_table_explains_the_deltas(cli):
    result = cli("models")
    assert result.code == 0
    assert "ResNet50 -26,560" in result.out and "InceptionV3 +17,216" in result.out


def _cell_inputs(model):
    """(cell, first input, second input, output) for every NASNet cell, in forward order."""
    seen = []
    hooks = [cell.register_forward_hook(lambda m, args, out: seen.append((m, args[0], args[1], out)))
             for cell in model.cells]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 64, 64))
    for hook in hooks:
        hook.remove()
    return seen


def test_nasnet_mobile_is_registered_and_shaped_as_keras():
    assert "nasnetamobile" in timm.list_models("nasnet*")
    model = timm.create_model("nasnetamobile", num_classes=0)
    assert model.num_features == 1056
    kinds = [type(c).__name__ for c in model.cells]
    assert kinds == ["FirstCell"] + ["NormalCell"] * 3 + ["ReductionCell0", "FirstCell"] + ["NormalCell"] * 3 \
        + ["ReductionCell1", "FirstCell"] + ["NormalCell"] * 3


def test_nasnet_mobile_first_cell_after_a_reduction_takes_the_reduction_cells_input():
    model = timm.create_model("nasnetamobile", num_classes=0)
    calls = _cell_inputs(model)
    reductions = [i for i, (cell, *_) in enumerate(calls) if "Reduction" in type(cell).__name__]
    assert len(reductions) == 2
    for i in reductions:
        _, reduction_x, reduction_x_prev, _ = calls[i]
        _, next_x, next_x_prev, _ = calls[i + 1]
        assert next_x is calls[i][3]  # the reduction cell's output
        assert next_x_prev is reduction_x  # Mobile (skip_reduction=False): the last normal cell
        assert next_x_prev is not reduction_x_prev  # NASNet-A Large would pass this one


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_detector_gives_one_logit_per_image_at_its_smallest_input(name):
    spec = MODEL_SPECS[name]
    model = build_model(name).eval()
    with torch.no_grad():
        logits = model(torch.zeros(2, 3, spec.min_image_size, spec.min_image_size))
    assert logits.shape == (2,)
    assert model.head[0].out_features == 512 and model.head[2].out_features == 1


def test_vgg_is_the_convolutional_base_only():
    model = build_model("VGG16")
    assert model.head[0].in_features == 512
    assert not any(p.shape[0] == 4096 for p in model.parameters())


def test_weights_from_a_local_file(tmp_path):
    source = build_model("MobileNetV2")
    path = tmp_path / "mobilenet.pt"
    torch.save(source.backbone.state_dict(), path)
    loaded = build_model("MobileNetV2", weights=str(path))
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(value, loaded.backbone.state_dict()[key])
    assert keras_param_count(loaded) == TABLE2_EXACT["MobileNetV2"]


def test_weights_file_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save(build_model("ResNet50").backbone.state_dict(), path)
    with pytest.raises(UserError, match="does not fit MobileNetV2"):
        build_model("MobileNetV2", weights=str(path))


def test_imagenet_weights_missing_from_the_cache_says_how_to_fetch(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-cache"))
    with pytest.raises(UserError, match="login node.*resnet50.a1_in1k"):
        build_model("ResNet50", weights="imagenet")


def test_imagenet_weights_are_read_from_the_local_cache(monkeypatch, tmp_path):
    """A weights file in timm's torch-hub cache is found and loaded without the network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url = timm.get_pretrained_cfg("legacy_xception").url
    cached = tmp_path / "hub" / "checkpoints" / url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    source = build_model("Xception")
    torch.save(source.backbone.state_dict(), cached)
    loaded = build_model("Xception", weights="imagenet")
    assert torch.equal(loaded.backbone.conv1.weight, source.backbone.conv1.weight)


def test_preprocessing_from_timm_and_the_three_keras_modes():
    assert preprocessing_for("InceptionV3").image_size == 299
    assert preprocessing_for("ResNet50").interpolation == "bicubic"
    red = torch.zeros(1, 1, 1, 3, dtype=torch.uint8)
    red[..., 0] = 255
    tf = preprocessing_for("Xception", "tf", 71).normalise(red)
    assert tf.flatten().tolist() == pytest.approx([1.0, -1.0, -1.0])
    caffe = preprocessing_for("VGG16", "caffe").normalise(red)
    # BGR order, the 0-255 scale minus the BGR ImageNet mean: red lands in the last channel.
    assert caffe.flatten().tolist() == pytest.approx([-103.939, -116.779, 255 - 123.68], abs=1e-3)
    torch_mode = preprocessing_for("DenseNet121", "torch").normalise(red)
    assert torch_mode.flatten()[0].item() == pytest.approx((1 - 0.485) / 0.229, abs=1e-4)


def test_image_size_below_an_architectures_minimum_is_refused():
    with pytest.raises(UserError, match="InceptionV3 needs --image-size of at least 75"):
        preprocessing_for("InceptionV3", image_size=64)
