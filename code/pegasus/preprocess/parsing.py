"""Face-parsing label maps (CelebAMask-HQ ids) from the face-mesh polygons and the matte.

Inside the face oval of MediaPipe's mesh the regions are polygons of the mesh: skin (the
oval), nose (convex hull of the nose outline), eyebrows, eyes (the eyelid openings), upper
and lower lip (between the outer and inner lip contours) and the mouth interior (inside
the inner contour); inside the oval above the eyebrows, colours that are not skin-like are
hair (a fringe). Outside the oval, the foreground (matte ≥ ``foreground_threshold``) is
split by the hair line: perpendicular to the chin → forehead axis, ``hair_line`` of the way
from the chin to the forehead (0.3 ≈ mouth level: collars beside the chin are not hair):

- above it: skin where the colour is skin-like (ears, bald scalp), hair otherwise;
- below it: neck where the colour is skin-like, cloth otherwise.

"Skin-like" compares with the frame's own cheeks (the oval between the hair line and the
eyebrows, features excluded): a Mahalanobis distance in YCrCb below ``skin_distance`` and a
luma at least ``skin_min_luma`` times the cheeks' mean.

Classes this cannot produce: eyeglasses (6; frames and lenses stay skin / eyes), ears (7, 8;
they become skin or hair), earrings (9), necklace (15) and hat (18; a hat becomes hair).
Beards become skin or hair. The BiSeNet backend (:mod:`pegasus.preprocess.optional`)
produces all 19 classes where its weights are supplied.

Label ids come from :mod:`pegasus.data.parts`; ``l_`` is the subject's left (MediaPipe's
``LEFT_*`` contours).
"""
from __future__ import annotations

from dataclasses import dataclass

from functools import lru_cache

import cv2
import numpy as np

from ..data.parts import label_id
from .settings import ParsingSettings

__all__ = ["MeshPolygons", "mesh_polygons", "parse_face"]

_SKIN_COLOUR_SIZE = 128  # side of the downsampled image the skin-colour test runs on
_MIN_SKIN_SAMPLES = 50  # fewer cheek/forehead pixels than this: no colour model, nothing skin-like
_VARIANCE_FLOOR = 4.0  # variance floor (8-bit units²) of the skin-colour model
_OUTSIDE_FACE_LABELS = np.array([label_id(name) for name in ("cloth", "neck", "hair", "skin")], np.uint8)
"""Label outside the face oval, indexed by 2·(above the hair line) + (skin-like colour)."""


@dataclass(frozen=True)
class MeshPolygons:
    """Ordered vertex loops of the mesh regions (indices into the 478 points).

    Attributes:
        face_oval, left_eye, right_eye: closed loops.
        nose: the nose outline's points (filled as their convex hull).
        left_brow, right_brow: the two paths (lower and upper edge) of each eyebrow.
        upper_lip, lower_lip: loops between the outer and inner lip contours.
        mouth: the inner lip contour.
        chin, forehead: single points of the vertical face axis.
    """

    face_oval: tuple[int, ...]
    left_eye: tuple[int, ...]
    right_eye: tuple[int, ...]
    nose: tuple[int, ...]
    left_brow: tuple[tuple[int, ...], tuple[int, ...]]
    right_brow: tuple[tuple[int, ...], tuple[int, ...]]
    upper_lip: tuple[int, ...]
    lower_lip: tuple[int, ...]
    mouth: tuple[int, ...]
    chin: int = 152
    forehead: int = 10


def _chains(edges) -> list[list[int]]:
    """Undirected edges forming disjoint paths or cycles → vertex chains (a cycle repeats no vertex)."""
    neighbours: dict[int, list[int]] = {}
    for a, b in edges:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    if any(len(n) > 2 for n in neighbours.values()):
        raise ValueError("edges branch; expected paths or cycles")
    seen: set[int] = set()
    chains = []
    starts = sorted(v for v, n in neighbours.items() if len(n) == 1) + sorted(neighbours)
    for start in starts:
        if start in seen:
            continue
        chain, previous, current = [start], None, start
        seen.add(start)
        while True:
            following = [v for v in neighbours[current] if v != previous and v not in seen]
            if not following:
                break
            previous, current = current, following[0]
            chain.append(current)
            seen.add(current)
        chains.append(chain)
    return chains


