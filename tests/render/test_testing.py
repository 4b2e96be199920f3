"""Tests of the renderer test helpers (pegasus.render.testing): the tolerance check that
the parity tests rely on, and the shared synthetic scene."""
from __future__ import annotations

import math

import pytest
import torch

from pegasus.geometry.camera import project_points
from pegasus.render.testing import (
    PYTORCH3D_IMAGE,
    Tolerance,
    assert_close_except_fraction,
    make_head_scene,
    radius_for_point_count,
)


def test_close_tensors_pass_and_differences_within_tolerance_pass():
    expected = torch.linspace(0, 1, 100)
    assert_close_except_fraction(expected.clone(), expected, Tolerance(atol=0.0))
    assert_close_except_fraction(expected + 1e-4, expected, Tolerance(atol=2e-4))
    assert_close_except_fraction(expected * (1 + 1e-3), expected, Tolerance(atol=0.0, rtol=2e-3))


def test_mismatch_fraction_is_bounded():
    expected = torch.zeros(1000)
    actual = expected.clone()
    actual[:10] = 1.0  # 1 %
    assert_close_except_fraction(actual, expected, Tolerance(atol=1e-6, max_fraction=0.01))
    with pytest.raises(AssertionError, match=r"10/1000 \(1.0000%\) elements differ.*allowed 0.5000%"):
        assert_close_except_fraction(actual, expected, Tolerance(atol=1e-6, max_fraction=0.005))


def test_failure_message_reports_largest_difference_and_where():
    expected = torch.zeros(3, 4)
    actual = expected.clone()
    actual[2, 1] = 0.5
    actual[0, 0] = 0.1
    message = r"image: .*Largest difference 0.5 at \(2, 1\): actual 0.5, expected 0"
    with pytest.raises(AssertionError, match=message):
        assert_close_except_fraction(actual, expected, Tolerance(atol=1e-3), name="image")


def test_groups_count_whole_pixels():
    expected = torch.zeros(2, 5, 5, 3)
    actual = expected.clone()
    actual[0, 0, :2, 0] = 1.0  # one channel of two pixels: 2/150 elements, 2/50 pixels
    tolerance = Tolerance(atol=1e-6, max_fraction=0.03)
    assert_close_except_fraction(actual, expected, tolerance, group_dims=0)
    with pytest.raises(AssertionError, match=r"2/50 \(4.0000%\) groups differ"):
        assert_close_except_fraction(actual, expected, tolerance, group_dims=1)


def test_nan_counts_as_mismatch_unless_in_both():
    expected = torch.tensor([0.0, math.nan, 1.0])
    assert_close_except_fraction(torch.tensor([0.0, math.nan, 1.0]), expected, Tolerance(atol=0.0))
    with pytest.raises(AssertionError):
        assert_close_except_fraction(torch.tensor([math.nan, math.nan, 1.0]), expected, Tolerance(0.0))


def test_shape_mismatch_fails():
    with pytest.raises(AssertionError, match="shape"):
        assert_close_except_fraction(torch.zeros(2, 3), torch.zeros(3, 2), PYTORCH3D_IMAGE)


def test_radius_schedule_follows_pointavatar():
    assert radius_for_point_count(400) == pytest.approx(0.169)
    assert radius_for_point_count(800) == pytest.approx(0.169 * 0.75)
    assert radius_for_point_count(409_600) == pytest.approx(0.169 * 0.75**10)
    with pytest.raises(ValueError, match="num_points must be > 0"):
        radius_for_point_count(0)


def test_head_scene_is_deterministic_and_in_view():
    scene = make_head_scene(500, (48, 64), batch=2, channels=3, seed=4)
    again = make_head_scene(500, (48, 64), batch=2, channels=3, seed=4)
    assert torch.equal(scene.points, again.points) and torch.equal(scene.features, again.features)
    assert scene.points.shape == (2, 500, 3) and scene.features.shape == (2, 500, 3)
    uv, depth = project_points(scene.cameras, scene.points)
    assert (depth > 3.0).all() and (depth < 5.0).all()
    assert (uv > 0).all() and (uv[..., 0] < 64).all() and (uv[..., 1] < 48).all()
    # the head spans ~60 % of the shorter side
    extent = (uv[0, :, 1].max() - uv[0, :, 1].min()) / 48
    assert 0.45 < float(extent) < 0.75
