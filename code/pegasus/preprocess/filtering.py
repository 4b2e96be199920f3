"""Frame filtering: which frames of a video to exclude from training, and why.

Reasons (a frame can have several):

- ``no_face``: the face mesh found no face;
- ``landmark_failure``: no 68 landmarks, or they disagree with the mesh at the anchor
  points (eye corners, nose tip, mouth corners, chin; :data:`pegasus.preprocess.face.IBUG_MESH_ANCHORS`)
  by more than ``landmark_tolerance`` face sizes (median over the anchors);
- ``blur``: the variance of the Laplacian of the face region is below ``blur_ratio`` times
  the video's median (strong blur relative to the video's own sharpness);
- ``jump``: the landmarks are more than ``jump_threshold`` face sizes (mean over the points)
  away from every constant-velocity prediction from their neighbours (the midpoint of the
  previous and the next frame, or the extrapolation of the two previous or of the two next
  frames): a jump the neighbouring frames do not explain, such as a detector glitch or a cut.
  Smooth motion, however fast, is predicted and kept.

Excluded frames stay in the dataset folder and are listed in the subject's
``blacklist.json``; their FLAME parameters are interpolated by the tracker.
"""
from __future__ import annotations

import cv2
import numpy as np

from .settings import FilterSettings

__all__ = ["REASONS", "sharpness", "jump_deviation", "filter_frames"]

REASONS = ("no_face", "landmark_failure", "blur", "jump")


def sharpness(rgb: np.ndarray, box: np.ndarray) -> float:
    """Variance of the Laplacian of the gray image inside ``box`` ``[x0, y0, x1, y1]`` (pixels)."""
    height, width = rgb.shape[:2]
    x0, y0 = max(int(box[0]), 0), max(int(box[1]), 0)
    x1, y1 = min(int(np.ceil(box[2])), width), min(int(np.ceil(box[3])), height)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return float("nan")
    gray = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def jump_deviation(points: np.ndarray) -> np.ndarray:
    """(T, K, 2) landmarks (NaN frames allowed) → (T,) distance (mean over points) to the
    closest constant-velocity prediction from the neighbours; NaN where none exists."""
    padded = np.pad(points, ((2, 2), (0, 0), (0, 0)), constant_values=np.nan)
    before2, before1, after1, after2 = (padded[2 + shift:len(padded) - 2 + shift] for shift in (-2, -1, 1, 2))
    predictions = np.stack([(before1 + after1) / 2, 2 * before1 - before2, 2 * after1 - after2])
    distances = np.linalg.norm(points[None] - predictions, axis=-1).mean(-1)  # (3, T)
    distances = np.where(np.isnan(distances), np.inf, distances).min(0)
    return np.where(np.isinf(distances), np.nan, distances)


def filter_frames(has_face: np.ndarray, landmarks: np.ndarray, disagreement: np.ndarray, face_size: np.ndarray,
                  sharpness_values: np.ndarray, settings: FilterSettings) -> list[list[str]]:
    """The exclusion reasons of each frame (empty list: kept).

    Args:
        has_face: (T,) bool, the mesh found a face.
        landmarks: (T, 68, 2) pixels, NaN where the landmark detector gave nothing.
        disagreement: (T,) landmark-vs-mesh anchor distance, pixels
            (:func:`pegasus.preprocess.face.anchor_disagreement`).
        face_size: (T,) face-box side, pixels (same image as the landmarks).
        sharpness_values: (T,) :func:`sharpness` of the face region.

    Returns:
        T lists of reasons from :data:`REASONS`.
    """
    count = len(has_face)
    reasons: list[list[str]] = [[] for _ in range(count)]
    has_landmarks = np.isfinite(landmarks).all((1, 2))
    failed = has_face & (~has_landmarks | ~(disagreement <= settings.landmark_tolerance * face_size))
    sharp = sharpness_values[has_face & np.isfinite(sharpness_values)]
    blurred = has_face & (sharpness_values < settings.blur_ratio * np.median(sharp)) if len(sharp) else \
        np.zeros(count, bool)
    usable = np.where((has_landmarks & ~failed)[:, None, None], landmarks, np.nan)
    jumped = jump_deviation(usable) > settings.jump_threshold * face_size
    for flags, reason in ((~has_face, "no_face"), (failed, "landmark_failure"), (blurred, "blur"),
                          (jumped, "jump")):
        for t in np.flatnonzero(flags):
            reasons[t].append(reason)
    return reasons
