"""Differentiable point rendering: rasterizer, "over" compositor and their readable twin.

Conventions owned here: radius in NDC units (shorter image side spans 2), K points per
pixel ordered front to back, alpha ``1 − d²/r²``, front-to-back "over" compositing onto a
background colour. Cameras come from :mod:`pegasus.geometry.camera`.
"""
from pegasus.render.points import (
    PointFragments,
    PointRendering,
    accumulate_point_weights,
    alpha_composite,
    rasterize_points,
    render_points,
)
from pegasus.render.reference import (
    accumulate_point_weights_reference,
    alpha_composite_reference,
    rasterize_points_reference,
    render_points_reference,
)

__all__ = [
    "PointFragments",
    "PointRendering",
    "rasterize_points",
    "alpha_composite",
    "accumulate_point_weights",
    "render_points",
    "rasterize_points_reference",
    "alpha_composite_reference",
    "accumulate_point_weights_reference",
    "render_points_reference",
]
