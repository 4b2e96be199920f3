"""Tiny builders for the avatar tests: a FLAME-format head model, cameras and batches."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import ConvexHull

from pegasus.data.batch import NO_ROW, FrameBatch
from pegasus.geometry.camera import cameras_from_imavatar
from pegasus.headmodel.flame_file import HeadModelData
from pegasus.headmodel.model import HeadModel
from pegasus.render.points import render_points


def build_head_model(n_vertices: int = 240, n_shape: int = 8, n_expr: int = 6, seed: int = 0) -> HeadModel:
    """A random but smooth FLAME-format model in scaled head units (head radius ≈ 0.6).

    Bases are smooth functions of the vertex position so that nearby vertices deform alike
    (like a real head model); joints sit inside the head.
    """
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n_vertices, 3))
    v = 0.6 * v / np.linalg.norm(v, axis=1, keepdims=True) * np.array([0.85, 1.0, 0.9])
    faces = ConvexHull(v).simplices.astype(np.int64)

    def smooth_basis(count: int, scale: float) -> np.ndarray:
        freqs = rng.normal(size=(count, 3, 3)) * 2.0
        phase = rng.uniform(0, 2 * np.pi, size=(count, 3))
        return scale * np.sin(np.einsum("vd,kcd->vck", v, freqs) + phase.T[None])

    joints = np.array([[0.0, -0.3, 0.0], [0.0, -0.2, -0.05], [0.0, -0.15, 0.1], [0.2, 0.1, 0.4], [-0.2, 0.1, 0.4]])
    d = np.linalg.norm(v[:, None] - joints[None], axis=-1)
    weights = np.exp(-6.0 * d)
    weights /= weights.sum(1, keepdims=True)
    j_reg = np.exp(-40.0 * np.linalg.norm(joints[:, None] - v[None], axis=-1) ** 2)
    j_reg /= j_reg.sum(1, keepdims=True)
    data = HeadModelData(
        v_template=v, faces=faces, shapedirs=smooth_basis(n_shape, 0.02), exprdirs=smooth_basis(n_expr, 0.02),
        posedirs=smooth_basis(36, 0.01), j_regressor=j_reg, lbs_weights=weights,
        parents=np.array([-1, 0, 1, 1, 1]), scale=4.0, source="<test head>",
        lmk_faces_idx=rng.integers(0, len(faces), size=70), lmk_bary_coords=np.full((70, 3), 1.0 / 3.0),
    )
    return HeadModel(data, n_shape=n_shape, n_expr=n_expr)


def build_cameras(batch: int, image_size: int, focal: float = 2.6):
    """B IMavatar-style cameras 4 units in front of the face (world_mat [I | (0, 0, −4)])."""
    world_mat = torch.zeros(batch, 3, 4)
    world_mat[:, :, :3] = torch.eye(3)
    world_mat[:, 2, 3] = -4.0
    intrinsics = torch.tensor([-focal, focal, 0.5, 0.5])
    return cameras_from_imavatar(intrinsics, world_mat, (image_size, image_size))


def random_flame_params(head_model: HeadModel, batch: int, generator: torch.Generator, scale: float = 1.0):
    """(shape (B, S), expression (B, E), pose (B, 15)) with neck and jaw rotations only."""
    shape = torch.randn(1, head_model.n_shape, generator=generator).expand(batch, -1) * scale
    expression = torch.randn(batch, head_model.n_expr, generator=generator) * scale
    pose = torch.zeros(batch, 15)
    pose[:, 3:6] = torch.randn(batch, 3, generator=generator) * 0.2 * scale
    pose[:, 6] = torch.rand(batch, generator=generator) * 0.3 * scale
    return shape.contiguous(), expression, pose


VERTEX_LABELS = (17, 1, 12)
"""Label ids of the test head's vertices: hair above y = 0.15, lips below y = −0.25 at the front, skin."""


def vertex_labels(head_model: HeadModel) -> torch.Tensor:
    """(V,) int64 label ids of the template's vertices (three regions, see VERTEX_LABELS)."""
    v = head_model.v_template
    hair, skin, lips = VERTEX_LABELS
    labels = torch.full((v.shape[0],), skin, dtype=torch.int64)
    labels[v[:, 1] > 0.15] = hair
    labels[(v[:, 1] < -0.25) & (v[:, 2] > 0)] = lips
    return labels


def build_batch(head_model: HeadModel, batch: int = 2, image_size: int = 32, seed: int = 0) -> FrameBatch:
    """A batch in the dataset's format, rendered from the head model's coloured and labelled
    vertices (one person, one video, frames 0…B−1, no refinement rows)."""
    generator = torch.Generator().manual_seed(seed)
    shape, expression, pose = random_flame_params(head_model, batch, generator, scale=0.5)
    cameras = build_cameras(batch, image_size)
    labels = vertex_labels(head_model)
    with torch.no_grad():
        vertices = head_model(shape=shape, expression=expression, pose=pose).vertices
        colours = 0.5 + 0.4 * torch.sin(3.0 * head_model.v_template)
        one_hot = torch.nn.functional.one_hot(labels, 19).float()
        features = torch.cat([colours, one_hot], dim=-1).expand(batch, -1, -1).contiguous()
        rendering = render_points(vertices, features, cameras, radius=0.15, background=1.0)
    semantic = rendering.features[..., 3:].argmax(-1)
    semantic[rendering.alpha < 0.5] = 0
    index = torch.arange(batch, dtype=torch.int64)
    return FrameBatch(
        cameras=cameras, expression=expression, pose=pose, shape=shape, video_id=torch.zeros_like(index),
        subject_id=torch.zeros_like(index), frame_index=index, refine_row=torch.full_like(index, NO_ROW),
        frame_name=tuple(str(i + 1) for i in range(batch)), video=("person/video",) * batch,
        rgb=rendering.features[..., :3], mask=rendering.alpha, semantic=semantic,
    )


@pytest.fixture
def head_model() -> HeadModel:
    return build_head_model()


@pytest.fixture
def make():
    """The builders above, for tests (conftest modules are not importable under importlib mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(head_model=build_head_model, cameras=build_cameras, batch=build_batch,
                           flame_params=random_flame_params)


@pytest.fixture(autouse=True)
def _one_thread():
    """The avatar tests use tiny tensors: one thread is as fast, and immune to busy cores
    (PyTorch's spinning OpenMP threads slow down many-fold when cores are shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
