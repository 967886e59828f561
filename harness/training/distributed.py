"""Data-parallel training over several processes (ranks): the process group, each rank's share of a
batch, batch normalisation over the global batch, and the collectives a run's figures need.

Knows nothing of Slurm: a rank is told its place by torch's env:// variables (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT), which the job sets (harness.jobs, from its backend). NCCL on GPUs, gloo on
CPUs, so the same code path runs and is tested on a machine without a GPU.
"""
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

# How long a rank waits for the others at any collective before its run fails (torch's default is half an
# hour, NCCL's ten minutes): a rank that died ends the run.
TIMEOUT = timedelta(minutes=10)
# How long the ranks wait to meet, at the rendezvous: a meeting that cannot happen (an address that does not
# resolve or cannot be reached, a rank that never started) ends the run, freeing its GPUs, within twice it
# (torch's store client tries twice). The ranks of one job start together: a minute is ample.
RENDEZVOUS_TIMEOUT = timedelta(minutes=1)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the ranks that train one run together."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # "nccl" or "gloo"; None for a run of one process

    @property
    def main(self) -> bool:
        """The rank that writes the run's files (record, history, checkpoints, scores)."""
        return self.rank == 0

    @property
    def nodes(self) -> int:
        local = int(os.environ.get("LOCAL_WORLD_SIZE") or self.world_size)
        return max(1, self.world_size // local)


def start(device_type: str) -> Ranks:
    """Join the process group the environment describes (WORLD_SIZE above 1), else a run of one."""
    world_size = int(os.environ.get("WORLD_SIZE") or 1)
    if world_size == 1:
        return Ranks()
    backend = "nccl" if device_type == "cuda" else "gloo"
    if not dist.is_initialized():
        rank = int(os.environ["RANK"])
        # On GPUs, NCCL for the GPUs' tensors and gloo beside it for the few CPU ones (the ranks' agreement,
        # their figures), which NCCL does not carry.
        devices = "cpu:gloo,cuda:nccl" if backend == "nccl" else "gloo"
        dist.init_process_group(backend=devices, store=rendezvous(rank, world_size), rank=rank, world_size=world_size,
                                timeout=TIMEOUT)
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK") or 0), backend)


def rendezvous(rank: int, world_size: int) -> dist.Store:
    """Where the ranks meet: rank 0 serves a store at MASTER_ADDR:MASTER_PORT, the others connect to it, all
    within RENDEZVOUS_TIMEOUT (not the collectives' TIMEOUT); RuntimeError in one line where they cannot."""
    address, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    try:
        return dist.TCPStore(address, port, world_size, is_master=rank == 0, timeout=RENDEZVOUS_TIMEOUT)
    except Exception as err:  # torch's store errors (DistStoreError, RuntimeError) run over several lines
        said = " ".join(str(err).split())[:300]
        raise RuntimeError(f"rank {rank} of {world_size} could not meet the others at {address}:{port} within "
                           f"{RENDEZVOUS_TIMEOUT.total_seconds():.0f} s ({type(err).__name__}: {said})") from None


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(ranks: Ranks) -> None:
    if ranks.world_size > 1:
        dist.barrier()


def all_agree(ranks: Ranks, flag: bool) -> bool:
    """Whether every rank's flag is True (each rank learns the same answer)."""
    if ranks.world_size == 1:
        return flag
    value = torch.tensor([int(flag)], dtype=torch.int64)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)  # a CPU tensor: gloo carries it, on GPUs too (start)
    return bool(value.item())


def gather(ranks: Ranks, value: Any) -> list[Any]:
    """Every rank's value (picklable), in rank order, on every rank."""
    if ranks.world_size == 1:
        return [value]
    values: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(values, value)
    return values


def sum_tensor(ranks: Ranks, tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of tensor over the ranks."""
    if ranks.world_size > 1:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
    return tensor


def usable(images: int, ranks: Ranks) -> int:
    """How many images of an epoch's permutation the ranks train on: all of them for one rank, else the
    largest multiple of the world size (at most world size - 1 left out, different ones each epoch), so
    that every rank has as many images in every step and DDP's mean of the ranks' mean gradients is the
    mean gradient over the global batch."""
    return images - images % ranks.world_size


def rank_part(global_batch: slice, ranks: Ranks) -> slice:
    """This rank's contiguous share of a global batch's positions (the batch a multiple of the world size)."""
    size = (global_batch.stop - global_batch.start) // ranks.world_size
    start = global_batch.start + ranks.rank * size
    return slice(start, start + size)


def shard(count: int, ranks: Ranks) -> slice:
    """This rank's contiguous share of count items for evaluation (the last ranks may hold one fewer)."""
    per_rank = -(-count // ranks.world_size)
    start = min(count, ranks.rank * per_rank)
    return slice(start, min(count, start + per_rank))


class SumOverRanks(torch.autograd.Function):
    """The sum of a tensor over the ranks, and in the backward pass the sum of its gradients over them
    (each rank's loss depends on every rank's share through the sum)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


class GlobalStatistics:
    """Mixed into a BatchNorm2d (torch's, or timm's BatchNormAct2d) by global_batch_norm: in training its
    statistics are those of the global batch. The ranks' sums and sums of squares are all-reduced
    differentiably (the gradient flows through the global statistics, as torch's SyncBatchNorm does), and
    the running statistics move as one BatchNorm2d's over the whole batch would. torch's SyncBatchNorm
    refuses CPU tensors; this runs under gloo and NCCL alike, and keeps the layer's class and state-dict
    keys, so a checkpoint loads into the plain model."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn: Any = self
        if not (bn.training and dist.is_initialized()):
            return super().forward(x)  # type: ignore[misc]
        # Two passes, as a sum of squared deviations is exact where E[x²] - E[x]² cancels: the global
        # mean first, then the global variance about it.
        channels, dims = x.shape[1], (0, 2, 3)
        total = SumOverRanks.apply(torch.cat([x.sum(dims), x.new_tensor([x.numel() / channels])]))
        count = total[-1]
        mean = total[:channels] / count
        var = SumOverRanks.apply((x - mean.view(1, channels, 1, 1)).pow(2).sum(dims)) / count
        if bn.track_running_stats and bn.running_mean is not None:
            with torch.no_grad():
                bn.num_batches_tracked.add_(1)
                momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
                bn.running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
                bn.running_var.mul_(1 - momentum).add_(momentum * var.detach() * count / (count - 1))
        shape = (1, channels, 1, 1)
        out = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + bn.eps)
        if bn.affine:
            out = out * bn.weight.view(shape) + bn.bias.view(shape)
        for after in ("drop", "act"):  # timm's BatchNormAct2d applies these after its normalisation
            layer = getattr(bn, after, None)
            if layer is not None:
                out = layer(out)
        return out


_GLOBAL_CLASSES: dict[type, type] = {}  # one class per kind of layer: two models' layers share it


def _global_class(kind: type) -> type:
    return _GLOBAL_CLASSES.setdefault(kind, type(f"Global{kind.__name__}", (GlobalStatistics, kind), {}))


def global_batch_norm(module: nn.Module) -> nn.Module:
    """module, each of its BatchNorm2d layers normalising over the global batch (GlobalStatistics)."""
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm2d) and not isinstance(layer, GlobalStatistics):
            layer.__class__ = _global_class(type(layer))
    return module
