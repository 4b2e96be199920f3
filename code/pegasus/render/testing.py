"""Test and benchmark helpers for the point renderer (not used by the renderer itself).

* :class:`Tolerance` and the named tolerances below are the one place where the parity
  tests read how close two renderers must be;
  :func:`assert_close_except_fraction` applies one, allowing a bounded fraction of
  mismatching elements (pixels on disc boundaries, where float rounding decides coverage).
* :func:`make_head_scene` builds the synthetic head-sized scene shared by tests and
  ``bench/bm_render.py``; :func:`radius_for_point_count` follows PointAvatar's schedule.
* :func:`render_points_pytorch3d` renders the same inputs with PyTorch3D's
  ``PointsRasterizer`` + ``AlphaCompositor`` (imported lazily; only the PyTorch3D
  environment has it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pegasus.geometry.camera import PinholeCameras
from pegasus.render.points import PointFragments

__all__ = [
    "Tolerance",
    "FAST_VS_REFERENCE",
    "FAST_VS_REFERENCE_GRAD",
    "PYTORCH3D_IMAGE",
    "PYTORCH3D_FRAGMENTS",
    "PYTORCH3D_GRAD",
    "assert_close_except_fraction",
    "HeadScene",
    "make_head_scene",
    "radius_for_point_count",
    "render_points_pytorch3d",
]


@dataclass(frozen=True)
class Tolerance:
    """Elementwise ``|actual − expected| ≤ atol + rtol·|expected|``, except on at most
    ``max_fraction`` of the elements (or of the groups, see
    :func:`assert_close_except_fraction`)."""

    atol: float
    rtol: float = 0.0
    max_fraction: float = 0.0


# Fast path vs the brute-force twin: the same float operations, so only sums differ (order).
FAST_VS_REFERENCE = Tolerance(atol=1e-5, rtol=1e-5)
FAST_VS_REFERENCE_GRAD = Tolerance(atol=1e-4, rtol=1e-4)
# Ours vs PyTorch3D (float32). PyTorch3D measures distances in NDC after its own
# projection, we in pixels after ours, so d² differs by float rounding (~1e-7 relative):
# a pixel centre within that of a disc edge may be covered by one renderer only, and so
# may the order of two points at equal depth. Such pixels, and the gradients of the points
# on them, may differ, on at most ``max_fraction`` of the pixels / points. Gradients are
# compared after dividing by the largest gradient of the frame. (Measured on the parity
# scenes: no idx difference at all, images within 5e-6, gradients within 2e-5.)
PYTORCH3D_IMAGE = Tolerance(atol=5e-5, rtol=1e-5, max_fraction=0.002)
PYTORCH3D_FRAGMENTS = Tolerance(atol=1e-5, rtol=1e-5, max_fraction=0.002)
PYTORCH3D_GRAD = Tolerance(atol=2e-4, rtol=1e-4, max_fraction=0.01)


def assert_close_except_fraction(
    actual: torch.Tensor,
    expected: torch.Tensor,
    tolerance: Tolerance,
    group_dims: int = 0,
    name: str = "tensor",
) -> None:
    """Asserts two tensors agree except on a bounded fraction of elements or groups.

    Args:
        actual, expected: tensors of the same shape (NaN in both counts as equal).
        tolerance: :class:`Tolerance`.
        group_dims: how many trailing dims form one group (e.g. 1 for (B, H, W, C) images:
            a pixel mismatches when any of its channels does).
        name: used in the failure message.

    Raises:
        AssertionError with the number and fraction of mismatches and the largest
        difference with its index.
    """
    if actual.shape != expected.shape:
        raise AssertionError(f"{name}: shape {tuple(actual.shape)} != expected {tuple(expected.shape)}")
    actual = actual.detach().double().cpu()
    expected = expected.detach().double().cpu()
    diff = (actual - expected).abs()
    both_nan = torch.isnan(actual) & torch.isnan(expected)
    diff = torch.where(both_nan, torch.zeros_like(diff), diff)
    diff = torch.nan_to_num(diff, nan=math.inf)
    bad = diff > tolerance.atol + tolerance.rtol * expected.abs().nan_to_num(nan=0.0)
    if group_dims > 0:
        bad = bad.flatten(start_dim=bad.ndim - group_dims).any(dim=-1)
    total = max(bad.numel(), 1)
    count = int(bad.sum())
    if count > tolerance.max_fraction * total:
        worst = int(diff.argmax())
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), diff.shape))
        raise AssertionError(
            f"{name}: {count}/{total} ({count / total:.4%}) "
            f"{'groups' if group_dims else 'elements'} differ beyond atol={tolerance.atol}, "
            f"rtol={tolerance.rtol}; allowed {tolerance.max_fraction:.4%}. Largest difference "
            f"{float(diff.max()):.3g} at {index}: actual {float(actual.flatten()[worst]):.6g}, "
            f"expected {float(expected.flatten()[worst]):.6g}"
        )


@dataclass
class HeadScene:
    """A synthetic head-sized point cloud in front of B cameras.

    Attributes:
        points: (B, N, 3) world points on a bumpy ellipsoid of ~0.5 units around the origin.
        features: (B, N, C) features in [0, 1].
        cameras: B cameras 4 units away, looking at the origin from slightly different yaws.
        radius: NDC radius typical for N (:func:`radius_for_point_count`).
    """

    points: torch.Tensor
    features: torch.Tensor
    cameras: PinholeCameras
    radius: float


def radius_for_point_count(num_points: int) -> float:
    """PointAvatar's radius schedule: 0.169 NDC at 400 points, ×0.75 per doubling."""
    if num_points <= 0:
        raise ValueError(f"num_points must be > 0, got {num_points}")
    return 0.169 * 0.75 ** math.log2(max(num_points, 400) / 400)


