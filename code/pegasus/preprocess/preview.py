"""Preview of a preprocessed video: landmarks, matte and labels over each frame.

Each preview frame is three tiles side by side (``preview_size`` pixels each):

1. the crop with the detected 68 landmarks (green), the irises (red) and the fitted
   head-model landmarks (blue), with the frame name and, for excluded frames, the reasons;
2. the crop composited on white with the matte;
3. the label map's colours blended over the crop.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from ..utils.media import Mp4Writer, draw_points, image_grid, put_label, write_png
from ..data.parts import colour_labels

__all__ = ["preview_frame", "write_preview", "caption"]

_DETECTED, _IRIS, _FITTED = (40, 200, 60), (230, 40, 40), (40, 90, 230)
_LABEL_ALPHA = 0.55  # weight of the label colours over the image
_GRID_FRAMES = 6  # frames in the still grid


def preview_frame(image: np.ndarray, matte: np.ndarray, labels: np.ndarray, landmarks: np.ndarray,
                  iris: np.ndarray, fitted: np.ndarray | None, caption: str, size: int) -> np.ndarray:
    """One (size, 3·size, 3) uint8 preview frame.

    Args:
        image: (S, S, 3) uint8 RGB crop; matte: (S, S) uint8; labels: (S, S) uint8 ids.
        landmarks: (68, 2), iris: (2, 2), fitted: (70, 2) or None, pixels of the crop.
        caption: text in the first tile's corner.
        size: tile side, pixels.
    """
    scale = size / image.shape[0]
    small = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(matte, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)[..., None] / 255.0
    colours = colour_labels(cv2.resize(labels, (size, size), interpolation=cv2.INTER_NEAREST))
    points = small
    if fitted is not None:
        points = draw_points(points, fitted[:68] * scale, _FITTED, radius=1)
    points = draw_points(points, landmarks * scale, _DETECTED, radius=1)
    points = draw_points(points, iris * scale, _IRIS, radius=2)
    if fitted is not None:
        points = draw_points(points, fitted[68:] * scale, _FITTED, radius=2)
    composited = (small * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    blended = (small * (1.0 - _LABEL_ALPHA) + colours * _LABEL_ALPHA).astype(np.uint8)
    return np.concatenate([put_label(points, caption), composited, blended], axis=1)


def write_preview(frames: Iterable[np.ndarray], count: int, fps: float, mp4_path: Path, grid_path: Path) -> None:
    """Writes preview frames as an mp4 and ``_GRID_FRAMES`` evenly spaced ones as a PNG grid (atomically).

    Args:
        frames: the ``count`` preview frames (from :func:`preview_frame`), in order.
    """
    chosen = set(np.linspace(0, count - 1, min(_GRID_FRAMES, count)).round().astype(int).tolist())
    stills: list[np.ndarray] = []
    with Mp4Writer(mp4_path, fps) as video:
        for index, frame in enumerate(frames):
            video.write(frame)
            if index in chosen:
                stills.append(frame)
    write_png(grid_path, image_grid(stills, n_cols=1))


def caption(name: str, reasons: Sequence[str]) -> str:
    """Frame caption: its name and, when excluded, why."""
    return f"{name}: {', '.join(reasons)}" if reasons else name
