"""Aligning a cross-driven render with the target frame, part by part.

A DB person's render follows the target's motion and camera but keeps the DB person's own
shape, so its eyes, brows, nose and head outline sit where the DB person's would, not exactly
where the target's are. The head model gives both positions: its landmarks posed with the DB
person's shape (the render's) and with the target's (the frame's), under the same motion and
camera. Each anchor group of landmarks (e.g. one eyebrow) defines a translation that maps the
render onto the target; every pixel takes the shift of the group whose centre is nearest.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["translation", "align_render"]


def translation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(2, 3) map x → x + t taking the mean of the (N, 2) ``source`` points onto that of ``target``.
    (A least-squares scale as well measured worse on the synthetic database: the anchors of a
    part move with the part's own shape, e.g. a wider mouth, which a scale would undo.)"""
    shift = target.mean(0) - source.mean(0)
    return np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]], np.float64)


def _warp(image: np.ndarray, transform: np.ndarray, nearest: bool, border) -> np.ndarray:
    h, w = image.shape[:2]
    # pixel centres sit at +0.5 in landmark coordinates, at integers in OpenCV's
    to_cv = transform.copy()
    to_cv[:, 2] += transform[:, :2] @ np.array([0.5, 0.5]) - 0.5
    return cv2.warpAffine(image, to_cv, (w, h), flags=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def align_render(layers: Sequence[np.ndarray], render_landmarks: np.ndarray, target_landmarks: np.ndarray,
                 groups: Sequence[Sequence[int]]) -> list[np.ndarray]:
    """Warps the layers of a render onto the target frame.

    Args:
        layers: (H, W, 3) float images (white outside the warp), (H, W) float masks (0 outside)
            or (H, W) integer label maps (nearest-neighbour, 0 outside).
        render_landmarks, target_landmarks: (L, 2) pixel coordinates of the head model's
            landmarks with the DB person's and with the target's shape.
        groups: [start, end) landmark index ranges, one per anchor group; none → unchanged.

    Returns:
        The warped layers: each target pixel from the group whose target-space landmark
        centre is nearest.
    """
    if not groups:
        return list(layers)
    h, w = layers[0].shape[:2]
    owner = np.zeros((h, w), np.int64)
    if len(groups) > 1:
        centres = np.array([target_landmarks[a:b].mean(0) for a, b in groups])
        x, y = np.arange(w) + 0.5, np.arange(h) + 0.5
        owner = ((x[None, None, :] - centres[:, 0, None, None]) ** 2
                 + (y[None, :, None] - centres[:, 1, None, None]) ** 2).argmin(0)
    transforms = [translation(render_landmarks[a:b], target_landmarks[a:b]) for a, b in groups]
    out = []
    for layer in layers:
        integer = np.issubdtype(layer.dtype, np.integer)
        source = layer.astype(np.int32) if integer else layer
        border = (1.0, 1.0, 1.0) if layer.ndim == 3 else 0
        if len(transforms) == 1:
            out.append(_warp(source, transforms[0], integer, border).astype(layer.dtype))
            continue
        warped = np.empty_like(source)
        for k, transform in enumerate(transforms):
            mine = owner == k
            warped[mine] = _warp(source, transform, integer, border)[mine]
        out.append(warped.astype(layer.dtype))
    return out
