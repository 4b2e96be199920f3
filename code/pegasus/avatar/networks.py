"""The avatar's networks and the per-point pass that runs them.

:class:`AvatarNetworks` holds the MLPs (geometry/albedo/semantic field, FLAME-guided deformer,
optional latent canonical offset, shading). :meth:`AvatarNetworks.point_pass` takes canonical
points, an optional latent per frame and the head-model states of a batch, and returns every
per-point quantity of the pass (:class:`PointPass`): canonical geometry, deformation bases,
nearest head-model vertices, deformed points and normals, shading. A model that renders
(:class:`pegasus.avatar.model.PointAvatar`) or merges clouds (zero-shot transfer) builds on it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..headmodel.model import HeadModel
from ..render.mesh import vertex_normals
from .deformer import (CanonicalOffset, DeformerBases, FlameDeformer, FlameState, deform_normals,
                       deform_points_with_jacobian)
from .fields import GeometryField, GeometryOutput, ShadingField
from .knn import nearest_vertex
from .settings import ModelSettings

__all__ = ["PointPass", "AvatarNetworks"]


@dataclass
class PointPass:
    """Per-point quantities of one pass (P = latent batch, 1 or B; B = frames; N = points).

    Attributes:
        canonical: (P, N, 3) canonical points x_c (after any latent canonical offset).
        geometry: the field at x_c (sdf (P, N), albedo (P, N, 3), part (P, N), semantic (P, N, K)).
        sdf_gradient: (P, N, 3) ∇SDF (canonical normals, not normalised).
        bases: the deformer's per-point bases (P, N, ...).
        flame_index: (P, N) int64 nearest canonical head-model vertex v* of each point.
        surface_offset: (P, N) signed distance of x_o = x_c + Δ along the reference mesh's
            unit normal at v*, head units (negative: inside the head-model surface).
        deformed: (B, N, 3) deformed points (world = head-model space).
        normals: (B, N, 3) deformed unit normals (world).
        shading: (B, N, 3) in (0, 1).
        latent: (P, Z) or None.
    """

    canonical: torch.Tensor
    geometry: GeometryOutput
    sdf_gradient: torch.Tensor
    bases: DeformerBases
    flame_index: torch.Tensor
    surface_offset: torch.Tensor
    deformed: torch.Tensor
    normals: torch.Tensor
    shading: torch.Tensor
    latent: torch.Tensor | None


class AvatarNetworks(nn.Module):
    """Geometry field, deformer, optional canonical offset and shading of one avatar.

    Args:
        settings: the ``model`` section.
        n_expr: expression components of the head model.
        latent_dim: |z| (0 = no latent code).
        semantic_classes: outputs of the semantic head (0 = none).
    """

    def __init__(self, settings: ModelSettings, n_expr: int, latent_dim: int = 0, semantic_classes: int = 0):
        super().__init__()
        g, d, c = settings.geometry, settings.deformer, settings.canonical_offset
        self.shape_cancel = settings.shape_cancel
        self.normal_jacobian_grad = settings.normal_jacobian_grad
        self.latent_dim = latent_dim
        self.geometry = GeometryField(g.hidden_layers, g.width, g.num_freqs, latent_dim, settings.part_logit,
                                      semantic_classes, g.init_radius)
        self.deformer = FlameDeformer(n_expr, d.hidden_layers, d.width, latent_dim, d.skinning_temperature)
        self.canonical_offset = CanonicalOffset(c.hidden_layers, c.width, latent_dim) if c.enabled else None
        self.shading = ShadingField(tuple(settings.shading.hidden), latent_dim)

    def canonicalise(self, points: torch.Tensor, latent: torch.Tensor | None) -> torch.Tensor:
        """(N, 3) shared points → (P, N, 3) canonical points x_c (+ Δ_cc(x, z) when enabled)."""
        x = points[None].expand(1 if latent is None else latent.shape[0], -1, -1)
        return self.canonical_offset(x, latent) if self.canonical_offset is not None else x

    def point_pass(self, points: torch.Tensor, latent: torch.Tensor | None, head_model: HeadModel,
                   frame: FlameState, canonical: FlameState, shape: torch.Tensor,
                   reference_vertices: torch.Tensor) -> PointPass:
        """Runs the networks on every point for B frames.

        Args:
            points: (N, 3) canonical points.
            latent: None or (P, Z) with P = 1 or B.
            frame, canonical: head-model states (:func:`pegasus.avatar.frames.head_model_states`).
            shape: (B, S) the frames' identity coefficients (for S(v*)·β in the generic
                canonical space).
            reference_vertices: (V, 3) the run's reference canonical mesh, where each point's
                nearest vertex v* is looked up (one mesh for every frame, so v* does not
                depend on which frames share a batch).
        """
        x_c = self.canonicalise(points, latent)
        p = x_c.shape[0]
        geometry, sdf_gradient = self.geometry.with_gradient(x_c, latent, create_graph=self.training)
        bases, tangents = self.deformer.with_tangents(x_c, latent)
        x_o = x_c + bases.offset
        index = nearest_vertex(x_o.detach(), reference_vertices)
        reference_normals = vertex_normals(reference_vertices, head_model.faces)
        surface_offset = ((x_o - reference_vertices[index]) * reference_normals[index]).sum(-1)
        identity = None
        if self.shape_cancel:  # S(v*)·β = (S·β)[v*]
            vertex_identity = torch.einsum("vcs,bs->bvc", head_model.shapedirs, shape.to(x_c))  # (B, V, 3)
            identity = (vertex_identity[:, index[0]] if p == 1
                        else vertex_identity[torch.arange(p, device=index.device)[:, None], index])
        deformed, jacobian = deform_points_with_jacobian(x_c, bases, tangents, frame, canonical, identity)
        if not self.normal_jacobian_grad:
            jacobian = jacobian.detach()
        normals = deform_normals(sdf_gradient, jacobian)
        shading = self.shading(normals, latent)
        return PointPass(x_c, geometry, sdf_gradient, bases, index, surface_offset, deformed, normals, shading, latent)
