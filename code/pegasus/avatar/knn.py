"""Nearest neighbours between a point cloud and a (small) vertex set.

Used for the FLAME correspondence of PointAvatar (each canonical point ↔ its nearest
canonical head-model vertex v*). V is a few thousand, so a chunked brute force in torch is
exact, needs no compiled extension and runs on any device (:func:`knn_points`). On CPU,
:func:`nearest_vertex` asks a k-d tree instead (scipy, exact, ~8× faster for 8k points and
5k vertices: the brute force is bound by its N×V distance matrix). No gradients: indices
are piecewise constant, and callers gather what they need from the index.
"""
from __future__ import annotations

import torch
from scipy.spatial import cKDTree

__all__ = ["knn_points", "nearest_vertex", "nearest_neighbours"]

DEFAULT_CHUNK_ELEMENTS = 1 << 23  # distance-matrix entries held at once (32 MiB in float32)


@torch.no_grad()
def knn_points(
    points: torch.Tensor, vertices: torch.Tensor, k: int = 1, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest vertices of every point (ascending distance; ties: lower index).

    Candidates are ranked by ``|v|² − 2p·v`` on coordinates centred at the vertices' mean
    (one matrix product per chunk); only neighbours whose squared distances differ by
    float rounding (~1e-7 of the squared extent) can come out in either order. Returned
    distances are computed exactly from the coordinates.

    Args:
        points: (N, 3) or (P, N, 3) query points.
        vertices: (V, 3) or (P, V, 3) reference points (P matches ``points`` when batched).
        k: neighbours per point, 1 ≤ k ≤ V.
        chunk_elements: memory bound, the most point-vertex distances held at once; does not
            change the result.

    Returns:
        squared distances (..., N, k) and int64 indices into ``vertices`` (..., N, k).
    """
    if points.shape[-1] != 3 or vertices.shape[-1] != 3 or points.ndim not in (2, 3):
        raise ValueError(f"knn_points: expected (N, 3) / (P, N, 3) points and vertices, got "
                         f"{tuple(points.shape)} and {tuple(vertices.shape)}")
    if points.ndim == 3:
        verts = vertices if vertices.ndim == 3 else vertices.expand(points.shape[0], -1, -1)
        results = [knn_points(p, v, k, chunk_elements) for p, v in zip(points, verts)]
        return torch.stack([r[0] for r in results]), torch.stack([r[1] for r in results])
    if vertices.ndim != 2:
        raise ValueError(f"knn_points: unbatched points need (V, 3) vertices, got {tuple(vertices.shape)}")
    num_vertices = vertices.shape[0]
    if not 1 <= k <= num_vertices:
        raise ValueError(f"knn_points: k must lie in [1, V={num_vertices}], got {k}")
    vertices = vertices.to(points.dtype)
    # Centre both sets on the vertices' mean: the expanded form |p|² − 2p·v + |v|² used to
    # rank candidates then loses no precision to a far-away origin.
    centre = vertices.mean(0)
    vertices, points = vertices - centre, points - centre
    vertex_sq = (vertices * vertices).sum(-1)  # (V,)
    chunk = max(1, chunk_elements // max(num_vertices, 1))
    dists, indices = [], []
    for start in range(0, points.shape[0], chunk):
        part = points[start:start + chunk]
        approx = torch.addmm(vertex_sq[None, :], part, vertices.t(), alpha=-2.0)  # (n, V), |p|² dropped
        if k == 1:  # argmin is several times faster than topk; ties resolve to the lower index
            best = approx.argmin(dim=1, keepdim=True)
            dists.append(((part - vertices[best[:, 0]]) ** 2).sum(-1, keepdim=True))
            indices.append(best)
            continue
        # k > 1: pre-select by the expansion, decide by exact distances, ties to the lower index
        candidates = min(num_vertices, k + 8)
        _, cand = approx.topk(candidates, dim=1, largest=False, sorted=False)
        exact = ((part[:, None, :] - vertices[cand]) ** 2).sum(-1)  # (n, C)
        order = torch.argsort(cand, dim=1)
        cand, exact = cand.gather(1, order), exact.gather(1, order)
        best, pos = torch.sort(exact, dim=1, stable=True)
        dists.append(best[:, :k])
        indices.append(cand.gather(1, pos[:, :k]))
    if not dists:
        empty = points.new_zeros(0, k)
        return empty, empty.long()
    return torch.cat(dists), torch.cat(indices)


@torch.no_grad()
def nearest_vertex(points: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """(..., N, 3) points, (V, 3) or (P, V, 3) vertices → (..., N) int64 index of the nearest vertex.

    Exact on every device; among equally near vertices any one may be returned on CPU (a
    k-d tree answers there), the lowest index elsewhere (:func:`knn_points`).
    """
    if points.device.type != "cpu" or vertices.ndim != 2 or points.shape[-1] != 3 or vertices.shape[-1] != 3:
        return knn_points(points, vertices, k=1)[1][..., 0]
    if vertices.shape[0] == 0:
        raise ValueError("nearest_vertex: the vertex set is empty")
    tree = cKDTree(vertices.double().numpy())
    _, index = tree.query(points.reshape(-1, 3).double().numpy(), workers=torch.get_num_threads())
    return torch.from_numpy(index).to(torch.int64).reshape(points.shape[:-1])


@torch.no_grad()
def nearest_neighbours(queries: torch.Tensor, points: torch.Tensor, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, 3) queries, (N, 3) points → Euclidean distances (M, k), ascending, and int64
    indices (M, k) of the k nearest points (a k-d tree on CPU, :func:`knn_points` elsewhere)."""
    if queries.ndim != 2 or points.ndim != 2 or queries.shape[-1] != 3 or points.shape[-1] != 3:
        raise ValueError(f"nearest_neighbours: expected (M, 3) and (N, 3), got {tuple(queries.shape)} and "
                         f"{tuple(points.shape)}")
    if not 1 <= k <= points.shape[0]:
        raise ValueError(f"nearest_neighbours: k must lie in [1, N={points.shape[0]}], got {k}")
    if queries.device.type != "cpu":
        squared, index = knn_points(queries, points, k=k)
        return squared.sqrt(), index
    tree = cKDTree(points.double().numpy())
    distances, index = tree.query(queries.double().numpy(), k=k, workers=torch.get_num_threads())
    return (torch.from_numpy(distances).reshape(-1, k).to(queries.dtype),
            torch.from_numpy(index).reshape(-1, k).to(torch.int64))
