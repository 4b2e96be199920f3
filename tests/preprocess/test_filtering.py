"""Frame filtering (pegasus.preprocess.filtering): each reason on frames built to trigger it."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pegasus.preprocess.filtering import FilterSettings, filter_frames, sharpness

SETTINGS = FilterSettings(landmark_tolerance=0.08, blur_ratio=0.35, jump_threshold=0.08)
FACE = 200.0  # face size, pixels


def _steady_clip(count: int = 20):
    """Landmarks drifting slowly with 0.5 px noise: every frame should be kept."""
    rng = np.random.default_rng(0)
    base = rng.uniform(150, 350, (68, 2))
    landmarks = base[None] + np.linspace(0, 20, count)[:, None, None] + rng.normal(0, 0.5, (count, 68, 2))
    return dict(has_face=np.ones(count, bool), landmarks=landmarks, disagreement=np.full(count, 3.0),
                face_size=np.full(count, FACE), sharpness_values=np.full(count, 100.0) + rng.normal(0, 5, count))


def test_steady_clip_keeps_every_frame():
    assert filter_frames(**_steady_clip(), settings=SETTINGS) == [[]] * 20


def test_each_reason_is_found():
    clip = _steady_clip()
    clip["has_face"][2] = False
    clip["landmarks"][2] = np.nan
    clip["disagreement"][2] = np.nan
    clip["landmarks"][5] = np.nan  # the landmark detector gave nothing
    clip["disagreement"][5] = np.nan
    clip["disagreement"][8] = 0.2 * FACE  # landmarks far from the mesh
    clip["sharpness_values"][11] = 10.0  # a tenth of the video's sharpness
    clip["landmarks"][15] += 0.2 * FACE  # a one-frame jump its neighbours do not follow
    reasons = filter_frames(**clip, settings=SETTINGS)
    expected = {2: ["no_face"], 5: ["landmark_failure"], 8: ["landmark_failure"], 11: ["blur"], 15: ["jump"]}
    assert {t: r for t, r in enumerate(reasons) if r} == expected


def test_fast_smooth_motion_is_not_a_jump():
    clip = _steady_clip()
    clip["landmarks"][10:] += 0.05 * FACE * np.arange(1, 11)[:, None, None]  # a fast turn up to the last frame
    assert not any("jump" in r for r in filter_frames(**clip, settings=SETTINGS))


def test_a_cut_flags_the_frame_before_it_only():
    clip = _steady_clip()
    clip["landmarks"][0] += 0.3 * FACE  # the clip's first frame is another shot (as in d20)
    clip["landmarks"][9] = np.nan  # a missing frame leaves its neighbours predictable from the other side
    reasons = filter_frames(**clip, settings=SETTINGS)
    assert reasons[0] == ["jump"] and not any(reasons[1:9]) and not any(reasons[10:])


def test_zero_blur_ratio_never_drops():
    clip = _steady_clip()
    clip["sharpness_values"][3] = 0.0
    assert filter_frames(**clip, settings=FilterSettings(0.08, 0.0, 0.08))[3] == []


@pytest.mark.real_data
def test_sharpness_drops_with_blur(real_crops):
    data = real_crops["d18"]
    crop, mesh = data.crops[0], data.meshes[0]
    box = np.concatenate([mesh.min(0), mesh.max(0)])
    sharp = sharpness(crop, box)
    blurred = sharpness(cv2.GaussianBlur(crop, (0, 0), 3.0), box)
    assert sharp > 0 and blurred < SETTINGS.blur_ratio * sharp
    assert np.isnan(sharpness(crop, np.array([10.0, 10.0, 11.0, 11.0])))
