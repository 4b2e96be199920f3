"""Parity of our point renderer with PyTorch3D's PointsRasterizer + AlphaCompositor.

Runs in the PyTorch3D environment (``make test-pytorch3d``). The same scene is rendered by
both with equivalent cameras (``cameras_from_opencv_projection``) and settings, with
background None: PyTorch3D's AlphaCompositor only paints pixels that no point covers,
without blending the remaining transmittance, so for a background colour the two differ
by exactly ``(1 − alpha) · background`` on covered pixels (checked below).

Tolerances come from :mod:`pegasus.render.testing`: images and fragments may differ on a
bounded fraction of pixels where float rounding decides whether a pixel centre lies inside
a disc (PyTorch3D measures in NDC after its projection, we in pixels after ours), and the
gradients of the points touching those pixels may differ accordingly.
"""
from __future__ import annotations

import pytest
import torch

from pegasus.render import render_points
from pegasus.render.testing import (
    PYTORCH3D_FRAGMENTS,
    PYTORCH3D_GRAD,
    PYTORCH3D_IMAGE,
    Tolerance,
    assert_close_except_fraction,
    make_head_scene,
    render_points_pytorch3d,
)

pytestmark = pytest.mark.pytorch3d


def _scene(size, num_points=1500, per_point_radius=False, seed=0):
    """Two frames with different point counts (the second padded), float32."""
    scene = make_head_scene(num_points, size, batch=2, channels=3, seed=seed)
    lengths = torch.tensor([num_points, num_points * 2 // 3])
    radius = torch.tensor(scene.radius)
    if per_point_radius:
        generator = torch.Generator().manual_seed(seed + 1)
        radius = scene.radius * (0.5 + torch.rand(2, num_points, generator=generator))
    return scene, lengths, radius


def _render_both(scene, lengths, radius, points_per_pixel):
    """Forward and backward of the same random weighting of the image with both renderers."""
    generator = torch.Generator().manual_seed(7)
    image_weights = torch.rand(2, *scene.cameras.image_size, 3, generator=generator)
    results = []
    for renderer in ("ours", "pytorch3d"):
        points = scene.points.clone().requires_grad_(True)
        features = scene.features.clone().requires_grad_(True)
        if renderer == "ours":
            out = render_points(points, features, scene.cameras, radius, points_per_pixel, None, lengths)
            image, fragments = out.features, out.fragments
        else:
            image, fragments = render_points_pytorch3d(
                points, features, scene.cameras, radius, points_per_pixel, lengths
            )
        (image * image_weights).sum().backward()
        results.append((image.detach(), fragments, points.grad, features.grad))
    return results


def _assert_parity(ours, theirs):
    image, fragments, grad_points, grad_features = ours
    their_image, their_fragments, their_grad_points, their_grad_features = theirs
    assert_close_except_fraction(image, their_image, PYTORCH3D_IMAGE, group_dims=1, name="image")
    same_idx = fragments.idx == their_fragments.idx
    mismatch = 1.0 - same_idx.all(dim=-1).float().mean().item()
    assert mismatch <= PYTORCH3D_FRAGMENTS.max_fraction, f"idx differs on {mismatch:.4%} of pixels"
    for name in ("zbuf", "dists", "alphas"):
        ours_values = torch.where(same_idx, getattr(fragments, name).detach(), 0.0)
        their_values = torch.where(same_idx, getattr(their_fragments, name).detach(), 0.0)
        assert_close_except_fraction(ours_values, their_values, Tolerance(atol=PYTORCH3D_FRAGMENTS.atol,
                                     rtol=PYTORCH3D_FRAGMENTS.rtol), name=name)
    # per-point gradients, relative to the largest one of the frame
    for name, ours_grad, their_grad in [("points", grad_points, their_grad_points),
                                        ("features", grad_features, their_grad_features)]:
        scale = their_grad.abs().amax(dim=(1, 2), keepdim=True).clamp(min=1e-12)
        assert_close_except_fraction(ours_grad / scale, their_grad / scale, PYTORCH3D_GRAD, group_dims=1,
                                     name=f"grad {name}")
        assert their_grad.abs().sum() > 0


@pytest.mark.parametrize("size", [(64, 64), (48, 80), (80, 48)])
@pytest.mark.parametrize("points_per_pixel", [1, 10])
def test_matches_pytorch3d(pytorch3d, size, points_per_pixel):
    scene, lengths, radius = _scene(size)
    ours, theirs = _render_both(scene, lengths, radius, points_per_pixel)
    _assert_parity(ours, theirs)
    assert (ours[1].idx[1] < int(lengths[1])).all(), "points beyond lengths must be ignored"


@pytest.mark.parametrize("points_per_pixel", [1, 10])
def test_matches_pytorch3d_with_per_point_radius(pytorch3d, points_per_pixel):
    scene, lengths, radius = _scene((56, 72), per_point_radius=True, seed=3)
    _assert_parity(*_render_both(scene, lengths, radius, points_per_pixel))


def test_matches_pytorch3d_with_points_behind_the_camera(pytorch3d):
    scene, lengths, radius = _scene((64, 64), num_points=800, seed=5)
    scene.points[:, ::7, 2] -= 6.0  # every 7th point moves behind the camera (depth < 0)
    ours, theirs = _render_both(scene, lengths, radius, 10)
    _assert_parity(ours, theirs)
    assert not (ours[1].zbuf < 0).logical_and(ours[1].idx >= 0).any()


def test_background_differs_from_pytorch3d_only_by_transmittance(pytorch3d):
    scene, lengths, radius = _scene((64, 64), num_points=600)
    background = torch.tensor([1.0, 0.5, 0.25])
    out = render_points(scene.points, scene.features, scene.cameras, radius, 10, background, lengths)
    inputs = (scene.points, scene.features, scene.cameras, radius)
    their_image, _ = render_points_pytorch3d(*inputs, 10, lengths)
    emulated = their_image + (1.0 - out.alpha)[..., None] * background
    assert_close_except_fraction(out.features, emulated, PYTORCH3D_IMAGE, group_dims=1, name="image")
