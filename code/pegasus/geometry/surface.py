"""Points on a triangle mesh's surface (as PyTorch3D's ``sample_points_from_meshes``)."""
from __future__ import annotations

import torch

__all__ = ["face_areas", "sample_mesh_surface"]


def face_areas(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(F,) area of each triangle of (V, 3) ``vertices`` and (F, 3) int ``faces``."""
    a, b, c = (vertices[faces[:, i].long()] for i in range(3))
    return 0.5 * torch.linalg.cross(b - a, c - a).norm(dim=-1)


def sample_mesh_surface(vertices: torch.Tensor, faces: torch.Tensor, count: int,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """(count, 3) points uniform by area on the mesh (V, 3) / (F, 3).

    Faces are drawn with probability ∝ area, then a point uniform on the triangle with the
    square-root barycentric map (Osada et al. 2002). Random numbers come from ``generator``
    (a CPU generator), so a seeded generator gives the same points on every device.
    """
    if vertices.ndim != 2 or vertices.shape[-1] != 3 or faces.ndim != 2 or faces.shape[-1] != 3:
        raise ValueError(f"sample_mesh_surface: expected (V, 3) vertices and (F, 3) faces, got "
                         f"{tuple(vertices.shape)} and {tuple(faces.shape)}")
    areas = face_areas(vertices.double(), faces).cpu()
    if count <= 0:
        return vertices.new_zeros(0, 3)
    if not bool((areas > 0).any()):
        raise ValueError("sample_mesh_surface: the mesh has no face of positive area")
    chosen = torch.multinomial(areas, count, replacement=True, generator=generator)
    u, v = torch.rand(2, count, 1, generator=generator, dtype=torch.float64)
    root = u.sqrt()
    w0, w1, w2 = 1.0 - root, root * (1.0 - v), root * v
    tri = faces[chosen.to(faces.device)].long()
    verts = vertices.double()
    points = (w0.to(verts.device) * verts[tri[:, 0]] + w1.to(verts.device) * verts[tri[:, 1]]
              + w2.to(verts.device) * verts[tri[:, 2]])
    return points.to(vertices.dtype)
