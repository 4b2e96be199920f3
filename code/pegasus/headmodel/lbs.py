"""Batched linear blend skinning for FLAME-format models, and the pose conventions.

Owner of: the 15-D pose layout (global | neck | jaw | left eye | right eye, axis-angle in
radians, the head rotation goes into the *neck* slot and global stays zero), the 36-D pose
feature (rotation matrices − I of the 4 non-root joints, row-major), and the ghost bone
(an identity transform prepended to the joints for point deformers).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

__all__ = [
    "POSE_SLOTS",
    "POSE_DIM",
    "LBSOutput",
    "axis_angle_to_matrix",
    "blend_shapes",
    "pose_feature",
    "rigid_transforms",
    "skin_points",
    "lbs",
    "with_ghost_bone",
    "HEAD_EULER",
    "mean_pose",
    "turn_head",
]

#: Slices of the 15-D pose vector, in FLAME's joint order.
POSE_SLOTS: dict[str, slice] = {
    "global": slice(0, 3),
    "neck": slice(3, 6),
    "jaw": slice(6, 9),
    "left_eye": slice(9, 12),
    "right_eye": slice(12, 15),
}
POSE_DIM = 15

HEAD_EULER = "YXZ"
"""Euler order of the head (neck) rotation: yaw about y (up), then pitch about x, then roll."""


def mean_pose(poses: np.ndarray) -> np.ndarray:
    """(T, 15) poses → (15,) their mean: the neck's as the rotation of the mean yaw, pitch and roll
    (:data:`HEAD_EULER`), the other slots averaged component-wise."""
    poses = np.asarray(poses, dtype=np.float64)
    mean = poses.mean(0)
    euler = Rotation.from_rotvec(poses[:, POSE_SLOTS["neck"]]).as_euler(HEAD_EULER).mean(0)
    mean[POSE_SLOTS["neck"]] = Rotation.from_euler(HEAD_EULER, euler).as_rotvec()
    return mean


def turn_head(pose: np.ndarray, yaw_deg, pitch_deg) -> np.ndarray:
    """(15,) pose → (K, 15) copies with the neck's yaw and pitch offset by (K,) degrees each."""
    yaw, pitch = np.broadcast_arrays(np.radians(yaw_deg), np.radians(pitch_deg))
    euler = Rotation.from_rotvec(np.asarray(pose, np.float64)[POSE_SLOTS["neck"]]).as_euler(HEAD_EULER)
    turned = np.repeat(np.asarray(pose, np.float64)[None], len(yaw), 0)
    offsets = np.stack([yaw, pitch, np.zeros_like(yaw)], 1)
    turned[:, POSE_SLOTS["neck"]] = Rotation.from_euler(HEAD_EULER, euler[None] + offsets).as_rotvec()
    return turned


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: (..., 3) axis-angle in radians → (..., 3, 3) rotation matrices.

    Stable at zero angle (uses the series of sin(θ)/θ and (1 − cos θ)/θ² for tiny θ).
    """
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True)[..., None]  # (..., 1, 1)
    small = theta2 < 1e-12
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = theta2_safe.sqrt()
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2_safe)
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*x.shape, 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(skew)
    return eye + a * skew + b * (skew @ skew)


def blend_shapes(coeffs: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """(B, K) coefficients × (V, 3, K) basis → (B, V, 3) displacements."""
    return torch.einsum("bk,vck->bvc", coeffs, dirs)


def pose_feature(rotmats: torch.Tensor) -> torch.Tensor:
    """(B, J, 3, 3) joint rotations → (B, 9·(J−1)) feature (R − I of non-root joints)."""
    eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
    return (rotmats[:, 1:] - eye).flatten(1)


def rigid_transforms(
    rotmats: torch.Tensor, joints: torch.Tensor, parents: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward kinematics.

    Args:
        rotmats: (B, J, 3, 3) local joint rotations.
        joints: (B, J, 3) rest-pose joint locations.
        parents: (J,) parent indices, parents[0] = −1, parents[j] < j.

    Returns:
        posed_joints: (B, J, 3).
        transforms: (B, J, 4, 4) skinning transforms that map rest-pose points rigidly
            attached to joint j to their posed location (rest joint location removed).
    """
    b, n_joints = joints.shape[:2]
    rel = joints.clone()
    rel[:, 1:] = joints[:, 1:] - joints[:, parents[1:]]
    local = torch.zeros(b, n_joints, 4, 4, dtype=joints.dtype, device=joints.device)
    local[..., :3, :3] = rotmats
    local[..., :3, 3] = rel
    local[..., 3, 3] = 1.0
    chain = [local[:, 0]]
    for j in range(1, n_joints):
        chain.append(chain[int(parents[j])] @ local[:, j])
    world = torch.stack(chain, dim=1)
    posed_joints = world[..., :3, 3]
    transforms = world.clone()
    transforms[..., :3, 3] = posed_joints - (world[..., :3, :3] @ joints[..., None])[..., 0]
    return posed_joints, transforms


