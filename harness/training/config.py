"""TrainConfig: every value a run uses, recorded whole in its result. Imports no torch: the command
line reads its choices and defaults from here."""
import math
import re
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import UserError
from harness.store.records import SWEEP_MINOR, RunSpec, SweepSpec
from harness.zoo import MAX_IMAGE_SIZE
from harness.zoo.preprocessing import KERAS_INTERPOLATIONS

if TYPE_CHECKING:
    from harness.zoo.preprocessing import Preprocessing

OPTIMIZERS = ("adam", "adamw", "sgd")
MODES = ("transfer", "finetune")
PRECISIONS = ("fp32", "fp16", "bf16")
# Which epoch a run keeps (see run.SELECT_BY): highest val accuracy (ties: lowest loss), or Keras' lowest loss.
SELECT_BY = ("accuracy", "loss")
DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]{1,3})?")  # re.fullmatch: "cuda\n" is no device
WEIGHTS_KEYWORDS = ("imagenet", "none")
# The largest values a run takes: far beyond any study (the paper trains 5 epochs at batch 32, lr 1e-3),
# small enough that a slip of the keyboard is refused rather than queued for ever.
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 65_536
MAX_LR = 10.0
MAX_WORLD_SIZE = 1_024  # ranks of one run: Horovod's largest published run is 512 GPUs
LR_SCALING = ("none", "linear")  # linear: lr x world size (Goyal et al. 2017), as the global batch grows


