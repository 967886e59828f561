"""TrainConfig: every value a run uses, recorded whole in its result. Imports no torch: the command
line reads its choices and defaults from here."""
import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from harness.errors import UserError
from harness.store.records import RunSpec, SweepSpec

if TYPE_CHECKING:
    from harness.zoo.preprocessing import Preprocessing

OPTIMIZERS = ("adam", "adamw", "sgd")
MODES = ("transfer", "finetune")
PRECISIONS = ("fp32", "fp16", "bf16")
# Which epoch a run keeps (see run.SELECT_BY): highest val accuracy (ties: lowest loss), or Keras' lowest loss.
SELECT_BY = ("accuracy", "loss")


@dataclass(frozen=True)
class TrainConfig:
    model: str
    seed: int = 0
    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
    mode: str = "finetune"  # transfer: backbone frozen, head trained (the paper); finetune: all trained
    weights: str = "none"  # imagenet | none | path to a weights file
    image_size: int | None = None  # None: the architecture's own input size
    preprocessing: str = "timm"  # timm | paper (each architecture's Keras mode) | caffe | torch | tf
    train_generator: str | None = None  # train (and validate) on the fakes of this generator only
    select_by: str = "accuracy"  # the epoch kept and tested
    precision: str = "fp32"
    tf32: bool = False  # fp32 matmuls and convolutions on TF32 tensor cores (else IEEE fp32)
    channels_last: bool = False
    device: str = "auto"
    compile: bool = False  # the step's forward and loss through torch.compile (Run.compile_step)
    allow_random_backbone: bool = False  # --mode transfer --weights none: train a head on frozen random features

    def validate(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise UserError(f"--lr must be a positive number, got {self.lr}")
        for option, value, allowed in (("--optimizer", self.optimizer, OPTIMIZERS), ("--mode", self.mode, MODES),
                                       ("--select-by", self.select_by, SELECT_BY), ("--precision", self.precision, PRECISIONS)):
            if value not in allowed:
                raise UserError(f"unknown {option} {value!r}; choose one of {', '.join(allowed)}")
        if self.image_size is not None and self.image_size < 1:
            raise UserError(f"--image-size must be a positive number of pixels, got {self.image_size}")
        from harness.zoo.registry import check_image_size, spec_of  # the paper's eight without importing timm

        check_image_size(spec_of(self.model), self.image_size)

    def check_workable(self) -> None:
        """Refuse, at submission, a setting that runs but cannot work. (Not part of validate, which every job
        runs too: a sweep submitted before this check existed still resumes.)"""
        if self.mode == "transfer" and self.weights == "none" and not self.allow_random_backbone:
            raise UserError("--mode transfer --weights none would train only the head on a frozen random backbone, "
                            "which learns little: give --weights imagenet (or a weights file), or --mode finetune; "
                            "--allow-random-backbone to insist")

    def resolved_preprocessing(self) -> "Preprocessing":
        from harness.zoo.models import preprocessing_for

        return preprocessing_for(self.model, self.preprocessing, self.image_size)


TRAIN_OPTIONS = tuple(f.name for f in fields(TrainConfig) if f.name not in ("model", "seed"))


def train_options(**values: Any) -> dict[str, Any]:
    """The training options of a sweep, every TrainConfig field spelled out (None: the default)."""
    defaults = asdict(TrainConfig(model=""))
    unknown = set(values) - set(TRAIN_OPTIONS)
    if unknown:
        raise ValueError(f"unknown training options {sorted(unknown)}")
    return {name: defaults[name] if values.get(name) is None else values[name] for name in TRAIN_OPTIONS}


def config_for(spec: SweepSpec, run: RunSpec) -> TrainConfig:
    """A run's config: the sweep's training options, the run's variant overrides, its architecture and seed."""
    options = {**spec.train, **run.overrides}
    unknown = set(options) - set(TRAIN_OPTIONS)
    if unknown:
        raise UserError(f"sweep {spec.sweep_id}: unknown training options {', '.join(sorted(unknown))} in sweep.json")
    return TrainConfig(model=run.model, seed=run.seed, **options)
