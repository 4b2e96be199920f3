"""Readable pure-PyTorch twin of :mod:`pegasus.render.points` (same semantics, slow).

It mirrors ``rasterize_points``, ``alpha_composite``, ``accumulate_point_weights`` and
``render_points`` by brute force: every pixel is tested against every point (dense
all-pairs distances), each pixel sorts its covering points by depth, and compositing walks
the K slots one by one. Memory grows as B·H·W·N, so use it only on small scenes (tests).
Input checks are shared with the fast path so that both accept exactly the same inputs.
"""
from __future__ import annotations

import torch

from pegasus.geometry.camera import PinholeCameras, ndc_per_pixel, project_points
from pegasus.render.points import (
    DEFAULT_POINTS_PER_PIXEL,
    DEFAULT_ZNEAR,
    PointFragments,
    PointRendering,
    _background_tensor,
    _check_features,
    squared_ndc_distance,
    validate_inputs,
)

__all__ = [
    "rasterize_points_reference",
    "alpha_composite_reference",
    "accumulate_point_weights_reference",
    "render_points_reference",
]


def rasterize_points_reference(
    points: torch.Tensor,
    cameras: PinholeCameras,
    radius: float | torch.Tensor,
    points_per_pixel: int = DEFAULT_POINTS_PER_PIXEL,
    lengths: torch.Tensor | None = None,
    znear: float = DEFAULT_ZNEAR,
) -> PointFragments:
    """Brute-force twin of :func:`pegasus.render.points.rasterize_points`.

    Shapes: points (B, N, 3); radius float / 0-dim / (B, N) in NDC; returns
    :class:`PointFragments` of (B, H, W, K) tensors.
    """
    radius, item_mask = validate_inputs(points, cameras, radius, points_per_pixel, lengths, znear)
    height, width = cameras.image_size
    uv, depth = project_points(cameras.to(device=points.device, dtype=points.dtype), points)
    in_front = item_mask & (depth > znear)

    pixel_y, pixel_x = torch.meshgrid(
        torch.arange(height, dtype=points.dtype, device=points.device) + 0.5,
        torch.arange(width, dtype=points.dtype, device=points.device) + 0.5,
        indexing="ij",
    )
    # (B, H, W, N) squared NDC distance of every pixel centre to every point.
    dist2 = squared_ndc_distance(
        pixel_x[None, :, :, None], pixel_y[None, :, :, None],
        uv[:, None, None, :, 0], uv[:, None, None, :, 1], ndc_per_pixel((height, width)),
    )
    radius2 = (radius * radius)[:, None, None, :].expand_as(dist2)
    covers = (dist2 < radius2) & in_front[:, None, None, :]
    radius2 = torch.where(covers, radius2, 1.0)  # padding may have r = 0: keep 1/r² finite

    # Sort each pixel's points by depth (stable: ties keep point order); points that do not
    # cover the pixel sort last on +inf. Keep the first K.
    sort_depth = torch.where(covers, depth.detach()[:, None, None, :], torch.inf)
    nearest = torch.argsort(sort_depth, dim=-1, stable=True)[..., :points_per_pixel]
    hit = torch.gather(covers, -1, nearest)
    slot_dist2 = torch.gather(dist2, -1, nearest)
    slot_alpha = 1.0 - slot_dist2 / torch.gather(radius2, -1, nearest)
    slot_depth = torch.gather(depth[:, None, None, :].expand_as(dist2), -1, nearest)
    minus_one = torch.full_like(slot_dist2, -1.0)
    fragments = [
        torch.where(hit, nearest, -1),
        torch.where(hit, slot_depth, minus_one),
        torch.where(hit, slot_dist2, minus_one),
        torch.where(hit, slot_alpha, torch.zeros_like(slot_alpha)),
    ]
    missing = points_per_pixel - nearest.shape[-1]  # fewer points than slots
    if missing > 0:
        fragments = [
            torch.cat([t, t.new_full(t.shape[:-1] + (missing,), fill)], dim=-1)
            for t, fill in zip(fragments, (-1, -1.0, -1.0, 0.0), strict=True)
        ]
    return PointFragments(*fragments)


def alpha_composite_reference(
    idx: torch.Tensor,
    alphas: torch.Tensor,
    features: torch.Tensor,
    background: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Slot-by-slot twin of :func:`pegasus.render.points.alpha_composite`.

    Shapes: idx, alphas (B, H, W, K); features (B, N, C); returns image (B, H, W, C),
    alpha (B, H, W), weights (B, H, W, K).
    """
    _check_features(features, idx.shape[0])
    channels = features.shape[-1]
    background = _background_tensor(background, channels, features)
    batch = idx.shape[0]
    image = features.new_zeros(idx.shape[:3] + (channels,))
    transmittance = features.new_ones(idx.shape[:3])
    weights = []
    items = torch.arange(batch, device=idx.device)[:, None, None]
    for k in range(idx.shape[-1]):
        present = idx[..., k] >= 0
        alpha_k = torch.where(present, alphas[..., k], torch.zeros_like(alphas[..., k]))
        weight_k = alpha_k * transmittance
        feature_k = features[items, idx[..., k].clamp(min=0)]  # (B, H, W, C)
        image = image + torch.where(present[..., None], weight_k[..., None] * feature_k, 0.0)
        transmittance = transmittance * (1.0 - alpha_k)
        weights.append(weight_k)
    if background is not None:
        image = image + transmittance[..., None] * background
    return image, 1.0 - transmittance, torch.stack(weights, dim=-1)


def accumulate_point_weights_reference(
    idx: torch.Tensor, weights: torch.Tensor, num_points: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot twin of :func:`pegasus.render.points.accumulate_point_weights`.

    Returns point_weights (B, N) and visible (B, N) bool.
    """
    one_hot = idx[..., None] == torch.arange(num_points, device=idx.device)  # (B, H, W, K, N)
    point_weights = (one_hot * weights[..., None]).sum(dim=(1, 2, 3))
    is_front = one_hot[..., 0, :].flatten(1, 2).any(dim=1)
    is_strong = (one_hot & (weights.detach()[..., None] > 0.5)).flatten(1, 3).any(dim=1)
    return point_weights, is_front | is_strong


def render_points_reference(
    points: torch.Tensor,
    features: torch.Tensor,
    cameras: PinholeCameras,
    radius: float | torch.Tensor,
    points_per_pixel: int = DEFAULT_POINTS_PER_PIXEL,
    background: float | torch.Tensor | None = None,
    lengths: torch.Tensor | None = None,
    znear: float = DEFAULT_ZNEAR,
) -> PointRendering:
    """Twin of :func:`pegasus.render.points.render_points` built from the functions above."""
    fragments = rasterize_points_reference(points, cameras, radius, points_per_pixel, lengths, znear)
    image, alpha, weights = alpha_composite_reference(
        fragments.idx, fragments.alphas, features, background
    )
    point_weights, visible = accumulate_point_weights_reference(fragments.idx, weights, points.shape[1])
    return PointRendering(image, alpha, point_weights, visible, build_dense=lambda: (fragments, weights))
