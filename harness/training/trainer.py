"""One run's training: the device-resident split, the step, the epoch loop, checkpoints.

Knows nothing of Slurm. Every completed epoch leaves a checkpoint (state.pt), so a run that is
stopped (time limit, preemption, requeue, a dead node) resumes from its last completed epoch.
"""
import copy
import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from harness.data.cache import CachedSplit, build_cache
from harness.errors import UserError
from harness.gpus import precision_refusal
from harness.measure.flops import set_float32_matmul
from harness.measure.meters import CopyWait, StepMeter, resolve_device, synchronize
from harness.progress import progress_bar
from harness.store.atomic import write_atomic
from harness.store.paths import RunPaths
from harness.training import distributed
from harness.training.config import TrainConfig
from harness.training.distributed import Ranks
from harness.zoo.models import Detector, build_model

log = logging.getLogger("harness.training")
OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
FUSED_OPTIMIZER_DEVICES = ("cpu", "cuda")
DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
# Which epoch a run keeps, as a rank of its validation metrics (lower is better). Accuracy first: a
# model that has learnt a constant can have the lowest loss while it is right on half the images.
SELECT_BY = {
    "accuracy": lambda val: [-val["accuracy"], val["loss"]],  # highest accuracy; ties: lowest loss
    "loss": lambda val: [val["loss"]],  # Keras' ModelCheckpoint default
}
EVAL_BATCH = 128


class TrainingDiverged(UserError):
    """The loss left the finite numbers: the run fails, its error saying so (stats.collapse.DIVERGED)."""


class PinnedStaging:
    """The copies of a host-resident split's batches to the GPU, overlapping the work already queued.

    Indexing a pinned tensor returns pageable memory, and a copy from pageable memory holds the host
    until it is done (counted as data wait, and nothing is queued meanwhile). So a batch is gathered
    into one of `depth` pinned buffers and copied from there on a stream of its own; the step's stream
    waits for that copy alone. A buffer is written again only once the copy that read it is done: the
    host then waits for the transfer itself, which is data wait.
    """

    def __init__(self, device: torch.device, depth: int = 2) -> None:
        self.device = device
        self.stream = torch.cuda.Stream(device)
        self.buffers: list[torch.Tensor | None] = [None] * depth
        self.copied: list[torch.cuda.Event | None] = [None] * depth  # the event of the copy that last read each buffer
        self.turn = 0
        self.last_wait: CopyWait | None = None  # the events around the step stream's wait on the last copy

    def copy(self, images: torch.Tensor, index: torch.Tensor | slice) -> torch.Tensor:
        """images[index] (images pinned on the host, index on the host), on the device for the current stream."""
        turn = None
        if isinstance(index, slice):
            source = images[index]  # a view of the split: pinned as it is, never written
        else:
            turn, self.turn = self.turn, (self.turn + 1) % len(self.buffers)
            if (copied := self.copied[turn]) is not None:
                copied.synchronize()
            buffer = self.buffers[turn]
            if buffer is None or len(buffer) < len(index):
                buffer = self.buffers[turn] = torch.empty((len(index), *images.shape[1:]), dtype=images.dtype, pin_memory=True)
            source = torch.index_select(images, 0, index, out=buffer[:len(index)])
        step_stream = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self.stream):
            batch = source.to(self.device, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.stream)
        # The step stream's own wait on this copy, timed on the GPU between two events on it: the time the
        # GPU stood idle for its data (the host's fetch time is another thing: data_wait_fraction).
        waits, resumes = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        waits.record(step_stream)
        step_stream.wait_event(done)
        resumes.record(step_stream)
        self.last_wait = (waits, resumes)
        batch.record_stream(step_stream)  # its memory is not handed out again until the step is done with it
        if turn is not None:
            self.copied[turn] = done
        return batch


