"""A deterministic, procedurally generated stand-in head model in FLAME's file format.

FLAME needs a registration and never ships with the project, so the project runs on this
generated head instead. It is a development stand-in (see ``docs/standin_head.md``), not a
face model: a stylised human head with neck, eyeballs, lids, lips with a mouth slit and a
mouth cavity, nose and ears, which behaves like FLAME under linear blend skinning.

Construction, in FLAME's native units (metres, x = subject's left, y up, z out of the face):

1. **Surface.** Every head vertex has a fixed direction ``u`` on a *parameter sphere*. The
   position is ``origin(u) + R(u) · ray(u)``: rays leave one point inside the head (and, for
   the neck, points moving down the neck axis). ``R`` is a smooth maximum of ray–ellipsoid
   exit distances (cranium, parietal, midface, mandible, chin, neck, one "lid sphere" per
   eye) plus analytic displacement bumps (nose, lips, brows, ears, eye sockets).
2. **Mesh.** The parameter sphere is triangulated by Delaunay refinement (convex hull of
   the directions, splitting edges that are long on the nominal head), mirror-symmetric in
   x, with the eye-opening contours, the mouth slit and the neck cut inserted as
   constraint curves. The slit is cut (the lower lip gets its own vertices), a mouth cavity
   is attached behind it, and two UV-sphere eyeballs are added as separate components.
3. **Components.** Identity and expression components are derivatives of the generator:
   central differences for parameters of the surface (head width, lip fullness, …) and
   analytic smooth displacement fields for the rest (eye spacing, jaw opening, blinks, …).
   One unit is about one standard deviation of plausible human variation.

Everything that depends only on the mesh (faces, UVs, regions, landmarks, skinning
weights, joint regressor) is seed-independent; the seed only jitters the identity of the
base head (``variation``), so ``v_template``, ``shapedirs`` and ``posedirs`` change with it.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import nnls
from scipy.spatial import ConvexHull, cKDTree

from ..utils import atomic_path

__all__ = [
    "GENERATOR_VERSION",
    "IDENTITY_COMPONENTS",
    "EXPRESSION_COMPONENTS",
    "REGION_NAMES",
    "build_standin_head",
    "save_standin_head",
]

#: Bumped whenever the generated arrays change, so cached files are regenerated.
GENERATOR_VERSION = 1

#: Identity components in ``shapedirs[..., :n_shape]`` order (largest effects first).
IDENTITY_COMPONENTS: tuple[str, ...] = (
    "head_width", "head_depth", "face_length", "head_height", "jaw_width", "cheek_fullness",
    "neck_width", "nose_length", "nose_width", "nose_bridge", "chin_length", "chin_protrusion",
    "chin_width", "cheekbones", "forehead_slope", "brow_ridge", "eye_spacing", "eye_size",
    "eye_height", "upper_lip_thickness", "lower_lip_thickness", "mouth_width", "ear_size",
    "ear_angle",
)
#: Expression components in ``shapedirs[..., n_shape:]`` order.
EXPRESSION_COMPONENTS: tuple[str, ...] = (
    "jaw_open", "smile", "frown", "brow_raise", "brow_lower", "blink_left", "blink_right",
    "lip_pucker", "lip_stretch", "cheek_puff", "jaw_sideways", "upper_lip_raise",
)
#: Names of ``vertex_region`` values (index = label).
REGION_NAMES: tuple[str, ...] = (
    "scalp", "forehead", "face_skin", "nose", "upper_lip", "lower_lip", "mouth_interior",
    "left_eyeball", "right_eyeball", "left_eyelid", "right_eyelid", "left_ear", "right_ear",
    "neck", "left_brow_area", "right_brow_area",
)
_REGION = {name: index for index, name in enumerate(REGION_NAMES)}

# ---------------------------------------------------------------------------------------
# Nominal design (metres, FLAME axes). Left = +x; right-side features are mirrored.
# ---------------------------------------------------------------------------------------
_RAY_ORIGIN = np.array([0.0, -0.03, 0.0])  # rays of the head start here
_NECK_RAY_POLAR = np.deg2rad(140.0)  # beyond this polar angle (from +y) rays start on the neck axis
_NECK_ORIGIN_RATE = 0.06  # m of descent per unit of log tan(polar/2): ≈ neck radius (conformal)
_NECK_AXIS = np.array([0.0, -1.0, -0.08]) / np.linalg.norm([0.0, -1.0, -0.08])  # neck origins move along
_NECK_CUT_Y = -0.2  # the neck opening, roughly at this height

_EYE_CENTRE = np.array([0.0315, 0.017, 0.074])  # left eyeball centre
_EYEBALL_RADIUS = 0.0125
_LID_GAP = 0.0013  # lids rest this far outside the eyeball
_LID_MARGIN_GAP = 0.0003  # the lid margin (opening contour) rolls in to this gap
_EYE_HALF_WIDTH = 0.0118  # opening: half width, upper / lower lid heights, canthal tilt
_EYE_UPPER, _EYE_LOWER, _EYE_TILT = 0.0056, 0.0045, 0.0012

_MOUTH_Y, _MOUTH_CORNER_X, _MOUTH_CORNER_LIFT = -0.0495, 0.0245, 0.001  # slit height, corners
# mouth cavity behind the slit: (width factor, half height, depth) per ring, then the back wall depth
_CAVITY_RINGS = ((1.0, 0.003, 0.004), (0.97, 0.010, 0.012), (0.85, 0.012, 0.024), (0.6, 0.008, 0.033),
                 (0.3, 0.004, 0.037))
_CAVITY_BACK = 0.039

_EAR_CENTRE_ZY = np.array([-0.007, 0.006])  # on each side of the head
_EAR_HALF_WIDTH, _EAR_HALF_HEIGHT, _EAR_TILT = 0.0165, 0.031, 0.2
_TMJ = np.array([0.0, -0.004, 0.012])  # jaw rotation centre (midpoint of the two TMJs)

_FRONT_CHART_AXIS = np.array([0.0, 0.2, 1.0]) / np.linalg.norm([0.0, 0.2, 1.0])  # UV: face chart centre

# Ellipsoids of the skull: name → (centre, semi-axes, tilt about x in radians).
_SKULL = {
    "cranium": ((0.0, 0.01, -0.004), (0.0755, 0.1, 0.097), 0.0),
    "parietal": ((0.0, 0.05, -0.015), (0.072, 0.08, 0.088), 0.0),
    "midface": ((0.0, -0.012, 0.026), (0.066, 0.062, 0.071), 0.0),
    "mandible": ((0.0, -0.05, 0.02), (0.053, 0.048, 0.074), 0.33),
    "chin": ((0.0, -0.077, 0.068), (0.024, 0.019, 0.029), 0.0),
    "neck": ((0.0, -0.17, -0.014), (0.054, 0.2, 0.058), -0.08),
}
_SKULL_BLEND = 0.007  # smooth-max softness between skull ellipsoids (m)
_LID_BLEND = 0.003  # softness between face and lid spheres (m)

# Physical amount of one unit of each surface ("radial") identity component.
_RADIAL_SCALES = {
    "head_width": 0.0035, "head_depth": 0.0025, "head_height": 0.002, "jaw_width": 0.003,
    "neck_width": 0.003, "cheek_fullness": 0.0025, "cheekbones": 0.0025, "brow_ridge": 0.0015,
    "forehead_slope": 0.003, "nose_bridge": 0.0015, "upper_lip_thickness": 0.0009,
    "lower_lip_thickness": 0.0011, "chin_protrusion": 0.0025,
}


# ---------------------------------------------------------------------------------------
# Small math helpers
# ---------------------------------------------------------------------------------------
def _smoothstep(x: np.ndarray) -> np.ndarray:
    """C1 step: 0 for x ≤ 0, 1 for x ≥ 1."""
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _bump(r2: np.ndarray, power: float = 2.0) -> np.ndarray:
    """Compact bump of a squared normalised radius: (1 − r²)₊^power."""
    return np.clip(1.0 - r2, 0.0, None) ** power


def _gauss(x: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * (x / sigma) ** 2)


def _smooth_max(values: list[np.ndarray], softness: float) -> np.ndarray:
    """Log-sum-exp maximum (≥ the true maximum) of equally shaped arrays."""
    stack = np.stack(values)
    top = stack.max(0)
    return top + softness * np.log(np.exp((stack - top) / softness).sum(0))


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _mirror(points: np.ndarray) -> np.ndarray:
    return points * np.array([-1.0, 1.0, 1.0])


def _rotation_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ellipsoid_exit(origins: np.ndarray, rays: np.ndarray, centre, semi_axes, tilt: float) -> np.ndarray:
    """(N,) distance along unit rays (N, 3) from origins (N, 3) to where they leave an ellipsoid.

    The ellipsoid's axes are rotated by ``tilt`` about x. Rays that miss get the continuous
    extension ``(−b − sqrt(−disc)) / a``, so the result is continuous everywhere.
    """
    rot = _rotation_x(tilt)
    o = ((origins - np.asarray(centre)) @ rot) / np.asarray(semi_axes)
    d = (rays @ rot) / np.asarray(semi_axes)
    a = (d * d).sum(1)
    b = (o * d).sum(1)
    disc = b * b - a * ((o * o).sum(1) - 1.0)
    root = np.sqrt(np.abs(disc))
    return np.where(disc >= 0.0, -b + root, -b - root) / a


# ---------------------------------------------------------------------------------------
# Parameter sphere → rays
# ---------------------------------------------------------------------------------------
def _rays(directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray origins and unit ray directions (N, 3) for parameter-sphere directions (N, 3).

    Head directions (polar angle from +y below ``_NECK_RAY_POLAR``) are rays from
    ``_RAY_ORIGIN``. Below, rays keep the direction of the last head ray of their azimuth
    and start lower on the neck axis, with a Mercator-like descent so the neck is sampled
    evenly.
    """
    polar = np.arccos(np.clip(directions[:, 1], -1.0, 1.0))
    horizontal = directions[:, [0, 2]]
    horizontal = horizontal / np.maximum(np.linalg.norm(horizontal, axis=1, keepdims=True), 1e-12)
    sin_a, cos_a = np.sin(_NECK_RAY_POLAR), np.cos(_NECK_RAY_POLAR)
    neck_ray = np.stack([sin_a * horizontal[:, 0], np.full(len(directions), cos_a), sin_a * horizontal[:, 1]], 1)
    in_neck = polar > _NECK_RAY_POLAR
    log_tan = np.log(np.tan(np.clip(polar, 1e-6, np.pi - 1e-6) / 2.0))
    descent = _NECK_ORIGIN_RATE * np.clip(log_tan - np.log(np.tan(_NECK_RAY_POLAR / 2.0)), 0.0, None)
    origins = _RAY_ORIGIN + descent[:, None] * _NECK_AXIS
    return origins, np.where(in_neck[:, None], neck_ray, directions)


