"""Deterministic, resumable, rank-sharded frame order.

Each epoch's order is a permutation drawn from ``seed + epoch`` (identical on every rank),
then dealt round-robin to the ranks (padding by wrap-around so all ranks get the same
number of frames, as ``DistributedSampler`` does). Skipping the first ``start`` items
resumes an interrupted epoch exactly.
"""
from __future__ import annotations

import torch
from torch.utils.data import Sampler

__all__ = ["EpochOrder", "batch_size_for"]


class EpochOrder(Sampler[int]):
    """Frame indices of one epoch for one rank, starting at position ``start``."""

    def __init__(self, num_frames: int, epoch: int, seed: int, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True, start: int = 0):
        if num_frames <= 0:
            raise ValueError("EpochOrder: the dataset has no frames")
        if shuffle:
            order = torch.randperm(num_frames, generator=torch.Generator().manual_seed(seed + epoch))
        else:
            order = torch.arange(num_frames)
        per_rank = -(-num_frames // world_size)
        order = torch.cat([order, order[: per_rank * world_size - num_frames]])
        self.indices = order[rank::world_size].tolist()[start:]

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def batch_size_for(num_points: int, max_points_per_batch: int, max_batch: int) -> int:
    """PointAvatar's rule: ``min(max_points_per_batch // N, max_batch)``, at least 1."""
    return max(1, min(max_batch, max_points_per_batch // max(num_points, 1)))