@dataclass
class DeviceSplit:
    """A split's uint8 images and labels: on the device where they fit there; on a GPU too small for
    them, pinned on the host, their batches copied through a PinnedStaging."""

    images: torch.Tensor
    labels: torch.Tensor
    staging: PinnedStaging | None = None

    @classmethod
    def load(cls, split: CachedSplit, device: torch.device) -> "DeviceSplit":
        images = torch.from_numpy(np.array(split.images))  # one read of the memory-mapped cache
        labels = torch.tensor(split.labels, dtype=torch.float32)
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if images.numel() >= free // 4:  # leave most of the memory to the model
                return cls.on_host(images, labels, device)
        return cls(images.to(device), labels.to(device))

    @classmethod
    def on_host(cls, images: torch.Tensor, labels: torch.Tensor, device: torch.device) -> "DeviceSplit":
        """The split pinned in host memory, its batches copied to the GPU device as they are taken."""
        return cls(images.pin_memory(), labels.pin_memory(), PinnedStaging(device))

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: torch.Tensor | slice, device: torch.device) -> torch.Tensor:
        """The uint8 images at index (a slice, or a tensor on the images' device), on device."""
        if self.staging is not None:
            return self.staging.copy(self.images, index)
        return self.images[index].to(device, non_blocking=True)

    def copy_wait(self) -> CopyWait | None:
        """The events around the GPU's wait on the last batch's copy from the host (None: no such copy)."""
        return self.staging.last_wait if self.staging is not None else None


def make_optimizer(name: str, params: list[torch.nn.Parameter], lr: float, device: torch.device) -> torch.optim.Optimizer:
    """The optimiser, fused where torch has a fused kernel for the device: a few launches per step
    instead of several per parameter, and no reads of its step counter on the host."""
    return OPTIMIZERS[name](params, lr=lr, fused=device.type in FUSED_OPTIMIZER_DEVICES)


def freeze_unreached(model: torch.nn.Module, image_size: int, device: torch.device) -> list[str]:
    """Freeze the trainable parameters the detector's forward pass never reaches (a timm backbone's own
    head norm, as ConvNeXt's: the detector pools forward_features; none of the paper's eight has one).
    They never get a gradient, DDP waits for one from every trainable parameter, and the record's
    trainable_params should not count them. Found by one backward pass in eval mode (no statistics
    move); returns their names."""
    training = model.training
    model.eval()
    with torch.enable_grad():
        model(torch.zeros(2, 3, image_size, image_size, device=device)).sum().backward()
    unreached = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    for name, p in model.named_parameters():
        p.grad = None
        if name in unreached:
            p.requires_grad_(False)
    model.train(training)
    return unreached



def check_precision(config: TrainConfig, device: torch.device) -> None:
    """The arithmetic asked is one the device does (harness.gpus' rule, which a sweep to a cluster's GPUs
    meets before it is queued): fp16 needs a GPU, bf16 and TF32 a GPU of compute capability 8.0 or later."""
    if config.precision == "fp16" and device.type != "cuda":
        raise UserError("--precision fp16 needs a GPU; use fp32 or bf16 on a CPU")
    if device.type == "cuda":
        asked = {config.precision} | ({"tf32"} if config.tf32 else set())
        refusal = precision_refusal(torch.cuda.get_device_name(device), torch.cuda.get_device_capability(device), asked)
        if refusal:
            raise UserError(refusal)

