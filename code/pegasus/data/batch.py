"""The typed batch every model, trainer and render set reads.

A dataset item is a :class:`FrameBatch` of one frame; :func:`collate_frames` joins items into
a batch of B frames. Render-only batches (a driving video, a yaw turn) have no images:
``rgb``, ``mask`` and the label maps are None there.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch

from ..geometry.camera import PinholeCameras

__all__ = ["NO_ROW", "FrameBatch", "collate_frames"]

NO_ROW = -1
"""``refine_row`` of a frame without per-frame refinement (test, driving and yaw frames)."""

_TENSORS = ("rgb", "mask", "semantic", "part_mask", "normal", "normal_weight", "expression", "pose", "shape",
            "video_id", "subject_id", "frame_index", "refine_row", "latent_rows", "keypoints", "keypoints_valid", "iris",
            "iris_valid")


@dataclass(frozen=True, eq=False)
class FrameBatch:
    """B frames with their images, head-model parameters, cameras and run indices.

    Attributes:
        cameras: :class:`PinholeCameras` of batch B (image size = the images').
        expression: (B, E) float32 expression coefficients (E = the head model's n_expr).
        pose: (B, 15) float32 axis-angle radians (global | neck | jaw | left eye | right eye).
        shape: (B, S) float32 identity coefficients of each frame's video.
        video_id: (B,) int64, the video's position in its dataset's :class:`VideoTable`.
        subject_id: (B,) int64, the person's position in the run's subjects (its trained tables).
        frame_index: (B,) int64, position in the video's ``flame_params.json`` frame list.
        refine_row: (B,) int64 row of the frame's per-frame refinement, :data:`NO_ROW` for none.
        frame_name: B frame names (file stems). video: B video keys (``subject/video``).
        rgb: (B, H, W, 3) float32 in [0, 1] composited on white, or None (no images).
        mask: (B, H, W) float32 soft foreground in [0, 1], or None.
        semantic: (B, H, W) int64 label ids (pegasus.data.parts), or None.
        part_mask: (B, H, W) float32 soft mask of the video's swapped part (``mask_object/``), or None.
        normal: (B, H, W, 3) float32 camera-space unit normals the render should show, or None;
            normal_weight: (B, H, W) float32 where they hold (0 elsewhere).
        latent_rows: (B, C) int64 rows of the latent code table, one per category, or None.
        keypoints: (B, 68, 2) float32 pixels and keypoints_valid (B,) bool, or None.
        iris: (B, 2, 2) float32 pixels and iris_valid (B,) bool, or None.
    """

    cameras: PinholeCameras
    expression: torch.Tensor
    pose: torch.Tensor
    shape: torch.Tensor
    video_id: torch.Tensor
    subject_id: torch.Tensor
    frame_index: torch.Tensor
    refine_row: torch.Tensor
    frame_name: tuple[str, ...]
    video: tuple[str, ...]
    rgb: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    semantic: torch.Tensor | None = None
    part_mask: torch.Tensor | None = None
    normal: torch.Tensor | None = None
    normal_weight: torch.Tensor | None = None
    latent_rows: torch.Tensor | None = None
    keypoints: torch.Tensor | None = None
    keypoints_valid: torch.Tensor | None = None
    iris: torch.Tensor | None = None
    iris_valid: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.frame_name)

    def to(self, device: torch.device | str) -> "FrameBatch":
        """The batch with every tensor and the cameras on ``device``."""
        moved = {name: getattr(self, name).to(device) for name in _TENSORS if getattr(self, name) is not None}
        return dataclasses.replace(self, cameras=self.cameras.to(device), **moved)

    def replace(self, **changes) -> "FrameBatch":
        """A copy with some fields changed (e.g. other latent rows)."""
        return dataclasses.replace(self, **changes)

    def select(self, index: Sequence[int]) -> "FrameBatch":
        """The frames at ``index`` (a list of positions), as a batch."""
        idx = torch.as_tensor(list(index), dtype=torch.int64)
        tensors = {name: getattr(self, name)[idx] for name in _TENSORS if getattr(self, name) is not None}
        c = self.cameras
        cameras = PinholeCameras(c.K[idx], c.R[idx], c.t[idx], c.image_size)
        names = {k: tuple(getattr(self, k)[i] for i in idx.tolist()) for k in ("frame_name", "video")}
        return dataclasses.replace(self, cameras=cameras, **tensors, **names)


def collate_frames(items: Sequence[FrameBatch]) -> FrameBatch:
    """Joins batches (usually dataset items of one frame) into one batch.

    Raises:
        ValueError: no items, items with different optional fields (mixed datasets), or
            cameras of different image sizes.
    """
    if not items:
        raise ValueError("collate_frames: empty batch")
    first = items[0]
    if len(items) == 1:
        return first
    present = {name for name in _TENSORS if getattr(first, name) is not None}
    for item in items[1:]:
        if {name for name in _TENSORS if getattr(item, name) is not None} != present:
            raise ValueError("collate_frames: items have different fields (mixed datasets?)")
    sizes = {item.cameras.image_size for item in items}
    if len(sizes) > 1:
        raise ValueError(f"collate_frames: cameras of different image sizes {sorted(sizes)}")
    cameras = PinholeCameras(torch.cat([i.cameras.K for i in items]), torch.cat([i.cameras.R for i in items]),
                             torch.cat([i.cameras.t for i in items]), first.cameras.image_size)
    tensors = {name: torch.cat([getattr(i, name) for i in items]) for name in present}
    names = {k: tuple(n for i in items for n in getattr(i, k)) for k in ("frame_name", "video")}
    return dataclasses.replace(first, cameras=cameras, **tensors, **names)
