"""Hair, hats, eyeglasses, eyebrows and a shirt as triangle meshes fitted to a person's head.

Everything here is in the person's *rest* space: scaled head units, FLAME axes (x = the
subject's left, y up, z out of the face), identity applied, neutral expression, zero pose.
Each mesh is rigidly attached to one joint of the head model (hair, hat and glasses to the
neck joint that carries the head rotation, the shirt to the global joint) and is posed with
that joint's skinning transform, so it moves with the head. Eyebrows are *decals*: thin
meshes glued to the skin, each vertex a barycentric point of a head face lifted along the
face's normal, so they follow the brows' expressions exactly and carry their own labels.

Hair and hats are built on a spherical grid around the skull: a column per azimuth ``φ``
(0 = straight ahead, positive towards the subject's left) runs from the crown (polar angle
``θ = 0``, measured from +y) down to where the style ends, at a fixed height above or below
the brows per azimuth; the surface follows the skull at a style-specific offset, and long
styles stop following the skull at ``drape_start_deg`` and hang down. Heights are in units
of the brow-to-crown height ``H`` above the brows, so every style fits every identity.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ..data.parts import label_id

__all__ = [
    "AZIMUTH_KNOTS_DEG",
    "HairStyle",
    "HatStyle",
    "GlassesStyle",
    "BrowShape",
    "HAIR_STYLES",
    "BROW_SHAPES",
    "HAT_STYLES",
    "GLASSES_STYLES",
    "AccessoryMesh",
    "SurfaceDecal",
    "HeadFit",
    "brow_decal",
    "hair_mesh",
    "hat_mesh",
    "glasses_mesh",
    "shirt_mesh",
]

#: Azimuths (degrees, symmetric about the face's midline) of the per-azimuth style tables.
AZIMUTH_KNOTS_DEG = (0.0, 30.0, 60.0, 90.0, 120.0, 150.0, 180.0)


@dataclass(frozen=True)
class HairStyle:
    """A hair style.

    Attributes:
        hairline: lower end of the hair at each of :data:`AZIMUTH_KNOTS_DEG`, in units of the
            brow-to-crown height above the brows (negative: below the brows).
        thickness: offset of the hair surface from the skull, scaled head units.
        taper: fraction of a column over which the thickness fades towards the hairline.
        drape_start_deg: polar angle where the hair stops following the skull and hangs
            down (None: it follows the skull to its end).
        flare: outward spread of hanging hair per unit of drop.
        curl: amplitude of volume bumps on the surface, scaled head units.
        bun_radius: radius of a bun at the back of the crown (0: none).
    """

    hairline: tuple[float, ...]
    thickness: float
    taper: float
    drape_start_deg: float | None = None
    flare: float = 0.0
    curl: float = 0.0
    bun_radius: float = 0.0


@dataclass(frozen=True)
class HatStyle:
    """A hat: a crown over the skull (and the hair under it) and an optional brim.

    Attributes:
        brim_line: lower edge of the crown at each of :data:`AZIMUTH_KNOTS_DEG`, in units of
            the brow-to-crown height above the brows.
        thickness: offset of the crown over the hair (or skull), scaled head units.
        crown_lift: extra height of the crown's top (taller hats), scaled head units.
        cuff: extra thickness of a band along the lower edge (a folded beanie cuff).
        brim_width: width of the brim at each azimuth knot, scaled head units (0: none).
        brim_droop: how far the outer edge of the brim bends down, scaled head units.
    """

    brim_line: tuple[float, ...]
    thickness: float
    crown_lift: float
    cuff: float
    brim_width: tuple[float, ...]
    brim_droop: float


@dataclass(frozen=True)
class GlassesStyle:
    """Eyeglasses: two super-elliptic rims, a bridge and two temples.

    Attributes:
        half_width, half_height: rim half-axes, scaled head units.
        roundness: super-ellipse exponent of the rims (2 = ellipse, larger = boxier).
        rim_radius: radius of the frame's wire, scaled head units.
        tinted: dark opaque lenses (sunglasses, labelled as eyeglasses) instead of clear ones.
    """

    half_width: float
    half_height: float
    roundness: float
    rim_radius: float
    tinted: bool


@dataclass(frozen=True)
class BrowShape:
    """An eyebrow drawn along the template's brow landmarks (scaled head units).

    Attributes:
        thickness: height of the brow at its thickest point.
        arch: extra lift of the brow's middle.
        lift: vertical offset of the whole brow.
        length: length relative to the landmark brow (the tail is extended or cut).
        tail: thickness of the tail relative to the thickest point.
    """

    thickness: float
    arch: float
    lift: float
    length: float
    tail: float


_NO_BRIM = (0.0,) * len(AZIMUTH_KNOTS_DEG)

#: Hair styles by name ("bald", no hair, is the part's absent style; see ``people``).
HAIR_STYLES: dict[str, HairStyle] = {
    "buzz": HairStyle((0.5, 0.45, 0.28, 0.06, -0.3, -0.55, -0.6), thickness=0.012, taper=0.12),
    "short": HairStyle((0.45, 0.4, 0.25, 0.05, -0.35, -0.6, -0.65), thickness=0.045, taper=0.2),
    "bob": HairStyle((0.32, 0.22, -0.9, -1.0, -1.0, -1.0, -1.0), thickness=0.05, taper=0.1,
                     drape_start_deg=100.0, flare=0.1),
    "long": HairStyle((0.42, 0.35, 0.1, -1.5, -1.6, -1.6, -1.6), thickness=0.04, taper=0.15,
                      drape_start_deg=95.0, flare=0.15),
    "afro": HairStyle((0.42, 0.35, 0.2, -0.05, -0.45, -0.6, -0.65), thickness=0.14, taper=0.35, curl=0.018),
    "bun": HairStyle((0.45, 0.4, 0.2, 0.0, -0.4, -0.55, -0.6), thickness=0.02, taper=0.15, bun_radius=0.11),
}

#: Hat styles by name ("none" is the part's absent style).
HAT_STYLES: dict[str, HatStyle] = {
    "beanie": HatStyle((0.42, 0.4, 0.32, 0.16, 0.0, -0.1, -0.15), thickness=0.025, crown_lift=0.05, cuff=0.02,
                       brim_width=_NO_BRIM, brim_droop=0.0),
    "cap": HatStyle((0.36, 0.34, 0.28, 0.2, 0.1, 0.05, 0.05), thickness=0.02, crown_lift=0.0, cuff=0.0,
                    brim_width=(0.3, 0.27, 0.12, 0.0, 0.0, 0.0, 0.0), brim_droop=0.06),
    "wide_brim": HatStyle((0.42, 0.4, 0.35, 0.3, 0.3, 0.3, 0.3), thickness=0.03, crown_lift=0.12, cuff=0.012,
                          brim_width=(0.2,) * len(AZIMUTH_KNOTS_DEG), brim_droop=0.03),
    "bucket": HatStyle((0.34, 0.32, 0.26, 0.14, 0.06, 0.02, 0.0), thickness=0.03, crown_lift=0.06, cuff=0.0,
                       brim_width=(0.12,) * len(AZIMUTH_KNOTS_DEG), brim_droop=0.08),
}

#: Eyeglasses styles by name ("none" is the part's absent style).
GLASSES_STYLES: dict[str, GlassesStyle] = {
    "round": GlassesStyle(0.075, 0.072, 2.0, 0.008, tinted=False),
    "rectangular": GlassesStyle(0.09, 0.058, 4.0, 0.012, tinted=False),
    "sunglasses": GlassesStyle(0.095, 0.075, 3.0, 0.01, tinted=True),
}

#: Eyebrow shapes by name.
BROW_SHAPES: dict[str, BrowShape] = {
    "thin_arched": BrowShape(0.022, 0.025, 0.012, 1.0, 0.35),
    "straight_thick": BrowShape(0.046, -0.012, 0.0, 1.0, 0.7),
    "soft": BrowShape(0.032, 0.008, 0.006, 0.95, 0.5),
    "bushy": BrowShape(0.058, 0.004, 0.004, 1.08, 0.75),
    "short_angled": BrowShape(0.034, 0.03, 0.01, 0.8, 0.4),
}

_SKULL_MARGIN = 0.01  # hair and hats float this far over the skull (pose correctives move it)
_GRID_POLAR_DEG = 170.0  # the skull radius is tabulated up to this polar angle
_GRID_STEP_DEG = 2.0
_NEIGHBOUR_DEG = 7.0  # skull radius: largest vertex radius within this angle of a direction
_COLUMNS = 64  # azimuth columns of the hair and hat grids
_SURFACE_ROWS, _DRAPE_ROWS, _BRIM_ROWS = 20, 8, 4
_DRAPE_BLEND = np.radians(25.0)  # columns ending this far above the drape start blend into hanging ones
_BROW_SAMPLES = 28  # decal columns along each brow
_DECAL_LIFT = 0.004  # decals float this far over the skin (scaled head units)
_TUBE_SIDES = 6
_RIM_POINTS = 36
_GLASSES_CLEARANCE = 0.035  # rims float this far in front of the lids and brows
_TEMPLE_CLEARANCE = 0.015  # temples pass this far outside the head
_TEMPLE_POINTS = 10
_COLLAR_Y = -0.6  # shirt collar height (below the jaw, above the neck cut)
# Rows of the shirt: (height relative to the collar, extra half-width, depth factor).
_SHIRT_SHAPE = ((0.0, 0.0, 1.0), (-0.06, 0.12, 1.15), (-0.16, 0.42, 1.35), (-0.3, 0.55, 1.45), (-0.9, 0.6, 1.5))


@dataclass
class AccessoryMesh:
    """One accessory in rest space.

    Attributes:
        name: ``hair``, ``hat``, ``eyeglasses`` or ``shirt``; also its slot in the texture atlas.
        vertices: (N, 3) float64 rest positions, scaled head units.
        faces: (F, 3) int64, outward-facing by the right-hand rule.
        uvs: (F, 3, 2) float64 per-corner coordinates in [0, 1]² of the accessory's atlas slot.
        labels: (F,) int64 semantic id per face.
        joint: name of the head-model joint it is attached to (a key of ``POSE_SLOTS``).
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    labels: np.ndarray
    joint: str


