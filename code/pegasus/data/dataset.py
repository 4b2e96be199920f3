"""A torch ``Dataset`` over the frames of a :class:`VideoTable` (one split of a run).

Each item is a :class:`FrameBatch` of one frame; :func:`collate_frames` joins items. Cameras
are converted only through :func:`pegasus.geometry.camera.cameras_from_imavatar`. The
run-level indices of a frame (its person's position among the trained subjects, its row of
the per-frame refinement, its latent rows) come from the caller as :class:`VideoIndices`,
so that one dataset class serves training, testing and any later stage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from .batch import NO_ROW, FrameBatch
from ..geometry.camera import cameras_from_imavatar
from .images import (DataError, composite_on_white, read_label_map, read_mask, read_rgb, resize_label_map,
                     resize_mask, resize_rgb)
from .imavatar import IRIS_COUNT, KEYPOINT_COUNT
from .settings import VideoEntry
from .videos import VideoTable, fit_length

__all__ = ["VideoIndices", "VideoDataset", "parse_resolution", "subject_indices"]

logger = logging.getLogger(__name__)


def parse_resolution(resolution) -> tuple[int, int] | None:
    """None, an int (square) or (H, W) → (H, W) or None."""
    if resolution is None:
        return None
    size = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(f"resolution must be a positive int or (H, W), got {resolution!r}")
    return size


@dataclass(frozen=True)
class VideoIndices:
    """Run-level indices of one video's frames (see :class:`FrameBatch`).

    Attributes:
        subject_id: the person's position among the run's subjects.
        latent_rows: (C,) rows of the latent table, or None (no latent code).
        refine_rows: {frame_index: row} of the per-frame refinement (empty: none).
    """

    subject_id: int
    latent_rows: tuple[int, ...] | None = None
    refine_rows: Mapping[int, int] = field(default_factory=dict)


def subject_indices(table: VideoTable) -> list[VideoIndices]:
    """Indices of a table read on its own: subjects numbered as in the table, no latent
    code, no per-frame refinement."""
    return [VideoIndices(table.subjects.index(r.subject)) for r in table]


def _read_sized(reader, path, expected: tuple[int, int]) -> np.ndarray:
    image = reader(path)
    if image.shape[:2] != expected:
        raise DataError(f"{path}: size {image.shape[:2]} differs from the video's first image {expected}; all "
                        "frames of a video must have one size")
    return image


class VideoDataset(Dataset):
    """The frames of every video of a table.

    Args:
        table: the split's videos.
        indices: one :class:`VideoIndices` per video of the table (run-level ids).
        resolution: output (H, W) or one int for square images; None keeps the stored size
            (all videos must then share it). Intrinsics are normalised, so the cameras stay
            valid at any resolution.
        n_expr, n_shape: lengths of ``expression`` and ``shape`` (zero-padded or truncated;
            the head model's component counts).
        load_semantic: load ``semantic/`` label maps.
        load_part_masks: load ``mask_object/`` where a video has it.
        normal_targets: optional ``normal_targets(record, frame, image_size)`` → (H, W, 3)
            normals and (H, W) weights of the frame (e.g.
            :class:`pegasus.generative.normals.NormalTargets`), as ``normal`` / ``normal_weight``.
    """

    def __init__(self, table: VideoTable, indices: Sequence[VideoIndices], *, resolution=None, n_expr: int = 50,
                 n_shape: int = 100, load_semantic: bool = False, load_part_masks: bool = False,
                 normal_targets: Callable | None = None):
        if len(indices) != len(table):
            raise ValueError(f"VideoDataset: {len(indices)} VideoIndices for {len(table)} videos")
        if n_expr < 1 or n_shape < 1:
            raise ValueError(f"n_expr and n_shape must be ≥ 1, got {n_expr}, {n_shape}")
        self.table, self.indices = table, tuple(indices)
        requested = parse_resolution(resolution)
        if requested is None and table.image_size is None:
            raise DataError(f"videos differ in image size {[r.video.image_size for r in table]}; set "
                            "dataset.resolution to resize them")
        self.image_size = requested or table.image_size
        self.n_expr, self.n_shape = n_expr, n_shape
        self.load_semantic, self.normal_targets = load_semantic, normal_targets
        self.load_part_masks = load_part_masks and any(r.video.has_part_masks for r in table)
        if self.load_part_masks and not all(r.video.has_part_masks for r in table):
            raise DataError("part masks are loaded but some videos have no mask_object/: "
                            f"{[r.key for r in table if not r.video.has_part_masks]}")
        self._items = [(r, f) for r in table for f in r.video.frames]
        frames = [f for _, f in self._items]
        self._has_keypoints = any(f.keypoints is not None for f in frames)
        self._has_iris = any(f.iris is not None for f in frames)
        logger.info("%d frames from %d videos at %s", len(self._items), len(table), self.image_size)

    @classmethod
    def of_subject(cls, root, subject: str, videos: Sequence[str], *, load_semantic: bool = False,
                   **kwargs) -> "VideoDataset":
        """Some videos of one subject, read on their own (no run: subject 0, no latent code, no
        refinement rows); ``kwargs`` as for the constructor."""
        table = VideoTable([VideoEntry(subject=subject, video=v) for v in videos], root,
                           require_semantic=load_semantic)
        return cls(table, subject_indices(table), load_semantic=load_semantic, **kwargs)

    def __len__(self) -> int:
        return len(self._items)

    def video_ids(self) -> list[int]:
        """The table position (``VideoRecord.id``) of every frame's video, in item order."""
        return [record.id for record, _ in self._items]

    def frame_names(self) -> list[str]:
        """The name of every frame, in item order."""
        return [frame.name for _, frame in self._items]

    def motion(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(T, n_expr) expressions and (T, 15) poses of every frame, in item order (no image is read)."""
        expression = np.stack([fit_length(f.flame.expression, self.n_expr) for _, f in self._items])
        pose = np.stack([f.flame.pose for _, f in self._items]).astype(np.float32)
        return torch.from_numpy(expression), torch.from_numpy(pose)

    def _landmarks(self, points, count: int, stored_size) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel landmarks rescaled to the output resolution, zeros and False when missing."""
        if points is None:
            return torch.zeros(1, count, 2), torch.tensor([False])
        scale = np.array([self.image_size[1] / stored_size[1], self.image_size[0] / stored_size[0]])
        return torch.from_numpy((points * scale).astype(np.float32))[None], torch.tensor([True])

    def __getitem__(self, index: int) -> FrameBatch:
        record, frame = self._items[index]
        ids = self.indices[record.id]
        video = record.video
        stored = video.image_size
        rgb = resize_rgb(_read_sized(read_rgb, frame.image_path, stored), self.image_size)
        mask = resize_mask(_read_sized(read_mask, frame.mask_path, stored), self.image_size)
        flame = frame.flame
        optional = {}
        if self.load_semantic:
            labels = resize_label_map(_read_sized(read_label_map, frame.semantic_path, stored), self.image_size)
            optional["semantic"] = torch.from_numpy(labels.astype(np.int64))[None]
        if self.load_part_masks:
            part = resize_mask(_read_sized(read_mask, frame.part_mask_path, stored), self.image_size)
            optional["part_mask"] = torch.from_numpy(part)[None]
        if self.normal_targets is not None:
            normal, weight = self.normal_targets(record, frame, self.image_size)
            optional["normal"] = torch.from_numpy(normal)[None]
            optional["normal_weight"] = torch.from_numpy(weight)[None]
        if ids.latent_rows is not None:
            optional["latent_rows"] = torch.tensor([ids.latent_rows], dtype=torch.int64)
        if self._has_keypoints:
            optional["keypoints"], optional["keypoints_valid"] = self._landmarks(frame.keypoints, KEYPOINT_COUNT,
                                                                                 stored)
        if self._has_iris:
            optional["iris"], optional["iris_valid"] = self._landmarks(frame.iris, IRIS_COUNT, stored)
        return FrameBatch(
            cameras=cameras_from_imavatar(torch.from_numpy(video.intrinsics.astype(np.float32)),
                                          torch.from_numpy(flame.world_mat[None].astype(np.float32)),
                                          self.image_size),
            expression=torch.from_numpy(fit_length(flame.expression, self.n_expr))[None],
            pose=torch.from_numpy(flame.pose.astype(np.float32))[None],
            shape=record.shape(self.n_shape)[None],
            video_id=torch.tensor([record.id]),
            subject_id=torch.tensor([ids.subject_id]),
            frame_index=torch.tensor([frame.index]),
            refine_row=torch.tensor([ids.refine_rows.get(frame.index, NO_ROW)]),
            frame_name=(frame.name,),
            video=(record.key,),
            rgb=torch.from_numpy(composite_on_white(rgb, mask))[None],
            mask=torch.from_numpy(mask)[None],
            **optional,
        )
