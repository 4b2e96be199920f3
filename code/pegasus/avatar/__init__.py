"""The point-cloud head avatar (PointAvatar core, METHOD §4) with PEGASUS's hooks (§5).

Layers: :mod:`.encoding` (positional encoding), :mod:`.fields` (SDF/albedo/segmentation
and shading MLPs), :mod:`.deformer` (FLAME-guided deformation, pure functions + MLPs),
:mod:`.knn` (nearest head-model vertex), :mod:`.points` (canonical cloud and its
prune/upsample schedule with in-place optimizer editing), :mod:`.losses` (pure loss terms,
optional VGG16), :mod:`.model` (:class:`PointAvatar`, the contract of
docs/design/avatar_contract.md).
"""
from .deformer import (
    DeformerBases,
    FlameDeformer,
    FlameState,
    deform_normals,
    deform_points,
    deform_points_with_jacobian,
    flame_state,
)
from .encoding import PositionalEncoding
from .fields import GeometryField, ShadingField, shade
from .knn import knn_points, nearest_vertex
from .model import AvatarOutput, AvatarSettings, LossSettings, PointAvatar
from .points import PointCloudState, PointSchedule, gather_parameter_rows

__all__ = [
    "AvatarOutput", "AvatarSettings", "DeformerBases", "FlameDeformer", "FlameState", "GeometryField",
    "LossSettings", "PointAvatar", "PointCloudState", "PointSchedule", "PositionalEncoding", "ShadingField",
    "deform_normals", "deform_points", "deform_points_with_jacobian", "flame_state", "gather_parameter_rows",
    "knn_points", "nearest_vertex", "shade",
]
