"""The head model as a torch module: FLAME-format data → vertices, joints, landmarks."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .flame_file import HeadModelData, HeadModelError, check_components_in_use
from .lbs import POSE_DIM, POSE_SLOTS, lbs

log = logging.getLogger(__name__)

__all__ = ["HeadModel", "HeadModelOutput", "landmarks_from_embedding"]


def landmarks_from_embedding(
    vertices: torch.Tensor, faces: torch.Tensor, faces_idx: torch.Tensor, bary: torch.Tensor
) -> torch.Tensor:
    """(B, V, 3) vertices → (B, L, 3) landmarks at barycentric points of faces (F, 3)."""
    corners = vertices[:, faces[faces_idx]]  # (B, L, 3, 3): landmark, corner, xyz
    return (corners * bary[None, :, :, None]).sum(2)


def _fit_components(dirs: np.ndarray, count: int, what: str, source: str) -> np.ndarray:
    have = dirs.shape[2]
    if have >= count:
        return dirs[:, :, :count]
    log.info("%s: has %d %s components, %d configured; zero-padding", source, have, what, count)
    pad = np.zeros(dirs.shape[:2] + (count - have,), dtype=dirs.dtype)
    return np.concatenate([dirs, pad], axis=2)


@dataclass
class HeadModelOutput:
    """Posed head model (scaled head units; B = batch)."""

    vertices: torch.Tensor  # (B, V, 3)
    joints: torch.Tensor  # (B, J, 3)
    landmarks: torch.Tensor  # (B, 70, 3): 68 iBUG + 2 iris; rows with landmark_valid False are placeholders
    transforms: torch.Tensor  # (B, J, 4, 4) skinning transforms (translation included)
    pose_feature: torch.Tensor  # (B, 36)
    shaped_vertices: torch.Tensor  # (B, V, 3) unposed, with identity and expression


class HeadModel(nn.Module):
    """FLAME-format head model with a fixed number of identity / expression components.

    Args:
        data: loaded file (already scaled, see :func:`load_head_model_file`).
        n_shape, n_expr: components used; the file's extra ones are dropped, missing ones
            zero-padded (with a logged warning). All-zero components among those the file
            has are refused (:func:`~pegasus.headmodel.flame_file.check_components_in_use`).
        expression_range: (min, max) of every expression coefficient (blendshape
            activations), or None for an unbounded basis (``head_model.expression_range``).

    Buffers include ``landmark_valid`` (L,) bool: False for placeholder landmarks the
    embedding does not have (the jaw contour of FLAME's 51-point static embedding), which
    tracking ignores; all True when ``data.landmark_valid`` is None.
    """

    def __init__(self, data: HeadModelData, n_shape: int = 100, n_expr: int = 50,
                 expression_range: tuple[float, float] | None = None):
        super().__init__()
        if data.lmk_faces_idx is None:
            raise HeadModelError(f"{data.source}: no landmark embedding; configure head_model.landmark_embedding")
        if data.lbs_weights.shape[1] * 3 != POSE_DIM:
            raise HeadModelError(f"{data.source}: {data.lbs_weights.shape[1]} joints, FLAME layout needs 5")
        valid = (np.ones(len(data.lmk_faces_idx), dtype=bool) if data.landmark_valid is None
                 else np.asarray(data.landmark_valid, dtype=bool))
        if valid.shape != data.lmk_faces_idx.shape:
            raise HeadModelError(f"{data.source}: landmark_valid {valid.shape} does not match the "
                                 f"{len(data.lmk_faces_idx)} landmarks")
        check_components_in_use(data, n_shape, n_expr)
        self.n_shape, self.n_expr = n_shape, n_expr
        self.expression_range = expression_range
        self.source = data.source
        f32 = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
        i64 = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.int64)  # noqa: E731
        self.register_buffer("v_template", f32(data.v_template))
        self.register_buffer("faces", i64(data.faces))
        self.register_buffer("shapedirs", f32(_fit_components(data.shapedirs, n_shape, "identity", data.source)))
        self.register_buffer("exprdirs", f32(_fit_components(data.exprdirs, n_expr, "expression", data.source)))
        self.register_buffer("posedirs", f32(data.posedirs))
        self.register_buffer("j_regressor", f32(data.j_regressor))
        self.register_buffer("lbs_weights", f32(data.lbs_weights))
        self.register_buffer("parents", i64(data.parents))
        self.register_buffer("lmk_faces_idx", i64(data.lmk_faces_idx))
        self.register_buffer("lmk_bary_coords", f32(data.lmk_bary_coords))
        self.register_buffer("landmark_valid", torch.as_tensor(valid, dtype=torch.bool))
        self.vt = None if data.vt is None else f32(data.vt)
        self.ft = None if data.ft is None else i64(data.ft)
        self.extras = data.extras

    @property
    def n_vertices(self) -> int:
        return self.v_template.shape[0]

    def forward(
        self,
        shape: torch.Tensor | None = None,
        expression: torch.Tensor | None = None,
        pose: torch.Tensor | None = None,
        translation: torch.Tensor | None = None,
    ) -> HeadModelOutput:
        """Poses the model.

        Args:
            shape: (B, n_shape) or (n_shape,) identity coefficients (None: zeros).
            expression: (B, n_expr) (None: zeros).
            pose: (B, 15) axis-angle, :data:`POSE_SLOTS` layout (None: zeros).
            translation: (B, 3) added to every output point and to the transforms.
        """
        batch = max(t.shape[0] if t is not None and t.ndim == 2 else 1 for t in (shape, expression, pose))
        shape = self._batched(shape, self.n_shape, batch, "shape")
        expression = self._batched(expression, self.n_expr, batch, "expression")
        pose = self._batched(pose, POSE_DIM, batch, "pose")
        out = lbs(shape, expression, pose, self.v_template, self.shapedirs, self.exprdirs,
                  self.posedirs, self.j_regressor, self.parents, self.lbs_weights)
        vertices, joints, transforms = out.vertices, out.joints, out.transforms
        if translation is not None:
            translation = self._batched(translation, 3, batch, "translation")
            vertices = vertices + translation[:, None]
            joints = joints + translation[:, None]
            transforms = transforms.clone()
            transforms[..., :3, 3] += translation[:, None]
        landmarks = landmarks_from_embedding(vertices, self.faces, self.lmk_faces_idx, self.lmk_bary_coords)
        return HeadModelOutput(vertices, joints, landmarks, transforms, out.pose_feature, out.shaped_vertices)

    def _batched(self, value: torch.Tensor | None, dim: int, batch: int, name: str) -> torch.Tensor:
        if value is None:
            return self.v_template.new_zeros(batch, dim)
        value = value.to(self.v_template)
        if value.ndim == 1:
            value = value[None]
        if value.ndim != 2 or value.shape[1] != dim or value.shape[0] not in (1, batch):
            raise ValueError(f"{name}: expected ({batch}, {dim}) or ({dim},), got {tuple(value.shape)}")
        return value.expand(batch, dim)

    def canonical_pose(self, jaw_opening: float = 0.4) -> torch.Tensor:
        """(15,) canonical pose: jaw opened by ``jaw_opening`` radians about x, rest zero."""
        pose = self.v_template.new_zeros(POSE_DIM)
        pose[POSE_SLOTS["jaw"].start] = jaw_opening
        return pose

    @staticmethod
    def canonical_expression(expressions: torch.Tensor) -> torch.Tensor:
        """(T, E) training expressions → (E,) their mean, the canonical expression."""
        return expressions.mean(0)
