"""Deterministic, resumable, rank-sharded frame order.

Each epoch's order is a permutation drawn from ``seed + epoch`` (identical on every rank),
then dealt round-robin to the ranks (padding by wrap-around so all ranks get the same
number of frames, as ``DistributedSampler`` does). Skipping the first ``start`` items
resumes an interrupted epoch exactly.

:class:`VideoBatches` (``train.batch_by_video``) deals whole batches instead, each drawn from
one video: its frames share one latent code, so a latent-conditioned model runs its networks
once per batch rather than once per frame (``PointAvatar.point_pass``).
"""
from __future__ import annotations

import torch
from torch.utils.data import Sampler

__all__ = ["EpochOrder", "VideoBatches", "batch_size_for"]


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


class VideoBatches(Sampler[list[int]]):
    """Batches of one epoch for one rank, each from a single video, from batch ``start`` on.

    Every video's frames are shuffled and cut into batches of ``batch_size`` (its last batch
    may be smaller); the batches of all videos are shuffled together, dealt round-robin to the
    ranks (padded by wrap-around so every rank runs as many steps), all from ``seed + epoch``.

    Args:
        videos: (F,) the video of every frame of the dataset (any hashable ids).
    """

    def __init__(self, videos, batch_size: int, epoch: int, seed: int, rank: int = 0, world_size: int = 1,
                 start: int = 0):
        if len(videos) == 0:
            raise ValueError("VideoBatches: the dataset has no frames")
        if batch_size < 1:
            raise ValueError(f"VideoBatches: batch_size must be ≥ 1, got {batch_size}")
        generator = torch.Generator().manual_seed(seed + epoch)
        frames_of: dict = {}
        for index, video in enumerate(videos):
            frames_of.setdefault(video, []).append(index)
        batches = []
        for frames in frames_of.values():
            order = torch.tensor(frames)[torch.randperm(len(frames), generator=generator)].tolist()
            batches += [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
        batches = [batches[k] for k in torch.randperm(len(batches), generator=generator).tolist()]
        per_rank = -(-len(batches) // world_size)
        batches += batches[: per_rank * world_size - len(batches)]
        self.batches = batches[rank::world_size][start:]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def batch_size_for(num_points: int, max_points_per_batch: int, max_batch: int) -> int:
    """PointAvatar's rule: ``min(max_points_per_batch // N, max_batch)``, at least 1."""
    return max(1, min(max_batch, max_points_per_batch // max(num_points, 1)))
