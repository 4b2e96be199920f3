"""The head-model overview picture: neutral views, canonical state and random samples."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..config import Config
from ..geometry.camera import cameras_from_imavatar, project_points
from ..headmodel import HeadModel
from ..headmodel.lbs import POSE_SLOTS
from ..render.mesh import render_mesh
from ..utils.media import draw_points, image_grid, put_label, write_png

__all__ = ["region_colors", "render_head_tiles", "write_head_picture"]

_SKIN = (0.86, 0.69, 0.60)
_REGION_COLORS = {  # albedo per stand-in region name; anything else is skin
    "upper_lip": (0.78, 0.45, 0.45),
    "lower_lip": (0.78, 0.45, 0.45),
    "mouth_interior": (0.45, 0.18, 0.2),
    "left_eyeball": (0.93, 0.93, 0.93),
    "right_eyeball": (0.93, 0.93, 0.93),
    "scalp": (0.78, 0.62, 0.54),
}


def region_colors(model: HeadModel) -> torch.Tensor:
    """(V, 3) per-vertex albedo from the model's region labels (uniform skin without them)."""
    colors = torch.tensor(_SKIN).expand(model.n_vertices, 3).clone()
    regions, names = model.extras.get("vertex_region"), model.extras.get("region_names")
    if regions is not None and names is not None:
        for index, name in enumerate(names):
            if str(name) in _REGION_COLORS:
                colors[torch.as_tensor(regions == index)] = torch.tensor(_REGION_COLORS[str(name)])
    return colors


def _camera(cfg: Config, yaw_deg: float, center_y: float):
    """An IMavatar-convention camera at distance d, rotated about the head's vertical axis."""
    pic = cfg.picture
    yaw = math.radians(yaw_deg)
    rot = torch.tensor([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    world_mat = torch.cat([rot, torch.tensor([[0.0], [-center_y], [-pic.camera_distance]])], 1)[None]
    intrinsics = torch.tensor([-pic.focal, pic.focal, 0.5, 0.5])
    return cameras_from_imavatar(intrinsics, world_mat, (pic.image_size, pic.image_size))


def render_head_tiles(model: HeadModel, cfg: Config) -> list[tuple[str, np.ndarray]]:
    """Renders labelled tiles: neutral (front, 3/4, profile), canonical jaw, random samples."""
    pic = cfg.picture
    gen = torch.Generator().manual_seed(cfg.experiment.seed)
    colors = region_colors(model)
    neutral = model()
    center_y = float((neutral.vertices[0, :, 1].max() + neutral.vertices[0, :, 1].min()) / 2)
    specs = [("neutral", {}, 0.0), ("neutral 3/4", {}, 35.0), ("neutral profile", {}, 90.0),
             ("canonical (jaw 0.4 rad)", {"pose": model.canonical_pose(cfg.head_model.canonical_jaw_opening)}, 20.0)]
    expr_names = [str(n) for n in model.extras.get("expr_names", ())]
    for k in range(pic.n_random):
        expression = torch.randn(model.n_expr, generator=gen) * pic.expr_std
        if "jaw_open" in expr_names:  # the mouth opens, never closes past the lips
            expression[expr_names.index("jaw_open")].abs_()
        pose = torch.zeros(15)
        pose[POSE_SLOTS["neck"]] = torch.randn(3, generator=gen) * pic.pose_std
        pose[POSE_SLOTS["jaw"].start] = torch.rand(1, generator=gen).item() * 2 * pic.pose_std
        specs.append((f"sample {k + 1}", {
            "shape": torch.randn(model.n_shape, generator=gen) * pic.shape_std,
            "expression": expression,
            "pose": pose}, 0.0))
    tiles = []
    with torch.no_grad():
        for name, params, yaw in specs:
            out = model(**params)
            cams = _camera(cfg, yaw, center_y)
            render = render_mesh(out.vertices[0], model.faces, cams, vertex_colors=colors,
                                 light_direction=(0.3, -0.5, -1.0), supersample=2)
            image = render.image[0].numpy()
            if yaw == 0.0:
                uv = project_points(cams, out.landmarks)[0][0].numpy()
                image = draw_points(image, uv[:68], (30, 160, 60), radius=max(1, pic.image_size // 200))
                image = draw_points(image, uv[68:], (220, 40, 40), radius=max(1, pic.image_size // 200))
            tiles.append((name, put_label(image, name)))
    return tiles


def write_head_picture(model: HeadModel, cfg: Config) -> Path:
    """Writes the grid PNG to ``cfg.picture.output`` and returns its path."""
    tiles = [tile for _, tile in render_head_tiles(model, cfg)]
    return write_png(cfg.picture.output, image_grid(tiles, n_cols=min(5, len(tiles))))