def skin_points(points: torch.Tensor, weights: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """Blends joint transforms per point and applies them.

    Args:
        points: (B, N, 3) rest-pose points.
        weights: (N, J) or (B, N, J) skinning weights.
        transforms: (B, J, 4, 4) from :func:`rigid_transforms` (or :func:`with_ghost_bone`).

    Returns:
        (B, N, 3) posed points.
    """
    blended = torch.einsum("...nj,bjrc->bnrc", weights, transforms)
    return (blended[..., :3, :3] @ points[..., None])[..., 0] + blended[..., :3, 3]


def with_ghost_bone(transforms: torch.Tensor) -> torch.Tensor:
    """(B, J, 4, 4) → (B, J+1, 4, 4) with an identity "ghost" bone prepended (index 0)."""
    eye = torch.eye(4, dtype=transforms.dtype, device=transforms.device)
    return torch.cat([eye.expand(transforms.shape[0], 1, 4, 4), transforms], dim=1)


@dataclass
class LBSOutput:
    """Result of :func:`lbs` (all float tensors, scaled head units)."""

    vertices: torch.Tensor  # (B, V, 3) posed
    joints: torch.Tensor  # (B, J, 3) posed
    transforms: torch.Tensor  # (B, J, 4, 4) skinning transforms
    pose_feature: torch.Tensor  # (B, 9(J-1))
    shaped_vertices: torch.Tensor  # (B, V, 3) template + identity + expression, unposed


def lbs(
    shape: torch.Tensor,
    expression: torch.Tensor,
    pose: torch.Tensor,
    v_template: torch.Tensor,
    shapedirs: torch.Tensor,
    exprdirs: torch.Tensor,
    posedirs: torch.Tensor,
    j_regressor: torch.Tensor,
    parents: torch.Tensor,
    lbs_weights: torch.Tensor,
) -> LBSOutput:
    """FLAME's LBS: blend shapes, joint regression, pose correctives, skinning.

    Args:
        shape: (B, S) identity coefficients; expression: (B, E); pose: (B, 3J) axis-angle.
        v_template: (V, 3); shapedirs: (V, 3, S); exprdirs: (V, 3, E);
        posedirs: (V, 3, 9(J−1)); j_regressor: (J, V); parents: (J,); lbs_weights: (V, J).

    Joints are regressed from the identity- *and* expression-shaped mesh, as in FLAME/smplx.
    """
    b = pose.shape[0]
    n_joints = j_regressor.shape[0]
    shaped = v_template + blend_shapes(shape, shapedirs) + blend_shapes(expression, exprdirs)
    joints = torch.einsum("jv,bvc->bjc", j_regressor, shaped)
    rotmats = axis_angle_to_matrix(pose.reshape(b, n_joints, 3))
    feature = pose_feature(rotmats)
    posed_rest = shaped + torch.einsum("bp,vcp->bvc", feature, posedirs)
    posed_joints, transforms = rigid_transforms(rotmats, joints, parents)
    vertices = skin_points(posed_rest, lbs_weights, transforms)
    return LBSOutput(vertices, posed_joints, transforms, feature, shaped)
