"""The paper's eight architectures as a registry of configs (as timm keeps one config per model): which
timm network is the backbone, which Keras preprocessing its Keras weights expect, Table 2's parameter
count, the smallest input it accepts. No torch, no timm: a sweep is planned and checked from here."""
from dataclasses import dataclass
from typing import Any

from harness.errors import UserError
from harness.zoo import KERAS_INPUT_SIZE, TIMM_WEIGHTS_ARE_KERAS


@dataclass(frozen=True)
class TimmInput:
    """What timm's pretrained config of an architecture's default ImageNet weights says of their input: the
    fields preprocessing reads. Kept here for the paper's eight, so that a job that only builds caches reads
    them without importing timm (seconds of CPU a job); held to the installed timm's by
    tests/unit/test_model_defaults.py, and by zoo.models.imagenet_cfg before any weights are loaded."""

    size: int
    interpolation: str
    crop_pct: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def as_cfg(self) -> dict[str, Any]:
        """As timm's pretrained config (PretrainedCfg.to_dict()) holds these fields."""
        return {"input_size": (3, self.size, self.size), "interpolation": self.interpolation, "crop_pct": self.crop_pct,
                "mean": self.mean, "std": self.std}


IMAGENET_MEAN_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
INCEPTION_MEAN_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    timm_name: str
    keras_mode: str | None  # None: not one of the paper's (any timm model, see zoo.lookup)
    paper_params: int | None
    min_image_size: int = 32
    # timm modules beyond Keras' include_top=False convolutional base.
    strip: tuple[str, ...] = ()
    # Why our Keras-style count cannot equal Table 2's, where it cannot.
    params_note: str = ""
    # Transformers built for one input size: built with timm's dynamic_img_size (position embeddings
    # resampled for any input), or, where timm cannot, accepting that one size only.
    dynamic_img_size: bool = False
    only_image_size: int | None = None
    # Where Keras' ImageNet weights for this application come from (what the paper loaded).
    keras_weights: str = ""
    # Training defaults of this architecture, used where the user gives no --lr / --warmup-epochs
    # (None: TrainConfig's); see training.config.PER_MODEL_OPTIONS.
    lr: float | None = None
    warmup_epochs: int | None = None
    # Built on depthwise-separable convolutions, which oneDNN trains 1.2-1.9x faster channels_last on a CPU
    # (benchmarks/channels_last.py); the demo's CPU runs of these take it.
    separable: bool = False
    # Its batch on the demo where no --batch-size is given (None: the sweep's): an architecture that learns
    # slowly from scratch gets more steps from the demo's 360 training images (12 an epoch at 32).
    demo_batch_size: int | None = None
    # timm's input config of its default weights (None outside the paper's eight: read from timm)
    timm_input: TimmInput | None = None

    @property
    def keras_input_size(self) -> int | None:
        """keras.applications' default input side (input_shape=None); None outside the paper's eight."""
        return KERAS_INPUT_SIZE.get(self.name)

    @property
    def timm_weights_are_keras(self) -> bool:
        """Whether timm's checkpoint is Keras' own, ported (the same weights)."""
        return self.name in TIMM_WEIGHTS_ARE_KERAS


MODEL_SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("ResNet50", "resnet50", "caffe", 24_637_313,
              timm_input=TimmInput(224, "bicubic", 0.95, *IMAGENET_MEAN_STD),
              params_note="Keras' ResNet50 convolutions carry biases (26,560 of them); timm's, followed by BatchNorm, do not.",
              keras_weights="Kaiming He's original Caffe release, ported (BGR, caffe-mode input)"),
    ModelSpec("VGG16", "vgg16", "caffe", 14_977_857, strip=("pre_logits",),
              timm_input=TimmInput(224, "bilinear", 0.875, *IMAGENET_MEAN_STD),
              keras_weights="Oxford VGG's original Caffe release, ported (BGR, caffe-mode input)",
              lr=1e-4, warmup_epochs=1),
    ModelSpec("VGG19", "vgg19", "caffe", 20_287_553, strip=("pre_logits",),
              timm_input=TimmInput(224, "bilinear", 0.875, *IMAGENET_MEAN_STD),
              keras_weights="Oxford VGG's original Caffe release, ported (BGR, caffe-mode input)",
              lr=1e-4, warmup_epochs=1),
    ModelSpec("DenseNet121", "densenet121", "torch", 7_562_817,
              timm_input=TimmInput(224, "bicubic", 0.875, *IMAGENET_MEAN_STD),
              keras_weights="the authors' original (Lua)Torch release, converted (torch-mode input)"),
    ModelSpec("MobileNetV2", "mobilenetv2_100", "tf", 2_914_369, separable=True,
              timm_input=TimmInput(224, "bicubic", 0.875, *IMAGENET_MEAN_STD),
              keras_weights="Google's TF-Slim checkpoint, translated (tf-mode input)"),
    ModelSpec("Xception", "legacy_xception", "tf", 21_911_081, min_image_size=71, separable=True,
              timm_input=TimmInput(299, "bicubic", 0.8975, *INCEPTION_MEAN_STD),
              keras_weights="trained by Keras' author (tf-mode input)"),
    ModelSpec("NASNetMobile", "nasnetamobile", "tf", 4_811_413, separable=True,
              timm_input=TimmInput(224, "bilinear", 0.875, *INCEPTION_MEAN_STD),
              keras_weights="Google's TF-Slim NASNet-A Mobile checkpoint, ported (tf-mode input)"),
    ModelSpec("InceptionV3", "inception_v3", "tf", 22_852_385, min_image_size=75,
              timm_input=TimmInput(299, "bicubic", 0.875, *INCEPTION_MEAN_STD),
              params_note="Keras' InceptionV3 BatchNorm has no scale (gamma); timm's has one per channel (17,216 of them).",
              keras_weights="trained by the Keras authors (tf-mode input)",
              # at 32 it was still learning after the demo's 60 steps: 63-77% over seeds, and 63% for seed 0 on one
              # CPU where another gave 73%; at 16, 75-80% (seeds 0-2, 2026-12-07), 67% for seed 0 on an AMD EPYC
              demo_batch_size=16),
)}
MODEL_NAMES = tuple(MODEL_SPECS)


def nearest_image_size(spec: ModelSpec, wanted: int) -> int:
    """The input size nearest to wanted that the architecture takes: its only size, or at least its minimum."""
    return spec.only_image_size or max(wanted, spec.min_image_size)


def check_image_size(spec: ModelSpec, image_size: int | None) -> None:
    """One line when an architecture cannot take that input size."""
    if image_size is not None and spec.only_image_size and image_size != spec.only_image_size:
        raise UserError(f"{spec.name} takes only {spec.only_image_size} px input (timm builds it for one size); "
                        f"use --image-size {spec.only_image_size} or leave it out")
    if image_size is not None and image_size < spec.min_image_size:
        raise UserError(f"{spec.name} needs --image-size of at least {spec.min_image_size} (got {image_size})")
