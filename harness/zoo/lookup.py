"""Which architecture a name means: one of the paper's eight (the registry), else any timm model, with
the paper's head and timm's own pretrained config. timm is imported only for a name outside the
registry: planning a sweep of the paper's eight stays light."""
import functools
from typing import Any

from harness.errors import UserError
from harness.zoo.preprocessing import KERAS_INTERPOLATIONS, Preprocessing, resolve_preprocessing
from harness.zoo.registry import MODEL_NAMES, MODEL_SPECS, ModelSpec, check_image_size


def _timm() -> Any:
    """timm, with this package's NASNetMobile registered in it."""
    import timm

    from harness.zoo import nasnet_mobile  # noqa: F401  (registers 'nasnetamobile' with timm)

    return timm


def spec_of(name: str) -> ModelSpec:
    """The paper's architecture of that name (from the registry, without importing timm), or any timm
    model (by timm's name, a pretrained tag allowed)."""
    if name in MODEL_SPECS:
        return MODEL_SPECS[name]
    spec = timm_spec(name)
    if spec is None:
        raise UserError(f"unknown architecture {name!r}; choose from {', '.join(MODEL_NAMES)} or any timm model name "
                        f"(python -m harness models --all PATTERN lists them){_did_you_mean(name)}")
    return spec


# Inputs below which a family's stem or reductions have nothing left to convolve (Keras' own minimums).
MIN_IMAGE_SIZE_BY_MODULE = {"inception_v3": 75, "inception_v4": 75, "inception_resnet_v2": 75, "xception": 71}


def _did_you_mean(name: str) -> str:
    import difflib

    timm = _timm()
    known = [*MODEL_NAMES, *timm.list_models()]
    close = [n for n in MODEL_NAMES if n.lower() == name.lower()]
    close += [n for n in difflib.get_close_matches(name.lower(), known, n=5, cutoff=0.75) if n not in close]
    return f"; did you mean {', '.join(close[:5])}?" if close else ""


def _pretrained_cfg(timm_name: str) -> Any:
    """timm's pretrained config of a model name (its default tag unless the name has one); None where timm
    has no model of that name or no such tag."""
    timm = _timm()
    if not timm.is_model(timm_name):
        return None
    try:
        return timm.get_pretrained_cfg(timm_name)
    except RuntimeError:  # "Invalid pretrained tag"
        return None


def _takes_dynamic_size(timm_name: str) -> bool:
    """Whether timm builds the model with dynamic_img_size (ViT, DeiT, EVA, Swin do; LeViT, CoaT do not),
    asked of a model built on the meta device: no memory, no weights."""
    import torch

    timm = _timm()
    try:
        with torch.device("meta"):
            timm.create_model(timm_name, pretrained=False, num_classes=0, global_pool="", dynamic_img_size=True)
    except TypeError:
        return False
    return True


@functools.cache
def timm_spec(name: str) -> ModelSpec | None:
    """A ModelSpec for any timm model name (e.g. resnet50, convnext_tiny, vit_small_patch16_224,
    efficientnet_b0): no Keras mode, no Table 2 count; None where timm has no such model."""
    timm = _timm()
    cfg = _pretrained_cfg(name)
    if cfg is None or name in MODEL_SPECS:
        return None
    own_size = int(cfg.input_size[-1])
    module = timm.models._registry._model_to_module.get(name.split(".")[0], "")
    minimum = MIN_IMAGE_SIZE_BY_MODULE.get(module, 32)
    dynamic = bool(cfg.fixed_input_size) and _takes_dynamic_size(name)
    only = own_size if cfg.fixed_input_size and not dynamic else None
    return ModelSpec(name, name, keras_mode=None, paper_params=None, min_image_size=only or minimum,
                     dynamic_img_size=dynamic, only_image_size=only)


def list_timm_models(pattern: str = "*") -> list[dict[str, Any]]:
    """What timm offers under a pattern (fnmatch, e.g. 'convnext*'): each model, whether timm knows
    pretrained weights for it (and its default tag), its own input size, and the paper's name for it."""
    timm = _timm()
    names = timm.list_models(pattern)
    tags: dict[str, list[str]] = {}
    for tagged in timm.list_models(pattern, pretrained=True):
        base, _, tag = tagged.partition(".")
        tags.setdefault(base, []).append(tag)
    paper = {spec.timm_name: spec.name for spec in MODEL_SPECS.values()}
    rows = []
    for name in names:
        cfg = _pretrained_cfg(name)
        rows.append({"model": name, "pretrained": "yes" if tags.get(name) else "no",
                     "default_tag": (cfg.tag or "") if cfg is not None and tags.get(name) else "",
                     "tags": len(tags.get(name, [])), "input_size": int(cfg.input_size[-1]) if cfg is not None else None,
                     "fixed_input_size": bool(cfg.fixed_input_size) if cfg is not None else None,
                     "paper": paper.get(name, "")})
    return rows


def preprocessing_for(name: str, mode: str = "timm", image_size: int | None = None,
                      keras_interpolation: str = KERAS_INTERPOLATIONS[0]) -> Preprocessing:
    """timm's pretrained config for the architecture (the registry's copy for the paper's eight: no timm
    imported), or a Keras mode's resize and normalisation."""
    spec = spec_of(name)
    check_image_size(spec, image_size)
    if spec.timm_input is not None:
        cfg = spec.timm_input.as_cfg()
    else:
        found = _pretrained_cfg(spec.timm_name)
        if found is None:  # not reached: timm_spec gives specs only to names with a pretrained config
            raise UserError(f"timm has no pretrained config for {spec.timm_name}")
        cfg = found.to_dict()
    return resolve_preprocessing(cfg, mode, image_size, keras_mode=spec.keras_mode, keras_interpolation=keras_interpolation)