class Trainer:
    """The state of one run while it trains; see harness.training.train.train_run. Without a dataset (None:
    synthetic inputs, training.synthetic) it has the model and the step, and no image cache."""

    def __init__(self, config: TrainConfig, dataset: Path | None, cache_root: Path | None, paths: RunPaths,
                 ranks: Ranks = Ranks()) -> None:
        config.validate()
        self.config, self.paths, self.ranks = config, paths, ranks
        self.paths.folder.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(config.device)
        if self.device.type == "cuda" and ranks.world_size > 1 and self.device.index is None:
            self.device = torch.device("cuda", ranks.local_rank)  # one GPU per rank, of those the job was given
            torch.cuda.set_device(self.device)
        self.float32_matmul = set_float32_matmul(config.tf32)  # explicit, never torch's default
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest kernels once
        self.pre = config.resolved_preprocessing()
        self._cache = build_cache(dataset, self.pre.resize_key, cache_root) if dataset and cache_root else None
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        self.model: Detector = build_model(config.model, config.weights).to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if config.mode == "transfer":
            self.model.backbone.requires_grad_(False)
        freeze_unreached(self.model, self.pre.image_size, self.device)
        if config.sync_bn and ranks.world_size > 1:
            distributed.global_batch_norm(self.model)
        # What the training step runs: the model, or DDP around it (its gradients averaged over the ranks
        # as the backward pass goes). The model itself is what is saved and evaluated.
        self.network: torch.nn.Module = self.model
        if ranks.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.network = DistributedDataParallel(self.model, device_ids=[self.device] if self.device.type == "cuda" else None)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(config.optimizer, trainable, config.scaled_lr, self.device)
        self.dtype = DTYPES[config.precision]
        check_precision(config, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype is torch.float16)
        self.compiled_forward_loss: Any = None  # set by compile_step (--compile)
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"epoch": None, "rank": None}
        self.start_epoch = 0

    @property
    def cache(self) -> Path:
        """The image cache of the run's dataset, at its preprocessing's size."""
        if self._cache is None:
            raise RuntimeError(f"{self.config.model} runs on synthetic inputs: it has no image cache")
        return self._cache

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

    def _forward_loss(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The step's forward pass and loss: what --compile runs through torch.compile (compile_step)."""
        with self.autocast():
            logits = self.network(x).float()
            loss = F.binary_cross_entropy_with_logits(logits, labels)
        return logits, loss

    def train_step(self, images_uint8: torch.Tensor, labels: torch.Tensor, flip: torch.Tensor | None) -> torch.Tensor:
        """One optimiser step; returns the batch's logits (detached, left on the device)."""
        x = self.inputs(images_uint8, flip)
        logits, loss = (self.compiled_forward_loss or self._forward_loss)(x, labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return logits.detach()

    def compile_step(self, data: DeviceSplit) -> dict[str, Any]:
        """With --compile: the step's forward and loss through torch.compile, compiled here for the batch
        shapes an epoch has (full and last), so compilation stays out of the timed steps. Returns the
        throughput fields compile_seconds and compile_fallback_reason (set, with a logged warning, where
        torch.compile fails and the step stays eager). The warm-up steps leave no trace in the model."""
        if not self.config.compile:
            return {"compile_seconds": None, "compile_fallback_reason": None}
        size = self.config.batch_size
        shapes = sorted({min(size, len(data)), len(data) % size} - {0}, reverse=True)
        weights, optimizer_state = copy.deepcopy(self.model.state_dict()), copy.deepcopy(self.optimizer.state_dict())
        scaler_state = self.scaler.state_dict()
        start = time.perf_counter()
        try:
            self.compiled_forward_loss = torch.compile(self._forward_loss)
            self.set_train_mode()
            for batch in shapes:
                self.train_step(data.take(slice(0, batch), self.device), data.labels[:batch].to(self.device), None)
            synchronize(self.device)
            return {"compile_seconds": time.perf_counter() - start, "compile_fallback_reason": None}
        except Exception as err:
            self.compiled_forward_loss = None
            first = (str(err).strip().splitlines() or [""])[0]
            reason = f"{type(err).__name__}: {first}"[:300]
            log.warning("torch.compile failed for %s, the step runs eagerly: %s", self.config.model, reason)
            return {"compile_seconds": None, "compile_fallback_reason": reason}
        finally:
            self.model.load_state_dict(weights)
            self.optimizer.load_state_dict(optimizer_state)
            if self.scaler.is_enabled():
                self.scaler.load_state_dict(scaler_state)

    @torch.no_grad()
    def predict(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """Probabilities that images are fake."""
        with self.autocast():
            return torch.sigmoid(self.model(self.inputs(images_uint8)).float())

    def set_lr(self, step: int, steps_per_epoch: int) -> None:
        """The lr of this step: config.scaled_lr, raised linearly from lr / warm-up steps over the first
        config.warmup_epochs epochs (a function of the step alone, so a resumed run repeats it)."""
        warmup, top = self.config.warmup_epochs * steps_per_epoch, self.config.scaled_lr
        lr = top * min(1.0, (step + 1) / warmup) if warmup else top
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    # --- epochs ---
    def epoch_steps(self, images: int) -> int:
        """The steps of an epoch over a split of that many images (train_epoch's steps)."""
        return -(-distributed.usable(images, self.ranks) // (self.config.batch_size * self.ranks.world_size))

    def train_epoch(self, data: DeviceSplit, epoch: int, meter: StepMeter) -> dict[str, float]:
        """One pass over the training split; loss and accuracy as the steps saw them (as Keras reports).

        The order, the flips and the labels are drawn once per epoch (from the seed and the epoch, so a
        resumed run repeats them) and the tally is made at its end: a step launches nothing but its own
        work and never waits for the device. With several ranks, every rank draws the same order; a step
        is a global batch of batch_size x world size positions of it, and each rank trains on its own
        share (distributed.rank_part): the same images, step by step, as one process with the global batch.
        """
        self.set_train_mode()
        ranks, size = self.ranks, self.config.batch_size * self.ranks.world_size
        draw = torch.Generator().manual_seed(self.config.seed * 1000 + epoch)
        order = torch.randperm(len(data), generator=draw)
        flips = (torch.rand(len(data), generator=draw) < 0.5).to(self.device)
        order = order.to(data.images.device)
        labels = data.labels[order].to(self.device)
        steps = [distributed.rank_part(slice(start, min(start + size, distributed.usable(len(data), ranks))), ranks)
                 for start in range(0, distributed.usable(len(data), ranks), size)]
        logits = []
        with progress_bar() as bar, meter.timing():
            task = bar.add_task(f"{self.config.model} epoch {epoch + 1}/{self.config.epochs}", total=len(steps))
            for number, step in enumerate(steps):
                self.set_lr(epoch * len(steps) + number, len(steps))
                fetch = time.perf_counter()
                images = data.take(order[step], self.device)
                data_seconds = time.perf_counter() - fetch
                logits.append(self.train_step(images, labels[step], flips[step]))
                meter.step(len(images), data_seconds, data.copy_wait())
                bar.advance(task)
        seen, truth = torch.cat(logits), torch.cat([labels[step] for step in steps])
        # Each rank's means, weighted by its images, summed over the ranks: in float64, where a float32 mean
        # times a count is exact, so one rank's figures are its means bit for bit.
        count = float(len(truth))
        means = torch.stack([F.binary_cross_entropy_with_logits(seen, truth), ((seen >= 0) == (truth >= 0.5)).float().mean()])
        loss, correct, total = distributed.sum_tensor(ranks, torch.cat([means.double().cpu() * count,
                                                                        torch.tensor([count], dtype=torch.float64)])).tolist()
        return {"train_loss": loss / total, "train_accuracy": correct / total}

    def evaluate(self, data: DeviceSplit, meter: StepMeter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and labels of a split; meter, if given, times the pass (inference throughput).
        With several ranks, each scores its own contiguous share and every rank gets all the scores, in
        the split's order, each image scored once."""
        self.model.eval()
        meter = meter or StepMeter(self.device, warmup=len(data))  # a meter that never starts counting
        share = distributed.shard(len(data), self.ranks)
        probs = [torch.empty(0, device=self.device)]
        with meter.timing():
            for start in range(share.start, share.stop, EVAL_BATCH):
                fetch = time.perf_counter()
                images = data.take(slice(start, min(start + EVAL_BATCH, share.stop)), self.device)
                data_seconds = time.perf_counter() - fetch
                probs.append(self.predict(images))
                meter.step(len(images), data_seconds, data.copy_wait())
        mine = torch.cat(probs).float().cpu().numpy()
        return np.concatenate(distributed.gather(self.ranks, mine)), data.labels.cpu().numpy()

    # --- checkpoints ---
    def save_state(self, epoch: int) -> None:
        """The checkpoint of the epoch, written by the main rank (every rank holds the same weights)."""
        if not self.ranks.main:
            return
        state = {"epoch": epoch, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scaler": self.scaler.state_dict(), "history": self.history, "best": self.best}
        # Write the new checkpoint in full first, then rotate: a kill at any moment leaves a whole
        # state.pt or, for the instant between the two renames, a whole state.prev.pt.
        fresh, current = self.paths.state_next, self.paths.state
        write_atomic(fresh, lambda tmp: torch.save(state, tmp))
        if current.exists():
            current.replace(self.paths.state_prev)
        fresh.replace(current)

    def restore_state(self) -> None:
        """Resume from the newest readable checkpoint; a damaged one is set aside with a warning."""
        for path in (self.paths.state, self.paths.state_prev):
            if not path.exists():
                continue
            try:
                state = torch.load(path, map_location=self.device, weights_only=True)
                self.model.load_state_dict(state["model"])
                self.optimizer.load_state_dict(state["optimizer"])
                self.scaler.load_state_dict(state["scaler"])
            except Exception as err:
                if self.ranks.main:  # the one rank that writes the run's files
                    aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
                    path.replace(aside)
                    log.warning("checkpoint %s cannot be read (%s); set aside as %s", path, err, aside.name)
                continue
            self.history, self.best, self.start_epoch = list(state["history"]), dict(state["best"]), int(state["epoch"])
            if self.best.get("epoch") == self.start_epoch and self.ranks.main:  # best.pt may not have followed it
                write_atomic(self.paths.best, functools.partial(torch.save, state["model"]))
            elif path == self.paths.state_prev and self.paths.best.exists() and \
                    self.paths.best.stat().st_mtime_ns > path.stat().st_mtime_ns and self.ranks.main:
                log.warning("best.pt was written after %s, the checkpoint resumed from (state.pt could not be read): it "
                            "may hold an epoch trained again now, and stays only if that epoch is kept again", path.name)
            log.info("resumed from %s after epoch %d", path.name, self.start_epoch)
            return
        if self.paths.best.exists() or list(self.paths.folder.glob("state*.damaged-*")):
            log.warning("no readable checkpoint: training starts over")


def generator_subset(split: CachedSplit, generator: str, seed: int) -> np.ndarray:
    """The positions, in order, of the fakes of one generator and of as many real images (drawn with seed)."""
    generators = split.index["generator"].to_numpy()
    fakes = np.flatnonzero((split.labels == 1) & (generators == generator))
    if len(fakes) == 0:
        raise UserError(f"no fakes of generator {generator!r} in this split; the dataset has {sorted(set(generators) - {''})}")
    reals = np.flatnonzero(split.labels == 0)
    reals = np.sort(np.random.default_rng(seed).choice(reals, min(len(reals), len(fakes)), replace=False))
    return np.sort(np.concatenate([reals, fakes]))


def only_generator(split: CachedSplit, generator: str | None, seed: int) -> CachedSplit:
    """The real images and the fakes of one generator, with as many reals as fakes (generator_subset)."""
    if generator is None:
        return split
    keep = generator_subset(split, generator, seed)
    return CachedSplit(images=np.asarray(split.images[keep]), labels=split.labels[keep],
                       index=split.index.iloc[keep].reset_index(drop=True))
