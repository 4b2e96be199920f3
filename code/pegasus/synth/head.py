"""The head model posed as a video's frames: landmarks that align a render's parts with the
target's, and the target's bald head without diffusion (its own tracked mesh, shaded like its skin).

For each frame the head model is posed with the target's parameters (its shape, expression,
pose and camera from ``flame_params.json``) and rasterized; the skin colour is a per-channel
linear function of the camera-space normal, c = a + b·n (first-order spherical harmonics: an
ambient term and one directional light with the albedo folded in), fitted by least squares to
the target's visible skin pixels of that frame and evaluated on the scalp.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.imavatar import FlameFrame
from ..data.videos import fit_length
from ..geometry.camera import cameras_from_imavatar, project_points
from ..headmodel.model import HeadModel
from ..render.mesh import render_mesh

__all__ = ["HeadRaster", "pose_heads", "fit_skin_shading", "shade_skin", "skin_shading"]

_MIN_SKIN_PIXELS = 16


@dataclass(frozen=True)
class HeadRaster:
    """The posed head model in B frames: ``landmarks`` (B, 70, 2) float32 pixel coordinates
    (68 iBUG + 2 iris, pixel centres at +0.5); with ``raster``: ``cover`` (B, H, W) float32
    coverage in [0, 1] and ``normals`` (B, H, W, 3) float32 camera-space unit normals (0 off
    the mesh), else None."""

    landmarks: np.ndarray
    cover: np.ndarray | None = None
    normals: np.ndarray | None = None


@torch.no_grad()
def pose_heads(head_model: HeadModel, intrinsics: np.ndarray, shape: np.ndarray, frames: list[FlameFrame],
               image_size: tuple[int, int], raster: bool = True) -> HeadRaster:
    """The head model posed as each of ``frames`` with identity ``shape`` (S,), seen by the
    frames' cameras (IMavatar ``intrinsics`` (4,)) at ``image_size`` (H, W): its projected
    landmarks and, with ``raster``, its coverage and normals."""
    expression = torch.from_numpy(fit_length(np.stack([f.expression for f in frames]), head_model.n_expr))
    pose = torch.from_numpy(np.stack([f.pose for f in frames]).astype(np.float32))
    identity = torch.from_numpy(fit_length(shape, head_model.n_shape))[None].expand(len(frames), -1)
    posed = head_model(identity, expression, pose)
    cameras = cameras_from_imavatar(torch.as_tensor(intrinsics, dtype=torch.float32),
                                    torch.from_numpy(np.stack([f.world_mat for f in frames]).astype(np.float32)),
                                    image_size)
    landmarks = project_points(cameras, posed.landmarks)[0].numpy()
    if not raster:
        return HeadRaster(landmarks)
    out = render_mesh(posed.vertices, head_model.faces, cameras, light_direction=None)
    return HeadRaster(landmarks, out.mask.numpy(), out.normals.numpy())


def fit_skin_shading(rgb: np.ndarray, normals: np.ndarray, skin: np.ndarray) -> np.ndarray | None:
    """(4, 3) coefficients of c = a + b·n fitted on the pixels of ``skin`` (H, W) bool; ``rgb``
    (H, W, 3), ``normals`` (H, W, 3). None with fewer than 16 skin pixels."""
    if int(skin.sum()) < _MIN_SKIN_PIXELS:
        return None
    design = np.concatenate([np.ones((int(skin.sum()), 1)), normals[skin]], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, rgb[skin], rcond=None)
    return coefficients.astype(np.float32)


def shade_skin(normals: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """(H, W, 3) normals and (4, 3) coefficients → (H, W, 3) skin colour in [0, 1]."""
    return np.clip(coefficients[0] + normals @ coefficients[1:], 0.0, 1.0).astype(np.float32)


def skin_shading(rgb: np.ndarray, labels: np.ndarray, cover: np.ndarray, normals: np.ndarray,
                 skin_labels: np.ndarray) -> np.ndarray | None:
    """(4, 3) skin shading of one frame (:func:`fit_skin_shading`) fitted where the target's
    skin (``labels`` in ``skin_labels``) and its head-model mesh (``cover`` (H, W) ≈ 1, with
    ``normals`` (H, W, 3)) overlap; None when too little skin is visible."""
    return fit_skin_shading(rgb, normals, np.isin(labels, skin_labels) & (cover > 0.99))
