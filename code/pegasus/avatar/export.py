"""Point clouds of a trained avatar for ``.ply`` export (pegasus.eval.export_ply writes them)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.batch import FrameBatch
from .fields import shade

__all__ = ["canonical_points", "posed_points"]


@torch.no_grad()
def canonical_points(model, latent: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``points`` x_c, ``colors`` in [0, 1] (shaded with the canonical normal) and unit
    ``normals``, each (N, 3), of a :class:`~pegasus.avatar.model.PointAvatar`.

    Args:
        latent: (Z,) or (1, Z) latent of a model with latent codes (e.g. a person's), else None.
    """
    nets = model.networks
    if (latent is None) != (model.latent_codes is None):
        raise ValueError("canonical_points: pass a latent exactly when the model has latent codes")
    latent = None if latent is None else latent.reshape(1, -1).to(model.points.points)
    x_c = nets.canonicalise(model.points.points, latent)
    geometry, gradient = nets.geometry.with_gradient(x_c, latent, create_graph=False)
    normals = F.normalize(gradient, dim=-1)
    colors = shade(geometry.albedo, nets.shading(normals, latent))
    return {"points": x_c[0], "colors": colors[0], "normals": normals[0]}


@torch.no_grad()
def posed_points(model, batch: FrameBatch) -> dict[str, torch.Tensor]:
    """The cloud posed for the first frame of ``batch`` (world = head-model space): ``points``,
    ``colors``, ``normals``, each (N, 3)."""
    state = model.point_pass(batch.select([0]))
    colors = shade(state.geometry.albedo.expand(state.deformed.shape[0], -1, -1), state.shading)
    return {"points": state.deformed[0], "colors": colors[0], "normals": state.normals[0]}
