"""One run: train one architecture on one dataset with one seed, evaluate its best epoch, measure it.

Knows nothing of Slurm. Every completed epoch leaves a checkpoint (state.pt), so a run that is
stopped (time limit, preemption, requeue, a dead node) resumes from its last completed epoch.
"""
import csv
import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from harness.atomic import read_json, write_atomic, write_json_atomic
from harness.data.cache import CachedSplit, build_cache, load_split
from harness.errors import UserError
from harness.measure import (GpuSampler, StepMeter, environment, flops_per_image, peak_memory, peak_tflops,
                             resolve_device)
from harness.metrics import best_threshold, detection_metrics
from harness.models import Detector, build_model, keras_param_count, preprocessing_for
from harness.perturb import PERTURBATIONS, perturb
from harness.preprocessing import Preprocessing
from harness.progress import progress_bar
from harness.results import RESULT_SCHEMA

log = logging.getLogger("harness.training")
OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
FUSED_OPTIMIZER_DEVICES = ("cpu", "cuda")
MODES = ("transfer", "finetune")
PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
# Which epoch a run keeps, as a rank of its validation metrics (lower is better). Accuracy first: a
# model that has learnt a constant can have the lowest loss while it is right on half the images.
SELECT_BY = {
    "accuracy": lambda val: [-val["accuracy"], val["loss"]],  # highest accuracy; ties: lowest loss
    "loss": lambda val: [val["loss"]],  # Keras' ModelCheckpoint default
}
EVAL_BATCH = 128