def _split_loop(loop: list[int], corner_a: int, corner_b: int) -> tuple[list[int], list[int]]:
    """A closed loop → its two paths from ``corner_a`` to ``corner_b`` (corners included)."""
    start = loop.index(corner_a)
    rotated = loop[start:] + loop[:start]
    cut = rotated.index(corner_b)
    return rotated[:cut + 1], [corner_a] + rotated[cut:][::-1]


def _band(outer: list[int], inner: list[int]) -> tuple[int, ...]:
    """Two paths running the same way (left corner → right corner) → the loop enclosing the band between them."""
    return tuple(outer + inner[::-1])


@lru_cache(maxsize=1)
def mesh_polygons() -> MeshPolygons:
    """The region loops, built from MediaPipe's own contour edge lists.

    Lip corners (outer 61 / 291, inner 78 / 308) and the mid points that tell the upper lip
    from the lower (0 and 13 on the upper contours) are fixed vertices of MediaPipe's
    canonical face topology.
    """
    from mediapipe.python.solutions import face_mesh_connections as contours

    def loop(edges) -> list[int]:
        (chain,) = _chains(edges)
        return chain

    outer_lip, inner_lip = sorted(_chains(contours.FACEMESH_LIPS), key=lambda chain: 61 not in chain)
    outer = _split_loop(outer_lip, 61, 291)
    inner = _split_loop(inner_lip, 78, 308)
    outer_upper, outer_lower = outer if 0 in outer[0] else outer[::-1]
    inner_upper, inner_lower = inner if 13 in inner[0] else inner[::-1]

    return MeshPolygons(
        face_oval=tuple(loop(contours.FACEMESH_FACE_OVAL)),
        left_eye=tuple(loop(contours.FACEMESH_LEFT_EYE)),
        right_eye=tuple(loop(contours.FACEMESH_RIGHT_EYE)),
        nose=tuple(sorted({v for edge in contours.FACEMESH_NOSE for v in edge})),
        left_brow=tuple(tuple(chain) for chain in _chains(contours.FACEMESH_LEFT_EYEBROW)),
        right_brow=tuple(tuple(chain) for chain in _chains(contours.FACEMESH_RIGHT_EYEBROW)),
        upper_lip=_band(outer_upper, inner_upper),
        lower_lip=_band(outer_lower, inner_lower),
        mouth=tuple(inner_lip),
    )


def _join_paths(points: np.ndarray, first: tuple[int, ...], second: tuple[int, ...]) -> np.ndarray:
    """Two open paths of ``points`` (478, 2) → the (K, 2) loop through both, the second path
    reversed when that makes the shorter closing edges (so the loop does not cross itself)."""
    a, b = points[list(first)], points[list(second)]
    same_way = np.linalg.norm(a[-1] - b[-1]) + np.linalg.norm(a[0] - b[0])
    opposite = np.linalg.norm(a[-1] - b[0]) + np.linalg.norm(a[0] - b[-1])
    return np.concatenate([a, b[::-1] if same_way < opposite else b])


def _fill(mask: np.ndarray, points: np.ndarray, value: int) -> None:
    """Fills the polygon ``points`` (K, 2) float pixels with ``value``, in place (1/16-px precision)."""
    cv2.fillPoly(mask, [np.rint((points - 0.5) * 16).astype(np.int32)], value, lineType=cv2.LINE_8, shift=4)


