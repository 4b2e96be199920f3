"""Differentiable point rasterizer and alpha compositor in plain PyTorch (fast path).

The output equals PyTorch3D's ``PointsRasterizer`` + ``AlphaCompositor`` (see
tests/render/test_pytorch3d_parity.py and docs/benchmarks.md) without a compiled
extension, on any device, and it also returns what PointAvatar forked PyTorch3D for:
per-pixel compositing weights, per-point accumulated weights and visibility.

Semantics (shared with the readable twin in :mod:`pegasus.render.reference`):

* Points are projected with :func:`pegasus.geometry.camera.project_points` (OpenCV axes,
  pixel (i, j) centred at (j + 0.5, i + 0.5)). Distances and radii are in NDC units, where
  the shorter image side spans 2, i.e. ``ndc_per_pixel(image_size)`` NDC per pixel.
* A point covers a pixel when its squared NDC distance d² to the pixel centre is < r².
  Points with depth ≤ ``znear``, beyond ``lengths`` or off-screen cover nothing.
* Each pixel keeps the K (``points_per_pixel``) covering points nearest to the camera,
  front to back (ties: lower point index first), padded with −1.
* A slot's alpha is ``1 − d²/r²``; features are composited front to back ("over"):
  ``image = Σ_k w_k f_k + T_K · background`` with ``w_k = α_k Π_{j<k}(1 − α_j)`` and
  ``T_K = Π_k (1 − α_k)``; the coverage image is ``1 − T_K``.

How the fast path works: points are sorted by depth; every point enumerates the pixels of
a small box around its disc and keeps the (point, pixel) pairs with d² < r²; each pixel
ranks its candidates by one stable sort on the pixel id (which keeps depth order) and
appends them after the slots it already holds. Points are visited front to back in chunks
of a bounded number of candidate pairs, so memory stays bounded, pixels that already hold
K points reject the points behind them, and points whose whole box is full are skipped.
Only this selection runs without gradients: distances, alphas and compositing are then
computed from the differentiable projections of the selected points, on the occupied
slots only, so gradients reach point positions, features, radii and the background.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import torch

from pegasus.geometry.camera import PinholeCameras, ndc_per_pixel, project_points

__all__ = [
    "PointFragments",
    "PointRendering",
    "rasterize_points",
    "alpha_composite",
    "accumulate_point_weights",
    "render_points",
]

DEFAULT_POINTS_PER_PIXEL = 10
DEFAULT_ZNEAR = 1e-3
DEFAULT_CHUNK_PAIRS = 1 << 21
_MIN_CHUNK_PAIRS = 1 << 16
# Footprint boxes are widened by this many pixels on each side so that float rounding in
# the pixel-space box can never drop a pixel that the NDC-space test d² < r² accepts.
_BOX_MARGIN_PX = 1e-3


@dataclass
class PointFragments:
    """Per-pixel result of :func:`rasterize_points` (like PyTorch3D's PointFragments).

    Attributes:
        idx: (B, H, W, K) int64 index of the point within its batch item (0 … N−1),
            nearest first; −1 marks an empty slot (empty slots are always trailing).
        zbuf: (B, H, W, K) camera depth of the slot's point (world units); −1 where empty.
        dists: (B, H, W, K) squared NDC distance from the pixel centre; −1 where empty.
        alphas: (B, H, W, K) ``1 − dists / r²`` in (0, 1]; 0 where empty.
    """

    idx: torch.Tensor
    zbuf: torch.Tensor
    dists: torch.Tensor
    alphas: torch.Tensor


@dataclass
class _Slots:
    """The occupied slots of a (B, H, W, K) grid, in grid order (pixel-major, then slot).

    Attributes:
        grid: (B, H, W, K).
        covered: (P,) int64 flat ids ``b·H·W + i·W + j`` of the pixels holding ≥ 1 point.
        row: (M,) int64 index into ``covered`` of each slot's pixel.
        slot: (M,) int64 slot number k (0 = front-most).
        position: (M,) int64 index into the flat (B·H·W·K) grid.
        point: (M,) int64 flat point id ``b·N + n``.
    """

    grid: tuple[int, int, int, int]
    covered: torch.Tensor
    row: torch.Tensor
    slot: torch.Tensor
    position: torch.Tensor
    point: torch.Tensor

    @cached_property
    def compact_position(self) -> torch.Tensor:
        """(M,) index into a (P, K) grid of the covered pixels."""
        return self.row * self.grid[3] + self.slot

    def to_grid(self, values: torch.Tensor, fill: float) -> torch.Tensor:
        """(M,) per-slot values → (B, H, W, K) grid, ``fill`` at empty slots."""
        grid = torch.full((math.prod(self.grid),), fill, dtype=values.dtype, device=values.device)
        return grid.index_copy(0, self.position, values).view(self.grid)


@dataclass
class _SlotValues:
    """Differentiable per-slot values (all (M,)): camera depth, squared NDC distance, alpha."""

    depth: torch.Tensor
    dist2: torch.Tensor
    alpha: torch.Tensor


@dataclass(eq=False)
class PointRendering:
    """Output of :func:`render_points`.

    Attributes:
        features: (B, H, W, C) composited features (background blended in).
        alpha: (B, H, W) coverage ``1 − Π_k (1 − α_k)`` in [0, 1].
        point_weights: (B, N) sum of each point's compositing weights over all pixels.
        visible: (B, N) bool, point is the front-most point of some pixel or has a
            compositing weight > 0.5 somewhere (the PointAvatar pruning rule).
        fragments: :class:`PointFragments` (B, H, W, K), built on first access.
        weights: (B, H, W, K) compositing weight of each slot (0 where empty), built on
            first access.
        build_dense: returns (fragments, weights); training loops that only need the
            images and per-point values never pay for the dense (B, H, W, K) grids.
    """

    features: torch.Tensor
    alpha: torch.Tensor
    point_weights: torch.Tensor
    visible: torch.Tensor
    build_dense: Callable[[], tuple[PointFragments, torch.Tensor]] = field(repr=False)

    @cached_property
    def _dense(self) -> tuple[PointFragments, torch.Tensor]:
        return self.build_dense()

    @property
    def fragments(self) -> PointFragments:
        return self._dense[0]

    @property
    def weights(self) -> torch.Tensor:
        return self._dense[1]

    @property
    def front_idx(self) -> torch.Tensor:
        """(B, H, W) int64 index of the front-most point of each pixel; −1 if none."""
        return self.fragments.idx[..., 0]


# ----------------------------------------------------------------------------- checks


def _is_count(value) -> bool:
    """True for an int ≥ 1 (bools excluded)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_finite(name: str, value: torch.Tensor) -> None:
    """Raises ValueError naming ``name`` when ``value`` holds NaN or Inf (padding included)."""
    bad = ~torch.isfinite(value)
    if bool(bad.any()):
        where = tuple(int(i) for i in bad.nonzero()[0].tolist())
        raise ValueError(f"{name} contains NaN or Inf (first at index {where}); padding "
                         f"beyond lengths must be finite too")


def validate_inputs(
    points: torch.Tensor,
    cameras: PinholeCameras,
    radius: float | torch.Tensor,
    points_per_pixel: int,
    lengths: torch.Tensor | None,
    znear: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Checks the rasterizer inputs where they enter and normalises them.

    Returns:
        radius: (B, N) radius in NDC units (a view of a scalar, or the given tensor).
        item_mask: (B, N) bool, True for points within ``lengths``.
    """
    if not isinstance(points, torch.Tensor) or points.ndim != 3 or points.shape[-1] != 3:
        shape = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points)
        raise ValueError(f"points must be a (B, N, 3) tensor, got {shape}")
    if not points.is_floating_point():
        raise ValueError(f"points must be floating point, got {points.dtype}")
    batch, num_points = points.shape[:2]
    if not isinstance(cameras, PinholeCameras) or len(cameras) != batch:
        got = len(cameras) if isinstance(cameras, PinholeCameras) else type(cameras)
        raise ValueError(f"cameras must be PinholeCameras with B={batch} cameras, got {got}")
    if not _is_count(points_per_pixel):
        raise ValueError(f"points_per_pixel must be an int >= 1, got {points_per_pixel!r}")
    if not (isinstance(znear, (int, float)) and math.isfinite(znear) and znear >= 0):
        raise ValueError(f"znear must be a finite float >= 0, got {znear!r}")

    if lengths is None:
        lengths = torch.full((batch,), num_points, dtype=torch.long, device=points.device)
    else:
        lengths = torch.as_tensor(lengths, device=points.device)
        if lengths.shape != (batch,) or lengths.is_floating_point():
            raise ValueError(f"lengths must be a ({batch},) integer tensor, got "
                             f"{tuple(lengths.shape)} {lengths.dtype}")
        if bool(((lengths < 0) | (lengths > num_points)).any()):
            raise ValueError(f"lengths must lie in [0, N={num_points}], got {lengths.tolist()}")
    item_mask = torch.arange(num_points, device=points.device)[None, :] < lengths[:, None]

    if isinstance(radius, (int, float)) and not isinstance(radius, bool):
        radius = torch.tensor(float(radius), dtype=points.dtype, device=points.device)
    if not isinstance(radius, torch.Tensor):
        raise ValueError(f"radius must be a float or a tensor, got {type(radius)}")
    if radius.ndim == 0:
        value = float(radius.detach())
        if not math.isfinite(value):
            raise ValueError(f"radius contains NaN or Inf: {value}")
        if value <= 0:
            raise ValueError(f"radius must be > 0 (NDC units), got {value}")
        radius = radius.to(device=points.device, dtype=points.dtype).expand(batch, num_points)
    elif radius.shape == (batch, num_points):
        _check_finite("radius", radius)
        if bool(((radius <= 0) & item_mask).any()):
            raise ValueError("radius must be > 0 (NDC units) for every point within lengths")
        radius = radius.to(device=points.device, dtype=points.dtype)
    else:
        raise ValueError(f"radius must be a scalar or a ({batch}, {num_points}) tensor, got "
                         f"{tuple(radius.shape)}")
    _check_finite("points", points)
    return radius, item_mask


def _check_features(features: torch.Tensor, batch: int, num_points: int | None = None) -> None:
    """Raises ValueError unless ``features`` is a finite (B, N, C) tensor."""
    if not isinstance(features, torch.Tensor) or features.ndim != 3:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features)
        raise ValueError(f"features must be a (B, N, C) tensor, got {shape}")
    if features.shape[0] != batch or (num_points is not None and features.shape[1] != num_points):
        expected = f"({batch}, {'N' if num_points is None else num_points}, C)"
        raise ValueError(f"features must be {expected} to match the points, got {tuple(features.shape)}")
    _check_finite("features", features)


def _check_idx(idx: torch.Tensor, num_points: int) -> None:
    """Raises ValueError unless ``idx`` is a (B, H, W, K) integer grid with values in [−1, N)."""
    if not isinstance(idx, torch.Tensor) or idx.ndim != 4 or idx.is_floating_point():
        shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx)
        raise ValueError(f"idx must be a (B, H, W, K) integer tensor, got {shape}")
    low, high = (int(idx.min()), int(idx.max())) if idx.numel() else (-1, -1)
    if low < -1 or high >= num_points:
        raise ValueError(f"idx values must lie in [-1, N={num_points}), got [{low}, {high}]")


def _background_tensor(background, num_channels: int, like: torch.Tensor) -> torch.Tensor | None:
    """None, a float or a (C,) tensor → None or a (C,) tensor on ``like``'s device/dtype."""
    if background is None:
        return None
    background = torch.as_tensor(background, dtype=like.dtype, device=like.device)
    if background.ndim == 0:
        background = background.expand(num_channels)
    if background.shape != (num_channels,):
        raise ValueError(f"background must be a float or a ({num_channels},) tensor, got "
                         f"{tuple(background.shape)}")
    _check_finite("background", background)
    return background


# ----------------------------------------------------------------------------- geometry


def _project_for_raster(
    points: torch.Tensor, cameras: PinholeCameras, radius: torch.Tensor, item_mask: torch.Tensor,
    znear: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Projects points and flags those that can cover a pixel.

    Args:
        points: (B, N, 3) world points. radius: (B, N) NDC. item_mask: (B, N) bool.

    Returns:
        uv: (B, N, 2) pixel coordinates, depth: (B, N) camera z, active: (B, N) bool, True
        for points within lengths, in front of ``znear`` and whose disc reaches the image.
    """
    cameras = cameras.to(device=points.device, dtype=points.dtype)
    uv, depth = project_points(cameras, points)
    height, width = cameras.image_size
    reach = radius.detach() / ndc_per_pixel(cameras.image_size) + 1.0
    u, v = uv[..., 0].detach(), uv[..., 1].detach()
    on_screen = (u + reach > 0) & (u - reach < width) & (v + reach > 0) & (v - reach < height)
    active = item_mask & (depth.detach() > znear) & on_screen
    return uv, depth, active


def squared_offset(pixel: torch.Tensor, coord: torch.Tensor, ndc_scale: float) -> torch.Tensor:
    """Squared NDC offset along one axis between pixel centres and point coordinates (px)."""
    offset = (pixel - coord) * ndc_scale
    return offset * offset


def squared_ndc_distance(
    pixel_x: torch.Tensor, pixel_y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, ndc_scale: float
) -> torch.Tensor:
    """Squared NDC distance between pixel centres and projected points.

    All tensors broadcast; pixel_x/pixel_y and u/v are in pixels, ``ndc_scale`` is NDC units
    per pixel. The selection adds the same two :func:`squared_offset` terms in the same
    order, so its test ``d² < r²`` and the alpha ``1 − d²/r²`` see bit-identical values.
    """
    return squared_offset(pixel_y, v, ndc_scale) + squared_offset(pixel_x, u, ndc_scale)


# ----------------------------------------------------------------------------- selection

_SAME_WIDTH_INT = {torch.float16: torch.int16, torch.bfloat16: torch.int16,
                   torch.float32: torch.int32, torch.float64: torch.int64}


def _depth_sort_key(depth: torch.Tensor) -> torch.Tensor:
    """Integers ordered like the positive floats ``depth`` (their IEEE bits); integer
    sorts are several times faster than float sorts on CPU."""
    return depth.view(_SAME_WIDTH_INT[depth.dtype])


@dataclass
class _Box:
    """Pixel offsets of a footprint box of ``rows × cols`` pixels in a ``width``-wide image."""

    rows: int
    cols: int
    row_offset: torch.Tensor  # (rows,) int64
    col_offset: torch.Tensor  # (cols,) int64
    flat_offset: torch.Tensor  # (rows·cols,) int32, row-major

    @classmethod
    def make(cls, rows: int, cols: int, width: int, device: torch.device) -> "_Box":
        row_offset = torch.arange(rows, device=device)
        col_offset = torch.arange(cols, device=device)
        flat = (row_offset[:, None] * width + col_offset).view(-1).to(torch.int32)
        return cls(rows, cols, row_offset, col_offset, flat)


def _footprint_hits(
    point_floats: torch.Tensor, point_ints: torch.Tensor, box: _Box, ndc_scale: float,
    pixel_count: torch.Tensor | None, points_per_pixel: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels covered by n points whose footprint boxes all have the size of ``box``.

    Args:
        point_floats: (n, 3) pixel coordinates u, v and squared NDC radius of each point.
        point_ints: (n, 3) int64 top-left pixel of each box (boxes lie inside the image):
            row, column and flat id ``(item·H + row)·W + column``.
        pixel_count: None, or (B·H·W,) int32 slots filled so far: pixels holding
            ``points_per_pixel`` points are skipped.

    Returns:
        flat pixel ids (M,) int32 and the index (0 … n−1) of the covering point (M,) int32,
        both in point-major order (so, for depth-sorted points, front to back per pixel).
    """
    u, v, radius2 = point_floats.unbind(1)
    row0, col0, first_pixel = point_ints.unbind(1)
    centre_y = (row0[:, None] + box.row_offset).to(u.dtype) + 0.5  # (n, rows)
    centre_x = (col0[:, None] + box.col_offset).to(u.dtype) + 0.5  # (n, cols)
    dy2 = squared_offset(centre_y, v[:, None], ndc_scale)
    dx2 = squared_offset(centre_x, u[:, None], ndc_scale)
    hit = ((dy2[:, :, None] + dx2[:, None, :]) < radius2[:, None, None]).view(u.shape[0], -1)
    pair_pixel = first_pixel.to(torch.int32)[:, None] + box.flat_offset  # (n, rows·cols)
    if pixel_count is not None:
        hit &= pixel_count.index_select(0, pair_pixel.view(-1)).view_as(hit) < points_per_pixel
    covering = torch.repeat_interleave(
        torch.arange(hit.shape[0], device=u.device, dtype=torch.int32), hit.sum(dim=1)
    )
    return pair_pixel.view(-1)[hit.view(-1)], covering


def _open_points(
    pixel_count: torch.Tensor, points_per_pixel: int, image_shape: tuple[int, int, int],
    item: torch.Tensor, row0: torch.Tensor, col0: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
) -> torch.Tensor:
    """(n,) bool: does the footprint box of each point contain a pixel with a free slot?

    A summed-area table of the not-yet-full pixels makes this O(B·H·W) once plus O(1) per
    point.
    """
    batch, height, width = image_shape
    not_full = (pixel_count < points_per_pixel).view(batch, height, width)
    table = torch.nn.functional.pad(not_full.to(torch.int32).cumsum(1).cumsum(2), (1, 0, 1, 0)).view(-1)
    corner_rows = torch.stack([row0, row0 + rows]) + item * (height + 1)  # (2, n)
    corner_cols = torch.stack([col0, col0 + cols])  # (2, n)
    corners = table.index_select(0, (corner_rows[:, None] * (width + 1) + corner_cols).view(-1))
    (top_left, top_right), (bottom_left, bottom_right) = corners.view(2, 2, -1)
    return bottom_right - bottom_left - top_right + top_left > 0


def _chunk_bounds(pairs_per_point: torch.Tensor, chunk_pairs: int) -> list[tuple[int, int]]:
    """Splits consecutive points into runs of at most ``chunk_pairs`` pairs (≥ 1 point each)."""
    total = torch.cumsum(pairs_per_point, 0)
    bounds, start, done = [], 0, 0
    while start < total.numel():
        stop = max(int(torch.searchsorted(total, done + chunk_pairs, right=True)), start + 1)
        bounds.append((start, stop))
        done = int(total[stop - 1])
        start = stop
    return bounds


@torch.no_grad()
def _select_points_per_pixel(
    uv: torch.Tensor, depth: torch.Tensor, radius: torch.Tensor, active: torch.Tensor,
    image_size: tuple[int, int], points_per_pixel: int, chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
) -> _Slots:
    """For each pixel, the K nearest covering points (no gradients).

    Points are visited front to back in chunks of about 2·B·H·W (at most ``chunk_pairs``)
    candidate (point, pixel) pairs, so that the O(B·H·W) full-pixel test before each chunk
    is amortised. Full pixels reject candidates, points whose whole box is full are
    skipped, and each pixel's remaining candidates are ranked by one stable sort on the
    pixel id and appended after the slots the pixel already holds.

    Args:
        uv: (B, N, 2) pixel coordinates. depth: (B, N) camera z, > 0 where active.
        radius: (B, N) NDC. active: (B, N) bool, points that may cover pixels.
        image_size: (H, W). points_per_pixel: K.
        chunk_pairs: most candidate pairs held at once (memory bound).

    Returns:
        the occupied slots, nearest point first per pixel (ties: lower point index).
    """
    if not _is_count(chunk_pairs):
        raise ValueError(f"chunk_pairs must be an int >= 1, got {chunk_pairs!r}")
    batch, num_points = depth.shape
    height, width = image_size
    k_max = points_per_pixel
    device = depth.device
    num_pixels = batch * height * width
    if num_pixels * k_max >= 2**31 or batch * num_points >= 2**31:
        raise ValueError(f"B·H·W·K = {num_pixels * k_max} and B·N = {batch * num_points} must be "
                         f"< 2^31; render fewer or smaller images at once")
    # One extra slot at the end takes the writes of candidates beyond the K-th.
    selected = torch.full((num_pixels * k_max + 1,), -1, dtype=torch.int32, device=device)
    overflow = num_pixels * k_max
    pixel_count = torch.zeros(num_pixels, dtype=torch.int32, device=device)

    point_id = active.reshape(-1).nonzero().squeeze(1)
    point_id = point_id.index_select(
        0, torch.sort(_depth_sort_key(depth.reshape(-1).index_select(0, point_id)), stable=True).indices
    )
    ndc_scale = ndc_per_pixel(image_size)
    u = uv[..., 0].reshape(-1).index_select(0, point_id)
    v = uv[..., 1].reshape(-1).index_select(0, point_id)
    r = radius.reshape(-1).index_select(0, point_id)
    r_px = r / ndc_scale
    # Pixel centres j + 0.5 with |j + 0.5 − u| < r_px: at most floor(2·r_px) + 1 per axis.
    side = torch.floor(2.0 * r_px + 2.0 * _BOX_MARGIN_PX).long() + 1
    rows, cols = side.clamp(max=height), side.clamp(max=width)
    row0 = torch.floor(v - 0.5 - r_px - _BOX_MARGIN_PX) + 1.0
    col0 = torch.floor(u - 0.5 - r_px - _BOX_MARGIN_PX) + 1.0
    row0 = torch.minimum(row0.clamp(min=0.0), (height - rows).to(u.dtype)).long()
    col0 = torch.minimum(col0.clamp(min=0.0), (width - cols).to(u.dtype)).long()
    item = torch.div(point_id, num_points, rounding_mode="floor")
    point_floats = torch.stack([u, v, r * r], dim=1)
    point_ints = torch.stack([row0, col0, (item * height + row0) * width + col0], dim=1)
    point_id = point_id.to(torch.int32)
    box_key = rows * (width + 1) + cols
    boxes = {key: _Box.make(key // (width + 1), key % (width + 1), width, device)
             for key in torch.unique(box_key).tolist()}  # a single box for a scalar radius
    pairs_per_chunk = min(chunk_pairs, max(2 * num_pixels, _MIN_CHUNK_PAIRS))

    for chunk, (start, stop) in enumerate(_chunk_bounds((rows * cols).cpu(), pairs_per_chunk)):
        members = torch.arange(start, stop, device=device)
        if chunk > 0:  # skip points whose whole box is already full
            box_corners = (t[start:stop] for t in (item, row0, col0, rows, cols))
            members = members[_open_points(pixel_count, k_max, (batch, height, width), *box_corners)]
        hits_pixel, hits_member = [], []
        for key, box in boxes.items():
            group = members if len(boxes) == 1 else members[box_key.index_select(0, members) == key]
            if group.numel() == 0:
                continue
            pixel, local = _footprint_hits(
                point_floats.index_select(0, group), point_ints.index_select(0, group), box, ndc_scale,
                pixel_count if chunk > 0 else None, k_max,
            )
            hits_pixel.append(pixel)
            hits_member.append(group.index_select(0, local))
        if len(hits_pixel) == 1:
            pixel, member = hits_pixel[0], hits_member[0]
        elif hits_pixel:  # several box sizes: restore the front-to-back order
            member, order = torch.sort(torch.cat(hits_member), stable=True)
            pixel = torch.cat(hits_pixel).index_select(0, order)
        else:
            continue
        # Rank candidates within each pixel: a stable sort by pixel keeps depth order.
        pixel, order = torch.sort(pixel, stable=True)
        member = member.index_select(0, order)
        pixel_ids, group_of, group_size = torch.unique_consecutive(
            pixel, return_inverse=True, return_counts=True
        )
        group_start = torch.cumsum(group_size, 0) - group_size
        # slot = (slots the pixel already holds) + (rank of the candidate within its pixel)
        first_free = pixel_count.index_select(0, pixel_ids) - group_start.to(torch.int32)
        position = torch.arange(pixel.numel(), device=device, dtype=torch.int32)
        slot = first_free.index_select(0, group_of) + position
        destination = torch.where(slot < k_max, pixel.long() * k_max + slot, overflow)
        selected.index_copy_(0, destination, point_id.index_select(0, member))
        pixel_count.index_add_(0, pixel_ids, group_size.to(torch.int32))

    covered = (pixel_count > 0).nonzero().squeeze(1)
    filled = pixel_count.index_select(0, covered).clamp(max=k_max).long()
    row = torch.repeat_interleave(torch.arange(covered.numel(), device=device), filled)
    first_slot_of_row = torch.cumsum(filled, 0) - filled
    slot = torch.arange(row.numel(), device=device) - first_slot_of_row.index_select(0, row)
    position = covered.index_select(0, row) * k_max + slot
    point = selected.index_select(0, position).long()
    return _Slots((batch, height, width, k_max), covered, row, slot, position, point)


def _slots_from_idx(idx: torch.Tensor, num_points: int) -> _Slots:
    """The occupied slots of a (B, H, W, K) index grid (−1 = empty)."""
    batch, height, width, k_max = idx.shape
    flat = idx.reshape(-1)
    position = (flat >= 0).nonzero().squeeze(1)
    pixel = torch.div(position, k_max, rounding_mode="floor")
    covered, row = torch.unique_consecutive(pixel, return_inverse=True)
    item = torch.div(pixel, height * width, rounding_mode="floor")
    point = item * num_points + flat.index_select(0, position)
    return _Slots((batch, height, width, k_max), covered, row, position - pixel * k_max, position, point)


# ----------------------------------------------------------------------------- compositing


def _slot_values(
    slots: _Slots, uv: torch.Tensor, depth: torch.Tensor, radius: torch.Tensor
) -> _SlotValues:
    """Differentiable depth, squared NDC distance and alpha of each occupied slot."""
    _, height, width, _ = slots.grid
    covered_x = (slots.covered % width).to(uv.dtype) + 0.5
    covered_y = (torch.div(slots.covered, width, rounding_mode="floor") % height).to(uv.dtype) + 0.5
    per_point = torch.stack([uv[..., 0], uv[..., 1], depth, radius.expand_as(depth)]).view(4, -1)
    u, v, slot_depth, r = per_point.index_select(1, slots.point)  # one gather for all four
    dist2 = squared_ndc_distance(
        covered_x.index_select(0, slots.row), covered_y.index_select(0, slots.row), u, v,
        ndc_per_pixel((height, width)),
    )
    return _SlotValues(slot_depth, dist2, 1.0 - dist2 / (r * r))


def _fragments(slots: _Slots, values: _SlotValues, num_points: int) -> PointFragments:
    """Dense (B, H, W, K) fragments from the occupied slots."""
    _, height, width, _ = slots.grid
    item = torch.div(slots.covered.index_select(0, slots.row), height * width, rounding_mode="floor")
    return PointFragments(
        idx=slots.to_grid(slots.point - item * num_points, -1),
        zbuf=slots.to_grid(values.depth, -1.0),
        dists=slots.to_grid(values.dist2, -1.0),
        alphas=slots.to_grid(values.alpha, 0.0),
    )


def _transmittance(alphas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, K) alphas → transmittance in front of each slot (P, K) and behind all (P,)."""
    columns = alphas.t().contiguous()  # (K, P): contiguous rows for the loop below
    transmittance = torch.ones_like(columns[0])
    before = []
    for alpha_k in columns:  # K is small; exact gradients even where an alpha is 1
        before.append(transmittance)
        transmittance = transmittance * (1.0 - alpha_k)
    return torch.stack(before, dim=1), transmittance


def _composite_slots(
    slots: _Slots, alpha: torch.Tensor, features: torch.Tensor, background: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Composites features over the occupied slots, working on covered pixels only.

    Args:
        slots: occupied slots. alpha: (M,) slot opacities. features: (B, N, C).
        background: None or (C,).

    Returns:
        image (B, H, W, C), coverage (B, H, W) and slot weights (M,), in alpha's dtype.
    """
    batch, height, width, k_max = slots.grid
    num_covered, channels = slots.covered.numel(), features.shape[-1]
    features = features.to(alpha.dtype)
    alpha_grid = alpha.new_zeros(num_covered * k_max).index_copy(0, slots.compact_position, alpha)
    before, transmittance = _transmittance(alpha_grid.view(num_covered, k_max))
    slot_weights = alpha * before.reshape(-1).index_select(0, slots.compact_position)
    # Channel-first (C, ·) layouts make the gathers, products and sums over M contiguous.
    features_by_channel = features.reshape(-1, channels).t().contiguous()
    contribution = features_by_channel.index_select(1, slots.point) * slot_weights
    covered_image = features.new_zeros(channels, num_covered).index_add(1, slots.row, contribution).t()
    empty_image = features.new_zeros(batch * height * width, channels)
    if background is not None:
        covered_image = covered_image + transmittance[:, None] * background
        empty_image = empty_image + background
    image = empty_image.index_copy(0, slots.covered, covered_image)
    coverage = alpha.new_zeros(batch * height * width).index_copy(0, slots.covered, 1.0 - transmittance)
    return image.view(batch, height, width, channels), coverage.view(batch, height, width), slot_weights


def _accumulate_slots(
    slots: _Slots, slot_weights: torch.Tensor, batch: int, num_points: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-point weight sums (B, N) and visibility (B, N) from slot weights (M,)."""
    point_weights = slot_weights.new_zeros(batch * num_points).index_add(0, slots.point, slot_weights)
    strong = (slots.slot == 0) | (slot_weights.detach() > 0.5)
    visible = torch.zeros(batch * num_points, dtype=torch.bool, device=slots.point.device)
    visible[slots.point[strong]] = True
    return point_weights.view(batch, num_points), visible.view(batch, num_points)


# ----------------------------------------------------------------------------- public API


def _rasterize(
    points: torch.Tensor, cameras: PinholeCameras, radius: torch.Tensor, item_mask: torch.Tensor,
    points_per_pixel: int, znear: float, chunk_pairs: int,
) -> tuple[_Slots, _SlotValues]:
    """Projects validated inputs, selects the occupied slots and evaluates them."""
    uv, depth, active = _project_for_raster(points, cameras, radius, item_mask, znear)
    slots = _select_points_per_pixel(
        uv.detach(), depth.detach(), radius.detach(), active, cameras.image_size, points_per_pixel,
        chunk_pairs,
    )
    return slots, _slot_values(slots, uv, depth, radius)


def rasterize_points(
    points: torch.Tensor,
    cameras: PinholeCameras,
    radius: float | torch.Tensor,
    points_per_pixel: int = DEFAULT_POINTS_PER_PIXEL,
    lengths: torch.Tensor | None = None,
    znear: float = DEFAULT_ZNEAR,
    chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
) -> PointFragments:
    """Rasterizes point discs: per pixel the K nearest covering points, front to back.

    Args:
        points: (B, N, 3) world points (padded when items differ in size).
        cameras: :class:`PinholeCameras` with B cameras; image size (H, W).
        radius: disc radius in NDC units (shorter image side = 2): a float, a 0-dim tensor
            or a (B, N) tensor; must be > 0 within lengths; differentiable.
        points_per_pixel: K, slots per pixel.
        lengths: optional (B,) number of valid points per item; the rest is ignored.
        znear: points with camera depth ≤ znear (world units) are ignored.
        chunk_pairs: memory bound, the most (point, pixel) candidate pairs held at once;
            does not change the output.

    Returns:
        :class:`PointFragments` of (B, H, W, K) tensors; ``zbuf``, ``dists`` and ``alphas``
        are differentiable w.r.t. points (``alphas`` also w.r.t. radius).

    Example:
        >>> frags = rasterize_points(points, cameras, radius=0.01, points_per_pixel=10)
        >>> frags.idx[0, 64, 64]  # nearest point first, −1 padded
    """
    radius, item_mask = validate_inputs(points, cameras, radius, points_per_pixel, lengths, znear)
    slots, values = _rasterize(points, cameras, radius, item_mask, points_per_pixel, znear, chunk_pairs)
    return _fragments(slots, values, points.shape[1])


def alpha_composite(
    idx: torch.Tensor,
    alphas: torch.Tensor,
    features: torch.Tensor,
    background: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Front-to-back "over" compositing of per-point features.

    Args:
        idx: (B, H, W, K) int64 point index per slot (−1 = empty, transparent slot).
        alphas: (B, H, W, K) slot opacity in [0, 1] (ignored where idx is −1).
        features: (B, N, C) per-point features (rgb, normals, logits, …).
        background: None (= 0), a float, or a (C,) tensor, blended with the remaining
            transmittance. (PyTorch3D's AlphaCompositor instead paints only pixels with
            no point; both agree for background None/0.)

    Returns:
        image (B, H, W, C), coverage (B, H, W) = 1 − Π(1 − α_k), and compositing weights
        (B, H, W, K) ``α_k Π_{j<k}(1 − α_j)`` (0 at empty slots).
    """
    _check_features(features, idx.shape[0] if isinstance(idx, torch.Tensor) and idx.ndim else -1)
    _check_idx(idx, features.shape[1])
    if not isinstance(alphas, torch.Tensor) or alphas.shape != idx.shape:
        shape = tuple(alphas.shape) if isinstance(alphas, torch.Tensor) else type(alphas)
        raise ValueError(f"alphas must have the shape of idx {tuple(idx.shape)}, got {shape}")
    background = _background_tensor(background, features.shape[-1], features)
    slots = _slots_from_idx(idx, features.shape[1])
    alpha = alphas.reshape(-1).index_select(0, slots.position)
    image, coverage, slot_weights = _composite_slots(slots, alpha, features, background)
    return image, coverage, slots.to_grid(slot_weights, 0.0)


def accumulate_point_weights(
    idx: torch.Tensor, weights: torch.Tensor, num_points: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-point sums of compositing weights and the PointAvatar visibility flag.

    Args:
        idx: (B, H, W, K) int64 point index per slot, −1 padded, nearest first.
        weights: (B, H, W, K) compositing weights.
        num_points: N.

    Returns:
        point_weights (B, N) (differentiable) and visible (B, N) bool: front-most point of
        some pixel, or a compositing weight > 0.5 in some slot.
    """
    _check_idx(idx, num_points)
    if not isinstance(weights, torch.Tensor) or weights.shape != idx.shape:
        shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights)
        raise ValueError(f"weights must have the shape of idx {tuple(idx.shape)}, got {shape}")
    slots = _slots_from_idx(idx, num_points)
    slot_weights = weights.reshape(-1).index_select(0, slots.position)
    return _accumulate_slots(slots, slot_weights, idx.shape[0], num_points)


def render_points(
    points: torch.Tensor,
    features: torch.Tensor,
    cameras: PinholeCameras,
    radius: float | torch.Tensor,
    points_per_pixel: int = DEFAULT_POINTS_PER_PIXEL,
    background: float | torch.Tensor | None = None,
    lengths: torch.Tensor | None = None,
    znear: float = DEFAULT_ZNEAR,
    chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
) -> PointRendering:
    """Rasterizes and composites a batch of point clouds (see the module docstring).

    Args:
        points: (B, N, 3) world points. features: (B, N, C) per-point features.
        cameras: B :class:`PinholeCameras`. radius: NDC units, float / 0-dim / (B, N).
        points_per_pixel: K. background: None (0), float or (C,) tensor.
        lengths: optional (B,) valid point counts. znear: near plane (world units).
        chunk_pairs: memory bound of the selection; does not change the output.

    Returns:
        :class:`PointRendering` (images, coverage, per-point bookkeeping; dense fragments
        and weights on demand).

    Example:
        >>> out = render_points(points, colors, cameras, radius=0.01, background=1.0)
        >>> rgb, mask = out.features, out.alpha            # (B, H, W, 3), (B, H, W)
        >>> keep = out.visible                             # (B, N) for pruning
    """
    radius, item_mask = validate_inputs(points, cameras, radius, points_per_pixel, lengths, znear)
    _check_features(features, *points.shape[:2])
    slots, values = _rasterize(points, cameras, radius, item_mask, points_per_pixel, znear, chunk_pairs)
    background = _background_tensor(background, features.shape[-1], features)
    image, coverage, slot_weights = _composite_slots(slots, values.alpha, features, background)
    point_weights, visible = _accumulate_slots(slots, slot_weights, *points.shape[:2])

    def build_dense() -> tuple[PointFragments, torch.Tensor]:
        return _fragments(slots, values, points.shape[1]), slots.to_grid(slot_weights, 0.0)

    return PointRendering(image, coverage, point_weights, visible, build_dense)
