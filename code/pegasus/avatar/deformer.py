"""FLAME-guided deformation of canonical points (PointAvatar §4, PEGASUS §5).

Per canonical point x the deformer MLP predicts a canonical offset Δ, an expression basis
E (3×E), a pose-corrective basis P (3×36) and skinning weights w over 6 bones (an identity
"ghost" bone + the head model's 5 joints). A point is deformed with the head model's joint
transforms as

    x_o    = x + Δ(x)
    x_rest = T_can(w)⁻¹ · x_o − E·ψ_can − P·f_can                 (un-pose the canonical state)
    x_d    = T(w) · (x_rest + E·ψ + P·f [+ S(v*)·β])               (re-pose for the frame)

with ``T(w) = Σ_j w_j A_j`` (A = skinning transforms of the frame, ghost = identity),
ψ the expression, f the 36-D pose feature and, in the generic canonical space ("shape
cancel", PEGASUS), ``S(v*)·β`` the head model's own identity displacement of the point's
nearest head-model vertex v*. The canonical state is the jaw opened by
``head_model.canonical_jaw_opening``, the mean training expression, all else zero (and
zero shape under shape cancel).

Everything here is a pure function of tensors except the two MLP modules. Leading axes:
P = point batch (1, or B when each frame has its own latent code), B = frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from pegasus.headmodel.lbs import with_ghost_bone
from pegasus.headmodel.model import HeadModel

from .fields import SOFTPLUS_BETA, broadcast_latent

__all__ = [
    "NUM_BONES",
    "POSE_FEATURE_DIM",
    "DeformerBases",
    "FlameState",
    "flame_state",
    "SoftplusMLP",
    "FlameDeformer",
    "CanonicalOffset",
    "batched_matmul",
    "blend_transforms",
    "deform_points",
    "deform_with_jacobian",
    "deform_normals",
]

NUM_BONES = 6  # ghost + FLAME's 5 joints
POSE_FEATURE_DIM = 36


@dataclass
class DeformerBases:
    """Per-point deformation bases (leading axes (P, N)).

    Attributes:
        offset: (P, N, 3) canonical offset Δ.
        expr_basis: (P, N, 3, E) expression blendshape basis.
        pose_basis: (P, N, 3, 36) pose-corrective basis (the head model's ``posedirs`` layout).
        weights: (P, N, 6) skinning weights (ghost first), rows sum to 1.
    """

    offset: torch.Tensor
    expr_basis: torch.Tensor
    pose_basis: torch.Tensor
    weights: torch.Tensor


@dataclass
class FlameState:
    """Head-model state of Bs frames (Bs = 1 broadcasts over frames).

    Attributes:
        transforms: (Bs, 6, 4, 4) skinning transforms, identity ghost bone first (without
            the translation).
        expression: (Bs, E).
        pose_feature: (Bs, 36).
        vertices: (Bs, V, 3) posed head-model vertices (translation included).
        translation: (Bs, 3) added to every deformed point (ghost-bone points included), or None.
    """

    transforms: torch.Tensor
    expression: torch.Tensor
    pose_feature: torch.Tensor
    vertices: torch.Tensor
    translation: torch.Tensor | None = None


def flame_state(
    head_model: HeadModel,
    shape: torch.Tensor | None,
    expression: torch.Tensor,
    pose: torch.Tensor,
    translation: torch.Tensor | None = None,
) -> FlameState:
    """Poses the head model: (Bs, S) shape (None = zeros), (Bs, E), (Bs, 15), (Bs, 3) → state."""
    out = head_model(shape=shape, expression=expression, pose=pose)
    expression = expression if expression.ndim == 2 else expression[None]
    vertices = out.vertices if translation is None else out.vertices + translation[:, None]
    return FlameState(with_ghost_bone(out.transforms), expression.expand(out.transforms.shape[0], -1),
                      out.pose_feature, vertices, translation)


class SoftplusMLP(nn.Module):
    """``in_dim → [width] × hidden_layers → out_dim`` with Softplus(β=100) between layers."""

    def __init__(self, in_dim: int, out_dim: int, hidden_layers: int = 4, width: int = 128):
        super().__init__()
        dims = [in_dim] + [width] * hidden_layers
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(dims[-1], out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = F.softplus(layer(x), beta=SOFTPLUS_BETA)
        return self.out(x)


class FlameDeformer(nn.Module):
    """Canonical point (no encoding) [+ latent] → per-point :class:`DeformerBases`.

    All output heads start at zero: no offset, no blendshapes, uniform skinning weights
    (softmax of zeros), so a fresh deformer moves every point rigidly with the mean of the
    six bone transforms.

    Args:
        n_expr: E, expression components of the head model.
        hidden_layers, width: trunk size (PointAvatar: 4 × 128).
        latent_dim: optional latent code size (0 = none).
        temperature: skinning softmax temperature, ``w = softmax(temperature · logits)`` (20).
    """

    def __init__(self, n_expr: int, hidden_layers: int = 4, width: int = 128, latent_dim: int = 0,
                 temperature: float = 20.0):
        super().__init__()
        self.n_expr, self.latent_dim, self.temperature = n_expr, latent_dim, temperature
        self.sizes = (3, 3 * n_expr, 3 * POSE_FEATURE_DIM, NUM_BONES)
        self.mlp = SoftplusMLP(3 + latent_dim, sum(self.sizes), hidden_layers, width)
        nn.init.zeros_(self.mlp.out.weight)
        nn.init.zeros_(self.mlp.out.bias)

    def forward(self, x: torch.Tensor, latent: torch.Tensor | None = None) -> DeformerBases:
        """x (P, N, 3); latent None, (Z,) or (P, Z)."""
        if (latent is None) != (self.latent_dim == 0):
            raise ValueError(f"FlameDeformer: latent_dim is {self.latent_dim}, got latent "
                             f"{None if latent is None else tuple(latent.shape)}")
        out = self.mlp(broadcast_latent(x, latent))
        offset, expr, pose, logits = out.split(self.sizes, dim=-1)
        lead = x.shape[:-1]
        return DeformerBases(
            offset=offset,
            expr_basis=expr.reshape(*lead, 3, self.n_expr),
            pose_basis=pose.reshape(*lead, 3, POSE_FEATURE_DIM),
            weights=torch.softmax(self.temperature * logits, dim=-1),
        )


class CanonicalOffset(nn.Module):
    """PEGASUS's latent-conditioned canonical offset Δ_cc(x_gc, z) (zero at start)."""

    def __init__(self, hidden_layers: int = 4, width: int = 128, latent_dim: int = 0):
        super().__init__()
        self.latent_dim = latent_dim
        self.mlp = SoftplusMLP(3 + latent_dim, 3, hidden_layers, width)
        nn.init.zeros_(self.mlp.out.weight)
        nn.init.zeros_(self.mlp.out.bias)

    def forward(self, x: torch.Tensor, latent: torch.Tensor | None = None) -> torch.Tensor:
        """x (P, N, 3) → x + Δ_cc (P, N, 3)."""
        return x + self.mlp(broadcast_latent(x, latent))


def batched_matmul(lhs: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """(P, M, K) @ (Bs, K, C) → (max(P, Bs), M, C), with P and Bs each 1 or equal.

    Laid out as one large matrix product when either side is shared (P = 1 or Bs = 1), so
    that per-point work never becomes millions of tiny batched products.
    """
    p, m, k = lhs.shape
    bs, _, c = rhs.shape
    if p == 1:
        out = lhs[0] @ rhs.permute(1, 0, 2).reshape(k, bs * c)  # (M, Bs·C)
        return out.reshape(m, bs, c).permute(1, 0, 2)
    if bs == 1:
        return lhs @ rhs[0]
    if p != bs:
        raise ValueError(f"batched_matmul: leading sizes {p} and {bs} do not broadcast")
    return torch.bmm(lhs, rhs)


def blend_transforms(weights: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """Σ_j w_j A_j: (P, N, J) weights, (Bs, J, 4, 4) transforms → (max(P, Bs), N, 3, 4)."""
    flat = transforms[:, :, :3, :].reshape(transforms.shape[0], transforms.shape[1], 12)
    blended = batched_matmul(weights, flat)
    return blended.reshape(*blended.shape[:2], 3, 4)


def _apply_blend(coefficients: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Per-point basis (P, N, 3, K) times per-frame coefficients (Bs, K) → (max, N, 3)."""
    p, n, _, k = basis.shape
    out = batched_matmul(basis.reshape(p, n * 3, k), coefficients[:, :, None])
    return out.reshape(out.shape[0], n, 3)


def _affine_apply(transform: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(·, N, 3, 4) affine transforms applied to (·, N, 3) points, written elementwise."""
    return (transform[..., :3] * points[..., None, :]).sum(-1) + transform[..., 3]


def _inverse_3x3(m: torch.Tensor) -> torch.Tensor:
    """Inverse of (..., 3, 3) matrices by the adjugate (elementwise, vectorises well)."""
    a, b, c = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    d, e, f = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    g, h, i = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    co = torch.stack([e * i - f * h, c * h - b * i, b * f - c * e,
                      f * g - d * i, a * i - c * g, c * d - a * f,
                      d * h - e * g, b * g - a * h, a * e - b * d], dim=-1).reshape(*m.shape)
    det = a * co[..., 0, 0] + b * co[..., 1, 0] + c * co[..., 2, 0]
    return co / det[..., None, None]


def deform_points(
    x: torch.Tensor,
    bases: DeformerBases,
    frame: FlameState,
    canonical: FlameState,
    identity_offset: torch.Tensor | None = None,
) -> torch.Tensor:
    """Deforms canonical points into B frames (see the module docstring).

    Args:
        x: (P, N, 3) canonical points (after any latent canonical offset).
        bases: per-point bases (P, N, ...).
        frame: state of the B frames; its translation is added to every point.
        canonical: canonical state, Bs = 1 or B.
        identity_offset: optional (P or B, N, 3) ``S(v*)·β`` (generic canonical space).

    Returns:
        (B, N, 3) deformed points (scaled head units, world = head-model space).
    """
    x_o = x + bases.offset
    if canonical.translation is not None:
        x_o = x_o - canonical.translation[:, None]
    t_can = blend_transforms(bases.weights, canonical.transforms)
    x_u = (_inverse_3x3(t_can[..., :3]) * (x_o - t_can[..., 3])[..., None, :]).sum(-1)
    x_rest = (x_u - _apply_blend(canonical.expression, bases.expr_basis)
              - _apply_blend(canonical.pose_feature, bases.pose_basis))
    v = (x_rest + _apply_blend(frame.expression, bases.expr_basis)
         + _apply_blend(frame.pose_feature, bases.pose_basis))
    if identity_offset is not None:
        v = v + identity_offset
    t_frame = blend_transforms(bases.weights, frame.transforms)
    out = _affine_apply(t_frame, v)
    if frame.translation is not None:
        out = out + frame.translation[:, None]
    batch = frame.transforms.shape[0]
    return out.expand(batch, *out.shape[1:]) if out.shape[0] != batch else out


def deform_with_jacobian(
    fn: Callable[[torch.Tensor], tuple[torch.Tensor, object]], x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, object]:
    """Evaluates ``fn`` and its per-point Jacobian exactly, by forward-mode AD.

    Args:
        fn: maps (P, N, 3) points to ((B, N, 3) outputs, aux) where output point n depends
            only on input point n (true of the deformation: MLPs act per point).
        x: (P, N, 3).

    Returns:
        outputs (B, N, 3), Jacobians (B, N, 3, 3) with ``J[..., i, k] = ∂y_i / ∂x_k``, and
        aux. Three Jacobian-vector products (one per input axis, all points at once,
        vectorised with ``torch.func.vmap``); the outputs, the Jacobians and aux stay
        differentiable by ordinary autograd w.r.t. ``x`` and every captured parameter.
    """
    x = x.contiguous()  # forward-mode AD cannot attach tangents to overlapping (expanded) memory
    eye = torch.eye(3, dtype=x.dtype, device=x.device)
    tangents = eye[:, None, None, :].expand(3, *x.shape)

    def column(tangent):
        return torch.func.jvp(fn, (x,), (tangent,), has_aux=True)

    y, dy, aux = torch.func.vmap(column, out_dims=(None, 0, None))(tangents)
    return y, torch.stack(dy.unbind(0), dim=-1), aux


def deform_normals(canonical_normals: torch.Tensor, jacobian: torch.Tensor) -> torch.Tensor:
    """Transforms normals by a deformation: ``n_d = normalise(J⁻ᵀ n_c)`` (i.e. n_cᵀ J⁻¹).

    Args:
        canonical_normals: (P, N, 3) (need not be unit length).
        jacobian: (B, N, 3, 3) ``∂x_d/∂x``.

    Returns:
        (B, N, 3) unit normals of the deformed surface.
    """
    normals = canonical_normals.expand(jacobian.shape[0], *canonical_normals.shape[1:])
    # n_cᵀ J⁻¹ as a row vector: Σ_i n_i (J⁻¹)_{ik}
    deformed = (normals[..., :, None] * _inverse_3x3(jacobian)).sum(-2)
    return F.normalize(deformed, dim=-1)
