"""Multi-GPU data parallelism with torch.distributed (DDP), launched by ``torchrun``.

``torchrun --nproc_per_node=8 -m minidiff train ...`` starts one process per GPU with RANK,
WORLD_SIZE and LOCAL_RANK set. Each process holds a replica, sees 1/W of the global batch
(:class:`~minidiff.data.ImageBatcher` slices it), and DDP averages the gradients, so one step of W
processes is one step of Algorithm 1 on the whole batch. NCCL on GPUs, gloo on CPU.
Chapter "Training on images".
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the run: rank, world size, local rank, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: CUDA if available, else CPU; ``cpu``, ``cuda``, ``cuda:N`` (or ``mps``) if this machine has it.

    Raises a ValueError naming the device when it cannot be parsed or is not available here, so a
    missing GPU is reported before any work rather than as an assertion deep inside PyTorch.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got device = {device!r}") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device = {device!r} asks for CUDA, but CUDA is not available on this machine "
                             f"(torch {torch.__version__}); use device 'cpu' or 'auto'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device = {device!r} does not exist: this machine has {torch.cuda.device_count()} "
                             f"CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device = {device!r} asks for MPS, but MPS is not available on this machine; "
                         "use device 'cpu' or 'auto'")
    return dev


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group if launched by torchrun (WORLD_SIZE > 1); otherwise a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    dev = resolve_device(device)
    if world_size <= 1:
        return DistInfo(device=dev)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank, dev)


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def gather_objects(obj, info: DistInfo) -> list:
    """Every rank's ``obj``, in rank order (just ``[obj]`` in a single process)."""
    if not info.distributed:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def max_over_ranks(value: float, info: DistInfo) -> torch.Tensor:
    """The largest ``value`` of all ranks, as a 1-element tensor on this rank's device (an all-reduce MAX).

    Queued like any collective, so reading it one step later does not stall the GPU.
    """
    x = torch.tensor([float(value)], device=info.device)
    if info.distributed:
        dist.all_reduce(x, op=dist.ReduceOp.MAX)
    return x


def all_reduce_mean(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean of ``x`` over all ranks (``x`` itself in a single process)."""
    if not info.distributed:
        return x
    x = x.detach().clone()
    dist.all_reduce(x)
    return x / info.world_size


def cleanup(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()
