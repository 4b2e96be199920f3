"""Builds the configured head model: a user's FLAME file, or the cached stand-in head."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..config import Config
from .settings import StandinSettings
from .flame_file import load_head_model_file, load_landmark_embedding, load_texture_space
from .model import HeadModel

log = logging.getLogger(__name__)


def _standin_is_current(path: Path, standin: StandinSettings) -> bool:
    """True when the cached stand-in file was generated with the configured settings."""
    from .standin import GENERATOR_VERSION

    try:
        with np.load(path, allow_pickle=False) as npz:
            stored = {k: int(npz[k]) for k in ("seed", "n_shape", "n_expr", "generator_version")}
    except (OSError, KeyError, ValueError):
        return False
    wanted = {"seed": standin.seed, "n_shape": standin.n_shape, "n_expr": standin.n_expr,
              "generator_version": GENERATOR_VERSION}
    return stored == wanted


def ensure_standin(standin: StandinSettings) -> Path:
    """Generates the stand-in head at ``standin.output`` unless an up-to-date one is there."""
    from .standin import save_standin_head

    path = Path(standin.output)
    if not _standin_is_current(path, standin):
        log.info("generating the stand-in head model → %s", path)
        save_standin_head(path, seed=standin.seed, n_shape=standin.n_shape, n_expr=standin.n_expr)
    return path


def resolve_head_model_path(cfg: Config) -> Path:
    """The head-model file the config points at (generating the stand-in when path is null)."""
    return Path(cfg.head_model.path) if cfg.head_model.path else ensure_standin(cfg.standin)


def head_model_from_config(cfg: Config) -> HeadModel:
    """Loads ``cfg.head_model`` (scale applied once here) into a :class:`HeadModel`."""
    hm = cfg.head_model
    data = load_head_model_file(resolve_head_model_path(cfg), scale=hm.scale,
                                identity_components=hm.identity_components)
    if hm.landmark_embedding:
        data.lmk_faces_idx, data.lmk_bary_coords, data.landmark_valid = load_landmark_embedding(
            hm.landmark_embedding, len(data.faces), data.faces, tuple(hm.iris_vertex_ids), vertices=data.v_template)
    if hm.texture_space:
        data.vt, data.ft = load_texture_space(hm.texture_space, len(data.faces))
    n_shape = data.shapedirs.shape[2] if hm.n_shape is None else hm.n_shape
    n_expr = data.exprdirs.shape[2] if hm.n_expr is None else hm.n_expr
    return HeadModel(data, n_shape=n_shape, n_expr=n_expr, expression_range=hm.expression_range)
