"""Declarations of the ``head_model`` and ``standin`` config sections (values in confs/base.conf)."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.declare import Section, setting

__all__ = ["HeadModelSettings", "StandinSettings"]


@dataclass(frozen=True)
class HeadModelSettings(Section):
    """Which FLAME-format model and how it is used."""

    path: str | None = setting(
        "FLAME-format model: generic_model.pkl (FLAME 2020), flame2023.pkl, flame2023_Open.pkl or a project "
        ".npz. null = the generated stand-in head at standin.output", path="file")
    landmark_embedding: str | None = setting(
        "landmark file: DECA's landmark_embedding.npy, FLAME's static embedding (.pkl/.npy with "
        "lmk_face_idx/lmk_b_coords) or a project .npz (70 barycentric landmarks). null = the embedding "
        "stored in the model file (stand-in head)", path="file")
    iris_vertex_ids: tuple[int, int] = setting(
        "vertex ids of the 2 iris centres [eye of landmarks 36-41, eye of 42-47], used when the landmark "
        "file has only the 68 iBUG landmarks (FLAME + DECA embedding)", ge=0)
    texture_space: str | None = setting(
        "FLAME texture-space file with vt/ft (e.g. FLAME_texture.npz); null = none or the model file's own",
        path="file")
    scale: float = setting("scale applied once at load to template, bases (FLAME ×4)", gt=0)
    identity_components: int | None = setting(
        "columns of shapedirs that are identity (the rest are expression) in a .pkl, which does not say; "
        "null = the file's own n_shape entry, else FLAME's 300", ge=1)
    n_shape: int | None = setting(
        "identity components used (zero-padded if the file has fewer); null = all the model has", ge=1)
    n_expr: int | None = setting(
        "expression components used (zero-padded if the file has fewer); null = all the model has", ge=1)
    expression_range: tuple[float, float] | None = setting(
        "range of every expression coefficient: null = unbounded (a signed PCA basis such as FLAME's and the "
        "stand-in's); [0, 1] for blendshape activations such as ICT-FaceKit's (the tracker keeps its fit inside)",
        ordered=True)
    canonical_jaw_opening: float = setting("jaw opening of the canonical state, radians", ge=0, le=1.5)


@dataclass(frozen=True)
class StandinSettings(Section):
    """The generated stand-in head model (the embedded default)."""

    output: str = setting("where the generated stand-in head .npz is written / cached")
    seed: int = setting("generator seed (0 = the project's default head)", ge=0)
    n_shape: int = setting("identity components generated", ge=20)
    n_expr: int = setting("expression components generated", ge=10)