def _skin_like(rgb: np.ndarray, samples: np.ndarray, max_distance: float, min_luma: float) -> np.ndarray:
    """(H, W) bool: pixels whose colour is like the skin samples (H, W) bool.

    Like means: within ``max_distance`` (Mahalanobis, YCrCb) of the samples' colours, and
    luma Y at least ``min_luma`` times their mean (shading spreads the skin's luma, so dark
    hair can pass the distance alone). Computed on a downsampled copy.
    """
    height, width = rgb.shape[:2]
    small = (_SKIN_COLOUR_SIZE, _SKIN_COLOUR_SIZE)
    ycc = cv2.cvtColor(cv2.resize(rgb, small, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2YCrCb).astype(np.float64)
    samples = cv2.resize(samples.astype(np.uint8), small, interpolation=cv2.INTER_NEAREST).astype(bool)
    if samples.sum() < _MIN_SKIN_SAMPLES:
        return np.zeros((height, width), dtype=bool)
    values = ycc[samples]
    covariance = np.cov(values.T) + _VARIANCE_FLOOR * np.eye(3)
    delta = ycc.reshape(-1, 3) - values.mean(0)
    squared = ((delta @ np.linalg.inv(covariance)) * delta).sum(1).reshape(small)
    like = ((squared < max_distance**2) & (ycc[..., 0] >= min_luma * values[:, 0].mean())).astype(np.uint8)
    return cv2.resize(like, (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)


def parse_face(rgb: np.ndarray, matte: np.ndarray, mesh: np.ndarray, settings: ParsingSettings) -> np.ndarray:
    """Label map of one cropped frame.

    Args:
        rgb: (H, W, 3) uint8 RGB; matte: (H, W) float32 in [0, 1]; mesh: (478, 2) pixels of
            the same image.

    Returns:
        (H, W) uint8 CelebAMask-HQ ids (0 background outside the foreground).
    """
    height, width = matte.shape
    polygons = mesh_polygons()
    foreground = matte >= settings.foreground_threshold
    face = np.zeros((height, width), np.uint8)
    _fill(face, mesh[list(polygons.face_oval)], 1)
    features = np.zeros((height, width), np.uint8)
    regions = [
        ("nose", cv2.convexHull(mesh[list(polygons.nose)].astype(np.float32))[:, 0].astype(np.float64)),
        ("l_brow", _join_paths(mesh, *polygons.left_brow)), ("r_brow", _join_paths(mesh, *polygons.right_brow)),
        ("l_eye", mesh[list(polygons.left_eye)]), ("r_eye", mesh[list(polygons.right_eye)]),
        ("u_lip", mesh[list(polygons.upper_lip)]), ("l_lip", mesh[list(polygons.lower_lip)]),
        ("mouth", mesh[list(polygons.mouth)]),
    ]
    for name, points in regions:  # later regions paint over earlier ones
        _fill(features, points, label_id(name))
    up = mesh[polygons.forehead] - mesh[polygons.chin]
    chin_x, chin_y = mesh[polygons.chin]
    level = (((np.arange(width) + 0.5 - chin_x) * up[0])[None, :] +
             ((np.arange(height) + 0.5 - chin_y) * up[1])[:, None]) / (up @ up)  # chin 0, forehead 1
    brows = mesh[[i for path in (*polygons.left_brow, *polygons.right_brow) for i in path]]
    brow_level = float(((brows - mesh[polygons.chin]) @ up).min() / (up @ up))
    bare_face = (face > 0) & (features == 0) & foreground
    cheeks = bare_face & (level > settings.hair_line) & (level < brow_level)
    skin_like = _skin_like(rgb, cheeks, settings.skin_distance, settings.skin_min_luma)
    labels = _OUTSIDE_FACE_LABELS[2 * (level > settings.hair_line) + skin_like]
    labels[face > 0] = label_id("skin")
    labels[bare_face & (level > brow_level) & ~skin_like] = label_id("hair")  # a fringe over the forehead
    labels[features > 0] = features[features > 0]
    labels[~foreground] = label_id("background")
    return labels
