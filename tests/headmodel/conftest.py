"""Builders of small FLAME-format models for the head-model tests."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import ConvexHull


def build_flame_like(n_vertices: int = 300, n_shape: int = 300, n_expr: int = 53, seed: int = 0) -> dict:
    """A random but valid FLAME-format dict (FLAME units, 5 joints, 70-landmark embedding)."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n_vertices, 3))
    v = 0.08 * v / np.linalg.norm(v, axis=1, keepdims=True)
    faces = ConvexHull(v).simplices.astype(np.int64)
    weights = rng.random((n_vertices, 5)) ** 4
    weights /= weights.sum(1, keepdims=True)
    j_reg = rng.random((5, n_vertices))
    j_reg /= j_reg.sum(1, keepdims=True)
    bary = rng.random((70, 3))
    bary /= bary.sum(1, keepdims=True)
    return {
        "v_template": v,
        "f": faces.astype(np.uint32),
        "shapedirs": rng.normal(scale=1e-3, size=(n_vertices, 3, n_shape + n_expr)),
        "posedirs": rng.normal(scale=1e-3, size=(n_vertices, 3, 36)),
        "J_regressor": j_reg,
        "weights": weights,
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.uint32),
        "lmk_faces_idx": rng.integers(0, len(faces), size=70),
        "lmk_bary_coords": bary,
    }


@pytest.fixture
def flame_like():
    return build_flame_like
