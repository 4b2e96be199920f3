"""Square face crops: one box per frame in source pixels, and the maps between the two images.

A crop box is ``[x0, y0, side]`` (integers, source pixels): the crop covers source
``[x0, x0 + side) × [y0, y0 + side)`` and is resized to ``image_size``², so a point maps
as ``u = (x − x0) · image_size / side`` (continuous coordinates, pixel centres at +0.5 in
both images; OpenCV's resize uses the same convention). Boxes always lie inside the
frame: a box larger than the frame's short side shrinks to it, and one that sticks out
is shifted in, so no padding is ever invented.

Modes (``preprocess.crop.mode``):
- ``fixed``: one box for the whole video (the median face centre, ``scale`` × a high
  percentile of the face size). The camera of ``flame_params.json`` is shared by all frames
  of a video, which matches a fixed crop exactly.
- ``follow``: a box per frame, its centre and size smoothed over time with a Gaussian of
  ``smoothing_s`` seconds; the head stays centred, and the per-frame shift is absorbed by the
  fitted camera translation.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from .settings import CropSettings

__all__ = ["face_boxes_to_crops", "crop_frame", "source_to_crop", "crop_to_source"]

_SIZE_PERCENTILE = 95  # face size the fixed box is made for (robust to a few oversized mesh boxes)


def _fill_missing(values: np.ndarray) -> np.ndarray:
    """(T, D) with NaN rows → linearly interpolated in time, held at the ends."""
    valid = np.isfinite(values).all(1)
    every = np.arange(len(values))
    return np.stack([np.interp(every, every[valid], column[valid]) for column in values.T], 1)


def face_boxes_to_crops(face_boxes: np.ndarray, frame_size: tuple[int, int], fps: float,
                        settings: CropSettings) -> np.ndarray:
    """Per-frame face boxes → per-frame crop boxes.

    Args:
        face_boxes: (T, 4) ``[x0, y0, x1, y1]`` source pixels, NaN rows where no face was
            found (at least one row must be finite).
        frame_size: source (width, height), pixels.
        fps: frame rate of the kept frames (the source rate divided by the stride).

    Returns:
        (T, 3) int64 ``[x0, y0, side]``.
    """
    width, height = frame_size
    boxes = _fill_missing(np.asarray(face_boxes, dtype=np.float64))
    size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    centre = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    centre[:, 1] += settings.vertical_offset * size
    if settings.mode == "fixed":
        side = np.full(len(boxes), settings.scale * np.percentile(size, _SIZE_PERCENTILE))
        centre = np.broadcast_to(np.median(centre, 0), centre.shape)
    elif settings.mode == "follow":
        sigma = settings.smoothing_s * fps
        side = settings.scale * (gaussian_filter1d(size, sigma, mode="nearest") if sigma > 0 else size)
        centre = gaussian_filter1d(centre, sigma, axis=0, mode="nearest") if sigma > 0 else centre
    else:
        raise ValueError(f"preprocess.crop.mode: expected fixed or follow, got {settings.mode!r}")
    side = np.minimum(np.rint(side), min(width, height)).astype(np.int64)
    x0 = np.clip(np.rint(centre[:, 0] - side / 2), 0, width - side).astype(np.int64)
    y0 = np.clip(np.rint(centre[:, 1] - side / 2), 0, height - side).astype(np.int64)
    return np.stack([x0, y0, side], 1)


def crop_frame(frame: np.ndarray, box: np.ndarray, image_size: int) -> np.ndarray:
    """(H, W, C) or (H, W) source image and a ``[x0, y0, side]`` box → (S, S[, C]) crop, S = image_size."""
    x0, y0, side = (int(v) for v in box)
    patch = frame[y0:y0 + side, x0:x0 + side]
    if patch.shape[:2] != (side, side):
        raise ValueError(f"crop box {[x0, y0, side]} exceeds the frame of size {frame.shape[:2]}")
    interpolation = cv2.INTER_AREA if side > image_size else cv2.INTER_LINEAR
    return cv2.resize(patch, (image_size, image_size), interpolation=interpolation)


def source_to_crop(points: np.ndarray, box: np.ndarray, image_size: int) -> np.ndarray:
    """(..., K, 2) source pixels → crop pixels; ``box`` is (3,) or (..., 3) matching the leading dims."""
    box = np.asarray(box, dtype=np.float64)[..., None, :]
    return (np.asarray(points, dtype=np.float64) - box[..., :2]) * (image_size / box[..., 2:3])


def crop_to_source(points: np.ndarray, box: np.ndarray, image_size: int) -> np.ndarray:
    """Inverse of :func:`source_to_crop`: (..., K, 2) crop pixels → source pixels."""
    box = np.asarray(box, dtype=np.float64)[..., None, :]
    return np.asarray(points, dtype=np.float64) * (box[..., 2:3] / image_size) + box[..., :2]