@dataclass(frozen=True)
class TrainConfig:
    """Every value a run uses; recorded whole in its result."""

    model: str
    seed: int = 0
    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
    mode: str = "finetune"  # transfer: backbone frozen, head trained (the paper); finetune: all trained
    weights: str = "none"  # imagenet | none | path to a weights file
    image_size: int | None = None  # None: the architecture's own input size
    preprocessing: str = "timm"  # timm | caffe | torch | tf
    train_generator: str | None = None  # train (and validate) on the fakes of this generator only
    select_by: str = "accuracy"  # the epoch kept and tested: see SELECT_BY
    precision: str = "fp32"
    channels_last: bool = False
    device: str = "auto"

    def validate(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise UserError(f"--lr must be a positive number, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.mode not in MODES:
            raise UserError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.select_by not in SELECT_BY:
            raise UserError(f"unknown --select-by {self.select_by!r}; choose one of {', '.join(SELECT_BY)}")
        if self.precision not in PRECISIONS:
            raise UserError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.image_size is not None and self.image_size < 1:
            raise UserError(f"--image-size must be a positive number of pixels, got {self.image_size}")
        preprocessing_for(self.model, self.preprocessing, self.image_size)

    def resolved_preprocessing(self) -> Preprocessing:
        return preprocessing_for(self.model, self.preprocessing, self.image_size)


@dataclass
class DeviceSplit:
    """A split's uint8 images and labels, on the device when they fit there."""

    images: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def load(cls, split: CachedSplit, device: torch.device) -> "DeviceSplit":
        images = torch.from_numpy(np.array(split.images))  # one read of the memory-mapped cache
        labels = torch.tensor(split.labels, dtype=torch.float32)
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if images.numel() < free // 4:  # leave most of the memory to the model
                return cls(images.to(device), labels.to(device))
            return cls(images.pin_memory(), labels.pin_memory())
        return cls(images, labels)

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: torch.Tensor | slice, device: torch.device) -> torch.Tensor:
        """The uint8 images at index (a slice, or a tensor on the images' device), on device."""
        return self.images[index].to(device, non_blocking=True)


def make_optimizer(name: str, params: list[torch.nn.Parameter], lr: float, device: torch.device) -> torch.optim.Optimizer:
    """The optimiser, fused where torch has a fused kernel for the device: a few launches per step
    instead of several per parameter, and no reads of its step counter on the host."""
    return OPTIMIZERS[name](params, lr=lr, fused=device.type in FUSED_OPTIMIZER_DEVICES)


class Run:
    """The state of one run while it trains; see train_run."""

    def __init__(self, config: TrainConfig, dataset: Path, cache_root: Path, folder: Path) -> None:
        config.validate()
        self.config, self.folder = config, Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(config.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest kernels once
        self.pre = config.resolved_preprocessing()
        self.cache = build_cache(dataset, self.pre.resize_key, cache_root)
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        self.model: Detector = build_model(config.model, config.weights).to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if config.mode == "transfer":
            self.model.backbone.requires_grad_(False)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(config.optimizer, trainable, config.lr, self.device)
        self.dtype = PRECISIONS[config.precision]
        if self.dtype is torch.float16 and self.device.type != "cuda":
            raise UserError("--precision fp16 needs a GPU; use fp32 or bf16 on a CPU")
        if self.dtype is torch.bfloat16 and self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise UserError(f"--precision bf16 is not supported by {torch.cuda.get_device_name(self.device)}; use fp16 or fp32")
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype is torch.float16)
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"epoch": None, "rank": None}
        self.start_epoch = 0

    # --- the step, shared by training, the flop count and the overhead benchmark ---
    def set_train_mode(self) -> None:
        self.model.train()
        if self.config.mode == "transfer":
            self.model.backbone.eval()  # a frozen backbone keeps its BatchNorm statistics, as Keras does

    def inputs(self, images_uint8: torch.Tensor, flip: torch.Tensor | None = None) -> torch.Tensor:
        """The network's input: normalised on the device, flipped horizontally where flip is True."""
        x = self.pre.normalise(images_uint8, flip)
        return x.contiguous(memory_format=torch.channels_last if self.config.channels_last else torch.contiguous_format)

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None)

    def train_step(self, images_uint8: torch.Tensor, labels: torch.Tensor, flip: torch.Tensor | None) -> torch.Tensor:
        """One optimiser step; returns the batch's logits (detached, left on the device)."""
        x = self.inputs(images_uint8, flip)
        with self.autocast():
            logits = self.model(x).float()
            loss = F.binary_cross_entropy_with_logits(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return logits.detach()

    @torch.no_grad()
    def predict(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """Probabilities that images are fake."""
        with self.autocast():
            return torch.sigmoid(self.model(self.inputs(images_uint8)).float())

    # --- epochs ---
    def train_epoch(self, data: DeviceSplit, epoch: int, meter: StepMeter) -> dict[str, float]:
        """One pass over the training split; loss and accuracy as the steps saw them (as Keras reports).

        The order, the flips and the labels are drawn once per epoch (from the seed and the epoch, so a
        resumed run repeats them) and the tally is made at its end: a step launches nothing but its own
        work and never waits for the device.
        """
        self.set_train_mode()
        draw = torch.Generator().manual_seed(self.config.seed * 1000 + epoch)
        order = torch.randperm(len(data), generator=draw)
        flips = (torch.rand(len(data), generator=draw) < 0.5).to(self.device)
        order = order.to(data.images.device)
        labels = data.labels[order].to(self.device)
        starts = range(0, len(data), self.config.batch_size)
        logits = []
        with progress_bar() as bar, meter.timing():
            task = bar.add_task(f"{self.config.model} epoch {epoch + 1}/{self.config.epochs}", total=len(starts))
            for start in starts:
                step = slice(start, start + self.config.batch_size)
                fetch = time.perf_counter()
                images = data.take(order[step], self.device)
                data_seconds = time.perf_counter() - fetch
                logits.append(self.train_step(images, labels[step], flips[step]))
                meter.step(len(images), data_seconds)
                bar.advance(task)
        seen = torch.cat(logits)
        return {"train_loss": F.binary_cross_entropy_with_logits(seen, labels).item(),
                "train_accuracy": ((seen >= 0) == (labels >= 0.5)).float().mean().item()}

    def evaluate(self, data: DeviceSplit, meter: StepMeter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and labels of a split; meter, if given, times the pass (inference throughput)."""
        self.model.eval()
        meter = meter or StepMeter(self.device, warmup=len(data))  # a meter that never starts counting
        probs = []
        with meter.timing():
            for start in range(0, len(data), EVAL_BATCH):
                fetch = time.perf_counter()
                images = data.take(slice(start, start + EVAL_BATCH), self.device)
                data_seconds = time.perf_counter() - fetch
                probs.append(self.predict(images))
                meter.step(len(images), data_seconds)
        return torch.cat(probs).float().cpu().numpy(), data.labels.cpu().numpy()

    # --- checkpoints ---
    def save_state(self, epoch: int) -> None:
        state = {"epoch": epoch, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scaler": self.scaler.state_dict(), "history": self.history, "best": self.best}
        # Write the new checkpoint in full first, then rotate: a kill at any moment leaves a whole
        # state.pt or, for the instant between the two renames, a whole state.prev.pt.
        fresh, current = self.folder / "state.next.pt", self.folder / "state.pt"
        write_atomic(fresh, lambda tmp: torch.save(state, tmp))
        if current.exists():
            current.replace(self.folder / "state.prev.pt")
        fresh.replace(current)

    def restore_state(self) -> None:
        """Resume from the newest readable checkpoint; a damaged one is set aside with a warning."""
        for name in ("state.pt", "state.prev.pt"):
            path = self.folder / name
            if not path.exists():
                continue
            try:
                state = torch.load(path, map_location=self.device, weights_only=True)
                self.model.load_state_dict(state["model"])
                self.optimizer.load_state_dict(state["optimizer"])
                self.scaler.load_state_dict(state["scaler"])
            except Exception as err:
                aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
                path.replace(aside)
                log.warning("checkpoint %s cannot be read (%s); set aside as %s", path, err, aside.name)
                continue
            self.history, self.best, self.start_epoch = list(state["history"]), dict(state["best"]), int(state["epoch"])
            log.info("resumed from %s after epoch %d", path.name, self.start_epoch)
            return
        if (self.folder / "best.pt").exists() or list(self.folder.glob("state*.damaged-*")):
            log.warning("no readable checkpoint: training starts over")


def only_generator(split: CachedSplit, generator: str | None, seed: int) -> CachedSplit:
    """The real images and the fakes of one generator, with as many reals as fakes (drawn with seed)."""
    if generator is None:
        return split
    generators = split.index["generator"].to_numpy()
    fakes = np.flatnonzero((split.labels == 1) & (generators == generator))
    if len(fakes) == 0:
        raise UserError(f"no fakes of generator {generator!r} in this split; the dataset has {sorted(set(generators) - {''})}")
    reals = np.flatnonzero(split.labels == 0)
    reals = np.sort(np.random.default_rng(seed).choice(reals, min(len(reals), len(fakes)), replace=False))
    keep = np.sort(np.concatenate([reals, fakes]))
    return CachedSplit(images=np.asarray(split.images[keep]), labels=split.labels[keep],
                       index=split.index.iloc[keep].reset_index(drop=True))


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"])
            writer.writeheader()
            writer.writerows(history)
    write_atomic(path, write)


def _count_attempt(folder: Path) -> int:
    """How many times this run has started (a requeued or resumed run starts again)."""
    path = folder / "attempts.json"
    attempts = (read_json(path)["attempts"] if path.exists() else 0) + 1
    write_json_atomic(path, {"attempts": attempts})
    return attempts


def _progress(folder: Path, **fields: Any) -> None:
    write_json_atomic(folder / "progress.json", {**fields, "updated": datetime.now(timezone.utc).isoformat()})


def _flop_counts(run: Run, train: DeviceSplit) -> tuple[int | None, int | None]:
    sample, labels = train.take(slice(0, 2), run.device), train.labels[:2].to(run.device)
    weights = {k: v.clone() for k, v in run.model.state_dict().items()}
    optimizer_state = run.optimizer.state_dict()
    try:
        train_flops = flops_per_image(lambda: run.train_step(sample, labels, flip=None), len(sample))
        infer_flops = flops_per_image(lambda: run.predict(sample), len(sample))
    finally:  # the count must not move the model
        run.model.load_state_dict(weights)
        run.optimizer.load_state_dict(optimizer_state)
    return train_flops, infer_flops


def train_run(config: TrainConfig, dataset: Path, cache_root: Path, folder: Path, sweep_id: str = "") -> dict[str, Any]:
    """Train, keep the best epoch on val (config.select_by), evaluate it on test, measure; returns and
    writes result.json."""
    started = datetime.now(timezone.utc).isoformat()
    folder = Path(folder)
    attempts = _count_attempt(folder)
    run = Run(config, dataset, cache_root, folder)
    run.restore_state()
    cached = {name: load_split(run.cache, name) for name in ("train", "val", "test")}
    splits = {name: DeviceSplit.load(only_generator(cached[name], config.train_generator, config.seed), run.device)
              for name in ("train", "val")}
    splits["test"] = DeviceSplit.load(cached["test"], run.device)
    train_flops, infer_flops = _flop_counts(run, splits["train"])

    meter = StepMeter(run.device)
    sampler = GpuSampler(run.device)
    watch_train = time.perf_counter()
    with sampler.sampling():
        for epoch in range(run.start_epoch, config.epochs):
            _progress(folder, state="training", epoch=epoch + 1, epochs=config.epochs,
                      val_accuracy=run.history[-1]["val_accuracy"] if run.history else None)
            with sampler.measuring():
                stats = run.train_epoch(splits["train"], epoch, meter)
            val_probs, val_labels = run.evaluate(splits["val"])
            val = detection_metrics(val_labels, val_probs)
            row = {"epoch": epoch + 1, **stats, "val_loss": val["loss"], "val_accuracy": val["accuracy"]}
            run.history.append(row)
            rank = SELECT_BY[config.select_by](val)
            if run.best.get("rank") is None or rank < run.best["rank"]:
                run.best = {"epoch": epoch + 1, "rank": rank}
                write_atomic(folder / "best.pt", lambda tmp: torch.save(run.model.state_dict(), tmp))
            _write_history(folder / "history.csv", run.history)
            run.save_state(epoch + 1)
            _progress(folder, state="training", epoch=epoch + 1, epochs=config.epochs, val_accuracy=val["accuracy"])
            log.info("%s epoch %d/%d: train loss %.4f, val loss %.4f, val accuracy %.4f", config.model, epoch + 1,
                     config.epochs, row["train_loss"], row["val_loss"], row["val_accuracy"])
    train_seconds = time.perf_counter() - watch_train

    _progress(folder, state="evaluating", epoch=config.epochs, epochs=config.epochs,
              val_accuracy=run.history[-1]["val_accuracy"])
    run.model.load_state_dict(torch.load(folder / "best.pt", map_location=run.device, weights_only=True))
    val_probs, val_labels = run.evaluate(splits["val"])
    threshold = best_threshold(val_labels, val_probs)
    infer_meter = StepMeter(run.device, warmup=0)  # the model is already warm from the validation passes
    test_probs, test_labels = run.evaluate(splits["test"], infer_meter)
    np.save(folder / "test_scores.npy", np.stack([test_labels, test_probs]))
    robustness = {}
    for name in PERTURBATIONS:
        perturbed = DeviceSplit.load(replace(cached["test"], images=perturb(cached["test"].images, name)), run.device)
        probs, labels = run.evaluate(perturbed)
        robustness[name] = detection_metrics(labels, probs, threshold)
    cross_generator = {}
    for generator in sorted(set(cached["test"].index["generator"]) - {""}):
        probs, labels = run.evaluate(DeviceSplit.load(only_generator(cached["test"], generator, config.seed), run.device))
        cross_generator[generator] = detection_metrics(labels, probs, threshold)

    env = environment(run.device)
    train_ips = meter.images_per_s()
    peak = peak_tflops(env["device_name"], config.precision) if run.device.type == "cuda" else None
    achieved = train_flops * train_ips / 1e12 if train_flops and train_ips else None
    record = {
        "schema_version": RESULT_SCHEMA,
        "sweep_id": sweep_id,
        "run_id": folder.name,
        "model": config.model,
        "seed": config.seed,
        "status": "COMPLETED",
        "error": None,
        "config": asdict(config),
        "preprocessing": run.pre.as_dict(),
        "cache": str(run.cache),
        "params": keras_param_count(run.model),
        "trainable_params": sum(p.numel() for p in run.model.parameters() if p.requires_grad),
        "best_epoch": run.best["epoch"],
        "epochs_completed": len(run.history),
        "val": detection_metrics(val_labels, val_probs, threshold),
        "test": detection_metrics(test_labels, test_probs, threshold),
        "robustness": robustness,
        "cross_generator": cross_generator,
        "throughput": {
            "train_images_per_s": train_ips,
            "infer_images_per_s": infer_meter.images_per_s(),
            "data_wait_fraction": meter.data_wait_fraction(),
            "steady_train_steps": max(0, meter.seen - meter.warmup),
            "train_flops_per_image": train_flops,
            "infer_flops_per_image": infer_flops,
            "achieved_tflops": achieved,
            "mfu": achieved / peak if achieved and peak else None,
            "mfu_reason": None if achieved and peak else (
                "no GPU in use" if run.device.type != "cuda" else f"peak of {env['device_name']} at {config.precision} unknown"),
        },
        "memory": peak_memory(run.device),
        "gpu": sampler.summary(),
        "environment": env,
        "requeues": attempts - 1,
        "train_seconds_this_attempt": train_seconds,
        "started_at": started,
        "finished_at": datetime.now(timezone.utc).isoformat(),
    }
    write_json_atomic(folder / "result.json", record)
    _progress(folder, state="done", epoch=config.epochs, epochs=config.epochs, val_accuracy=run.history[-1]["val_accuracy"])
    return record