def make_head_scene(
    num_points: int,
    image_size: tuple[int, int],
    batch: int = 1,
    channels: int = 4,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> HeadScene:
    """Builds a :class:`HeadScene` (deterministic for a given seed).

    The head projects to ~60 % of the shorter image side (focal length 2.4·min(H, W) px).
    """
    generator = torch.Generator().manual_seed(seed)
    direction = torch.randn(batch, num_points, 3, generator=generator, dtype=torch.float64)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    bumps = 1.0 + 0.05 * torch.sin(5.0 * direction[..., :1]) * torch.cos(4.0 * direction[..., 1:2])
    points = direction * bumps * torch.tensor([0.42, 0.52, 0.46], dtype=torch.float64)

    height, width = image_size
    focal = 2.4 * min(height, width)
    K = torch.tensor([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]],
                     dtype=torch.float64).expand(batch, 3, 3).clone()
    yaw = torch.linspace(-0.3, 0.3, batch, dtype=torch.float64) if batch > 1 else torch.zeros(1).double()
    cos, sin, zero, one = yaw.cos(), yaw.sin(), torch.zeros_like(yaw), torch.ones_like(yaw)
    R = torch.stack([cos, zero, sin, zero, one, zero, -sin, zero, cos], dim=-1).view(batch, 3, 3)
    t = torch.tensor([0.0, 0.0, 4.0], dtype=torch.float64).expand(batch, 3).clone()
    features = torch.rand(batch, num_points, channels, generator=generator, dtype=torch.float64)
    cameras = PinholeCameras(K, R, t, (height, width)).to(device=device, dtype=dtype)
    return HeadScene(
        points=points.to(device=device, dtype=dtype),
        features=features.to(device=device, dtype=dtype),
        cameras=cameras,
        radius=radius_for_point_count(num_points),
    )


def render_points_pytorch3d(
    points: torch.Tensor,
    features: torch.Tensor,
    cameras: PinholeCameras,
    radius: float | torch.Tensor,
    points_per_pixel: int = 10,
    lengths: torch.Tensor | None = None,
) -> tuple[torch.Tensor, PointFragments]:
    """Renders with PyTorch3D's ``PointsRasterizer`` + ``AlphaCompositor`` (CPU: naive path).

    Same arguments as :func:`pegasus.render.points.render_points` (no background: PyTorch3D's
    AlphaCompositor only paints pixels that no point covers, without transmittance
    blending, so the two agree for background 0 / None only). Cameras are converted with
    ``pytorch3d.utils.cameras_from_opencv_projection``; PyTorch3D's NDC has +x left, +y up,
    and its radius is in the same NDC units as ours.

    Returns:
        image (B, H, W, C) and :class:`PointFragments` whose ``idx`` is converted from
        PyTorch3D's packed indices to per-item indices (−1 padded) and whose ``alphas``
        are ``1 − dists / r²`` (0 at empty slots).
    """
    from pytorch3d.renderer import AlphaCompositor, PointsRasterizationSettings, PointsRasterizer
    from pytorch3d.structures import Pointclouds
    from pytorch3d.utils import cameras_from_opencv_projection

    batch, num_points = points.shape[:2]
    height, width = cameras.image_size
    if lengths is None:
        lengths = torch.full((batch,), num_points, dtype=torch.long)
    counts = [int(n) for n in lengths]
    clouds = Pointclouds(
        points=[points[b, :n] for b, n in enumerate(counts)],
        features=[features[b, :n] for b, n in enumerate(counts)],
    )
    p3d_cameras = cameras_from_opencv_projection(
        R=cameras.R, tvec=cameras.t, camera_matrix=cameras.K,
        image_size=torch.tensor([[height, width]] * batch, dtype=cameras.K.dtype),
    )
    if isinstance(radius, torch.Tensor) and radius.ndim == 2:
        p3d_radius = radius[:, : max(counts)]
        radius_packed = torch.cat([radius[b, :n] for b, n in enumerate(counts)])
    else:
        p3d_radius = float(radius)
        radius_packed = torch.full((sum(counts),), float(radius), dtype=points.dtype)
    settings = PointsRasterizationSettings(
        image_size=(height, width), radius=p3d_radius, points_per_pixel=points_per_pixel, bin_size=0
    )
    fragments = PointsRasterizer(cameras=p3d_cameras, raster_settings=settings)(clouds)
    packed_idx = fragments.idx.long()
    occupied = packed_idx >= 0
    slot_radius = radius_packed[packed_idx.clamp(min=0)]
    alphas = torch.where(occupied, 1.0 - fragments.dists / (slot_radius * slot_radius), 0.0)
    channels_first = (packed_idx.permute(0, 3, 1, 2), alphas.permute(0, 3, 1, 2))
    image = AlphaCompositor()(*channels_first, clouds.features_packed().permute(1, 0))
    image = image.permute(0, 2, 3, 1)
    first = clouds.cloud_to_packed_first_idx().view(batch, 1, 1, 1)
    idx = torch.where(occupied, packed_idx - first, -1)
    return image, PointFragments(idx=idx, zbuf=fragments.zbuf, dists=fragments.dists, alphas=alphas)