@dataclass
class SurfaceDecal:
    """A thin mesh glued to the head surface.

    Attributes:
        name: its atlas slot.
        face_index: (D,) int64 head face carrying each decal vertex.
        barycentric: (D, 3) float64 position of each vertex in its head face.
        lift: distance of the decal over the surface along the face normal, scaled head units.
        faces: (F, 3) int64 over the D decal vertices, outward-facing.
        uvs: (F, 3, 2) float64 per-corner coordinates in [0, 1]² of the atlas slot.
        labels: (F,) int64 semantic id per face.
    """

    name: str
    face_index: np.ndarray
    barycentric: np.ndarray
    lift: float
    faces: np.ndarray
    uvs: np.ndarray
    labels: np.ndarray


def _interp_azimuth(values: tuple[float, ...], azimuth: np.ndarray) -> np.ndarray:
    """A per-azimuth-knot table → values at azimuths (radians, any sign; symmetric)."""
    return np.interp(np.degrees(np.abs(azimuth)), AZIMUTH_KNOTS_DEG, values)


def _directions(polar: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
    """Unit vectors (..., 3) for polar angles from +y and azimuths from +z towards +x (broadcast)."""
    polar, azimuth = np.broadcast_arrays(polar, azimuth)
    return np.stack([np.sin(polar) * np.sin(azimuth), np.cos(polar), np.sin(polar) * np.cos(azimuth)], -1)


class HeadFit:
    """Measurements of one person's rest head, used to fit accessories.

    Args:
        vertices: (V, 3) rest vertices (identity applied, neutral expression, zero pose).
        regions: (V,) region index per vertex; ``region_names`` their names (stand-in head).
        landmarks: (70, 3) rest landmarks (iBUG-68 + 2 iris centres).
        joints: (5, 3) rest joint positions in ``POSE_SLOTS`` order.
    """

    def __init__(self, vertices: np.ndarray, regions: np.ndarray, region_names, landmarks: np.ndarray,
                 joints: np.ndarray):
        self.vertices = np.asarray(vertices, np.float64)
        names = [str(n) for n in region_names]
        self.regions = np.asarray(regions)
        self.region_index = {name: i for i, name in enumerate(names)}
        self.landmarks = np.asarray(landmarks, np.float64)
        self.joints = np.asarray(joints, np.float64)
        # The skull leaves out what protrudes in front (and what the nose and mouth parts
        # move), so swapping those parts leaves the hair and hats where they were.
        front = {"mouth_interior", "left_eyeball", "right_eyeball", "nose", "upper_lip", "lower_lip"}
        self.skull_vertices = self.vertices[~np.isin(self.regions, [self.region_index[n] for n in front])]
        cranium = self.vertices[np.isin(self.regions, [self.region_index[n] for n in ("scalp", "forehead")])]
        self.brow_y = float(self.landmarks[17:27, 1].mean())
        self.top_y = float(cranium[:, 1].max())
        self.unit = self.top_y - self.brow_y  # brow-to-crown height H
        self.centre = np.array([0.0, float(self.joints[3:5, 1].mean()),
                                0.5 * float(cranium[:, 2].min() + cranium[:, 2].max())])
        self._polar = np.radians(np.arange(0.0, _GRID_POLAR_DEG + 1e-9, _GRID_STEP_DEG))
        self._azimuth = np.radians(np.arange(-180.0, 180.0, _GRID_STEP_DEG))
        self._radius = self._skull_radius_table()

    def _skull_radius_table(self) -> np.ndarray:
        """(polar, azimuth) table of the skull's outer radius from the centre."""
        offsets = self.skull_vertices - self.centre
        radii = np.linalg.norm(offsets, axis=1)
        tree = cKDTree(offsets / radii[:, None])
        polar, azimuth = np.meshgrid(self._polar, self._azimuth, indexing="ij")
        queries = _directions(polar, azimuth).reshape(-1, 3)
        chord = 2.0 * np.sin(np.radians(_NEIGHBOUR_DEG) / 2.0)
        distance, index = tree.query(queries, k=24, distance_upper_bound=chord)
        found = np.isfinite(distance)
        candidate = np.where(found, radii[np.minimum(index, len(radii) - 1)], -np.inf).max(1)
        _, nearest = tree.query(queries[~found.any(1)], k=1)
        candidate[~found.any(1)] = radii[nearest]
        return candidate.reshape(polar.shape)

    def skull_radius(self, polar: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
        """Skull radius from :attr:`centre` at polar/azimuth angles (radians), bilinear."""
        step = np.radians(_GRID_STEP_DEG)
        p = np.clip(polar / step, 0.0, len(self._polar) - 1.000001)
        a = (np.mod(azimuth + np.pi, 2.0 * np.pi)) / step
        p0, a0 = np.floor(p).astype(int), np.floor(a).astype(int)
        fp, fa = p - p0, a - a0
        n_az = len(self._azimuth)
        a0, a1 = a0 % n_az, (a0 + 1) % n_az
        table = self._radius
        top = table[p0, a0] * (1 - fa) + table[p0, a1] * fa
        bottom = table[p0 + 1, a0] * (1 - fa) + table[p0 + 1, a1] * fa
        return top * (1 - fp) + bottom * fp

    def surface_point(self, polar: np.ndarray, azimuth: np.ndarray, offset: np.ndarray | float = 0.0) -> np.ndarray:
        """(..., 3) points at ``offset`` (scaled head units) over the skull in the given directions."""
        radius = self.skull_radius(polar, azimuth) + offset
        return self.centre + _directions(polar, azimuth) * radius[..., None]

    def height(self, fraction: np.ndarray) -> np.ndarray:
        """Height y of ``fraction`` brow-to-crown units above the brows."""
        return self.brow_y + fraction * self.unit

    def polar_at_height(self, azimuth: np.ndarray, y: np.ndarray) -> np.ndarray:
        """For each azimuth column, the polar angle where the skull surface descends to height y
        (the largest tabulated angle if it never does)."""
        polar = np.radians(np.arange(0.0, _GRID_POLAR_DEG + 1e-9, 0.5))
        heights = self.surface_point(polar[:, None], azimuth[None, :])[..., 1]  # (P, A)
        below = heights < y[None, :]
        first = np.where(below.any(0), below.argmax(0), len(polar) - 1)
        previous = np.maximum(first - 1, 0)
        columns = np.arange(len(azimuth))
        h0, h1 = heights[previous, columns], heights[first, columns]
        t = np.clip((h0 - y) / np.where(h0 - h1 == 0, 1.0, h0 - h1), 0.0, 1.0)
        return polar[previous] + t * (polar[first] - polar[previous])


# ---------------------------------------------------------------------------------------
# Mesh helpers


def _grid_faces(rows: int, cols: int) -> np.ndarray:
    """Faces of a rows × cols vertex grid (row-major), two triangles per cell, wound so that
    the normal is ``d(row) × d(col)`` (outward when rows descend and columns turn left)."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing="ij")
    a = (r * cols + c).ravel()
    b, d, e = a + cols, a + 1, a + cols + 1
    return np.concatenate([np.stack([a, b, d], 1), np.stack([d, b, e], 1)]).astype(np.int64)


def _grid_uvs(rows: int, cols: int, faces: np.ndarray) -> np.ndarray:
    """Per-corner (u, v) = (column, row) fractions of a grid's faces, (F, 3, 2)."""
    u = (np.arange(rows * cols) % cols) / (cols - 1)
    v = (np.arange(rows * cols) // cols) / (rows - 1)
    return np.stack([u[faces], v[faces]], -1)


def _tube(path: np.ndarray, radius: float, closed: bool) -> tuple[np.ndarray, np.ndarray]:
    """A tube of ``radius`` around a polyline (N, 3): a grid of rings with a repeated seam,
    outward faces. A closed path also repeats its first ring at the end."""
    if closed:
        tangent = np.roll(path, -1, 0) - np.roll(path, 1, 0)
        path, tangent = np.concatenate([path, path[:1]]), np.concatenate([tangent, tangent[:1]])
    else:
        tangent = np.gradient(path, axis=0)
    tangent = tangent / np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.cross(tangent[0], [0.0, 0.0, 1.0] if abs(tangent[0, 2]) < 0.9 else [1.0, 0.0, 0.0])
    normals = []
    for t in tangent:  # parallel transport of the normal along the path
        normal = normal - t * (normal @ t)
        normal = normal / np.linalg.norm(normal)
        normals.append(normal)
    normals = np.array(normals)
    binormals = np.cross(tangent, normals)
    angle = 2.0 * np.pi * np.arange(_TUBE_SIDES + 1) / _TUBE_SIDES
    offsets = np.cos(angle)[None, :, None] * normals[:, None] + np.sin(angle)[None, :, None] * binormals[:, None]
    vertices = (path[:, None] + radius * offsets).reshape(-1, 3)
    faces = _grid_faces(len(path), _TUBE_SIDES + 1)  # d(along) × d(around) points inwards
    return vertices, faces[:, ::-1].copy()


def _solid_uvs(count: int, u: float) -> np.ndarray:
    """(count, 3, 2) corners all at (u, 0.5): one colour of an atlas slot."""
    return np.broadcast_to(np.array([u, 0.5]), (count, 3, 2)).copy()


def _merge(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenates (vertices, faces) pieces into one mesh."""
    vertices, faces, offset = [], [], 0
    for v, f in parts:
        vertices.append(v)
        faces.append(f + offset)
        offset += len(v)
    return np.concatenate(vertices), np.concatenate(faces)


def _uv_sphere(centre: np.ndarray, radius: float, rings: int = 10, segments: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """A closed latitude/longitude sphere as a (rings+1) × (segments+1) grid, outward faces."""
    polar = np.linspace(0.0, np.pi, rings + 1)
    azimuth = np.linspace(-np.pi, np.pi, segments + 1)
    vertices = centre + radius * _directions(*np.meshgrid(polar, azimuth, indexing="ij")).reshape(-1, 3)
    return vertices, _grid_faces(rings + 1, segments + 1)


# ---------------------------------------------------------------------------------------
# Eyebrows


def _embed_points(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, candidates: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Projects (D, 2) points along −z onto the front-most candidate face under them.

    Returns the face index (D,) and barycentric coordinates (D, 3); a point outside every
    candidate goes to the candidate it is least outside of (clipped coordinates).
    """
    corners = vertices[faces[candidates]]  # (C, 3, 3)
    a, b, c = corners[:, 0, :2], corners[:, 1, :2], corners[:, 2, :2]
    det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    dx, dy = points[:, None, 0] - a[None, :, 0], points[:, None, 1] - a[None, :, 1]
    w1 = (dx * (c[:, 1] - a[:, 1]) - dy * (c[:, 0] - a[:, 0])) / det
    w2 = (dy * (b[:, 0] - a[:, 0]) - dx * (b[:, 1] - a[:, 1])) / det
    bary = np.stack([1 - w1 - w2, w1, w2], -1)  # (D, C, 3)
    inside = bary.min(-1) >= -1e-9
    depth = (bary * corners[None, :, :, 2]).sum(-1)
    score = np.where(inside, depth, bary.min(-1) - 1e3)  # front-most inside, else least outside
    best = score.argmax(1)
    chosen = np.clip(bary[np.arange(len(points)), best], 0.0, None)
    return candidates[best], chosen / chosen.sum(1, keepdims=True)


def brow_decal(shape: BrowShape, vertices: np.ndarray, faces: np.ndarray, skin_faces: np.ndarray,
               brows: np.ndarray) -> SurfaceDecal:
    """Both eyebrows of ``shape`` as a decal on the neutral template.

    Args:
        vertices: (V, 3) the template's rest vertices; faces: (F, 3) its faces.
        skin_faces: (F,) bool, faces a brow may lie on.
        brows: (2, 5, 3) rest brow landmarks [subject's left, right], inner to outer.
    """
    centroids = vertices[faces].mean(1)
    normals = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    candidates = np.nonzero(skin_faces & (centroids[:, 2] > 0.1) & (normals[:, 2] > 0))[0]
    s = np.linspace(0.0, shape.length, _BROW_SAMPLES)
    profile = np.interp(s / shape.length, [0.0, 0.1, 0.35, 1.0], [0.75, 1.0, 1.0, shape.tail])
    pieces, uvs, labels = [], [], []
    for landmarks, label in zip(brows, ("l_brow", "r_brow")):
        knots = np.linspace(0.0, 1.0, len(landmarks))
        centre = np.stack([np.interp(s, knots, landmarks[:, k]) for k in (0, 1)], 1)
        beyond = s > 1.0  # extend the tail along the last segment
        step = landmarks[-1, :2] - landmarks[-2, :2]
        centre[beyond] = landmarks[-1, :2] + (s[beyond, None] - 1.0) * step * (len(landmarks) - 1)
        centre[:, 1] += shape.lift + shape.arch * np.sin(np.pi * s / shape.length)
        half_height = np.array([0.0, 0.5 * shape.thickness]) * profile[:, None]  # (S, 2)
        grid = (centre[None] + np.array([-1.0, 0.0, 1.0])[:, None, None] * half_height[None]).reshape(-1, 2)
        # grid rows: lower edge, middle, upper edge
        grid_faces = _grid_faces(3, _BROW_SAMPLES)
        edge1, edge2 = grid[grid_faces[:, 1]] - grid[grid_faces[:, 0]], grid[grid_faces[:, 2]] - grid[grid_faces[:, 0]]
        if (edge1[:, 0] * edge2[:, 1] - edge1[:, 1] * edge2[:, 0]).sum() < 0:
            grid_faces = grid_faces[:, ::-1].copy()  # face the viewer (+z)
        pieces.append((grid, grid_faces))
        uvs.append(_grid_uvs(3, _BROW_SAMPLES, grid_faces))  # u along the brow, v across
        labels.append(np.full(len(grid_faces), label_id(label), np.int64))
    points, decal_faces = _merge(pieces)
    face_index, barycentric = _embed_points(points, vertices, faces, candidates)
    return SurfaceDecal("eyebrows", face_index, barycentric, _DECAL_LIFT, decal_faces, np.concatenate(uvs),
                        np.concatenate(labels))


# ---------------------------------------------------------------------------------------
# Hair


def _hair_columns(style: HairStyle, fit: HeadFit, azimuth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per azimuth column: the height where the hair ends, the polar angle where it leaves
    the skull (its end, or the drape start for hanging hair), and how much of the taper
    is kept (1: none, hair ends thick; columns ending just above the drape start blend into
    the hanging ones, so the hair has no step there)."""
    end_y = fit.height(_interp_azimuth(style.hairline, azimuth))
    end = fit.polar_at_height(azimuth, end_y)
    if style.drape_start_deg is None:
        return end_y, end, np.zeros_like(end)
    drape_start = np.radians(style.drape_start_deg)
    blend = np.clip((end - drape_start + _DRAPE_BLEND) / _DRAPE_BLEND, 0.0, 1.0)
    return end_y, np.minimum(end, drape_start), blend


def _fade(style: HairStyle, t: np.ndarray, thick_end: np.ndarray) -> np.ndarray:
    """Thickness factor along a column (t = 0 at the crown, 1 at its end on the skull)."""
    taper = np.clip((1.0 - t) / max(style.taper, 1e-6), 0.0, 1.0)
    return taper + (1.0 - taper) * thick_end


def _hair_thickness(style: HairStyle, fit: HeadFit, polar: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
    """Thickness of the hair over the skull at polar/azimuth angles (0 where there is none)."""
    polar, azimuth = np.broadcast_arrays(polar, azimuth)
    columns, column_of = np.unique(azimuth, return_inverse=True)
    _, surface_end, thick_end = (v[column_of].reshape(azimuth.shape) for v in _hair_columns(style, fit, columns))
    t = polar / np.maximum(surface_end, 1e-6)
    return np.where(t <= 1.0, style.thickness * np.sqrt(_fade(style, t, thick_end)), 0.0)


def hair_mesh(style: HairStyle, fit: HeadFit) -> AccessoryMesh:
    """The hair of ``style`` on the head ``fit``; attached to the neck joint."""
    azimuth = np.linspace(-np.pi, np.pi, _COLUMNS + 1)
    end_y, surface_end, thick_end = _hair_columns(style, fit, azimuth)
    t = np.linspace(0.0, 1.0, _SURFACE_ROWS)[:, None]
    polar = t * surface_end[None, :]
    fade = _fade(style, t, thick_end[None, :])
    thickness = _SKULL_MARGIN + style.thickness * np.sqrt(fade)
    if style.curl:
        thickness = thickness + style.curl * fade * np.sin(7.0 * azimuth)[None, :] * np.sin(11.0 * polar)
    surface = fit.surface_point(polar, np.broadcast_to(azimuth, polar.shape), thickness)
    rows = [surface]
    if style.drape_start_deg is not None:
        start = surface[-1]  # (C, 3) where the hair leaves the skull
        drop = np.clip(start[:, 1] - end_y, 0.0, None) * (thick_end == 1.0)
        s = np.linspace(0.0, 1.0, _DRAPE_ROWS + 1)[1:, None]
        outward = np.stack([np.sin(azimuth), np.zeros_like(azimuth), np.cos(azimuth)], 1)
        hanging = start[None] - s[..., None] * drop[None, :, None] * np.array([0.0, 1.0, 0.0])
        rows.append(hanging + (style.flare * s * drop[None, :])[..., None] * outward[None])
    grid = np.concatenate(rows)
    n_rows = grid.shape[0]
    faces = _grid_faces(n_rows, _COLUMNS + 1)
    uvs = _grid_uvs(n_rows, _COLUMNS + 1, faces)
    pieces = [(grid.reshape(-1, 3), faces)]
    if style.bun_radius > 0:
        back = np.array([np.radians(50.0)]), np.array([np.pi])
        thickness_here = _hair_thickness(style, fit, *back)
        anchor = fit.surface_point(*back, thickness_here + 0.6 * style.bun_radius)[0]
        bun_vertices, bun_faces = _uv_sphere(anchor, style.bun_radius)
        pieces.append((bun_vertices, bun_faces))
        uvs = np.concatenate([uvs, _grid_uvs(11, 21, bun_faces)])
    vertices, faces = _merge(pieces)
    labels = np.full(len(faces), label_id("hair"), np.int64)
    return AccessoryMesh("hair", vertices, faces, uvs, labels, joint="neck")


# ---------------------------------------------------------------------------------------
# Hats


def hat_mesh(style: HatStyle, fit: HeadFit, hair: HairStyle | None) -> AccessoryMesh:
    """A hat of ``style`` on the head ``fit`` over the given hair (None: bald); neck joint."""
    azimuth = np.linspace(-np.pi, np.pi, _COLUMNS + 1)
    edge = fit.polar_at_height(azimuth, fit.height(_interp_azimuth(style.brim_line, azimuth)))
    t = np.linspace(0.0, 1.0, _SURFACE_ROWS)[:, None]
    polar = t * edge[None, :]
    az = np.broadcast_to(azimuth, polar.shape)
    under = _hair_thickness(hair, fit, polar, az) if hair is not None else 0.0
    cuff = style.cuff * (t > 0.8)
    lift = style.crown_lift * np.clip(np.cos(polar), 0.0, None) ** 2
    crown = fit.surface_point(polar, az, _SKULL_MARGIN + under + style.thickness + cuff + lift)
    rows = [crown]
    width = _interp_azimuth(style.brim_width, azimuth)
    if np.any(width > 0):
        rim = crown[-1]
        outward = np.stack([np.sin(azimuth), np.zeros_like(azimuth), np.cos(azimuth)], 1)
        s = np.linspace(0.0, 1.0, _BRIM_ROWS + 1)[1:, None]
        rows.append(rim[None] + (s * width)[..., None] * outward[None]
                    - (style.brim_droop * (s * width / max(width.max(), 1e-6)) ** 2)[..., None] * np.array([0, 1.0, 0]))
    grid = np.concatenate(rows)
    faces = _grid_faces(grid.shape[0], _COLUMNS + 1)
    uvs = _grid_uvs(grid.shape[0], _COLUMNS + 1, faces)
    labels = np.full(len(faces), label_id("hat"), np.int64)
    return AccessoryMesh("hat", grid.reshape(-1, 3), faces, uvs, labels, joint="neck")


# ---------------------------------------------------------------------------------------
# Eyeglasses


def _rim_path(style: GlassesStyle, centre: np.ndarray) -> np.ndarray:
    """(_RIM_POINTS, 3) super-ellipse around a lens centre, in the plane z = centre z."""
    angle = np.linspace(0.0, 2.0 * np.pi, _RIM_POINTS, endpoint=False)
    c, s = np.cos(angle), np.sin(angle)
    exponent = 2.0 / style.roundness
    x = style.half_width * np.sign(c) * np.abs(c) ** exponent
    y = style.half_height * np.sign(s) * np.abs(s) ** exponent
    return centre + np.stack([x, y, np.zeros_like(x)], 1)


def glasses_mesh(style: GlassesStyle, fit: HeadFit) -> AccessoryMesh:
    """Eyeglasses of ``style`` in front of the eyes of ``fit``; attached to the neck joint.

    Frame faces take the left half of the atlas slot (frame colour), tinted lenses the right.
    """
    eyes = fit.joints[3:5]  # left, right eyeball centres
    skull = fit.skull_vertices
    lens_y = float(eyes[:, 1].mean())
    front = []
    for eye in eyes:
        near = (np.abs(skull[:, 0] - eye[0]) < style.half_width) & (np.abs(skull[:, 1] - lens_y) < style.half_height)
        front.append(skull[near, 2].max())
    plane_z = max(front) + _GLASSES_CLEARANCE
    centres = [np.array([eye[0], lens_y, plane_z]) for eye in eyes]
    rims = [_rim_path(style, c) for c in centres]
    pieces = [_tube(rim, style.rim_radius, closed=True) for rim in rims]
    inner = [rim[np.argmin(np.abs(rim[:, 0]))] for rim in rims]  # rim points nearest the midline
    nose = fit.vertices[fit.regions == fit.region_index["nose"]]
    bridge_nose = nose[(np.abs(nose[:, 0]) < 0.03) & (np.abs(nose[:, 1] - lens_y - 0.03) < 0.04), 2].max(
        initial=plane_z - 0.025)
    bridge_z = max(plane_z, bridge_nose + 0.025)
    arc = np.linspace(0.0, 1.0, 12)[:, None]
    bridge = inner[1] + arc * (inner[0] - inner[1])
    bridge[:, 1] += 0.02 * np.sin(np.pi * arc[:, 0]) + 0.3 * style.half_height
    bridge[:, 2] = plane_z + (bridge_z - plane_z) * np.sin(np.pi * arc[:, 0])
    pieces.append(_tube(bridge, style.rim_radius * 0.8, closed=False))
    band = skull[np.abs(skull[:, 1] - lens_y) < 0.06]  # the head's sides at lens height (ears included)
    ears = fit.vertices[np.isin(fit.regions, [fit.region_index["left_ear"], fit.region_index["right_ear"]])]
    ear_z = float(ears[:, 2].mean())
    for rim, side in zip(rims, (1.0, -1.0)):
        outer = rim[np.argmax(side * rim[:, 0])]
        half = band[side * band[:, 0] > 0]
        path, x = [outer], abs(outer[0])
        for z in np.linspace(plane_z - 0.04, ear_z, _TEMPLE_POINTS):  # hug the side of the head
            x = max(x, np.abs(half[np.abs(half[:, 2] - z) < 0.04, 0]).max(initial=0.0) + _TEMPLE_CLEARANCE)
            path.append(np.array([side * x, lens_y, z]))
        path.append(np.array([side * x, lens_y - 0.06, ear_z - 0.06]))  # bent down behind the ear
        pieces.append(_tube(np.array(path), style.rim_radius * 0.8, closed=False))
    vertices, faces = _merge(pieces)
    uvs = _solid_uvs(len(faces), 0.25)
    if style.tinted:
        lens_pieces = []
        for rim in rims:
            centre = rim.mean(0) - np.array([0.0, 0.0, 0.002])
            ring = rim - np.array([0.0, 0.0, 0.002])
            fan = np.stack([np.zeros(_RIM_POINTS, np.int64), 1 + np.arange(_RIM_POINTS),
                            1 + (np.arange(_RIM_POINTS) + 1) % _RIM_POINTS], 1)
            lens_pieces.append((np.concatenate([centre[None], ring]), fan))
        lens_vertices, lens_faces = _merge(lens_pieces)
        vertices, faces = _merge([(vertices, faces), (lens_vertices, lens_faces)])
        uvs = np.concatenate([uvs, _solid_uvs(len(lens_faces), 0.75)])
    labels = np.full(len(faces), label_id("eyeglasses"), np.int64)
    return AccessoryMesh("eyeglasses", vertices, faces, uvs, labels, joint="neck")


# ---------------------------------------------------------------------------------------
# Shirt


def shirt_mesh(fit: HeadFit) -> AccessoryMesh:
    """A shirt (collar, shoulders, chest) around the neck of ``fit``; attached to the global joint."""
    neck = fit.vertices[fit.regions == fit.region_index["neck"]]
    ring = neck[np.abs(neck[:, 1] - _COLLAR_Y) < 0.05]
    half_width = np.abs(ring[:, 0]).max() + 0.06
    z_front, z_back = ring[:, 2].max() + 0.06, ring[:, 2].min() - 0.05
    z_mid, half_depth = 0.5 * (z_front + z_back), 0.5 * (z_front - z_back)
    azimuth = np.linspace(-np.pi, np.pi, 65)
    c, s = np.cos(azimuth), np.sin(azimuth)
    exponent = 2.0 / 2.5  # super-ellipse cross-section
    rows = []
    for drop, extra_width, depth_factor in _SHIRT_SHAPE:
        x = (half_width + extra_width) * np.sign(s) * np.abs(s) ** exponent
        z = z_mid + half_depth * depth_factor * np.sign(c) * np.abs(c) ** exponent
        rows.append(np.stack([x, np.full_like(x, _COLLAR_Y + drop), z], 1))
    grid = np.stack(rows)
    faces = _grid_faces(len(rows), len(azimuth))
    uvs = _grid_uvs(len(rows), len(azimuth), faces)
    labels = np.full(len(faces), label_id("cloth"), np.int64)
    return AccessoryMesh("shirt", grid.reshape(-1, 3), faces, uvs, labels, joint="global")