@dataclass(frozen=True)
class TrainConfig:
    model: str
    seed: int = 0
    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3  # an architecture's own default (zoo.registry, ModelSpec.lr) when --lr is not given
    warmup_epochs: int = 0  # the lr rises linearly over the first N epochs' steps (ModelSpec.warmup_epochs)
    optimizer: str = "adam"
    mode: str = "finetune"  # transfer: backbone frozen, head trained (the paper); finetune: all trained
    weights: str = "none"  # imagenet | none | path to a weights file
    image_size: int | None = None  # None: the architecture's own input size
    preprocessing: str = "timm"  # timm | paper (each architecture's Keras mode) | caffe | torch | tf
    keras_resize: str = "bilinear"  # a Keras mode's resize: bilinear (tf.image.resize, Keras' default) | nearest (load_img)
    train_generator: str | None = None  # train (and validate) on the fakes of this generator only
    resplit: bool = False  # each seed draws its own train/val/test split (by source group) from the whole dataset
    select_by: str = "accuracy"  # the epoch kept and tested
    precision: str = "fp32"
    tf32: bool = False  # fp32 matmuls and convolutions on TF32 tensor cores (else IEEE fp32)
    channels_last: bool = False
    device: str = "auto"
    compile: bool = False  # the step's forward and loss through torch.compile (Trainer.compile_step)
    allow_random_backbone: bool = False  # --mode transfer --weights none: train a head on frozen random features
    keep_checkpoints: bool = False  # a completed run keeps its resume checkpoints (state.pt), not only best.pt
    # The perturbed passes score at most this many test images, as many of each class, the same for every run
    # (training.evaluate.robustness_positions); None: the whole test split. A sweep on the demo sets it.
    robustness_images: int | None = None
    # Data-parallel training (training.distributed): ranks of batch_size images each, one per GPU (a process
    # per rank on a CPU), spread evenly over nodes; the lr follows lr_scaling as the global batch grows.
    world_size: int = 1
    nodes: int = 1
    lr_scaling: str = "none"
    sync_bn: bool = False  # batch normalisation over the global batch, not each rank's share
    # Time the training step and inference on random tensors of the run's batch and image size, no dataset
    # (sweep --synthetic, training.synthetic): the speed figures alone, in seconds.
    synthetic: bool = False

    @property
    def scaled_lr(self) -> float:
        """The lr the optimiser uses: lr, times the world size under linear scaling."""
        return self.lr * self.world_size if self.lr_scaling == "linear" else self.lr

    def validate(self) -> None:
        for name, most in (("epochs", MAX_EPOCHS), ("batch_size", MAX_BATCH_SIZE)):
            if not 1 <= getattr(self, name) <= most:
                raise UserError(f"--{name.replace('_', '-')} must be between 1 and {most}, got {getattr(self, name)}")
        if self.robustness_images is not None and self.robustness_images < 2:
            raise UserError(f"robustness_images must be 2 or more (one image of each class), got {self.robustness_images}")
        if not 1 <= self.world_size <= MAX_WORLD_SIZE:
            raise UserError(f"--gpus-per-run must be between 1 and {MAX_WORLD_SIZE}, got {self.world_size}")
        if not 1 <= self.nodes <= self.world_size or self.world_size % self.nodes:
            raise UserError(f"--nodes-per-run {self.nodes} must divide --gpus-per-run {self.world_size}: every node "
                            "holds as many ranks")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise UserError(f"--warmup-epochs must be between 0 and --epochs ({self.epochs}): the warm-up is part of "
                            f"the training, got {self.warmup_epochs}")
        if not 0 < self.lr <= MAX_LR or not math.isfinite(self.lr):
            raise UserError(f"--lr must be more than 0 and at most {MAX_LR:g}, got {self.lr:g}")
        if self.scaled_lr > MAX_LR:
            raise UserError(f"--lr {self.lr:g} x {self.world_size} ranks (--lr-scaling linear) is {self.scaled_lr:g}, "
                            f"above {MAX_LR:g}")
        for option, value, allowed in (("--optimizer", self.optimizer, OPTIMIZERS), ("--mode", self.mode, MODES),
                                       ("--keras-resize", self.keras_resize, KERAS_INTERPOLATIONS),
                                       ("--select-by", self.select_by, SELECT_BY), ("--precision", self.precision, PRECISIONS),
                                       ("--lr-scaling", self.lr_scaling, LR_SCALING)):
            if value not in allowed:
                raise UserError(f"unknown {option} {value!r}; choose one of {', '.join(allowed)}")
        if self.image_size is not None and not 1 <= self.image_size <= MAX_IMAGE_SIZE:
            raise UserError(f"--image-size must be between 1 and {MAX_IMAGE_SIZE} pixels, got {self.image_size}")
        if not DEVICE.fullmatch(self.device):
            raise UserError(f"unknown --device {self.device!r}; choose auto, cpu, cuda or cuda:N")
        from harness.zoo.lookup import spec_of  # the paper's eight without importing timm
        from harness.zoo.registry import check_image_size

        check_image_size(spec_of(self.model), self.image_size)

    def check_workable(self) -> None:
        """Refuse, at submission, a setting that runs but cannot work. (Not part of validate, which every job
        runs too: a sweep submitted before this check existed still resumes.)"""
        if self.mode == "transfer" and self.weights == "none" and not self.allow_random_backbone:
            raise UserError("--mode transfer --weights none would train only the head on a frozen random backbone, "
                            "which learns little: give --weights imagenet (or a weights file), or --mode finetune; "
                            "--allow-random-backbone to insist")

    def resolved_preprocessing(self) -> "Preprocessing":
        from harness.zoo.lookup import preprocessing_for

        return preprocessing_for(self.model, self.preprocessing, self.image_size, self.keras_resize)


TRAIN_OPTIONS = tuple(f.name for f in fields(TrainConfig) if f.name not in ("model", "seed"))
# Options an architecture may set for itself (zoo.registry.ModelSpec, as timm keeps per-model defaults): a
# sweep records None for them when the user gives none, and each run's config holds the value it used.
PER_MODEL_OPTIONS = ("lr", "warmup_epochs")


def train_options(**values: Any) -> dict[str, Any]:
    """The training options of a sweep, every TrainConfig field spelled out (None: the default; for
    PER_MODEL_OPTIONS None stays, meaning each architecture's own default)."""
    defaults = asdict(TrainConfig(model=""))
    unknown = set(values) - set(TRAIN_OPTIONS)
    if unknown:
        raise ValueError(f"unknown training options {sorted(unknown)}")
    return {name: (None if name in PER_MODEL_OPTIONS else defaults[name]) if values.get(name) is None else values[name]
            for name in TRAIN_OPTIONS}


