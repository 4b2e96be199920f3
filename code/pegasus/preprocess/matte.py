"""Foreground mattes: MediaPipe's selfie (person) segmentation with edge refinement.

The segmentation network sees a 256² (general model) or 144×256 (landscape model) copy of
the frame, so its mask is soft and follows the silhouette only roughly. Refinement:

1. the mask is thresholded at 0.5 and, with ``keep_largest``, only its largest connected
   region is kept (drops stray blobs in the background);
2. a fast guided filter (He and Sun, 2015) with the gray image as guide turns that hard
   silhouette into a soft matte whose edges follow the image edges (hair strands, the
   collar): radius ``refine_radius`` px at the crop size, regularisation ``refine_eps`` in
   [0, 1]² intensity units, coefficients on a grid ``refine_subsample`` times coarser.
   ``refine_radius = 0`` keeps the network's own soft mask.

MODNet (a trained matting network, sharper hair) is an optional backend in
:mod:`pegasus.preprocess.optional`.
"""
from __future__ import annotations

import cv2
import numpy as np

from .settings import MatteSettings

__all__ = ["SelfieSegmenter", "guided_filter", "keep_largest_region", "refine_matte"]


class SelfieSegmenter:
    """MediaPipe's selfie segmentation: (H, W, 3) uint8 RGB → (H, W) float32 person probability."""

    def __init__(self, model_selection: int):
        from mediapipe.python.solutions import selfie_segmentation

        self._segmenter = selfie_segmentation.SelfieSegmentation(model_selection=model_selection)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        mask = self._segmenter.process(np.ascontiguousarray(rgb)).segmentation_mask
        return np.clip(mask, 0.0, 1.0).astype(np.float32)

    def close(self) -> None:
        self._segmenter.close()


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float, subsample: int = 1) -> np.ndarray:
    """Edge-preserving smoothing of ``source`` that follows the edges of ``guide``.

    The fast variant (He and Sun, 2015): the local linear coefficients are computed on a
    copy ``subsample`` times smaller and upsampled, then applied at full resolution.

    Args:
        guide: (H, W) float32 in [0, 1]; source: (H, W) float32.
        radius: box radius, full-resolution pixels; eps: regularisation (larger = smoother).
        subsample: factor of the coefficient grid (1 = exact guided filter).

    Returns:
        (H, W) float32.
    """
    height, width = guide.shape
    small = (max(width // subsample, 1), max(height // subsample, 1))
    guide_small = cv2.resize(guide, small, interpolation=cv2.INTER_AREA) if subsample > 1 else guide
    source_small = cv2.resize(source, small, interpolation=cv2.INTER_AREA) if subsample > 1 else source
    size = (2 * max(radius // subsample, 1) + 1,) * 2

    def mean(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = mean(guide_small), mean(source_small)
    var_i = mean(guide_small * guide_small) - mean_i * mean_i
    a = (mean(guide_small * source_small) - mean_i * mean_p) / (var_i + eps)
    b = mean_p - a * mean_i
    mean_a, mean_b = mean(a), mean(b)
    if subsample > 1:
        mean_a = cv2.resize(mean_a, (width, height), interpolation=cv2.INTER_LINEAR)
        mean_b = cv2.resize(mean_b, (width, height), interpolation=cv2.INTER_LINEAR)
    return mean_a * guide + mean_b


def keep_largest_region(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool → (H, W) bool with only its largest 8-connected region."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:  # background plus at most one region
        return mask
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def _keep_largest_coarse(mask: np.ndarray, factor: int) -> np.ndarray:
    """:func:`keep_largest_region` decided on a copy ``factor`` times smaller (regions that
    touch there stay together), applied to the full-resolution mask."""
    height, width = mask.shape
    small = cv2.resize(mask.astype(np.uint8), (max(width // factor, 1), max(height // factor, 1)),
                       interpolation=cv2.INTER_AREA) > 0
    keep = cv2.resize(keep_largest_region(small).astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    return mask & (keep > 0)


def refine_matte(rgb: np.ndarray, matte: np.ndarray, settings: MatteSettings) -> np.ndarray:
    """(H, W, 3) uint8 RGB and its (H, W) float32 raw matte → (H, W) float32 refined matte in [0, 1]."""
    if settings.keep_largest:
        matte = np.where(_keep_largest_coarse(matte > 0.5, settings.refine_subsample), matte, 0.0)
    if settings.refine_radius > 0:
        guide = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        matte = guided_filter(guide, (matte > 0.5).astype(np.float32), settings.refine_radius, settings.refine_eps,
                              settings.refine_subsample)
    return np.clip(matte, 0.0, 1.0).astype(np.float32)
