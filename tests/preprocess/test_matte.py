"""Foreground mattes (pegasus.preprocess.matte): the guided filter against a naive twin,
region cleaning, and mattes of synthetic (known mask) and real frames."""
from __future__ import annotations

import numpy as np
import pytest

from pegasus.preprocess.matte import SelfieSegmenter, guided_filter, keep_largest_region, refine_matte


def _guided_filter_naive(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter written out per window (mirror padding as OpenCV's BORDER_REFLECT)."""
    pad = lambda x: np.pad(x, radius, mode="symmetric")  # noqa: E731
    height, width = guide.shape
    window = lambda x, i, j: x[i:i + 2 * radius + 1, j:j + 2 * radius + 1]  # noqa: E731
    padded_i, padded_p = pad(guide), pad(source)
    a, b = np.empty_like(guide), np.empty_like(guide)
    for i in range(height):
        for j in range(width):
            gi, gp = window(padded_i, i, j), window(padded_p, i, j)
            a[i, j] = ((gi * gp).mean() - gi.mean() * gp.mean()) / (gi.var() + eps)
            b[i, j] = gp.mean() - a[i, j] * gi.mean()
    mean_a = np.array([[window(pad(a), i, j).mean() for j in range(width)] for i in range(height)])
    mean_b = np.array([[window(pad(b), i, j).mean() for j in range(width)] for i in range(height)])
    return mean_a * guide + mean_b


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_guided_filter_matches_the_naive_twin():
    rng = np.random.default_rng(0)
    guide = rng.random((20, 23)).astype(np.float32)
    source = (rng.random((20, 23)) > 0.5).astype(np.float32)
    for radius, eps in ((1, 1e-3), (3, 1e-2)):
        np.testing.assert_allclose(guided_filter(guide, source, radius, eps), _guided_filter_naive(
            guide.astype(np.float64), source.astype(np.float64), radius, eps), atol=2e-4)


def test_fast_guided_filter_approximates_the_exact_one(synthetic_faces):
    guide = synthetic_faces.images[0].mean(2).astype(np.float32) / 255.0
    source = (synthetic_faces.masks[0] > 0.5).astype(np.float32)
    exact, fast = guided_filter(guide, source, 8, 1e-3), guided_filter(guide, source, 8, 1e-3, subsample=4)
    assert np.abs(exact - fast).mean() < 0.01


def test_keep_largest_region_drops_blobs():
    mask = np.zeros((60, 60), bool)
    mask[5:40, 5:40] = True
    mask[50:55, 50:55] = True
    kept = keep_largest_region(mask)
    assert kept[20, 20] and not kept[52, 52] and kept.sum() == 35 * 35


def test_matte_matches_the_known_mask_of_synthetic_frames(synthetic_faces, chain_settings):
    segmenter = SelfieSegmenter(chain_settings.matte.model_selection)
    for image, truth in zip(synthetic_faces.images, synthetic_faces.masks):
        matte = refine_matte(image, segmenter(image), chain_settings.matte)
        assert matte.dtype == np.float32 and matte.shape == truth.shape and 0 <= matte.min() <= matte.max() <= 1
        assert _iou(matte > 0.5, truth > 0.5) > 0.9  # measured 0.93–1.0 (the guided filter snaps to the crisp edge)


@pytest.mark.real_data
def test_real_mattes_are_non_empty_and_temporally_stable(real_crops, chain_settings):
    segmenter = SelfieSegmenter(chain_settings.matte.model_selection)
    for clip, data in real_crops.items():
        mattes = np.stack([refine_matte(crop, segmenter(crop), chain_settings.matte) for crop in data.crops]) > 0.5
        coverage = mattes.mean((1, 2))
        assert (coverage > 0.2).all() and (coverage < 0.9).all(), (clip, coverage)
        ious = [_iou(a, b) for a, b, steady in zip(mattes[1:], mattes[:-1], data.same_shot) if steady]
        assert len(ious) >= len(data.crops) - 2 and min(ious) > 0.95, (clip, ious)  # measured ≥ 0.97