def _neck_cut_polar() -> float:
    """Polar angle of the neck opening: where the ray hitting the neck front reaches _NECK_CUT_Y."""
    drop_at_surface = 0.06 * np.tan(_NECK_RAY_POLAR - np.pi / 2)  # ray descent across ~6 cm of neck
    descent = (_RAY_ORIGIN[1] - _NECK_CUT_Y - drop_at_surface) / -_NECK_AXIS[1]
    log_tan = descent / _NECK_ORIGIN_RATE + np.log(np.tan(_NECK_RAY_POLAR / 2.0))
    return float(2.0 * np.arctan(np.exp(log_tan)))


# ---------------------------------------------------------------------------------------
# The surface: skull ellipsoids, lids, and displacement bumps
# ---------------------------------------------------------------------------------------
def _radial_amount(coeffs: dict[str, float], name: str) -> float:
    """Physical amount (m) of a surface identity component for the given coefficients."""
    return coeffs.get(name, 0.0) * _RADIAL_SCALES[name]


def _skull_ellipsoids(coeffs: dict[str, float]) -> dict[str, tuple]:
    """Skull ellipsoids with the surface identity components applied."""
    def amount(name):
        return _radial_amount(coeffs, name)

    skull = {name: (np.array(c, float), np.array(a, float), t) for name, (c, a, t) in _SKULL.items()}
    for part in ("cranium", "parietal"):
        centre, semi, _ = skull[part]
        semi += [amount("head_width"), amount("head_height"), amount("head_depth")]
        centre += [0.0, amount("head_height"), -amount("head_depth")]
    skull["mandible"][1][0] += amount("jaw_width")
    skull["neck"][1][[0, 2]] += amount("neck_width")
    return skull


def _skull_distance(origins: np.ndarray, rays: np.ndarray, coeffs: dict[str, float]) -> np.ndarray:
    exits = [_ellipsoid_exit(origins, rays, c, a, t) for c, a, t in _skull_ellipsoids(coeffs).values()]
    return _smooth_max(exits, _SKULL_BLEND)


def _front(ref: np.ndarray) -> np.ndarray:
    """Weight of the front of the head (face side) at reference points (N, 3)."""
    return _smoothstep((ref[:, 2] - 0.02) / 0.03)


def _nose_height(ref: np.ndarray, coeffs: dict[str, float]) -> np.ndarray:
    """Nose: a bridge ridge widening into a rounded tip and two alae; nostrils underneath."""
    x, y = ref[:, 0], ref[:, 1]
    nasion_y, tip_y = 0.027, -0.0165
    t = np.clip((nasion_y - y) / (nasion_y - tip_y), 0.0, 1.0)
    bridge_extra = _radial_amount(coeffs, "nose_bridge") * np.sin(np.pi * t)
    width = 0.0095 + 0.006 * t ** 2
    bridge = (0.004 + 0.0135 * t ** 1.6 + bridge_extra) * _bump((x / width) ** 2, 2.5)
    bridge *= np.exp(-(np.clip(y - nasion_y, 0.0, None) / 0.008) ** 2)  # fades above the nasion
    bridge *= _smoothstep((y - tip_y + 0.009) / 0.009)  # and below the tip
    tip = 0.0205 * _bump((x / 0.012) ** 2 + ((y - tip_y) / 0.0112) ** 2, 1.3)
    alae = [0.0095 * _bump(((x - s * 0.0115) / 0.0085) ** 2 + ((y + 0.022) / 0.0075) ** 2, 1.5)
            for s in (1, -1)]
    nose = (bridge ** 3 + tip ** 3 + alae[0] ** 3 + alae[1] ** 3) ** (1.0 / 3.0)
    nostrils = 0.0025 * _gauss(np.abs(x) - 0.006, 0.0022) * _gauss(y + 0.026, 0.0018)
    return (nose - nostrils) * _front(ref)


def _slit_y(x: np.ndarray) -> np.ndarray:
    """Height of the mouth slit at x (m); the corners are slightly raised."""
    return _MOUTH_Y + _MOUTH_CORNER_LIFT * (x / _MOUTH_CORNER_X) ** 2


def _lip_profile(s: np.ndarray, rise: float, plateau: float, tail: float) -> np.ndarray:
    """Lip cross-section over s (0 at the slit, 1 at the lip border): rounded rise and decay."""
    rising = 1.0 - np.exp(-np.clip(s, 0.0, None) / rise)
    return np.where(s < 0.0, 0.0, rising * np.exp(-(np.clip(s - plateau, 0.0, None) / tail) ** 2))


def _lip_fullness(s: np.ndarray) -> np.ndarray:
    """Broad lip-fullness profile (half strength at the slit) used by the lip components."""
    return np.where(s < 0.0, 0.0, np.exp(-((s - 0.5) / 0.6) ** 2))


