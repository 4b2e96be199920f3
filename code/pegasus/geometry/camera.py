"""The one owner of the camera convention (see docs/conventions.md).

Datasets store IMavatar cameras: ``intrinsics = [fx_s/W, fy_s/H, cx/W, cy/H]`` with a
*negative* ``fx_s`` by convention, and ``world_mat`` = 3×4 world-to-camera ``[R|t]`` of a
camera that looks down its −z axis (t ≈ (0, 0, −4) for the ×4-scaled head), so that a
camera-space point projects as ``u = fx_s·x/z + cx``, ``v = fy_s·y/z + cy``.

Everything inside the project uses one internal convention instead, OpenCV's:
camera x right, y down, z forward (depth > 0 in front); ``K`` with positive focal lengths
in pixels; continuous pixel coordinates where pixel (row i, col j) covers
``[j, j+1) × [i, i+1)`` so its centre is ``(j + 0.5, i + 0.5)`` and ``cx = W/2`` is the
image centre. "Normalised image coordinates" map ``[0, W] × [0, H]`` to ``[−1, 1]²``
(x right, y down). Radii of points are in NDC units, where the shorter image side spans 2.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "PinholeCameras",
    "cameras_from_imavatar",
    "cameras_to_imavatar",
    "project_points",
    "pixels_to_normalized",
    "normalized_to_pixels",
    "ndc_per_pixel",
]


@dataclass
class PinholeCameras:
    """A batch of OpenCV-convention pinhole cameras.

    Attributes:
        K: (B, 3, 3) intrinsics in pixels, positive focal lengths.
        R: (B, 3, 3) world-to-camera rotation (x right, y down, z forward).
        t: (B, 3) world-to-camera translation, same units as the world (scaled head units).
        image_size: (H, W) in pixels, shared by the batch.
    """

    K: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        b = self.K.shape[0]
        if self.K.shape != (b, 3, 3) or self.R.shape != (b, 3, 3) or self.t.shape != (b, 3):
            raise ValueError(
                f"PinholeCameras: expected K (B,3,3), R (B,3,3), t (B,3); got "
                f"{tuple(self.K.shape)}, {tuple(self.R.shape)}, {tuple(self.t.shape)}"
            )
        if len(self.image_size) != 2 or min(self.image_size) <= 0:
            raise ValueError(f"PinholeCameras: image_size must be (H, W) > 0, got {self.image_size}")

    def __len__(self) -> int:
        return self.K.shape[0]

    def to(self, device=None, dtype=None) -> "PinholeCameras":
        return PinholeCameras(
            self.K.to(device=device, dtype=dtype),
            self.R.to(device=device, dtype=dtype),
            self.t.to(device=device, dtype=dtype),
            self.image_size,
        )

    def __getitem__(self, idx) -> "PinholeCameras":
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        return PinholeCameras(self.K[idx], self.R[idx], self.t[idx], self.image_size)

    def world_to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """(B, N, 3) world points → (B, N, 3) camera-space points (z = depth)."""
        return points @ self.R.transpose(1, 2) + self.t[:, None, :]

    @property
    def centers(self) -> torch.Tensor:
        """(B, 3) camera centres in world coordinates."""
        return -(self.R.transpose(1, 2) @ self.t[..., None])[..., 0]


def cameras_from_imavatar(
    intrinsics: torch.Tensor, world_mat: torch.Tensor, image_size: tuple[int, int]
) -> PinholeCameras:
    """Converts IMavatar-format cameras to :class:`PinholeCameras`.

    Args:
        intrinsics: (4,) or (B, 4) ``[fx_s/W, fy_s/H, cx/W, cy/H]``; fx_s is negative in
            IMavatar files (a positive one is accepted and handled by the same rule).
        world_mat: (B, 3, 4) or (B, 4, 4) world-to-camera of a −z-looking camera.
        image_size: (H, W) of the images the intrinsics are normalised by.

    The stored projection ``u = fx_s·x/z + cx`` equals the OpenCV one after flipping the
    camera axes: x_cv = −sign(fx_s)·x, y_cv = −sign(fy_s)·y, z_cv = −z.
    """
    world_mat = torch.as_tensor(world_mat)
    intrinsics = torch.as_tensor(intrinsics, dtype=world_mat.dtype)
    if world_mat.ndim != 3 or world_mat.shape[1:] not in ((3, 4), (4, 4)):
        raise ValueError(f"world_mat must be (B,3,4) or (B,4,4), got {tuple(world_mat.shape)}")
    b = world_mat.shape[0]
    if intrinsics.shape == (4,):
        intrinsics = intrinsics.expand(b, 4)
    if intrinsics.shape != (b, 4):
        raise ValueError(f"intrinsics must be (4,) or ({b},4), got {tuple(intrinsics.shape)}")
    h, w = image_size
    fx_s, fy_s = intrinsics[:, 0] * w, intrinsics[:, 1] * h
    if bool(((fx_s == 0) | (fy_s == 0)).any()):
        raise ValueError("intrinsics: focal lengths must be non-zero")
    K = torch.zeros(b, 3, 3, dtype=world_mat.dtype, device=world_mat.device)
    K[:, 0, 0], K[:, 1, 1] = fx_s.abs(), fy_s.abs()
    K[:, 0, 2], K[:, 1, 2] = intrinsics[:, 2] * w, intrinsics[:, 3] * h
    K[:, 2, 2] = 1.0
    flip = torch.stack([-torch.sign(fx_s), -torch.sign(fy_s), -torch.ones_like(fx_s)], dim=1)
    R = world_mat[:, :3, :3] * flip[:, :, None]
    t = world_mat[:, :3, 3] * flip
    return PinholeCameras(K, R, t, (int(h), int(w)))


def cameras_to_imavatar(cameras: PinholeCameras) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`cameras_from_imavatar` with the IMavatar sign convention (fx_s < 0).

    Returns:
        intrinsics (B, 4) and world_mat (B, 3, 4).
    """
    h, w = cameras.image_size
    K = cameras.K
    intrinsics = torch.stack(
        [-K[:, 0, 0] / w, K[:, 1, 1] / h, K[:, 0, 2] / w, K[:, 1, 2] / h], dim=1
    )
    # fx_s < 0, fy_s > 0  ⇒  flip = (+1, −1, −1); the flip is its own inverse.
    flip = torch.tensor([1.0, -1.0, -1.0], dtype=K.dtype, device=K.device)
    world_mat = torch.cat([cameras.R * flip[None, :, None], (cameras.t * flip)[..., None]], dim=2)
    return intrinsics, world_mat


