"""The one owner of multi-process settings: rank/world size from torchrun, seeds, devices.

Single-process runs need no launcher. Under ``torchrun`` the environment variables
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT``) are read
here and nowhere else. The backend is NCCL on CUDA, gloo on CPU.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["DistEnv", "init_distributed", "seed_everything", "resolve_device", "all_reduce_max", "gather_objects",
           "broadcast_object", "barrier"]


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0 does all file output (checkpoints, logs, renders)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` → the local GPU when CUDA is available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("experiment.device = cuda but no CUDA device is available; "
                               "set experiment.device = cpu (or auto)")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(device_name: str) -> DistEnv:
    """Initialises the process group when launched by torchrun; a no-op otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                rank=rank, world_size=world_size)
    return DistEnv(rank, world_size, local_rank, device)


def seed_everything(base_seed: int, rank: int = 0) -> int:
    """Seeds python, numpy and torch with ``base_seed + rank``; returns that seed."""
    seed = base_seed + rank
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """Element-wise max over ranks (in place); identity in a single process."""
    if _distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_objects(obj) -> list:
    """Every rank's ``obj`` (picklable), in rank order, on every rank; ``[obj]`` in one process."""
    if not _distributed():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank (e.g. a decision only rank 0 can make)."""
    if not _distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