def _lip_heights(ref: np.ndarray, coeffs: dict[str, float], lip_side: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lip bulges (the slit is the crease between them); slit vertices
    (``lip_side`` ±1) belong to one lip only."""
    x, y = ref[:, 0], ref[:, 1]
    across = np.clip(1.0 - (x / _MOUTH_CORNER_X) ** 2, 0.0, None)
    slit = _slit_y(x)
    cupid = 0.001 * _gauss(np.abs(x) - 0.0055, 0.0025) - 0.0007 * _gauss(x, 0.002)
    upper_border = 0.002 + 0.0062 * across ** 0.6 + cupid
    lower_border = 0.002 + 0.0075 * across ** 0.6
    upper_extra = _radial_amount(coeffs, "upper_lip_thickness")
    lower_extra = _radial_amount(coeffs, "lower_lip_thickness")
    s_upper, s_lower = (y - slit) / upper_border, (slit - y) / lower_border
    if lip_side is not None:
        s_upper = np.where(lip_side > 0, 0.0, np.where(lip_side < 0, -1.0, s_upper))
        s_lower = np.where(lip_side < 0, 0.0, np.where(lip_side > 0, -1.0, s_lower))
    upper = 0.0038 * _lip_profile(s_upper, 0.3, 0.5, 0.55) + upper_extra * _lip_fullness(s_upper)
    lower = 0.0048 * _lip_profile(s_lower, 0.3, 0.5, 0.6) + lower_extra * _lip_fullness(s_lower)
    weight = across ** 1.2 * _front(ref)
    return upper * weight, lower * weight


def _face_relief(ref: np.ndarray, coeffs: dict[str, float]) -> np.ndarray:
    """Brow ridges, glabella, forehead, cheeks, chin, philtrum and mentolabial sulcus (m)."""
    x, y = ref[:, 0], ref[:, 1]
    ax = np.abs(x)
    brow_amount = 0.003 + _radial_amount(coeffs, "brow_ridge")
    along = (ax - 0.033) / 0.026
    brow = brow_amount * _bump(along ** 2, 1.5) * _gauss(y - (0.036 + 0.003 * (1 - along ** 2)), 0.0055)
    glabella = 0.0022 * _gauss(x, 0.008) * _gauss(y - 0.032, 0.008)
    forehead = _radial_amount(coeffs, "forehead_slope") * _gauss(y - 0.085, 0.02) * _gauss(x, 0.04)
    cheeks = _radial_amount(coeffs, "cheek_fullness") * _gauss(ax - 0.045, 0.016) * _gauss(y + 0.035, 0.016)
    zygoma = _radial_amount(coeffs, "cheekbones") * _gauss(ax - 0.05, 0.014) * _gauss(y, 0.01)
    chin = _radial_amount(coeffs, "chin_protrusion") * _gauss(x, 0.012) * _gauss(y + 0.08, 0.012)
    philtrum = -0.0007 * _gauss(x, 0.0022) * _bump(((y + 0.035) / 0.007) ** 2)
    sulcus = -0.0015 * _gauss(y + 0.07, 0.005) * _gauss(x, 0.016)
    sockets = 0.005 * _gauss(ax - _EYE_CENTRE[0], 0.013) * _gauss(y - _EYE_CENTRE[1], 0.011)
    return (brow + glabella + forehead + cheeks + zygoma + chin + philtrum + sulcus - sockets) * _front(ref)


def _ear_frame(ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ear coordinates (a: forward, b: up, both ≈ ±1 at the ear's outline) and side weight."""
    dz, dy = ref[:, 2] - _EAR_CENTRE_ZY[0], ref[:, 1] - _EAR_CENTRE_ZY[1]
    c, s = np.cos(_EAR_TILT), np.sin(_EAR_TILT)
    a = (dz * c + dy * s) / _EAR_HALF_WIDTH
    b = (-dz * s + dy * c) / _EAR_HALF_HEIGHT
    a = a / (1.0 - 0.28 * np.clip(-b, 0.0, 1.0))  # narrower lobe
    side = _smoothstep((np.abs(ref[:, 0]) - 0.045) / 0.015)
    return a, b, side


def _ear_mask(ref: np.ndarray) -> np.ndarray:
    """Soft ear footprint (1 inside the outline) at reference points."""
    a, b, side = _ear_frame(ref)
    return _smoothstep((1.0 - np.sqrt(a * a + b * b)) / 0.3) * side


def _ear_height(ref: np.ndarray) -> np.ndarray:
    """Ears: flaps rising from the front attachment to a helix rim, with a concha bowl."""
    a, b, side = _ear_frame(ref)
    rho = np.sqrt(a * a + b * b)
    flap = 0.015 * (0.3 + 0.7 * np.clip((1.0 - a) / 2.0, 0.0, 1.0))
    rim = 0.0025 * _gauss(rho - 0.86, 0.05) * _smoothstep((b + 0.6) / 0.4)
    concha = 0.006 * np.exp(-((a - 0.25) ** 2 + (b + 0.15) ** 2) / (2 * 0.28 ** 2))
    return (flap + rim - concha) * _smoothstep((1.0 - rho) / 0.3) * side


def _eye_centres() -> np.ndarray:
    """(2, 3) nominal eyeball centres: left (+x), right."""
    return np.stack([_EYE_CENTRE, _mirror(_EYE_CENTRE)])


def _sphere_exit(origins: np.ndarray, rays: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    return _ellipsoid_exit(origins, rays, centre, (radius, radius, radius), 0.0)


@dataclass(frozen=True)
class _SurfacePoints:
    """Parameter-sphere points and what the surface needs to know about them."""

    directions: np.ndarray  # (N, 3) unit
    ref: np.ndarray  # (N, 3) reference points: the nominal skull (no features), metres
    lid_margin: np.ndarray  # (N,) bool: on an eye-opening contour
    lip_side: np.ndarray  # (N,) +1 / −1: slit vertex of the upper / lower lip, 0 elsewhere


def _surface_points(directions: np.ndarray, lid_margin: np.ndarray | None = None,
                    lip_side: np.ndarray | None = None) -> _SurfacePoints:
    origins, rays = _rays(directions)
    ref = origins + _skull_distance(origins, rays, {})[:, None] * rays
    n = len(directions)
    return _SurfacePoints(directions, ref, np.zeros(n, bool) if lid_margin is None else lid_margin,
                          np.zeros(n) if lip_side is None else lip_side)


def _surface(points: _SurfacePoints, coeffs: dict[str, float]) -> np.ndarray:
    """(N, 3) surface positions for the given surface identity coefficients (metres)."""
    origins, rays = _rays(points.directions)
    ref = points.ref
    upper, lower = _lip_heights(ref, coeffs, points.lip_side)
    radius = (_skull_distance(origins, rays, coeffs) + _nose_height(ref, coeffs) + upper + lower
              + _face_relief(ref, coeffs) + _ear_height(ref))
    lids = [_sphere_exit(origins, rays, c, _EYEBALL_RADIUS + _LID_GAP) for c in _eye_centres()]
    radius = _smooth_max([radius, *lids], _LID_BLEND)
    positions = origins + radius[:, None] * rays
    margin = points.lid_margin
    if margin.any():  # the lid margin rolls in toward its eyeball
        centres = _eye_centres()[(positions[margin, 0] < 0).astype(int)]
        offset = positions[margin] - centres
        scale = (_EYEBALL_RADIUS + _LID_MARGIN_GAP) / np.linalg.norm(offset, axis=1)
        positions[margin] = centres + offset * scale[:, None]
    return positions


# ---------------------------------------------------------------------------------------
# Constraint curves (eye openings, mouth slit, neck cut) on the parameter sphere
# ---------------------------------------------------------------------------------------
def _resample(points: np.ndarray, segments: int) -> np.ndarray:
    """``segments + 1`` points at equal arc length along an open polyline (M, 3), ends kept."""
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    target = np.linspace(0.0, arc[-1], segments + 1)
    return np.stack([np.interp(target, arc, points[:, k]) for k in range(3)], 1)


def _eye_contour(spacing: float) -> np.ndarray:
    """(n, 3) points of the left eye opening on the lid sphere: inner corner, lower lid, outer
    corner, upper lid (counter-clockwise seen from the front); both corners are points."""
    a = np.linspace(-1.0, 1.0, 201)  # inner (toward the nose) → outer corner
    radius = _EYEBALL_RADIUS + _LID_GAP

    def on_lid(height):
        x, y = _EYE_HALF_WIDTH * a, height + _EYE_TILT * a
        return _EYE_CENTRE + np.stack([x, y, np.sqrt(np.clip(radius ** 2 - x * x - y * y, 0.0, None))], 1)

    lower = on_lid(-_EYE_LOWER * (1.0 - a * a) ** 0.9)
    upper = on_lid(_EYE_UPPER * (1.0 - a * a) ** 0.75)[::-1]
    arcs = []
    for arc in (lower, upper):
        length = np.linalg.norm(np.diff(arc, axis=0), axis=1).sum()
        arcs.append(_resample(arc, max(int(round(length / spacing)), 3))[:-1])
    return np.vstack(arcs)


def _slit_points(spacing: float) -> np.ndarray:
    """(2m+1, 3) points of the mouth slit from the right corner (−x) to the left corner (+x)."""
    half = max(int(round(_MOUTH_CORNER_X / spacing)), 4)
    x = _MOUTH_CORNER_X * np.linspace(-1.0, 1.0, 2 * half + 1)
    z = 0.1 - 0.02 * (x / _MOUTH_CORNER_X) ** 2
    return np.stack([x, _slit_y(x), z], 1)


def _gnomonic(directions: np.ndarray) -> np.ndarray:
    """(N, 2) front-view plane coordinates of directions (only meaningful for z > 0)."""
    return directions[:, :2] / np.maximum(directions[:, 2:3], 1e-6)


def _segment_distance(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(N,) distance from 2-D points to the nearest of the segments starts→ends (S, 2)."""
    seg = ends - starts
    rel = points[:, None, :] - starts[None]
    t = np.clip((rel * seg).sum(-1) / np.maximum((seg * seg).sum(-1), 1e-18), 0.0, 1.0)
    return np.linalg.norm(rel - t[..., None] * seg, axis=-1).min(1)


def _inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N,) bool: 2-D points inside a closed polygon (M, 2) (even-odd rule)."""
    x, y = points[:, :1], points[:, 1:]
    x0, y0 = polygon[None, :, 0], polygon[None, :, 1]
    x1, y1 = np.roll(polygon, -1, 0)[None, :, 0], np.roll(polygon, -1, 0)[None, :, 1]
    crosses = (y0 > y) != (y1 > y)
    x_at = x0 + (y - y0) * (x1 - x0) / np.where(y1 == y0, 1e-18, y1 - y0)
    return (crosses & (x < x_at)).sum(1) % 2 == 1


@dataclass(frozen=True)
class _Constraints:
    """Constraint curves as parameter directions, plus their exclusion zones (plane coords)."""

    eye_contours: tuple[np.ndarray, np.ndarray]  # left, right: (n, 3) directions, closed loops
    slit: np.ndarray  # (2m+1, 3) directions, right corner → left corner
    neck_ring: np.ndarray  # (k, 3) directions at the neck cut
    neck_polar: float
    eye_margin: float  # exclusion distances in gnomonic plane units / radians
    slit_margin: float
    neck_margin: float

    def excluded(self, directions: np.ndarray) -> np.ndarray:
        """(N,) bool: directions where no free vertex may be placed."""
        polar = np.arccos(np.clip(directions[:, 1], -1.0, 1.0))
        out = polar > self.neck_polar - self.neck_margin
        front = directions[:, 2] > 0.3
        if front.any():
            plane = _gnomonic(directions[front])
            near = np.zeros(len(plane), bool)
            for contour in self.eye_contours:
                loop = _gnomonic(contour)
                near |= _inside_polygon(plane, loop)
                near |= _segment_distance(plane, loop, np.roll(loop, -1, 0)) < self.eye_margin
            slit = _gnomonic(self.slit)
            near |= _segment_distance(plane, slit[:-1], slit[1:]) < self.slit_margin
            out[np.nonzero(front)[0][near]] = True
        return out


def _on_reference(points: np.ndarray, iterations: int = 6) -> np.ndarray:
    """Directions whose reference (skull) points have the x, y of ``points`` (N, 3)."""
    wanted = points.copy()
    for _ in range(iterations):
        ref = _surface_points(_normalize(wanted - _RAY_ORIGIN)).ref
        wanted[:, :2] += points[:, :2] - ref[:, :2]
    return _normalize(wanted - _RAY_ORIGIN)


def _constraints(fine_edge: float, coarse_edge: float) -> _Constraints:
    def directions_of(points):
        return _normalize(points - _RAY_ORIGIN)

    left = directions_of(_eye_contour(fine_edge))
    slit = _on_reference(_slit_points(fine_edge))
    neck_polar = _neck_cut_polar()
    count = 2 * int(round(np.pi * 0.057 / coarse_edge))
    azimuth = 2 * np.pi * np.arange(count) / count
    ring = np.stack([np.sin(neck_polar) * np.sin(azimuth), np.full(count, np.cos(neck_polar)),
                     np.sin(neck_polar) * np.cos(azimuth)], 1)
    ring[np.abs(ring[:, 0]) < 1e-12, 0] = 0.0

    def plane_spacing(curve):
        plane = _gnomonic(curve)
        return np.linalg.norm(np.diff(plane, axis=0), axis=1).mean()

    return _Constraints(
        eye_contours=(left, _mirror(left)), slit=slit, neck_ring=ring, neck_polar=neck_polar,
        eye_margin=0.7 * plane_spacing(left), slit_margin=0.7 * plane_spacing(slit),
        neck_margin=0.7 * 2 * np.pi / count * np.sin(neck_polar),
    )


# ---------------------------------------------------------------------------------------
# Mesh of the head surface: Delaunay refinement on the parameter sphere
# ---------------------------------------------------------------------------------------
def _target_edge(nominal: np.ndarray, coarse: float, face: float, fine: float,
                 grading: float = 0.35) -> np.ndarray:
    """(N,) wanted edge length (m) at nominal surface points: fine at eyes and mouth, graded."""
    def ellipsoid_gap(centre, semi):
        rho = np.linalg.norm((nominal - np.asarray(centre)) / np.asarray(semi), axis=1)
        return np.clip(rho - 1.0, 0.0, None) * min(semi)

    zones = [
        (face, ellipsoid_gap((0.0, -0.01, 0.07), (0.065, 0.085, 0.07))),
        (fine, ellipsoid_gap((0.0, -0.05, 0.1), (0.034, 0.018, 0.03))),
        (0.5 * (face + fine), ellipsoid_gap((0.0, -0.005, 0.11), (0.022, 0.03, 0.025))),
        (0.55 * (face + fine), ellipsoid_gap((0.079, 0.006, -0.007), (0.02, 0.037, 0.025))),
        (0.55 * (face + fine), ellipsoid_gap((-0.079, 0.006, -0.007), (0.02, 0.037, 0.025))),
    ] + [(fine, ellipsoid_gap(c, (0.019, 0.016, 0.02))) for c in _eye_centres()]
    wanted = np.full(len(nominal), coarse)
    for edge, gap in zones:
        wanted = np.minimum(wanted, edge + grading * gap)
    return wanted


def _icosphere(subdivisions: int) -> np.ndarray:
    """Vertices of a subdivided icosahedron (mirror-symmetric in x)."""
    g = (1 + 5 ** 0.5) / 2
    corners = [[-1, g, 0], [1, g, 0], [-1, -g, 0], [1, -g, 0], [0, -1, g], [0, 1, g],
               [0, -1, -g], [0, 1, -g], [g, 0, -1], [g, 0, 1], [-g, 0, -1], [-g, 0, 1]]
    verts = _normalize(np.array(corners, float))
    for _ in range(subdivisions):
        edges = _unique_edges(ConvexHull(verts).simplices)
        verts = np.vstack([verts, _normalize(verts[edges[:, 0]] + verts[edges[:, 1]])])
    return verts


def _unique_edges(faces: np.ndarray) -> np.ndarray:
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    return np.unique(edges, axis=0)


def _outward_hull(points: np.ndarray) -> np.ndarray:
    """Triangles of the convex hull of unit vectors, oriented counter-clockwise from outside."""
    faces = ConvexHull(points).simplices.astype(np.int64)
    a, b, c = points[faces[:, 0]], points[faces[:, 1]], points[faces[:, 2]]
    flip = (np.cross(b - a, c - a) * (a + b + c)).sum(1) < 0
    faces[flip] = faces[flip][:, [0, 2, 1]]
    return faces


def _half(directions: np.ndarray, tolerance: float = 1e-5) -> np.ndarray:
    """The x ≥ 0 half of a set of directions, with near-midline ones snapped onto x = 0."""
    half = directions[directions[:, 0] > -tolerance].copy()
    half[half[:, 0] < tolerance, 0] = 0.0
    return _normalize(half)


def _with_mirror(half: np.ndarray) -> np.ndarray:
    return np.vstack([half, _mirror(half[half[:, 0] > 0.0])])


def _thin(candidates: np.ndarray, existing: np.ndarray, edges: tuple[float, float, float],
          spacing: float = 0.4) -> np.ndarray:
    """Drops candidate directions closer than ``spacing`` × wanted edge (on the nominal head)
    to an existing point or to an earlier candidate."""
    nominal = _surface(_surface_points(candidates), {})
    wanted = _target_edge(nominal, *edges)
    near_existing, _ = cKDTree(_surface(_surface_points(existing), {})).query(nominal)
    keep = near_existing > spacing * wanted
    tree = cKDTree(nominal)
    for i, j in sorted(tree.query_pairs(spacing * wanted.max())):
        too_close = np.linalg.norm(nominal[i] - nominal[j]) < spacing * min(wanted[i], wanted[j])
        if keep[i] and keep[j] and too_close:
            keep[j] = False
    return candidates[keep]


def _refine(fixed: np.ndarray, constraints: _Constraints, coarse: float, face: float, fine: float,
            max_rounds: int = 14) -> np.ndarray:
    """Free parameter directions: Delaunay refinement until edges match the wanted length."""
    free = _icosphere(2)
    free = free[~constraints.excluded(free)]
    for _ in range(max_rounds):
        points = np.vstack([fixed, free])
        faces = _outward_hull(points)
        edges = _unique_edges(faces)
        nominal = _surface(_surface_points(points), {})
        length = np.linalg.norm(nominal[edges[:, 0]] - nominal[edges[:, 1]], axis=1)
        wanted = _target_edge(0.5 * (nominal[edges[:, 0]] + nominal[edges[:, 1]]), coarse, face, fine)
        split = edges[length > 1.3 * wanted]
        candidates = _normalize(points[split[:, 0]] + points[split[:, 1]])
        candidates = _half(candidates[~constraints.excluded(candidates)])
        if len(candidates):
            candidates = _thin(candidates, points, (coarse, face, fine))
        if len(candidates) == 0:
            break
        free = np.vstack([free, _with_mirror(candidates)])
    return free


@dataclass(frozen=True)
class _HeadMesh:
    """The triangulated head surface before the slit is cut."""

    directions: np.ndarray  # (H, 3) parameter directions of head vertices
    faces: np.ndarray  # (F, 3)
    eye_contours: tuple[np.ndarray, np.ndarray]  # vertex indices, ordered loops (left, right)
    slit: np.ndarray  # (2m+1,) vertex indices, right corner → left corner


def _head_mesh(coarse: float, face: float, fine: float) -> _HeadMesh:
    constraints = _constraints(fine, coarse)
    left, right = constraints.eye_contours
    fixed = np.vstack([left, right, constraints.slit, constraints.neck_ring])
    free = _refine(fixed, constraints, coarse, face, fine)
    pole = np.array([[0.0, -1.0, 0.0]])
    points = np.vstack([fixed, free, pole])
    faces = _outward_hull(points)
    n_left, n_slit = len(left), len(constraints.slit)
    contours = (np.arange(n_left), n_left + np.arange(n_left))
    slit = 2 * n_left + np.arange(n_slit)
    keep = ~(faces == len(points) - 1).any(1)
    for contour in contours:
        on = np.isin(faces, contour).all(1)
        plane = _gnomonic(points[faces].mean(1))
        keep &= ~(on & _inside_polygon(plane, _gnomonic(points[contour])))
    faces = faces[keep]
    edge_set = {tuple(e) for e in _unique_edges(faces)}
    for loop, closed in [(contours[0], True), (contours[1], True), (slit, False)]:
        pairs = zip(loop, np.roll(loop, -1)) if closed else zip(loop[:-1], loop[1:])
        missing = [p for p in pairs if tuple(sorted(p)) not in edge_set]
        if missing:
            raise RuntimeError(f"stand-in mesh: constraint edges {missing[:3]} are missing from the triangulation")
    return _HeadMesh(points[:-1], faces, contours, slit)


# ---------------------------------------------------------------------------------------
# Full topology: slit cut, mouth cavity, eyeballs
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    """Seed-independent topology and per-vertex bookkeeping of the stand-in head.

    Vertex order: head surface (H), lower-lip copies of the slit's inner vertices (m'),
    mouth cavity rings and back wall, left eyeball, right eyeball.
    """

    surface: _SurfacePoints  # head surface + lower-lip copies (directions repeated)
    faces: np.ndarray  # (F, 3)
    slit_upper: np.ndarray  # slit vertices on the upper lip, right corner → left corner
    slit_lower: np.ndarray  # same places on the lower lip (corners shared)
    cavity_loop: np.ndarray  # (L,) surface vertices around the slit (upper R→L, lower L→R)
    cavity_side: np.ndarray  # (L,) +1 upper lip, −1 lower lip, 0 corner
    n_cavity: int  # cavity vertices (rings × L + back wall)
    eyeball_unit: np.ndarray  # (E, 3) unit vectors of one eyeball, front pole (+z) first
    part: np.ndarray  # (V,) 0 head, 1 cavity, 2 left eyeball, 3 right eyeball
    face_chart: np.ndarray  # (F,) 0 head front, 1 head back, 2 left eye, 3 right eye, 4 cavity
    eye_contours: tuple[np.ndarray, np.ndarray]  # lid-margin vertex loops (left, right eye)

    @property
    def n_surface(self) -> int:
        return len(self.surface.directions)

    @property
    def n_vertices(self) -> int:
        return len(self.part)


def _cut_slit(mesh: _HeadMesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gives the lower lip its own copies of the slit's inner vertices.

    Returns (faces, lower copies' original indices, slit_lower indices in the new numbering).
    """
    inner = mesh.slit[1:-1]
    copies = len(mesh.directions) + np.arange(len(inner))
    plane_slit = _gnomonic(mesh.directions[mesh.slit])
    centroids = _gnomonic(mesh.directions[mesh.faces].mean(1))
    below = centroids[:, 1] < np.interp(centroids[:, 0], plane_slit[:, 0], plane_slit[:, 1])
    faces = mesh.faces.copy()
    lookup = dict(zip(inner.tolist(), copies.tolist()))
    for f in np.nonzero(below & np.isin(faces, inner).any(1))[0]:
        faces[f] = [lookup.get(v, v) for v in faces[f].tolist()]
    slit_lower = np.concatenate([mesh.slit[:1], copies, mesh.slit[-1:]])
    return faces, inner, slit_lower


def _cavity_faces(loop: np.ndarray, first: int, rings: int, flip: bool) -> np.ndarray:
    """Triangles of the mouth cavity: loop → ring 1 → … → ring ``rings`` → back-wall vertex."""
    n = len(loop)
    layers = [loop] + [first + k * n + np.arange(n) for k in range(rings)]
    faces = []
    for outer, inner in zip(layers[:-1], layers[1:]):
        nxt_o, nxt_i = np.roll(outer, -1), np.roll(inner, -1)
        faces += [np.stack([outer, nxt_o, nxt_i], 1), np.stack([outer, nxt_i, inner], 1)]
    back = first + rings * n
    faces.append(np.stack([layers[-1], np.roll(layers[-1], -1), np.full(n, back)], 1))
    faces = np.concatenate(faces)
    return faces[:, [0, 2, 1]] if flip else faces


def _eyeball_sphere(rings: int, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit UV sphere with poles on ±z (front pole first): (E, 3) vertices, (F, 3) faces outward."""
    polar = np.pi * np.arange(1, rings + 1) / (rings + 1)
    azimuth = 2 * np.pi * np.arange(segments) / segments
    ring_pts = np.stack([np.sin(polar)[:, None] * np.cos(azimuth), np.sin(polar)[:, None] * np.sin(azimuth),
                         np.cos(polar)[:, None] * np.ones(segments)], -1).reshape(-1, 3)
    verts = np.vstack([[0.0, 0.0, 1.0], ring_pts, [0.0, 0.0, -1.0]])
    idx = 1 + np.arange(rings * segments).reshape(rings, segments)
    nxt = np.roll(idx, -1, axis=1)
    faces = [np.stack([np.zeros(segments, int), idx[0], nxt[0]], 1)]
    for r in range(rings - 1):
        faces += [np.stack([idx[r], idx[r + 1], nxt[r + 1]], 1), np.stack([idx[r], nxt[r + 1], nxt[r]], 1)]
    faces.append(np.stack([idx[-1], np.full(segments, len(verts) - 1), nxt[-1]], 1))
    faces = np.concatenate(faces)
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    if (np.cross(b - a, c - a) * (a + b + c)).sum(1).mean() < 0:
        faces = faces[:, [0, 2, 1]]
    return verts, faces


@functools.lru_cache(maxsize=4)
def _layout(coarse: float, face: float, fine: float, eye_rings: int, eye_segments: int) -> _Layout:
    mesh = _head_mesh(coarse, face, fine)
    head_faces, copied, slit_lower = _cut_slit(mesh)
    n_head = len(mesh.directions)
    n_surface = n_head + len(copied)
    directions = np.vstack([mesh.directions, mesh.directions[copied]])
    margin = np.zeros(n_surface, bool)
    margin[np.concatenate(mesh.eye_contours)] = True
    lip_side = np.zeros(n_surface)
    lip_side[mesh.slit[1:-1]], lip_side[slit_lower[1:-1]] = 1.0, -1.0
    surface = _surface_points(directions, margin, lip_side)

    loop = np.concatenate([mesh.slit, slit_lower[1:-1][::-1]])
    side = np.concatenate([[0], np.ones(len(mesh.slit) - 2), [0], -np.ones(len(slit_lower) - 2)])
    # the cavity must traverse the slit edges opposite to the lips' faces
    edge = (loop[0], loop[1])
    owner = head_faces[np.isin(head_faces, edge).sum(1) == 2][0].tolist()
    lip_forward = owner[(owner.index(edge[0]) + 1) % 3] == edge[1]
    rings = len(_CAVITY_RINGS)
    cavity = _cavity_faces(loop, n_surface, rings, flip=lip_forward)
    n_cavity = rings * len(loop) + 1

    unit, ball_faces = _eyeball_sphere(eye_rings, eye_segments)
    first_eye = n_surface + n_cavity
    faces = np.vstack([head_faces, cavity, ball_faces + first_eye, ball_faces + first_eye + len(unit)])
    part = np.concatenate([np.zeros(n_surface, int), np.ones(n_cavity, int),
                           np.full(len(unit), 2), np.full(len(unit), 3)])
    front = (_normalize(mesh.directions[mesh.faces].mean(1)) @ _FRONT_CHART_AXIS) >= 0.0
    chart = np.concatenate([np.where(front, 0, 1), np.full(len(cavity), 4),
                            np.full(len(ball_faces), 2), np.full(len(ball_faces), 3)])
    return _Layout(surface, faces, mesh.slit, slit_lower, loop, side, n_cavity, unit, part, chart,
                   mesh.eye_contours)


# ---------------------------------------------------------------------------------------
# Geometry for given coefficients
# ---------------------------------------------------------------------------------------
def _cavity_positions(slit_positions: np.ndarray, side: np.ndarray, slit_centre: np.ndarray) -> np.ndarray:
    """Mouth cavity rings behind the slit loop (L, 3) and one back-wall vertex."""
    x_rel = (slit_positions[:, 0] - slit_centre[0]) / _MOUTH_CORNER_X
    opening = np.sqrt(np.clip(1.0 - x_rel ** 2, 0.0, None))
    rings = []
    for width, half_height, depth in _CAVITY_RINGS:
        offset = np.stack([(slit_positions[:, 0] - slit_centre[0]) * (width - 1.0),
                           side * half_height * opening, np.full(len(side), -depth)], 1)
        rings.append(slit_positions + offset)
    return np.vstack(rings + [slit_centre + [0.0, 0.0, -_CAVITY_BACK]])


def _surface_layer(layout: _Layout, coeffs: dict[str, float]) -> np.ndarray:
    """(V, 3) positions from the surface alone (eyeballs at their nominal places)."""
    surface = _surface(layout.surface, coeffs)
    loop = surface[layout.cavity_loop]
    middle = len(layout.slit_upper) // 2
    centre = 0.5 * (surface[layout.slit_upper[middle]] + surface[layout.slit_lower[middle]])
    cavity = _cavity_positions(loop, layout.cavity_side, centre)
    eyes = [c + _EYEBALL_RADIUS * layout.eyeball_unit for c in _eye_centres()]
    return np.vstack([surface, cavity, *eyes])


@dataclass(frozen=True)
class _Frame:
    """Per-vertex quantities the displacement fields are written in (all (V, ...))."""

    ref: np.ndarray  # reference points (nominal skull for the surface, nominal positions elsewhere)
    positions: np.ndarray  # positions of the base head (rotation centres act on these)
    part: np.ndarray
    skin: np.ndarray  # (V,) 1 on the head surface, fading to 0 at the back of the mouth cavity, 0 on eyeballs
    eye_weight: np.ndarray  # (V, 2) eye region weights (left, right), 1 on eyeballs and lids
    upper_lid: np.ndarray  # (V, 2)
    lower_lid: np.ndarray  # (V, 2)
    jaw: np.ndarray  # (V,) jaw skinning weight


def _reference_points(layout: _Layout) -> np.ndarray:
    """(V, 3) reference points: skull points for the surface, nominal positions elsewhere."""
    nominal = _surface_layer(layout, {})
    ref = nominal.copy()
    ref[: layout.n_surface] = layout.surface.ref
    return ref


# ---------------------------------------------------------------------------------------
# Region weights used by the displacement fields and the skinning
# ---------------------------------------------------------------------------------------
def _jaw_weight(ref: np.ndarray, lower_side: np.ndarray, slit: np.ndarray) -> np.ndarray:
    """(V,) jaw influence: lower lip, chin and jaw, blending through the cheeks and throat.

    Below a line that follows the slit (reference points ``slit`` (n, 3), right → left) and
    rises from the mouth corners toward the ears; the transition is sharp along the slit
    (``lower_side`` picks the lip of slit vertices) and widens laterally.
    """
    x, y, z = ref[:, 0], ref[:, 1], ref[:, 2]
    corner = np.abs(slit[[0, -1], 0]).mean()
    beyond = np.clip(np.abs(x) - corner, 0.0, None)
    line = np.interp(np.clip(x, -corner, corner), slit[:, 0], slit[:, 1]) + 0.55 * beyond
    width = 0.0012 + 2.0 * beyond
    y_eff = y + (0.5 - lower_side) * width  # slit vertices: evaluated just inside their lip
    below = _smoothstep((line - y_eff) / width + 0.5)
    forward = _smoothstep((z + 0.015) / 0.035)
    above_throat = _smoothstep((y + 0.135) / 0.045)
    return below * forward * above_throat


def _eye_local(ref: np.ndarray, eye: int) -> tuple[np.ndarray, np.ndarray]:
    """Eye-opening coordinates: a ∈ [−1, 1] inner → outer corner, b = height above the eye (m)."""
    centre = _eye_centres()[eye]
    sign = 1.0 if eye == 0 else -1.0
    a = sign * (ref[:, 0] - centre[0]) / _EYE_HALF_WIDTH
    b = ref[:, 1] - centre[1] - _EYE_TILT * np.clip(a, -1.0, 1.0)
    return a, b


def _lid_weights(ref: np.ndarray, part: np.ndarray, eye: int) -> tuple[np.ndarray, np.ndarray]:
    """Upper- and lower-lid weights of one eye: 1 at the lid margin, fading away from it."""
    a, b = _eye_local(ref, eye)
    centre = _eye_centres()[eye]
    along = np.clip(1.0 - a * a, 0.0, None)
    upper_edge = _EYE_UPPER * along ** 0.75
    lower_edge = -_EYE_LOWER * along ** 0.9
    close = np.linalg.norm(ref - centre, axis=1) < 0.03
    skin = (part == 0) & close
    is_upper = b > 0.5 * (upper_edge + lower_edge)
    along = along ** 1.5
    upper = along * np.exp(-(np.clip(b - upper_edge, 0.0, None) / 0.007) ** 2) * is_upper * skin
    lower = along * np.exp(-(np.clip(lower_edge - b, 0.0, None) / 0.005) ** 2) * ~is_upper * skin
    return upper, lower


def _eye_weight(ref: np.ndarray, part: np.ndarray, eye: int) -> np.ndarray:
    """Eye region: 1 on the eyeball and within the lids, fading to 0 by 3.5 cm from the centre."""
    distance = np.linalg.norm(ref - _eye_centres()[eye], axis=1)
    weight = 1.0 - _smoothstep((distance - 0.017) / 0.018)
    return np.where(part == 2 + eye, 1.0, np.where(part >= 2, 0.0, weight))


def _frame(layout: _Layout, positions: np.ndarray) -> _Frame:
    ref = _reference_points(layout)
    lower_side = np.zeros(layout.n_vertices)
    lower_side[layout.slit_lower[1:-1]] = 1.0
    lower_side[layout.slit_lower[[0, -1]]] = 0.5
    jaw = _jaw_weight(ref, lower_side, ref[layout.slit_upper])
    ring_side = np.concatenate([np.tile(layout.cavity_side, len(_CAVITY_RINGS)), [0.0]])
    jaw[layout.part == 1] = 0.5 - 0.5 * ring_side  # upper half with the head, lower half with the jaw
    jaw[layout.part >= 2] = 0.0
    lids = [_lid_weights(ref, layout.part, eye) for eye in (0, 1)]
    rings = len(_CAVITY_RINGS)
    depth = np.concatenate([np.repeat(np.arange(1, rings + 1), len(layout.cavity_loop)), [rings + 1]])
    skin = (layout.part == 0).astype(float)
    skin[layout.part == 1] = 1.0 - depth / (rings + 1)
    return _Frame(
        ref=ref, positions=positions, part=layout.part, skin=skin,
        eye_weight=np.stack([_eye_weight(ref, layout.part, eye) for eye in (0, 1)], 1),
        upper_lid=np.stack([lid[0] for lid in lids], 1), lower_lid=np.stack([lid[1] for lid in lids], 1),
        jaw=jaw,
    )


# ---------------------------------------------------------------------------------------
# Displacement fields: (V, 3) metres per unit coefficient
# ---------------------------------------------------------------------------------------
def _mouth_weight(frame: _Frame, spread: float = 0.016) -> np.ndarray:
    x, y = frame.ref[:, 0], frame.ref[:, 1]
    return _gauss(x, 1.4 * spread) * _gauss(y - _MOUTH_Y, spread) * _front(frame.ref) * frame.skin


def _corner_weight(frame: _Frame) -> np.ndarray:
    """Around both mouth corners (signed: + at the left corner, − at the right)."""
    x, y = frame.ref[:, 0], frame.ref[:, 1]
    spread = _gauss(y - _MOUTH_Y, 0.011) * _front(frame.ref) * frame.skin
    return (_gauss(x - _MOUTH_CORNER_X, 0.011) - _gauss(x + _MOUTH_CORNER_X, 0.011)) * spread


def _vector(weight: np.ndarray, direction) -> np.ndarray:
    return weight[:, None] * np.asarray(direction, float)


def _rotation_field(weight: np.ndarray, positions: np.ndarray, axis, centre) -> np.ndarray:
    """Tangent of a rotation about ``axis`` through ``centre`` (per radian), weighted."""
    return weight[:, None] * np.cross(np.asarray(axis, float), positions - np.asarray(centre))


def _field_face_length(f: _Frame) -> np.ndarray:
    y = f.ref[:, 1]
    lower_face = _smoothstep((_EYE_CENTRE[1] - y) / 0.09) * _smoothstep((y + 0.16) / 0.05)
    return _vector(lower_face * _smoothstep((f.ref[:, 2] + 0.02) / 0.04) * f.skin, (0, -1, 0))


def _chin_weight(f: _Frame) -> np.ndarray:
    x, y = f.ref[:, 0], f.ref[:, 1]
    return _gauss(x, 0.022) * _gauss(y + 0.085, 0.016) * _smoothstep((f.ref[:, 2] - 0.02) / 0.03) * f.skin


def _field_chin_length(f: _Frame) -> np.ndarray:
    return _vector(_chin_weight(f), (0, -1, 0))


def _field_chin_width(f: _Frame) -> np.ndarray:
    return _vector(_chin_weight(f) * np.tanh(f.ref[:, 0] / 0.015), (1, 0, 0))


def _nose_weight(f: _Frame) -> np.ndarray:
    """1 on the nose (tip and alae), fading over the bridge."""
    x, y = f.ref[:, 0], f.ref[:, 1]
    lower = _gauss(x, 0.014) * _gauss(y + 0.02, 0.012)
    return lower * _front(f.ref) * f.skin


def _field_nose_length(f: _Frame) -> np.ndarray:
    return _vector(_nose_weight(f), (0, -0.35, 1))


def _field_nose_width(f: _Frame) -> np.ndarray:
    return _vector(_nose_weight(f) * np.tanh(f.ref[:, 0] / 0.01), (1, 0, 0))


def _field_eye_spacing(f: _Frame) -> np.ndarray:
    return _vector(f.eye_weight[:, 0] - f.eye_weight[:, 1], (1, 0, 0))


def _field_eye_size(f: _Frame) -> np.ndarray:
    centres = _eye_centres()
    return sum(f.eye_weight[:, [e]] * (f.positions - centres[e]) for e in (0, 1))


def _field_eye_height(f: _Frame) -> np.ndarray:
    return _vector(f.eye_weight.sum(1), (0, 1, 0))


def _field_mouth_width(f: _Frame) -> np.ndarray:
    return _vector(_mouth_weight(f, 0.014) * f.ref[:, 0] / _MOUTH_CORNER_X, (1, 0, 0))


def _ear_weight(f: _Frame, reach: float) -> np.ndarray:
    """1 on the ear, fading over the skin around it out to ``reach`` × the ear's size."""
    a, b, side = _ear_frame(f.ref)
    return _smoothstep((reach - np.sqrt(a * a + b * b)) / (reach - 1.0)) * side * (f.part == 0)


def _field_ear_size(f: _Frame) -> np.ndarray:
    sign = np.sign(f.ref[:, 0])
    centre = np.stack([sign * 0.075, np.full_like(sign, _EAR_CENTRE_ZY[1]),
                       np.full_like(sign, _EAR_CENTRE_ZY[0])], 1)
    return _ear_weight(f, 1.6)[:, None] * (f.positions - centre) * [0.3, 1.0, 1.0]


def _field_ear_angle(f: _Frame) -> np.ndarray:
    """The ear flap turns outward about its front attachment: displacement ∝ its own height."""
    flap = _ear_height(f.ref) / 0.015
    return _vector(flap * _ear_weight(f, 1.3) * np.sign(f.ref[:, 0]), (1, 0, 0))


def _field_jaw_open(f: _Frame) -> np.ndarray:
    return _rotation_field(f.jaw, f.positions, (1, 0, 0), _TMJ)


def _field_smile(f: _Frame) -> np.ndarray:
    corner = _corner_weight(f)
    cheek = sum(_gauss(f.ref[:, 0] - s * 0.04, 0.012) * _gauss(f.ref[:, 1] + 0.02, 0.012) for s in (1, -1))
    out = _vector(np.abs(corner), (0, 0.8, -0.45)) + _vector(corner, (0.4, 0, 0))
    return out + _vector(cheek * _front(f.ref) * f.skin, (0, 0.35, 0.3))


def _field_frown(f: _Frame) -> np.ndarray:
    corner = _corner_weight(f)
    chin = _chin_weight(f) * f.jaw
    return _vector(np.abs(corner), (0, -1, 0.15)) + _vector(chin, (0, 0.5, 0.4))


def _field_brow_raise(f: _Frame) -> np.ndarray:
    x, y = f.ref[:, 0], f.ref[:, 1]
    band = _gauss(np.clip(y - 0.045, None, 0.0), 0.012) * _gauss(np.clip(y - 0.045, 0.0, None), 0.03)
    lids = f.upper_lid.sum(1) * 0.15
    return _vector((band * _gauss(x, 0.045) + lids) * _front(f.ref) * f.skin, (0, 1, 0))


def _field_brow_lower(f: _Frame) -> np.ndarray:
    x, y = f.ref[:, 0], f.ref[:, 1]
    inner = [_gauss(x - s * 0.018, 0.013) * _gauss(y - 0.037, 0.01) for s in (1, -1)]
    w = _front(f.ref) * f.skin
    return _vector(inner[0] * w, (-0.35, -1, 0.15)) + _vector(inner[1] * w, (0.35, -1, 0.15))


def _blink(f: _Frame, eye: int) -> np.ndarray:
    centre = _eye_centres()[eye]
    upper = _rotation_field(f.upper_lid[:, eye], f.positions, (1, 0, 0), centre)
    lower = _rotation_field(f.lower_lid[:, eye], f.positions, (-1, 0, 0), centre)
    return upper + 0.25 * lower


def _field_blink_left(f: _Frame) -> np.ndarray:
    return _blink(f, 0)


def _field_blink_right(f: _Frame) -> np.ndarray:
    return _blink(f, 1)


def _field_lip_pucker(f: _Frame) -> np.ndarray:
    w = _mouth_weight(f, 0.012)
    return _vector(w, (0, 0, 1)) + _vector(w * -f.ref[:, 0] / 0.025, (1, 0, 0))


def _field_lip_stretch(f: _Frame) -> np.ndarray:
    w = _mouth_weight(f, 0.014)
    x = f.ref[:, 0] / _MOUTH_CORNER_X
    return _vector(w * x, (1, 0, 0)) + _vector(w * np.abs(x), (0, 0, -0.25))


def _field_cheek_puff(f: _Frame) -> np.ndarray:
    x, y = f.ref[:, 0], f.ref[:, 1]
    out = []
    for s in (1, -1):
        w = _gauss(x - s * 0.042, 0.014) * _gauss(y + 0.035, 0.014) * _front(f.ref) * f.skin
        out.append(_vector(w, (s * 0.6, 0, 0.8)))
    return out[0] + out[1]


def _field_jaw_sideways(f: _Frame) -> np.ndarray:
    return _vector(f.jaw, (1, 0, 0))


def _field_upper_lip_raise(f: _Frame) -> np.ndarray:
    x, y = f.ref[:, 0], f.ref[:, 1]
    above = (1.0 - f.jaw) * _gauss(x, 0.018) * _gauss(y - _MOUTH_Y - 0.006, 0.008)
    return _vector(above * _front(f.ref) * f.skin, (0, 1, 0.2))


# name → (field, physical amount of one unit)
_FIELDS = {
    "face_length": (_field_face_length, 0.004), "chin_length": (_field_chin_length, 0.003),
    "chin_width": (_field_chin_width, 0.0025), "nose_length": (_field_nose_length, 0.003),
    "nose_width": (_field_nose_width, 0.002), "eye_spacing": (_field_eye_spacing, 0.0025),
    "eye_size": (_field_eye_size, 0.06), "eye_height": (_field_eye_height, 0.0025),
    "mouth_width": (_field_mouth_width, 0.0025), "ear_size": (_field_ear_size, 0.08),
    "ear_angle": (_field_ear_angle, 0.005),
    "jaw_open": (_field_jaw_open, 0.1), "smile": (_field_smile, 0.004), "frown": (_field_frown, 0.003),
    "brow_raise": (_field_brow_raise, 0.004), "brow_lower": (_field_brow_lower, 0.003),
    "blink_left": (_field_blink_left, 0.3), "blink_right": (_field_blink_right, 0.3),
    "lip_pucker": (_field_lip_pucker, 0.005), "lip_stretch": (_field_lip_stretch, 0.004),
    "cheek_puff": (_field_cheek_puff, 0.005), "jaw_sideways": (_field_jaw_sideways, 0.003),
    "upper_lip_raise": (_field_upper_lip_raise, 0.002),
}


# ---------------------------------------------------------------------------------------
# Components, pose correctives
# ---------------------------------------------------------------------------------------
def _components(layout: _Layout, frame: _Frame, names: tuple[str, ...], coeffs: dict[str, float],
                step: float = 0.01) -> np.ndarray:
    """(V, 3, K) displacement per unit coefficient at ``coeffs`` (central differences or fields)."""
    out = []
    for name in names:
        if name in _RADIAL_SCALES:
            plus = _surface_layer(layout, {**coeffs, name: coeffs.get(name, 0.0) + step})
            minus = _surface_layer(layout, {**coeffs, name: coeffs.get(name, 0.0) - step})
            out.append((plus - minus) / (2.0 * step))
        else:
            field, amount = _FIELDS[name]
            out.append(amount * field(frame))
    return np.stack(out, axis=2)


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    corners = vertices[faces]
    face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-18)


def _posedirs(frame: _Frame, normals: np.ndarray) -> np.ndarray:
    """(V, 3, 36) pose correctives: skin bulges driven by neck pitch/yaw and jaw opening.

    Column ``9·(joint − 1) + 3·row + col`` multiplies entry (row, col) of ``R − I`` of joints
    neck, jaw, left eye, right eye (smplx layout); only three columns are non-zero.
    """
    x, y, z = frame.ref.T
    skin = (frame.part < 2).astype(float)
    throat = _gauss(x, 0.025) * _gauss(y + 0.105, 0.02) * _gauss(z - 0.04, 0.025) * skin
    neck_sides = _gauss(np.abs(x) - 0.05, 0.02) * _gauss(y + 0.13, 0.03) * _gauss(z - 0.01, 0.03) * skin
    jaw_line = (_gauss(x, 0.02) * _gauss(y + 0.095, 0.015) * _gauss(z - 0.05, 0.02)
                + _gauss(np.abs(x) - 0.05, 0.015) * _gauss(y + 0.04, 0.015) * _gauss(z - 0.06, 0.02)) * skin
    posedirs = np.zeros(normals.shape + (36,))
    posedirs[:, :, 7] = 0.012 * throat[:, None] * normals  # neck pitch (chin down): double chin
    posedirs[:, :, 2] = -0.006 * (np.sign(x) * neck_sides)[:, None] * normals  # neck yaw: neck muscle
    posedirs[:, :, 9 + 7] = 0.008 * jaw_line[:, None] * normals  # jaw opening: skin under the jaw
    return posedirs


# ---------------------------------------------------------------------------------------
# Skinning weights and joint regressor
# ---------------------------------------------------------------------------------------
def _skinning_weights(frame: _Frame) -> np.ndarray:
    """(V, 5) weights for global, neck, jaw, left eye, right eye; rows sum to 1."""
    weights = np.zeros((len(frame.part), 5))
    skin = frame.part < 2
    root = _smoothstep((-0.13 - frame.ref[:, 1]) / 0.06) * skin
    jaw = frame.jaw * (1.0 - root) * skin
    weights[:, 0], weights[:, 2] = root, jaw
    weights[:, 1] = np.where(skin, 1.0 - root - jaw, 0.0)
    weights[frame.part == 2, 3] = 1.0
    weights[frame.part == 3, 4] = 1.0
    return weights


def _regress(vertices: np.ndarray, candidates: np.ndarray, target: np.ndarray,
             stiffness: float = 1e3) -> np.ndarray:
    """(V,) non-negative weights on ``candidates`` summing to 1 whose weighted mean is ``target``.

    Least squares with the mean and the sum as heavily weighted rows and a pull toward
    uniform weights (so the regressor is spread, like FLAME's).
    """
    n = len(candidates)
    a = np.vstack([stiffness * np.vstack([vertices[candidates].T, np.ones((1, n))]), np.eye(n) / np.sqrt(n)])
    b = np.concatenate([stiffness * np.append(target, 1.0), np.full(n, 1.0 / n) / np.sqrt(n)])
    solution, _ = nnls(a, b, maxiter=50 * n)
    weights = np.zeros(len(vertices))
    weights[candidates] = solution / solution.sum()
    return weights


def _joint_regressor(layout: _Layout, nominal: np.ndarray) -> np.ndarray:
    """(5, V) dense regressor placing global, neck, jaw, left eye, right eye joints anatomically."""
    skin = np.nonzero(layout.part == 0)[0]
    ref = _reference_points(layout)

    def slice_near(target, half_height, max_z):
        return skin[(np.abs(ref[skin, 1] - target[1]) < half_height) & (ref[skin, 2] < max_z)]

    root_target = np.array([0.0, -0.04, -0.01])
    neck_target = np.array([0.0, -0.07, -0.015])
    tmj_sides = [np.array([s * 0.07, _TMJ[1], _TMJ[2]]) for s in (1, -1)]
    jaw_candidates = skin[np.min([np.linalg.norm(ref[skin] - t, axis=1) for t in tmj_sides], axis=0) < 0.015]
    rows = [
        _regress(nominal, slice_near(root_target, 0.02, 0.03), root_target),
        _regress(nominal, slice_near(neck_target, 0.015, 0.02), neck_target),
        _regress(nominal, jaw_candidates, _TMJ),
    ]
    for eye in (2, 3):
        row = (layout.part == eye).astype(float)
        rows.append(row / row.sum())
    return np.stack(rows)


# ---------------------------------------------------------------------------------------
# Regions
# ---------------------------------------------------------------------------------------
def _by_azimuth(ref: np.ndarray, azimuth_deg: tuple[float, ...], heights: tuple[float, ...]) -> np.ndarray:
    """Height curve around the head, interpolated over the azimuth from the front (0°) to the back."""
    azimuth = np.degrees(np.arctan2(np.abs(ref[:, 0]), ref[:, 2]))
    return np.interp(azimuth, azimuth_deg, heights)


def _vertex_regions(layout: _Layout, frame: _Frame) -> np.ndarray:
    """(V,) region label per vertex (indices into REGION_NAMES)."""
    ref, part = frame.ref, frame.part
    x, y, z = ref.T
    hairline = _by_azimuth(ref, (0, 30, 50, 70, 80, 95, 110, 130, 150, 180),
                           (0.085, 0.08, 0.068, 0.04, 0.03, 0.045, 0.03, -0.01, -0.045, -0.055))
    jawline = _by_azimuth(ref, (0, 30, 60, 90, 120, 180), (-0.093, -0.09, -0.075, -0.065, -0.06, -0.06))
    region = np.full(len(part), _REGION["face_skin"])
    region[y > hairline] = _REGION["scalp"]
    region[y < jawline] = _REGION["neck"]
    front = z > 0.04
    region[front & (y > 0.046) & (y <= hairline) & (np.abs(x) < 0.055)] = _REGION["forehead"]
    for eye, side in ((0, "left"), (1, "right")):
        centre = _eye_centres()[eye]
        brow = ((x - centre[0]) / 0.026) ** 2 + ((y - 0.039) / 0.0085) ** 2 < 1.0
        lid = ((x - centre[0]) / 0.019) ** 2 + ((y - centre[1]) / 0.0115) ** 2 < 1.0
        region[front & brow] = _REGION[f"{side}_brow_area"]
        region[front & lid] = _REGION[f"{side}_eyelid"]
    region[(_nose_height(ref, {}) > 0.0015) & (np.abs(x) < 0.025) & (y < 0.03)] = _REGION["nose"]
    upper, lower = _lip_heights(ref, {})
    in_mouth = np.abs(x) <= _MOUTH_CORNER_X
    region[in_mouth & (upper > 0.0012) & (y >= _slit_y(x))] = _REGION["upper_lip"]
    region[in_mouth & (lower > 0.0012) & (y < _slit_y(x))] = _REGION["lower_lip"]
    region[layout.slit_upper] = _REGION["upper_lip"]
    region[layout.slit_lower[1:-1]] = _REGION["lower_lip"]
    ears = _ear_mask(ref) > 0.5
    region[ears & (x > 0)] = _REGION["left_ear"]
    region[ears & (x < 0)] = _REGION["right_ear"]
    region[part == 1] = _REGION["mouth_interior"]
    region[part == 2] = _REGION["left_eyeball"]
    region[part == 3] = _REGION["right_eyeball"]
    return region.astype(np.int64)


# ---------------------------------------------------------------------------------------
# Landmark embedding
# ---------------------------------------------------------------------------------------
def _landmark_targets() -> np.ndarray:
    """(68, 3) parameter directions of the iBUG-68 landmarks, in order.

    Face points are designed as (x, y) on the reference head, the eye-opening points on the
    lid spheres (they are embedded on the lid margin, see :func:`_on_contour`) and the jaw
    contour in 3-D; inner-lip points on the slit are nudged into their lip (``_LIP_NUDGES``).
    """
    def mirror_of(p):
        return _mirror(np.asarray(p, float))

    jaw_left = [(0.0, -0.091, 0.092), (0.013, -0.089, 0.088), (0.026, -0.083, 0.078), (0.038, -0.074, 0.065),
                (0.048, -0.063, 0.05), (0.056, -0.05, 0.037), (0.062, -0.034, 0.03), (0.066, -0.016, 0.026),
                (0.069, 0.003, 0.024)]
    jaw = [mirror_of(p) for p in jaw_left[:0:-1]] + [np.array(p) for p in jaw_left]
    brow_left = [np.array([bx, by, 0.095]) for bx, by in
                 [(0.012, 0.036), (0.022, 0.04), (0.033, 0.042), (0.044, 0.041), (0.054, 0.036)]]
    brows = [mirror_of(p) for p in brow_left[::-1]] + brow_left
    nose = [np.array(p) for p in [(0.0, 0.019, 0.095), (0.0, 0.007, 0.1), (0.0, -0.005, 0.11),
                                  (0.0, -0.0165, 0.125)]]
    base_left = [(0.0, -0.029, 0.1), (0.006, -0.0285, 0.1), (0.012, -0.026, 0.1)]
    nose_base = [mirror_of(p) for p in base_left[:0:-1]] + [np.array(p) for p in base_left]

    def eye_point(a, upper):
        along = max(1.0 - a * a, 0.0)
        height = _EYE_UPPER * along ** 0.75 if upper else -_EYE_LOWER * along ** 0.9
        x, y = _EYE_HALF_WIDTH * a, height + _EYE_TILT * a
        return _EYE_CENTRE + [x, y, np.sqrt((_EYEBALL_RADIUS + _LID_GAP) ** 2 - x * x - y * y)]

    left_eye = [eye_point(-1, True), eye_point(-1 / 3, True), eye_point(1 / 3, True), eye_point(1, True),
                eye_point(1 / 3, False), eye_point(-1 / 3, False)]  # 42 … 47
    right_eye = [mirror_of(left_eye[i]) for i in (3, 2, 1, 0, 5, 4)]  # 36 … 41

    def lip_point(px, border):
        across = max(1.0 - (px / _MOUTH_CORNER_X) ** 2, 0.0)
        upper = 0.002 + 0.0062 * across ** 0.6
        lower = 0.002 + 0.0075 * across ** 0.6
        offset = {"upper": 0.8 * upper, "lower": -0.8 * lower, "slit": 0.0}[border]
        return np.array([px, float(_slit_y(np.array(px))) + offset, 0.1])

    c = _MOUTH_CORNER_X
    outer = [lip_point(px, where) for px, where in [
        (-1.03 * c, "slit"), (-0.016, "upper"), (-0.0065, "upper"), (0.0, "upper"), (0.0065, "upper"),
        (0.016, "upper"), (1.03 * c, "slit"), (0.016, "lower"), (0.007, "lower"), (0.0, "lower"),
        (-0.007, "lower"), (-0.016, "lower")]]  # 48 … 59
    inner = [lip_point(px, "slit") for px in (-0.9 * c, -0.011, 0.0, 0.011, 0.9 * c, 0.011, 0.0, -0.011)]
    front = [_on_reference(np.array(group)) for group in (brows, nose, nose_base)]
    lips = _on_reference(np.array(outer + inner) + _LIP_NUDGES[:, None] * [0.0, 1.0, 0.0])
    directions = [_normalize(np.array(jaw) - _RAY_ORIGIN), *front,
                  _normalize(np.array(right_eye + left_eye) - _RAY_ORIGIN), lips]
    return np.vstack(directions)


_LIP_NUDGES = np.array([0.0] * 12 + [0.0, 2e-4, 2e-4, 2e-4, 0.0, -2e-4, -2e-4, -2e-4])  # 48–67, metres


def _locate(directions: np.ndarray, faces: np.ndarray, candidates: np.ndarray,
            target: np.ndarray) -> tuple[int, np.ndarray]:
    """The face (index into ``faces``) among ``candidates`` containing a direction, and its
    barycentric coordinates (clipped to ≥ 0, summing to 1)."""
    corners = directions[faces[candidates]]  # (C, 3 corners, 3 xyz)
    rhs = np.broadcast_to(target, (len(candidates), 3))[..., None]
    bary = np.linalg.solve(np.transpose(corners, (0, 2, 1)), rhs)[..., 0]
    bary = bary / bary.sum(1, keepdims=True)
    best = int(np.argmax(bary.min(1)))
    weights = np.clip(bary[best], 0.0, None)
    return int(candidates[best]), weights / weights.sum()


def _on_contour(directions: np.ndarray, faces: np.ndarray, loop: np.ndarray,
                target: np.ndarray) -> tuple[int, np.ndarray]:
    """The lid face on the margin edge closest to a direction, with barycentric coordinates
    of the nearest point of that edge (so the landmark lies exactly on the lid margin)."""
    plane, point = _gnomonic(directions[loop]), _gnomonic(target[None])[0]
    seg = np.roll(plane, -1, 0) - plane
    t = np.clip(((point - plane) * seg).sum(1) / (seg * seg).sum(1), 0.0, 1.0)
    best = int(np.argmin(np.linalg.norm(plane + t[:, None] * seg - point, axis=1)))
    a, b = loop[best], loop[(best + 1) % len(loop)]
    face = int(np.nonzero((faces == a).any(1) & (faces == b).any(1))[0][0])
    return face, (1.0 - t[best]) * (faces[face] == a) + t[best] * (faces[face] == b)


def _landmark_embedding(layout: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """(70,) face indices and (70, 3) barycentric coordinates: iBUG-68 + 2 iris centres."""
    head_faces = np.nonzero(layout.face_chart <= 1)[0]
    directions = layout.surface.directions
    centroids = _normalize(directions[layout.faces[head_faces]].mean(1))
    tree = cKDTree(centroids)
    faces_idx, bary = [], []
    for index, target in enumerate(_landmark_targets()):
        if 36 <= index < 48:  # 36–41: the subject's right eye, 42–47: the left eye
            loop = layout.eye_contours[1 if index < 42 else 0]
            face, weights = _on_contour(directions, layout.faces, loop, target)
        else:
            _, near = tree.query(target, k=16)
            face, weights = _locate(directions, layout.faces, head_faces[near], target)
        faces_idx.append(face)
        bary.append(weights)
    for eye in (3, 2):  # 68: the subject's right eye (landmarks 36–41), 69: the left eye
        pole = np.nonzero(layout.part == eye)[0][0]
        face = int(np.nonzero((layout.faces == pole).any(1))[0][0])
        faces_idx.append(face)
        bary.append((layout.faces[face] == pole).astype(float))
    return np.array(faces_idx, np.int64), np.array(bary)


# ---------------------------------------------------------------------------------------
# UV layout
# ---------------------------------------------------------------------------------------
def _azimuthal(directions: np.ndarray, axis: np.ndarray, right: np.ndarray,
               centre_gain: float = 1.0) -> np.ndarray:
    """(N, 2) azimuthal projection centred at ``axis`` onto a disk of radius 2.

    ``centre_gain`` = 1 is Lambert's equal-area projection; larger values give the centre
    of the chart more area (radius ∝ (2 sin(θ/2))^(1/centre_gain), still one-to-one).
    """
    up = np.cross(axis, right)
    planar = np.stack([directions @ right, directions @ up], 1)
    equal_area = np.sqrt(2.0 * np.clip(1.0 - directions @ axis, 0.0, None))  # 2 sin(θ/2)
    radius = 2.0 * (equal_area / 2.0) ** (1.0 / centre_gain)
    return planar * (radius / np.maximum(np.linalg.norm(planar, axis=1), 1e-12))[:, None]


def _place(uv: np.ndarray, centre, half_size: float) -> np.ndarray:
    """Scales (…, 2) chart coordinates into a square of the atlas."""
    flat = uv.reshape(-1, 2)
    lo, hi = flat.min(0), flat.max(0)
    scale = 2.0 * half_size / (hi - lo).max()
    return (uv - 0.5 * (lo + hi)) * scale + np.asarray(centre)


def _uv_layout(layout: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """``vt`` (T, 2) in [0, 1] and ``ft`` (F, 3): face and back charts of the head, one chart
    per eyeball (iris at the centre) and one for the mouth cavity, in separate boxes."""
    corner_uv = np.zeros(layout.faces.shape + (2,))
    directions = layout.surface.directions
    x_axis = np.array([1.0, 0.0, 0.0])
    charts = ((0, _FRONT_CHART_AXIS, x_axis, (0.31, 0.69), 0.3, 1.4),  # the face gets the centre
              (1, -_FRONT_CHART_AXIS, -x_axis, (0.805, 0.805), 0.18, 1.0))
    for chart, axis, right, centre, half, gain in charts:
        faces = layout.faces[layout.face_chart == chart]
        uv = _azimuthal(directions[faces.reshape(-1)], axis, right, gain).reshape(faces.shape + (2,))
        corner_uv[layout.face_chart == chart] = _place(uv, centre, half)
    first_eye = np.nonzero(layout.part >= 2)[0][0]
    for chart, centre in ((2, (0.13, 0.2)), (3, (0.39, 0.2))):
        faces = layout.faces[layout.face_chart == chart]
        local = (faces - first_eye) % len(layout.eyeball_unit)
        unit = layout.eyeball_unit[local]  # (n, 3 corners, 3)
        back = unit[..., 2] < -0.999999
        # the back pole gets one copy per face, on the rim at its face's azimuth
        rim = _normalize(np.where(back[..., None], 0.0, unit).sum(1) * [1.0, 1.0, 0.0] + [1e-12, 0.0, 0.0])
        uv = _azimuthal(unit.reshape(-1, 3), np.array([0.0, 0.0, 1.0]), x_axis).reshape(unit.shape[:2] + (2,))
        uv = np.where(back[..., None], 2.0 * rim[:, None, :2], uv)
        corner_uv[layout.face_chart == chart] = _place(uv, centre, 0.12)
    cavity = layout.face_chart == 4
    corner_uv[cavity] = _cavity_uv(layout, layout.faces[cavity])
    corner_uv = np.round(corner_uv, 12)
    vt, ft = np.unique(corner_uv.reshape(-1, 2), axis=0, return_inverse=True)
    return vt, ft.reshape(-1, 3).astype(np.int64)


def _cavity_uv(layout: _Layout, faces: np.ndarray) -> np.ndarray:
    """(n, 3, 2) cavity corners in their atlas box: u around the slit loop (seam at its first
    vertex), v by depth ring; the back-wall vertex gets one copy per face."""
    n_loop, rings = len(layout.cavity_loop), len(_CAVITY_RINGS)
    around, depth = np.full(layout.n_vertices, np.nan), np.zeros(layout.n_vertices)
    around[layout.cavity_loop] = np.arange(n_loop)
    inner = layout.n_surface + np.arange(rings * n_loop)
    around[inner] = np.tile(np.arange(n_loop), rings)
    depth[inner] = np.repeat(np.arange(1, rings + 1), n_loop)
    u, v = around[faces], depth[faces]
    back = np.isnan(u)
    wraps = np.nanmax(u, axis=1) - np.nanmin(u, axis=1) > 1
    u = np.where(wraps[:, None] & (u == 0), n_loop, u)
    u = np.where(back, np.nanmean(u, axis=1, keepdims=True), u) / n_loop
    v = np.where(back, rings + 1, v) / (rings + 1)
    signed_area = (u[:, 1] - u[:, 0]) * (v[:, 2] - v[:, 0]) - (v[:, 1] - v[:, 0]) * (u[:, 2] - u[:, 0])
    if np.median(signed_area) < 0:
        u = 1.0 - u
    return np.stack([u, v], -1) * [0.4, 0.3] + [0.565, 0.05]


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------
def build_standin_head(
    seed: int = 0,
    n_shape: int = len(IDENTITY_COMPONENTS),
    n_expr: int = len(EXPRESSION_COMPONENTS),
    variation: float = 0.3,
    coarse_edge: float = 0.013,
    face_edge: float = 0.0055,
    fine_edge: float = 0.0032,
    eyeball_rings: int = 11,
    eyeball_segments: int = 20,
) -> dict[str, np.ndarray]:
    """Generates the stand-in head as FLAME-format arrays (metres, FLAME axes).

    Args:
        seed: the base head's identity is ``variation`` × N(0, 1) identity coefficients drawn
            from this seed (seed 0 is the project's default head). The mesh is seed-independent.
        n_shape, n_expr: leading identity / expression components kept (≤ the named lists).
        variation: standard deviation of the seed's identity jitter, in component units.
        coarse_edge, face_edge, fine_edge: target edge lengths (m) on the back of the head and
            neck, on the face, and at eyes and mouth.
        eyeball_rings, eyeball_segments: resolution of each UV-sphere eyeball.

    Returns:
        ``v_template`` (V, 3), ``f`` (F, 3) int64 (outward, counter-clockwise), ``shapedirs``
        (V, 3, n_shape + n_expr), ``n_shape`` () int64, ``posedirs`` (V, 3, 36),
        ``J_regressor`` (5, V), ``weights`` (V, 5), ``kintree_table`` (2, 5) int64,
        ``lmk_faces_idx`` (70,) int64, ``lmk_bary_coords`` (70, 3), ``vt`` (T, 2), ``ft`` (F, 3),
        ``vertex_region`` (V,) int64, ``region_names`` (R,) unicode, component names, and the
        scalars ``seed``, ``n_expr``, ``generator_version`` (int64).
    """
    if not 1 <= n_shape <= len(IDENTITY_COMPONENTS) or not 1 <= n_expr <= len(EXPRESSION_COMPONENTS):
        raise ValueError(
            f"stand-in head: n_shape must be in [1, {len(IDENTITY_COMPONENTS)}] and n_expr in "
            f"[1, {len(EXPRESSION_COMPONENTS)}], got {n_shape}, {n_expr} (the head model zero-pads more)"
        )
    layout = _layout(coarse_edge, face_edge, fine_edge, eyeball_rings, eyeball_segments)
    rng = np.random.default_rng(seed)
    identity = dict(zip(IDENTITY_COMPONENTS, variation * rng.standard_normal(len(IDENTITY_COMPONENTS))))
    surface_coeffs = {k: v for k, v in identity.items() if k in _RADIAL_SCALES}
    field_names = tuple(k for k in IDENTITY_COMPONENTS if k not in _RADIAL_SCALES)
    surface_only = _surface_layer(layout, surface_coeffs)
    field_dirs = _components(layout, _frame(layout, surface_only), field_names, {})
    v_template = surface_only + field_dirs @ np.array([identity[k] for k in field_names])
    frame = _frame(layout, v_template)
    names = IDENTITY_COMPONENTS[:n_shape] + EXPRESSION_COMPONENTS[:n_expr]
    shapedirs = _components(layout, frame, names, surface_coeffs)
    vt, ft = _uv_layout(layout)
    lmk_faces_idx, lmk_bary_coords = _landmark_embedding(layout)
    return {
        "v_template": v_template,
        "f": layout.faces.astype(np.int64),
        "shapedirs": shapedirs,
        "n_shape": np.array(n_shape, np.int64),
        "n_expr": np.array(n_expr, np.int64),
        "posedirs": _posedirs(frame, _vertex_normals(v_template, layout.faces)),
        "J_regressor": _joint_regressor(layout, _surface_layer(layout, {})),
        "weights": _skinning_weights(frame),
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], np.int64),
        "lmk_faces_idx": lmk_faces_idx,
        "lmk_bary_coords": lmk_bary_coords,
        "vt": vt,
        "ft": ft,
        "vertex_region": _vertex_regions(layout, frame),
        "region_names": np.array(REGION_NAMES),
        "shape_names": np.array(IDENTITY_COMPONENTS[:n_shape]),
        "expr_names": np.array(EXPRESSION_COMPONENTS[:n_expr]),
        "seed": np.array(seed, np.int64),
        "generator_version": np.array(GENERATOR_VERSION, np.int64),
    }


def save_standin_head(path: str | Path, **build_kwargs) -> Path:
    """Builds the stand-in head and writes it as an .npz atomically (no pickled objects)."""
    arrays = build_standin_head(**build_kwargs)
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)
    return Path(path)