def project_points(cameras: PinholeCameras, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Projects world points to continuous pixel coordinates.

    Args:
        points: (B, N, 3) world coordinates.

    Returns:
        uv: (B, N, 2) pixel coordinates (x right, y down; pixel centres at +0.5).
        depth: (B, N) camera-space z; ≤ 0 means behind the camera (uv is then meaningless).
    """
    if points.ndim != 3 or points.shape[-1] != 3 or points.shape[0] != len(cameras):
        raise ValueError(f"points must be ({len(cameras)}, N, 3), got {tuple(points.shape)}")
    cam = cameras.world_to_camera(points)
    depth = cam[..., 2]
    safe = torch.where(depth.abs() < 1e-12, torch.full_like(depth, 1e-12), depth)
    xy = cam[..., :2] / safe[..., None]
    K = cameras.K
    u = K[:, None, 0, 0] * xy[..., 0] + K[:, None, 0, 2]
    v = K[:, None, 1, 1] * xy[..., 1] + K[:, None, 1, 2]
    return torch.stack([u, v], dim=-1), depth


def pixels_to_normalized(uv: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """(..., 2) pixel coordinates → normalised image coordinates in [−1, 1] (x right, y down)."""
    h, w = image_size
    scale = uv.new_tensor([2.0 / w, 2.0 / h])
    return uv * scale - 1.0


def normalized_to_pixels(xy: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`pixels_to_normalized`."""
    h, w = image_size
    return (xy + 1.0) * xy.new_tensor([w / 2.0, h / 2.0])


def ndc_per_pixel(image_size: tuple[int, int]) -> float:
    """NDC units per pixel: the shorter image side spans 2 NDC units (PyTorch3D's rule)."""
    return 2.0 / min(image_size)
