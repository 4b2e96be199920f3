"""A torch ``Dataset`` over the frames of one or more videos of a subject.

Each item is a dict of tensors (plus a few strings) for one frame; :func:`collate_frames`
stacks items into a batch whose ``cameras`` is one :class:`PinholeCameras`. Cameras are
converted only through :func:`pegasus.geometry.camera.cameras_from_imavatar`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from pegasus.data.images import (
    DataError,
    composite_on_white,
    read_label_map,
    read_mask,
    read_rgb,
    resize_label_map,
    resize_mask,
    resize_rgb,
)
from pegasus.data.imavatar import (
    IRIS_COUNT,
    KEYPOINT_COUNT,
    MASK_DIR,
    SEMANTIC_DIR,
    FrameSelection,
    Video,
    VideoFrame,
    list_videos,
    read_blacklist,
    read_video,
    select_frames,
    subject_dir,
    video_dir,
)
from pegasus.geometry.camera import PinholeCameras, cameras_from_imavatar

__all__ = ["ImavatarDataset", "collate_frames"]

logger = logging.getLogger(__name__)


def _fit_length(values: np.ndarray, length: int) -> np.ndarray:
    """(N,) → (length,) float32: zero-padded or truncated."""
    out = np.zeros(length, dtype=np.float32)
    n = min(length, values.shape[0])
    out[:n] = values[:n]
    return out


def _parse_resolution(resolution) -> tuple[int, int] | None:
    """None, an int (square) or (H, W) → (H, W) or None."""
    if resolution is None:
        return None
    size = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(f"resolution must be a positive int or (H, W), got {resolution!r}")
    return size


def _shared_shape(frames: Sequence[VideoFrame], field: str) -> tuple[int, ...] | None:
    """Shape of ``frame.flame.<field>`` if every frame has it with one shape, else None."""
    shapes = {None if getattr(f.flame, field) is None else getattr(f.flame, field).shape for f in frames}
    return shapes.pop() if len(shapes) == 1 else None


def _read_sized(reader, path, expected: tuple[int, int]) -> np.ndarray:
    """Reads an image with ``reader`` and checks that it is (H, W) = ``expected``."""
    image = reader(path)
    if image.shape[:2] != expected:
        raise DataError(
            f"{path}: size {image.shape[:2]} differs from the video's first image {expected}; "
            "all frames of a video must have one size"
        )
    return image


@dataclass(frozen=True)
class _Item:
    video: Video
    frame: VideoFrame


class ImavatarDataset(Dataset):
    """Frames of some videos of one subject in the IMavatar layout.

    Args:
        root: datasets folder holding ``<subject>/<subject>/<video>/``.
        subject: subject name.
        videos: video folder names to include (one split: train videos or test videos).
        resolution: output (H, W) or one int for square images; None keeps the stored
            size (all videos must then share it). Intrinsics are normalised, so the
            cameras stay valid at any resolution.
        stride, frame_count, frame_indices: per-video frame selection, at most one of
            them (see :class:`pegasus.data.imavatar.FrameSelection`).
        use_blacklist: drop frames listed in the subject's ``blacklist.json``.
        n_expr: length of ``expression`` (zero-padded or truncated).
        n_shape: length of ``shape`` (zero-padded or truncated).
        load_semantic: load ``semantic/`` label maps (an error if a video has none).

    Item keys (H, W = output resolution):
        rgb (H, W, 3) float32 in [0, 1], composited on white with the soft mask;
        mask (H, W) float32 in [0, 1]; semantic (H, W) int64 when ``load_semantic``;
        cameras :class:`PinholeCameras` of batch 1; expression (n_expr,), pose (15,),
        shape (n_shape,) float32; flame_keypoints (K, 2) in [−1, 1] and bbox (4,) when
        every frame has them; keypoints (68, 2) and iris (2, 2) float32 pixels with
        keypoints_valid / iris_valid bool scalars when any video has them; frame_index
        int64 scalar (position in the video's ``flame_params.json``); dataset_index int64
        scalar (position in this dataset, unique across videos); frame_name, video,
        image_path strings.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        subject: str,
        videos: Sequence[str],
        *,
        resolution: int | Sequence[int] | None = None,
        stride: int = 1,
        frame_count: int | None = None,
        frame_indices: Sequence[int] | None = None,
        use_blacklist: bool = True,
        n_expr: int = 50,
        n_shape: int = 100,
        load_semantic: bool = False,
    ) -> None:
        if isinstance(videos, str) or not videos or len(set(videos)) != len(videos):
            raise ValueError(f"videos must be a non-empty list of distinct names, got {videos!r}")
        if n_expr < 1 or n_shape < 1:
            raise ValueError(f"n_expr and n_shape must be ≥ 1, got {n_expr}, {n_shape}")
        requested_size = _parse_resolution(resolution)
        selection = FrameSelection(
            stride=stride,
            count=frame_count,
            indices=None if frame_indices is None else tuple(frame_indices),
        )
        blacklist = read_blacklist(subject_dir(root, subject)) if use_blacklist else {}
        self.videos: tuple[Video, ...] = tuple(
            select_frames(
                self._read_checked_video(root, subject, name, load_semantic),
                selection,
                blacklist.get(name, ()),
            )
            for name in videos
        )
        self.image_size = requested_size or self._shared_image_size()
        self.n_expr, self.n_shape, self.load_semantic = n_expr, n_shape, load_semantic
        self._items = [_Item(v, f) for v in self.videos for f in v.frames]
        frames = [item.frame for item in self._items]
        self._flame_keypoints_shape = _shared_shape(frames, "flame_keypoints")
        self._has_bbox = _shared_shape(frames, "bbox") is not None
        for field, kept in (
            ("flame_keypoints", self._flame_keypoints_shape is not None),
            ("bbox", self._has_bbox),
        ):
            if not kept and any(getattr(f.flame, field) is not None for f in frames):
                logger.info(
                    "%s: items omit %s, which the frames do not all have in one shape", subject, field
                )
        self._has_keypoints = any(f.keypoints is not None for f in frames)
        self._has_iris = any(f.iris is not None for f in frames)
        logger.info(
            "%s: %d frames from videos %s at %s", subject, len(self._items), list(videos), self.image_size
        )

    @staticmethod
    def _read_checked_video(root, subject: str, name: str, load_semantic: bool) -> Video:
        path = video_dir(root, subject, name)
        if not path.is_dir():
            available = list_videos(root, subject)
            raise DataError(f"{path}: video folder not found; videos of {subject!r}: {available}")
        video = read_video(path)
        if not video.has_masks:
            raise DataError(f"{path / MASK_DIR}: mask folder not found; every frame needs a soft mask")
        if load_semantic and not video.has_semantic:
            raise DataError(
                f"{path / SEMANTIC_DIR}: semantic folder not found; run face parsing or "
                "set load_semantic=False"
            )
        return video

    def _shared_image_size(self) -> tuple[int, int]:
        sizes = {v.name: v.image_size for v in self.videos}
        if len(set(sizes.values())) > 1:
            raise DataError(f"videos differ in image size {sizes}; pass a resolution to resize them")
        return next(iter(sizes.values()))

    def __len__(self) -> int:
        return len(self._items)

    def expressions(self) -> torch.Tensor:
        """(T, n_expr) expressions of every selected frame, without reading images."""
        return torch.stack([torch.from_numpy(_fit_length(i.frame.flame.expression, self.n_expr))
                            for i in self._items])

    def _landmarks(
        self, points: np.ndarray | None, count: int, stored_size: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel landmarks rescaled to the output resolution, zeros and False when missing."""
        if points is None:
            return torch.zeros(count, 2), torch.tensor(False)
        scale = np.array([self.image_size[1] / stored_size[1], self.image_size[0] / stored_size[0]])
        return torch.from_numpy((points * scale).astype(np.float32)), torch.tensor(True)

    def __getitem__(self, index: int) -> dict:
        video, frame = self._items[index].video, self._items[index].frame
        stored_size = video.image_size
        rgb = resize_rgb(_read_sized(read_rgb, frame.image_path, stored_size), self.image_size)
        mask = resize_mask(_read_sized(read_mask, frame.mask_path, stored_size), self.image_size)
        flame = frame.flame
        item = {
            "rgb": torch.from_numpy(composite_on_white(rgb, mask)),
            "mask": torch.from_numpy(mask),
            "cameras": cameras_from_imavatar(
                torch.from_numpy(video.intrinsics.astype(np.float32)),
                torch.from_numpy(flame.world_mat[None].astype(np.float32)),
                self.image_size,
            ),
            "expression": torch.from_numpy(_fit_length(flame.expression, self.n_expr)),
            "pose": torch.from_numpy(flame.pose.astype(np.float32)),
            "shape": torch.from_numpy(_fit_length(video.shape_params, self.n_shape)),
            "frame_index": torch.tensor(frame.index, dtype=torch.int64),
            "dataset_index": torch.tensor(index, dtype=torch.int64),
            "frame_name": frame.name,
            "video": video.name,
            "image_path": str(frame.image_path),
        }
        if self.load_semantic:
            labels = _read_sized(read_label_map, frame.semantic_path, stored_size)
            item["semantic"] = torch.from_numpy(resize_label_map(labels, self.image_size).astype(np.int64))
        if self._flame_keypoints_shape is not None:
            item["flame_keypoints"] = torch.from_numpy(flame.flame_keypoints.astype(np.float32))
        if self._has_bbox:
            item["bbox"] = torch.from_numpy(flame.bbox.astype(np.float32))
        if self._has_keypoints:
            keypoints = self._landmarks(frame.keypoints, KEYPOINT_COUNT, stored_size)
            item["keypoints"], item["keypoints_valid"] = keypoints
        if self._has_iris:
            iris = self._landmarks(frame.iris, IRIS_COUNT, stored_size)
            item["iris"], item["iris_valid"] = iris
        return item


def collate_frames(items: Sequence[dict]) -> dict:
    """Batches dataset items: tensors stacked on a new first axis, ``cameras`` joined into
    one :class:`PinholeCameras` of batch B, strings gathered into lists."""
    if not items:
        raise ValueError("collate_frames: empty batch")
    keys = set(items[0])
    if any(set(item) != keys for item in items):
        raise ValueError("collate_frames: items have different keys (mixed datasets?)")
    batch: dict = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if isinstance(values[0], PinholeCameras):
            sizes = {c.image_size for c in values}
            if len(sizes) > 1:
                raise ValueError(f"collate_frames: cameras of different image sizes {sorted(sizes)}")
            batch[key] = PinholeCameras(
                torch.cat([c.K for c in values]),
                torch.cat([c.R for c in values]),
                torch.cat([c.t for c in values]),
                values[0].image_size,
            )
        elif isinstance(values[0], torch.Tensor):
            batch[key] = torch.stack(values)
        else:
            batch[key] = values
    return batch
