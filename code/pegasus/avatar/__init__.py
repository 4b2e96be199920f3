"""The point-cloud head avatar (PointAvatar core, METHOD §4) with PEGASUS's pieces (§5).

Layers: :mod:`.settings` (the ``model`` and ``loss`` declarations), :mod:`.encoding`
(positional encoding), :mod:`.fields` (SDF/albedo/part/semantic and shading MLPs),
:mod:`.deformer` (FLAME-guided deformation, pure functions + MLPs), :mod:`.knn` (nearest
head-model vertex), :mod:`.points` (canonical cloud and its prune/upsample schedule with
in-place optimizer editing), :mod:`.frames` (head-model states, per-frame refinement),
:mod:`.latent` (latent code table and its assembly rule), :mod:`.index` (the trained run's
subjects, codes and rows), :mod:`.networks` (the MLPs and the per-point pass),
:mod:`.channels` (rendered channels and the output), :mod:`.losses` (loss terms),
:mod:`.model` (:class:`PointAvatar`), :mod:`.export` (point clouds for ``.ply``).
"""
from .channels import AvatarOutput, ChannelLayout
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
from .index import RunIndex
from .knn import knn_points, nearest_vertex
from .latent import LatentCodes, LatentTable, assemble_rows, latent_size
from .model import PointAvatar
from .networks import AvatarNetworks, PointPass
from .points import PointCloudState, gather_parameter_rows

__all__ = [
    "AvatarNetworks", "AvatarOutput", "ChannelLayout", "DeformerBases", "FlameDeformer", "FlameState",
    "GeometryField", "LatentCodes", "LatentTable", "PointAvatar", "PointCloudState", "PointPass",
    "PositionalEncoding", "RunIndex", "ShadingField", "assemble_rows", "deform_normals", "deform_points",
    "deform_points_with_jacobian", "flame_state", "gather_parameter_rows", "knn_points", "latent_size",
    "nearest_vertex", "shade",
]
