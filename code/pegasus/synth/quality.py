"""The quality filter of the part-swap synthesis: which frames to drop, each with its reason."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["REASONS", "part_missing", "ssim_map", "blend_failed", "area_jumps"]

REASONS = {
    "no_render": "the render has no such frame",
    "no_own_part": "the target shows no {category} in this frame",
    "no_new_part": "the render shows no {category} in this frame",
    "no_skin_shading": "too little skin to fit the target's skin shading (bald head, re-shaded part)",
    "blend_failed": "the composite is closer to the render than to the target (SSIM inside the target's mask)",
    "area_jump": "the new {category}'s relative area differs from the video's median by more than {limit:.0%}",
}
"""Reason keys of ``blacklist.json`` and their explanations (formatted per video)."""


def part_missing(part: np.ndarray, min_share: float) -> bool:
    """True when the (H, W) bool ``part`` covers less than ``min_share`` of the image (or nothing)."""
    return int(part.sum()) == 0 or float(part.mean()) < min_share


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(H, W) SSIM map of two (H, W, 3) images in [0, 1] (Gaussian window σ = 1.5, 11 × 11,
    constants of data range 1; mean over the channels), same-size with reflected borders. The
    scorer's :func:`pegasus.eval.metrics.ssim` averages valid windows only and runs in float64
    torch; this per-pixel map serves the filter, twice per composited frame."""
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5)  # noqa: E731
    a, b = a.astype(np.float32), b.astype(np.float32)
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    value = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return value.mean(-1)


def _mean_ssim(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    return float(ssim_map(a, b)[region].mean())


def blend_failed(composite: np.ndarray, target: np.ndarray, render: np.ndarray, region: np.ndarray) -> bool:
    """METHOD §6's rule, on the pixels that should stay the target's: the composite's SSIM to
    the render exceeds its SSIM to the target inside ``region`` (H, W) bool — the target's
    foreground outside the grown part — so the edit replaced the person rather than a part.
    (The original compares over the whole target mask, which drops every large new part such
    as an afro.) Images (H, W, 3) in [0, 1]."""
    if not region.any():
        return True
    return _mean_ssim(composite, render, region) > _mean_ssim(composite, target, region)


def area_jumps(areas: Sequence[int], references: Sequence[int], limit: float) -> list[bool]:
    """Per frame: does the new part's pixel count, relative to the frame's reference area (the
    target's own part, or its whole foreground), differ from the video's median ratio by more
    than ``limit`` × that median (a part that flickers in and out of the render)? Relative
    areas let a mouth open and a head turn without counting as jumps."""
    values = np.asarray(areas, dtype=np.float64) / np.maximum(np.asarray(references, dtype=np.float64), 1.0)
    if len(values) == 0:
        return []
    median = float(np.median(values))
    return [bool(abs(v - median) > limit * median) for v in values]
