"""Building a detector: the backbone an architecture's ModelSpec names (zoo.lookup), from timm, with
the paper's head; its ImageNet weights (from the local cache only), its preprocessing, and its
parameters counted as Keras counts them."""
import os
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from harness.errors import UserError
from harness.progress import progress_bar
from harness.zoo import WEIGHTS_HELP, nasnet_mobile  # noqa: F401  (nasnet_mobile registers 'nasnetamobile' with timm)
from harness.zoo.lookup import preprocessing_for, spec_of
from harness.zoo.registry import MODEL_SPECS, ModelSpec

HEAD_WIDTH = 512


class Detector(nn.Module):
    """Backbone -> global average pooling -> Dense(512, ReLU) -> Dense(1): one logit, fake = positive."""

    def __init__(self, backbone: nn.Module, num_features: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Linear(num_features, HEAD_WIDTH), nn.ReLU(inplace=True), nn.Linear(HEAD_WIDTH, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torch types a submodule's attributes as Tensor | Module; forward_features is timm's method
        features = self.backbone.forward_features(x)  # type: ignore[operator]
        return self.head(pool_features(self.backbone, features, self.pool)).squeeze(1)


def pool_features(backbone: nn.Module, features: torch.Tensor, pool: nn.Module) -> torch.Tensor:
    """Global average pooling of what forward_features returns: a CNN's NCHW map (the paper's eight), a
    channels-last map (Swin: output_fmt NHWC), or a transformer's tokens, averaged over the patch
    tokens (the class and register tokens left out)."""
    if features.ndim == 3:
        return features[:, int(getattr(backbone, "num_prefix_tokens", 0)):].mean(1)
    if str(getattr(backbone, "output_fmt", "NCHW")).endswith("NHWC"):
        features = features.permute(0, 3, 1, 2)
    return pool(features).flatten(1)


def imagenet_cfg(name: str) -> Any:
    """timm's pretrained config of the architecture; UserError where timm has no ImageNet weights for it, or
    where they expect another input than the registry's (_check_input)."""
    spec = spec_of(name)
    cfg = timm.get_pretrained_cfg(spec.timm_name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise UserError(f"timm has no ImageNet weights for {spec.name}; use --weights none or a weights file")
    _check_input(spec, cfg)
    return cfg


def _check_input(spec: ModelSpec, cfg: Any) -> None:
    """Refuse weights of this timm whose input is not the registry's (the input every job prepares)."""
    if spec.timm_input is None:
        return
    expected = spec.timm_input.as_cfg()
    found = {key: cfg.to_dict()[key] for key in expected}
    if found != expected:
        raise UserError(f"timm {timm.__version__}'s ImageNet weights for {spec.name} ({spec.timm_name}.{cfg.tag}) expect "
                        f"the input {found}, harness's registry {expected}: install the timm that pyproject.toml allows")


def cached_imagenet_weights(spec: ModelSpec) -> Path:
    """timm's ImageNet weights for spec from the local caches (Hugging Face, torch hub); never the network."""
    from huggingface_hub import try_to_load_from_cache

    cfg = imagenet_cfg(spec.name)
    if cfg.hf_hub_id:
        for filename in ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(cfg.hf_hub_id, filename, cache_dir=os.environ.get("HF_HUB_CACHE"))
            if isinstance(found, str):
                return Path(found)
    if cfg.url:
        found = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name
        if found.is_file():
            return found
    tag = f"{spec.timm_name}.{cfg.tag}" if cfg.tag and "." not in spec.timm_name else spec.timm_name
    raise UserError(
        f"ImageNet weights for {spec.name} are not in the local cache; compute nodes run offline, so on a login node "
        f"run: python -c \"import timm; timm.create_model('{tag}', pretrained=True)\""
    )


def check_imagenet_weights(names: list[str]) -> None:
    """Refuse, in one line naming every one, the architectures whose ImageNet weights are not in the local
    cache (or do not exist in timm): a sweep must not fail at run time on a compute node that is offline."""
    absent, no_weights, fetch = [], [], []
    for name in names:
        spec = spec_of(name)
        cfg = timm.get_pretrained_cfg(spec.timm_name)
        if cfg is None or not (cfg.hf_hub_id or cfg.url):
            no_weights.append(name)
            continue
        _check_input(spec, cfg)
        try:
            cached_imagenet_weights(spec)
        except UserError:
            absent.append(name)
            fetch.append(f"{spec.timm_name}.{cfg.tag}" if cfg.tag else spec.timm_name)
    if not absent and not no_weights:
        return
    parts = []
    if no_weights:
        parts.append(f"timm has no ImageNet weights for {', '.join(no_weights)} (leave it out with --models, or give "
                     "--weights a file)")
    if absent:
        names_ = ", ".join(repr(t) for t in fetch)
        parts.append(f"ImageNet weights for {', '.join(absent)} are not in the local cache; compute nodes run offline, "
                     f"so on a login node run: python -c \"import timm; [timm.create_model(n, pretrained=True) for n in "
                     f"({names_},)]\"")
    raise UserError("--weights imagenet: " + "; ".join(parts))


# What each timm pretrained tag means: how the weights were made.
TIMM_RECIPES = {
    "a1_in1k": "timm's 'ResNet strikes back' A1 recipe (600 epochs, LAMB, BCE loss, heavy augmentation; arXiv:2110.00476)",
    "tv_in1k": "torchvision's checkpoint",
    "ra_in1k": "timm's RandAugment recipe",
    "tf_in1k": "ported from TensorFlow/Keras",
    "untrained": "none: timm has no ImageNet weights",
}


def weights_provenance(name: str) -> dict[str, Any]:
    """Where timm's ImageNet weights come from beside Keras' (the paper's): the tag of timm's pretrained
    config, its recipe, Keras' source, whether they are the same weights, and the input each was trained on."""
    spec = spec_of(name)
    cfg = timm.get_pretrained_cfg(spec.timm_name)
    tag = cfg.tag if cfg is not None else None
    exists = cfg is not None and bool(cfg.hf_hub_id or cfg.url)
    recipe = TIMM_RECIPES.get(tag or "", f"timm's '{tag}' weights")
    if spec.name == "InceptionV3" and tag == "tv_in1k":
        recipe = "torchvision's port of Google's TensorFlow checkpoint"
    if spec.name == "Xception" and spec.timm_weights_are_keras:
        recipe = "Keras' own checkpoint, ported to PyTorch (Cadene's pretrainedmodels)"
    own = preprocessing_for(name)
    return {
        "model": spec.name,
        "timm_weights": f"{spec.timm_name}.{tag}" if tag else spec.timm_name,
        "timm_recipe": recipe,
        "timm_input": "RGB, mean " + "/".join(f"{m:g}" for m in own.mean) + ", std " + "/".join(f"{v:g}" for v in own.std),
        "keras_weights": spec.keras_weights,
        "keras_mode": spec.keras_mode,
        "same_weights": spec.timm_weights_are_keras if exists else None,
        "exists": exists,
    }


def _create_backbone(spec: ModelSpec, weights: str) -> nn.Module:
    extra: dict[str, Any] = {"dynamic_img_size": True} if spec.dynamic_img_size else {}
    backbone = timm.create_model(spec.timm_name, pretrained=False, num_classes=0, global_pool="", **extra)
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
    state: Any  # torch.load's result: a state dict, or a checkpoint holding one under 'state_dict'
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
    spec = spec_of(name)
    backbone = _create_backbone(spec, weights)
    return Detector(backbone, _feature_channels(backbone, spec.min_image_size))


def _feature_channels(backbone: nn.Module, image_size: int) -> int:
    # timm's num_features and feature_info disagree across families (MobileNetV2's conv_head, VGG's
    # pre_logits): the channels forward_features really returns are the ground truth.
    was_training = backbone.training
    with torch.no_grad():
        # torch types a submodule's attributes as Tensor | Module; forward_features is timm's method
        features = backbone.eval().forward_features(torch.zeros(1, 3, image_size, image_size))  # type: ignore[operator]
        channels = pool_features(backbone, features, nn.AdaptiveAvgPool2d(1)).shape[1]
    backbone.train(was_training)
    return int(channels)


def keras_param_count(model: nn.Module) -> int:
    """Parameters as Keras counts them: BatchNorm's moving mean and variance included."""
    params = sum(p.numel() for p in model.parameters())
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return params + stats


def describe_models() -> list[dict[str, Any]]:
    """One row per architecture: our count beside Table 2's, and the preprocessing each expects."""
    with progress_bar() as bar:  # building the eight takes seconds (on the meta device)
        return [_describe(spec) for spec in bar.track(MODEL_SPECS.values(), description="counting each architecture's parameters")]


def _describe(spec: ModelSpec) -> dict[str, Any]:
    """An architecture's row of describe_models. A count needs the network's shapes, not its values: it is
    built on torch's meta device (no memory, no initialisation: ten times faster, the same count)."""
    with torch.device("meta"):
        count = keras_param_count(build_model(spec.name))
    pre = preprocessing_for(spec.name)
    return {
        "model": spec.name,
        "timm": spec.timm_name,
        "params": count,
        "paper_params": spec.paper_params,
        "delta": count - spec.paper_params if spec.paper_params is not None else None,
        "note": spec.params_note,
        "input_size": pre.image_size,
        "interpolation": pre.interpolation,
        "crop_pct": pre.crop_pct,
        "mean": list(pre.mean),
        "std": list(pre.std),
        "keras_mode": spec.keras_mode,
        "keras_input_size": spec.keras_input_size,
        "timm_weights": weights_provenance(spec.name)["timm_weights"],
        "min_image_size": spec.min_image_size,
    }
