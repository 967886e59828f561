"""The paper's eight architectures: a registry of configs over timm, each with the paper's head.

One ``ModelSpec`` per architecture (as timm keeps one config per model): which timm network is the
backbone, which Keras preprocessing its Keras weights expect, Table 2's parameter count, and the
smallest input the network accepts.
"""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from harness.zoo import WEIGHTS_HELP, nasnet_mobile  # noqa: F401  (nasnet_mobile registers 'nasnetamobile' with timm)
from harness.errors import UserError
from harness.zoo.preprocessing import Preprocessing, resolve_preprocessing

HEAD_WIDTH = 512


@dataclass(frozen=True)
class ModelSpec:
    name: str
    timm_name: str
    keras_mode: str
    paper_params: int
    min_image_size: int = 32
    # timm modules beyond Keras' include_top=False convolutional base.
    strip: tuple[str, ...] = ()
    # Why our Keras-style count cannot equal Table 2's, where it cannot.
    params_note: str = ""


MODEL_SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("ResNet50", "resnet50", "caffe", 24_637_313,
              params_note="Keras' ResNet50 convolutions carry biases (26,560 of them); timm's, followed by BatchNorm, do not."),
    ModelSpec("VGG16", "vgg16", "caffe", 14_977_857, strip=("pre_logits",)),
    ModelSpec("VGG19", "vgg19", "caffe", 20_287_553, strip=("pre_logits",)),
    ModelSpec("DenseNet121", "densenet121", "torch", 7_562_817),
    ModelSpec("MobileNetV2", "mobilenetv2_100", "tf", 2_914_369),
    ModelSpec("Xception", "legacy_xception", "tf", 21_911_081, min_image_size=71),
    ModelSpec("NASNetMobile", "nasnetamobile", "tf", 4_811_413),
    ModelSpec("InceptionV3", "inception_v3", "tf", 22_852_385, min_image_size=75,
              params_note="Keras' InceptionV3 BatchNorm has no scale (gamma); timm's has one per channel (17,216 of them)."),
)}
MODEL_NAMES = tuple(MODEL_SPECS)


def get_spec(name: str) -> ModelSpec:
    try:
        return MODEL_SPECS[name]
    except KeyError:
        raise UserError(f"unknown architecture {name!r}; choose from {', '.join(MODEL_NAMES)}") from None


class Detector(nn.Module):
    """Backbone -> global average pooling -> Dense(512, ReLU) -> Dense(1): one logit, fake = positive."""

    def __init__(self, backbone: nn.Module, num_features: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Linear(num_features, HEAD_WIDTH), nn.ReLU(inplace=True), nn.Linear(HEAD_WIDTH, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.backbone.forward_features(x)).flatten(1)).squeeze(1)


def check_imagenet_weights(name: str) -> Any:
    """timm's pretrained config of the architecture; UserError where timm has no ImageNet weights for it."""
    spec = get_spec(name)
    cfg = timm.get_pretrained_cfg(spec.timm_name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise UserError(f"timm has no ImageNet weights for {spec.name}; use --weights none or a weights file")
    return cfg


def cached_imagenet_weights(spec: ModelSpec) -> Path:
    """timm's ImageNet weights for spec from the local caches (Hugging Face, torch hub); never the network."""
    from huggingface_hub import try_to_load_from_cache

    cfg = check_imagenet_weights(spec.name)
    if cfg.hf_hub_id:
        for filename in ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(cfg.hf_hub_id, filename, cache_dir=os.environ.get("HF_HUB_CACHE"))
            if isinstance(found, str):
                return Path(found)
    if cfg.url:
        found = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name
        if found.is_file():
            return found
    tag = f"{spec.timm_name}.{cfg.tag}" if cfg.tag else spec.timm_name
    raise UserError(
        f"ImageNet weights for {spec.name} are not in the local cache; compute nodes run offline, so on a login node "
        f"run: python -c \"import timm; timm.create_model('{tag}', pretrained=True)\""
    )


def _create_backbone(spec: ModelSpec, weights: str) -> nn.Module:
    backbone = timm.create_model(spec.timm_name, pretrained=False, num_classes=0, global_pool="")
    for module_name in spec.strip:
        setattr(backbone, module_name, nn.Identity())
    if weights == "imagenet":
        load_backbone_weights(backbone, cached_imagenet_weights(spec), spec.name)
    elif weights != "none":
        load_backbone_weights(backbone, Path(weights), spec.name)
    return backbone


def load_backbone_weights(backbone: nn.Module, path: Path, arch: str) -> None:
    """Load a backbone state dict (.safetensors or a torch file), never executing code from it."""
    if not path.is_file():
        raise UserError(f"weights file {path} does not exist; use {WEIGHTS_HELP}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"weights file {path} cannot be read: {err}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    try:
        result = backbone.load_state_dict(state, strict=False)
    except RuntimeError as err:  # tensors of the wrong shape
        raise UserError(f"weights file {path} does not fit {arch}: {str(err).splitlines()[1].strip()}") from None
    if result.missing_keys:
        raise UserError(
            f"weights file {path} does not fit {arch}: {len(result.missing_keys)} tensors missing "
            f"(first: {result.missing_keys[0]})"
        )


def build_model(name: str, weights: str = "none") -> Detector:
    """The paper's detector for one architecture. weights: 'imagenet', 'none' or a path to a file."""
    spec = get_spec(name)
    backbone = _create_backbone(spec, weights)
    return Detector(backbone, _feature_channels(backbone, spec.min_image_size))


def _feature_channels(backbone: nn.Module, image_size: int) -> int:
    # timm's num_features and feature_info disagree across families (MobileNetV2's conv_head, VGG's
    # pre_logits): the channels forward_features really returns are the ground truth.
    was_training = backbone.training
    with torch.no_grad():
        channels = backbone.eval().forward_features(torch.zeros(1, 3, image_size, image_size)).shape[1]
    backbone.train(was_training)
    return int(channels)


def preprocessing_for(name: str, mode: str = "timm", image_size: int | None = None) -> Preprocessing:
    """timm's pretrained config for the architecture, or a Keras mode's normalisation."""
    spec = get_spec(name)
    if image_size is not None and image_size < spec.min_image_size:
        raise UserError(f"{name} needs --image-size of at least {spec.min_image_size} (got {image_size})")
    cfg = timm.get_pretrained_cfg(spec.timm_name).to_dict()
    return resolve_preprocessing(cfg, mode, image_size)


def keras_param_count(model: nn.Module) -> int:
    """Parameters as Keras counts them: BatchNorm's moving mean and variance included."""
    params = sum(p.numel() for p in model.parameters())
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return params + stats


def describe_models() -> list[dict[str, Any]]:
    """One row per architecture: our count beside Table 2's, and the preprocessing each expects."""
    rows = []
    for spec in MODEL_SPECS.values():
        count = keras_param_count(build_model(spec.name))
        pre = preprocessing_for(spec.name)
        rows.append({
            "model": spec.name,
            "timm": spec.timm_name,
            "params": count,
            "paper_params": spec.paper_params,
            "delta": count - spec.paper_params,
            "note": spec.params_note,
            "input_size": pre.image_size,
            "interpolation": pre.interpolation,
            "crop_pct": pre.crop_pct,
            "mean": list(pre.mean),
            "std": list(pre.std),
            "keras_mode": spec.keras_mode,
            "min_image_size": spec.min_image_size,
        })
    return rows
