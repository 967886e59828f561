"""How pixels become a network's input: timm's per-model config, or one of Keras' three modes.

The resize part (input size, interpolation, crop) decides the uint8 cache an image lands in; the
normalisation part (channel order, mean, std) runs on the device, batch by batch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

from harness.zoo import PAPER_PREPROCESSING

if TYPE_CHECKING:  # torch is imported where pixels are normalised, not where choices are read
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Keras' imagenet_utils.preprocess_input modes, expressed on pixels scaled to [0, 1].
KERAS_MODES: dict[str, dict[str, Any]] = {
    # caffe: RGB -> BGR, subtract the BGR ImageNet mean on the 0-255 scale, no scaling.
    "caffe": {"bgr": True, "mean": (103.939 / 255, 116.779 / 255, 123.68 / 255), "std": (1 / 255,) * 3},
    "torch": {"bgr": False, "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
    "tf": {"bgr": False, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
}
# Keras' resize, for every Keras mode (data.cache.keras_resize): the whole image to the input size, squashed
# where it is not square, no crop, no antialiasing. bilinear is tf.image.resize's, the default of Keras'
# image_dataset_from_directory and Resizing layer (the first, Keras' default here); nearest is load_img's and
# ImageDataGenerator's. The paper names no loader. timm's eval transform instead centre-crops (each model's
# crop_pct, 0.875 to 0.95 for the eight) with Pillow's filters, which antialias when they shrink.
KERAS_INTERPOLATIONS = ("bilinear", "nearest")
RESIZES = ("timm", "keras")


class Resize(NamedTuple):
    """What an image's uint8 pixels at the network's input depend on (the cache's key): the side, the
    interpolation, timm's crop fraction, and whose resize (RESIZES). A plain 3-tuple reads as timm's."""
    size: int
    interpolation: str
    crop_pct: float
    method: str = "timm"
# timm: each model's own config; paper: per architecture the Keras mode its Keras application uses
# (caffe for ResNet50/VGG, torch for DenseNet121, tf for the others); caffe/torch/tf: one mode for all.
PREPROCESSING_CHOICES = ("timm", PAPER_PREPROCESSING, *KERAS_MODES)


@dataclass(frozen=True)
class Preprocessing:
    image_size: int
    interpolation: str
    crop_pct: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    bgr: bool = False
    mode: str = "timm"
    resize: str = "timm"  # timm (a centre crop, Pillow's filters) or keras (data.cache.keras_resize)

    @property
    def resize_key(self) -> Resize:
        """What the uint8 cache depends on; normalisation is applied later, on the device."""
        return Resize(self.image_size, self.interpolation, self.crop_pct, self.resize)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def normalisation_key(self) -> tuple[tuple[float, ...], tuple[float, ...], bool]:
        """What pretrained weights expect of their input: the channel order, mean and std."""
        return (self.mean, self.std, self.bgr)

    def same_input(self, other: "Preprocessing") -> bool:
        """Whether the network sees the same tensors from both (the name of the mode aside)."""
        return (self.resize_key, self.normalisation_key) == (other.resize_key, other.normalisation_key)

    def normalise(self, batch_uint8_nhwc: torch.Tensor, flip: torch.Tensor | None = None,
                  dtype: torch.dtype | None = None) -> torch.Tensor:
        """uint8 NHWC on any device -> normalised float NCHW (channels_last strides) on the same device.

        flip: a per-image mask of horizontal flips, applied to the uint8 batch, where it costs least.
        """
        import torch

        if flip is not None:
            batch_uint8_nhwc = torch.where(flip.view(-1, 1, 1, 1), batch_uint8_nhwc.flip(2), batch_uint8_nhwc)
        x = batch_uint8_nhwc.permute(0, 3, 1, 2)  # a view: NCHW with channels_last strides
        if self.bgr:
            x = x.flip(1)
        scale, shift = _affine(self.mean, self.std, x.device, dtype or torch.float32)
        return torch.addcmul(shift, x, scale)


@cache
def _affine(mean: tuple[float, ...], std: tuple[float, ...], device: torch.device,
            dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """scale and shift with (x / 255 - mean) / std == x * scale + shift, one fused pass. Made once per
    device: building a tensor from Python numbers on a GPU is a blocking copy, which every step would pay."""
    import torch

    std64, mean64 = torch.tensor(std, dtype=torch.float64), torch.tensor(mean, dtype=torch.float64)
    scale, shift = (1.0 / (255.0 * std64)).view(1, 3, 1, 1), (-mean64 / std64).view(1, 3, 1, 1)
    return scale.to(device, dtype), shift.to(device, dtype)


def resolve_preprocessing(pretrained_cfg: dict[str, Any], mode: str = "timm", image_size: int | None = None,
                          keras_mode: str | None = None, keras_interpolation: str = KERAS_INTERPOLATIONS[0]) -> Preprocessing:
    """Preprocessing from a timm pretrained config (its input size), or with a Keras mode's resize (its
    keras_interpolation) and normalisation. mode 'paper' takes keras_mode, the architecture's own Keras
    mode, and records it as the mode applied."""
    if mode not in PREPROCESSING_CHOICES:
        raise ValueError(f"unknown preprocessing {mode!r}; choose one of {', '.join(PREPROCESSING_CHOICES)}")
    if mode == PAPER_PREPROCESSING:
        if keras_mode not in KERAS_MODES:
            raise ValueError(f"preprocessing 'paper' needs the architecture's Keras mode, got {keras_mode!r}")
        mode = keras_mode
    size = image_size or int(pretrained_cfg["input_size"][-1])
    norm = KERAS_MODES.get(mode, {"bgr": False, "mean": tuple(pretrained_cfg["mean"]), "std": tuple(pretrained_cfg["std"])})
    keras = mode in KERAS_MODES
    if keras and keras_interpolation not in KERAS_INTERPOLATIONS:
        raise ValueError(f"unknown Keras interpolation {keras_interpolation!r}; choose one of {', '.join(KERAS_INTERPOLATIONS)}")
    return Preprocessing(
        image_size=size,
        interpolation=keras_interpolation if keras else str(pretrained_cfg.get("interpolation", "bilinear")),
        crop_pct=1.0 if keras else float(pretrained_cfg.get("crop_pct", 0.875)),
        mean=tuple(norm["mean"]),
        std=tuple(norm["std"]),
        bgr=norm["bgr"],
        mode=mode,
        resize="keras" if keras else "timm",
    )


def crops(choice: str) -> bool:
    """Whether a preprocessing choice (PREPROCESSING_CHOICES) centre-crops (timm's) or resizes the whole image (Keras')."""
    return choice not in (PAPER_PREPROCESSING, *KERAS_MODES)