def model_defaults(model: str) -> dict[str, Any]:
    """The PER_MODEL_OPTIONS an architecture trains with when the user gives none: its ModelSpec's
    value (one of the eight, by its name or its timm name, a pretrained tag allowed), else TrainConfig's."""
    from harness.zoo.registry import MODEL_SPECS

    by_timm_name = {s.timm_name: s for s in MODEL_SPECS.values()}
    spec, defaults = MODEL_SPECS.get(model) or by_timm_name.get(model.split(".")[0]), asdict(TrainConfig(model=""))
    own = {name: getattr(spec, name, None) for name in PER_MODEL_OPTIONS}
    return {name: defaults[name] if own[name] is None else own[name] for name in PER_MODEL_OPTIONS}


def config_for(spec: SweepSpec, run: RunSpec) -> TrainConfig:
    """A run's config: the sweep's training options, the run's variant overrides, its architecture and seed;
    an option left None (lr, warmup_epochs) takes the architecture's own default."""
    options = {**spec.train, **run.overrides}
    unknown = set(options) - set(TRAIN_OPTIONS)
    if unknown and spec.schema_minor <= SWEEP_MINOR:
        raise UserError(f"sweep {spec.sweep_id}: unknown training options {', '.join(sorted(unknown))} in sweep.json")
    for name in unknown:  # a later harness's option (a newer schema_minor): read past, as from_versioned_fields does
        options.pop(name)
    own = model_defaults(run.model)
    options.update({name: own[name] for name in PER_MODEL_OPTIONS if options.get(name) is None})
    return TrainConfig(model=run.model, seed=run.seed, **options)


def check_train_types(config: TrainConfig) -> TrainConfig:
    """config, each value of its field's type (a config read back from sweep.json may hold anything)."""
    from harness.store.schema import matches_type

    hints = typing.get_type_hints(TrainConfig)
    for name, kind in hints.items():
        value = getattr(config, name)
        if not matches_type(value, kind) or (kind is float and isinstance(value, float) and not math.isfinite(value)):
            raise UserError(f"training option {name} is {value!r:.60}, not {getattr(kind, '__name__', kind)}")
    return config


def check_weights_file(weights: str) -> Path:
    """--weights FILE, checked when the sweep is planned rather than inside every job: the file exists and
    holds a state dict of tensors (read with weights_only=True: loading never runs code). Returns its
    absolute path, which the jobs read whatever their working folder."""
    path = Path(weights)
    if "\x00" in weights or not path.exists():
        raise UserError(f"--weights {weights!r} does not exist; use imagenet, none or a weights file (.pt, .pth, .safetensors)")
    if not path.is_file():
        raise UserError(f"--weights {weights}: not a file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            import torch

            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any way a file can fail to be a checkpoint (pickle, zip, I/O, refused globals)
        text = str(err)
        if "GLOBAL" in text or "Unsupported global" in text:  # torch's weights-only loader refused a Python object
            raise UserError(f"--weights {weights} holds Python objects other than tensors: refused, loading them "
                            "could run code (save a state dict: torch.save(model.state_dict(), path))") from None
        # torch's own explanation of a weights-only failure is a page long: its reason is after "error:"
        reason = [line for line in text.partition("WeightsUnpickler error:")[2].splitlines() if line.strip()]
        first = (reason or text.strip().splitlines() or [type(err).__name__])[0].strip()
        raise UserError(f"--weights {weights} is not a state dict torch can read ({type(err).__name__}: {first:.200})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state:
        raise UserError(f"--weights {weights} holds a {type(state).__name__}, not a state dict (names to tensors)")
    import torch

    wrong = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if wrong:
        raise UserError(f"--weights {weights}: {wrong[0]!r} is not a tensor; a state dict maps names to tensors")
    return path.resolve()
