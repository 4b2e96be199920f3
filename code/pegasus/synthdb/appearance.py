"""Colours and textures of the synthetic people: skin, lips, irises, brows, accessories.

Each person gets one texture *atlas* of (N, 2N) texels (N = ``synth_db.texture_size``): the
left half is the head model's own UV layout, the right half holds the accessories' slots
(hair strands, hat fabric, eyeglasses, eyebrow strokes, shirt). The head half is painted in
3-D: the head mesh is rasterized in UV space once (:class:`HeadAtlas`), which gives every
texel its rest position on the neutral template and its region, so irises, lips and skin
variation are drawn with geometric rules that fit any identity (the texture moves with the
surface). Colours are RGB in [0, 1].
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from ..geometry.camera import PinholeCameras
from ..headmodel import HeadModel
from ..render.mesh import interpolate_face_corner_attributes, rasterize_mesh

__all__ = [
    "SKIN_TONES", "HAIR_COLOURS", "IRIS_COLOURS", "IRIS_SIZES_DEG", "LIP_COLOURS", "HAT_COLOURS",
    "FRAME_COLOURS", "SHIRT_COLOURS", "ATLAS_SLOTS", "HeadAtlas", "paint_skin", "paint_texture", "atlas_uvs",
    "face_majority",
]

SKIN_TONES: dict[str, tuple[float, float, float]] = {
    "porcelain": (0.96, 0.80, 0.72), "light": (0.92, 0.74, 0.62), "medium": (0.82, 0.61, 0.48),
    "olive": (0.75, 0.57, 0.41), "tan": (0.65, 0.46, 0.32), "brown": (0.50, 0.33, 0.22),
    "dark": (0.34, 0.22, 0.15),
}
#: Hair colours, also used for eyebrows.
HAIR_COLOURS: dict[str, tuple[float, float, float]] = {
    "black": (0.06, 0.05, 0.05), "dark_brown": (0.20, 0.12, 0.07), "brown": (0.40, 0.25, 0.13),
    "auburn": (0.52, 0.20, 0.09), "blonde": (0.85, 0.70, 0.43), "grey": (0.63, 0.63, 0.63),
    "ginger": (0.75, 0.38, 0.15),
}
IRIS_COLOURS: dict[str, tuple[float, float, float]] = {
    "dark_brown": (0.24, 0.13, 0.06), "hazel": (0.52, 0.40, 0.17), "green": (0.24, 0.52, 0.27),
    "blue": (0.25, 0.47, 0.80), "grey": (0.52, 0.57, 0.62), "amber": (0.75, 0.47, 0.10),
}
#: Iris sizes: angular radius of the iris on the eyeball, degrees.
IRIS_SIZES_DEG: dict[str, float] = {"small": 21.0, "medium": 25.0, "large": 29.0}
LIP_COLOURS: dict[str, tuple[float, float, float]] = {
    "rose": (0.80, 0.45, 0.47), "red": (0.74, 0.10, 0.15), "pale": (0.88, 0.62, 0.58),
    "berry": (0.50, 0.14, 0.28), "brown": (0.52, 0.30, 0.24),
}
HAT_COLOURS: dict[str, tuple[float, float, float]] = {
    "navy": (0.12, 0.16, 0.36), "red": (0.72, 0.10, 0.10), "olive": (0.36, 0.40, 0.18),
    "grey": (0.52, 0.52, 0.52), "black": (0.08, 0.08, 0.08), "beige": (0.80, 0.70, 0.52),
}
FRAME_COLOURS: dict[str, tuple[float, float, float]] = {
    "black": (0.05, 0.05, 0.05), "tortoise": (0.36, 0.20, 0.09), "gold": (0.82, 0.66, 0.30),
    "red": (0.70, 0.08, 0.14),
}
SHIRT_COLOURS: dict[str, tuple[float, float, float]] = {
    "white": (0.93, 0.93, 0.91), "grey": (0.50, 0.52, 0.55), "navy": (0.14, 0.18, 0.34),
    "green": (0.22, 0.45, 0.30), "maroon": (0.46, 0.12, 0.16), "mustard": (0.82, 0.62, 0.18),
}
_SCLERA = (0.95, 0.93, 0.89)
_PUPIL = (0.03, 0.03, 0.03)
_MOUTH = (0.40, 0.12, 0.14)
_LENS = (0.06, 0.06, 0.08)
_LIP_EDGE = 1.5 / 512  # width of the lips' soft edge, in atlas sides


#: Accessory slots of the atlas: name → (u0, v0, du, dv) in atlas UV ([0, 1]², v = 0 at top).
ATLAS_SLOTS: dict[str, tuple[float, float, float, float]] = {
    "hair": (0.5, 0.0, 0.25, 0.5), "hat": (0.75, 0.0, 0.25, 0.5), "eyeglasses": (0.5, 0.5, 0.25, 0.25),
    "eyebrows": (0.5, 0.75, 0.25, 0.25), "shirt": (0.75, 0.5, 0.25, 0.5),
}
_SLOT_INSET_TEXELS = 2.0


def atlas_uvs(slot: str | None, uvs: np.ndarray, size: int) -> np.ndarray:
    """Maps (..., 2) UVs into the atlas: the head's own UVs (slot None) into the left half,
    an accessory's [0, 1]² UVs into its slot (inset by 2 texels so bilinear sampling stays
    inside)."""
    if slot is None:
        return uvs * np.array([0.5, 1.0])
    u0, v0, du, dv = ATLAS_SLOTS[slot]
    inset = np.array([_SLOT_INSET_TEXELS / (2 * size), _SLOT_INSET_TEXELS / size])
    return np.array([u0, v0]) + inset + uvs * (np.array([du, dv]) - 2 * inset)


@dataclass
class HeadAtlas:
    """The head model's UV layout rasterized once at N×N texels.

    Attributes:
        size: N.
        position: (N, N, 3) float32 rest position of each texel on the neutral template
            (scaled head units); 0 where no face covers the texel.
        region: (N, N) int16 stand-in region index of the covering face, −1 where none.
        region_names: names of the region indices.
        eye_centres: (2, 3) rest eyeball centres [left, right] (the eye joints).
        nearest_covered: (2, N, N) int64 row and column of the nearest covered texel.
    """

    size: int
    position: np.ndarray
    region: np.ndarray
    region_names: tuple[str, ...]
    eye_centres: np.ndarray
    nearest_covered: np.ndarray

    @classmethod
    def build(cls, model: HeadModel, size: int) -> "HeadAtlas":
        """Rasterizes ``model``'s UV layout (``vt``, ``ft``) at ``size``² texels."""
        if model.vt is None or "vertex_region" not in model.extras:
            raise ValueError(f"{model.source}: the synthetic database needs a head model with UVs and "
                             "vertex regions (the stand-in head); set head_model.path = null")
        corners = torch.cat([model.vt * size, torch.ones(len(model.vt), 1)], 1)
        cameras = PinholeCameras(torch.eye(3)[None], torch.eye(3)[None], torch.zeros(1, 3), (size, size))
        fragments = rasterize_mesh(corners, model.ft, cameras)
        position = interpolate_face_corner_attributes(fragments, model.v_template[model.faces])[0].numpy()
        face_region = face_majority(np.asarray(model.extras["vertex_region"])[model.faces.numpy()])
        index = fragments.face_index[0].numpy()
        region = np.where(index >= 0, face_region[np.maximum(index, 0)], -1).astype(np.int16)
        _, nearest = ndimage.distance_transform_edt(region < 0, return_indices=True)
        return cls(size, position.astype(np.float32), region, tuple(str(n) for n in model.extras["region_names"]),
                   model().joints[0, 3:5].numpy(), nearest)

    def region_mask(self, *names: str) -> np.ndarray:
        """(N, N) bool, texels of the named regions."""
        return np.isin(self.region, [self.region_names.index(n) for n in names])


def face_majority(corner_values: np.ndarray) -> np.ndarray:
    """(F, 3) per-corner values → (F,) the value shared by ≥ 2 corners, else the first."""
    a, b, c = corner_values.T
    return np.where(b == c, b, a)


def _seed(*names: str) -> int:
    """A stable seed from names (same part → same texture on every person)."""
    return zlib.crc32("/".join(names).encode())


def _wave_noise(points: np.ndarray, seed: int, wavelength: float, waves: int = 8) -> np.ndarray:
    """Smooth noise in about [−1, 1] at (..., 3) positions: a sum of random plane waves."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(waves, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    phases = rng.uniform(0, 2 * np.pi, waves)
    values = np.sin(points @ directions.T * (2 * np.pi / wavelength) + phases)
    return values.sum(-1) / np.sqrt(waves / 2)


def _periodic_noise(u: np.ndarray, seed: int, frequencies: tuple[int, int], waves: int = 10) -> np.ndarray:
    """Noise in about [−1, 1] that is periodic in u ∈ [0, 1] (seam-free strands)."""
    rng = np.random.default_rng(seed)
    freq = rng.integers(frequencies[0], frequencies[1], waves)
    phases = rng.uniform(0, 2 * np.pi, waves)
    return np.sin(2 * np.pi * u[..., None] * freq + phases).sum(-1) / np.sqrt(waves / 2)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def paint_skin(skin: str, seed: int, atlas: HeadAtlas) -> np.ndarray:
    """(N, N, 3) float64 skin layer of an identity: its tone with smooth blotches, rosy cheeks,
    ears and nose tip (0 off the mesh). The parts are painted over it by :func:`paint_texture`."""
    colour = np.zeros(atlas.position.shape)
    covered = atlas.region >= 0
    p = atlas.position[covered]
    blotches = 1.0 + 0.045 * _wave_noise(p, seed, wavelength=0.35)
    rosy = np.exp(-((np.abs(p[:, 0]) - 0.17) ** 2 + (p[:, 1] + 0.06) ** 2) / (2 * 0.06 ** 2)) * (p[:, 2] > 0.1)
    region = atlas.region[covered]
    ears = np.isin(region, [atlas.region_names.index(n) for n in ("left_ear", "right_ear")])
    nose_tip = (region == atlas.region_names.index("nose")) & (p[:, 2] > 0.45)
    rosy = rosy + 0.6 * ears + 0.5 * nose_tip
    colour[covered] = np.array(SKIN_TONES[skin]) * blotches[:, None] + (0.05 * rosy)[:, None] * np.array(
        [1.0, -0.4, -0.5])
    return colour


def _paint_eyes(colour: np.ndarray, iris_colour: tuple, iris_deg: float, seed: int, atlas: HeadAtlas) -> None:
    """Sclera, iris (radial streaks, dark limbal ring) and pupil on both eyeballs (in place)."""
    for centre, name in zip(atlas.eye_centres, ("left_eyeball", "right_eyeball")):
        mask = atlas.region_mask(name)
        v = atlas.position[mask] - centre
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        angle = np.degrees(np.arccos(np.clip(v[:, 2], -1.0, 1.0)))
        around = np.arctan2(v[:, 1], v[:, 0])
        r = angle / iris_deg
        streaks = 0.85 + 0.15 * _periodic_noise(around / (2 * np.pi), seed, (20, 60))
        iris = np.array(iris_colour) * (streaks * (0.75 + 0.35 * r))[:, None]
        iris = iris * (1 - 0.6 * _smoothstep((r - 0.82) / 0.18))[:, None]
        pupil = _smoothstep((0.40 - r) / 0.05)[:, None]
        iris = iris * (1 - pupil) + np.array(_PUPIL) * pupil
        inside = _smoothstep((1.0 - r) / 0.05)[:, None]
        colour[mask] = np.array(_SCLERA) * (1 - inside) + iris * inside


def paint_texture(skin: str, skin_layer: np.ndarray, parts: dict, atlas: HeadAtlas) -> np.ndarray:
    """Paints a person's (N, 2N, 3) float32 atlas.

    Args:
        skin: the identity's skin tone name (eyebrow strokes blend into it).
        skin_layer: (N, N, 3) the identity's :func:`paint_skin` layer.
        parts: {category: (style, colour)} variant names of eyebrows, eyes, mouth, hair, hat
            and eyeglasses, and ``shirt`` → (None, colour).
    """
    size = atlas.size
    head = skin_layer.copy()
    # lip colour with a soft edge (the lip faces' border zig-zags along the mesh triangles)
    lips = ndimage.gaussian_filter(atlas.region_mask("upper_lip", "lower_lip").astype(float), _LIP_EDGE * size)
    lips = (0.8 * lips * (atlas.region >= 0))[..., None]
    head = head * (1 - lips) + lips * np.array(LIP_COLOURS[parts["mouth"][1]])
    interior = atlas.region_mask("mouth_interior")
    depth = np.clip((atlas.position[..., 2][interior] - 0.2) / 0.15, 0.0, 1.0)
    head[interior] = np.array(_MOUTH) * (0.45 + 0.55 * depth)[:, None]
    iris_size, iris_colour = parts["eyes"]
    _paint_eyes(head, IRIS_COLOURS[iris_colour], IRIS_SIZES_DEG[iris_size], _seed("eyes", iris_size, iris_colour),
                atlas)
    head = head[atlas.nearest_covered[0], atlas.nearest_covered[1]]  # bleed into empty texels (bilinear seams)
    atlas_colour = np.ones((size, 2 * size, 3))
    atlas_colour[:, :size] = np.clip(head, 0.0, 1.0)
    for slot, paint in _slot_painters(parts, np.array(SKIN_TONES[skin])).items():
        u0, v0, du, dv = ATLAS_SLOTS[slot]
        rows = slice(int(round(v0 * size)), int(round((v0 + dv) * size)))
        cols = slice(int(round(u0 * 2 * size)), int(round((u0 + du) * 2 * size)))
        height, width = rows.stop - rows.start, cols.stop - cols.start
        u, v = (np.arange(width) + 0.5) / width, ((np.arange(height) + 0.5) / height)[:, None]
        atlas_colour[rows, cols] = np.clip(paint(u, v), 0.0, 1.0)
    return atlas_colour.astype(np.float32)


def _slot_painters(parts: dict, skin: np.ndarray) -> dict:
    """{slot: paint(u (W,), v (H, 1)) → (H, W, 3)} for the accessories a person has (u across
    the slot, v down it)."""
    painters = {}
    hair_style, hair_colour = parts["hair"]
    if hair_colour is not None:
        seed = _seed("hair", hair_style, hair_colour)

        def hair(u, v):
            strands = 0.78 + 0.16 * _periodic_noise(u, seed, (30, 160)) + 0.06 * _periodic_noise(u, seed + 1, (3, 9))
            shade = strands[None, :] * (0.92 + 0.08 * np.cos(np.pi * v))
            return np.array(HAIR_COLOURS[hair_colour]) * shade[..., None]

        painters["hair"] = hair
    hat_style, hat_colour = parts["hat"]
    if hat_colour is not None:
        painters["hat"] = lambda u, v: np.array(HAT_COLOURS[hat_colour]) * (
            0.93 + 0.07 * np.sin(2 * np.pi * 48 * u)[None, :] * np.sin(2 * np.pi * 24 * v))[..., None]
    _, frame_colour = parts["eyeglasses"]
    if frame_colour is not None:
        painters["eyeglasses"] = lambda u, v: np.where(
            np.broadcast_to(u[None, :, None] < 0.5, (len(v), len(u), 1)), np.array(FRAME_COLOURS[frame_colour]),
            np.array(_LENS))
    brow_style, brow_colour = parts["eyebrows"]
    brow_seed = _seed("eyebrows", brow_style, brow_colour)

    def brows(u, v):
        strokes = 0.8 + 0.2 * _periodic_noise(u, brow_seed, (40, 120))
        edge = _smoothstep(np.minimum(v, 1 - v) / 0.35)  # rows near the outline blend towards the skin
        ink = (0.55 + 0.45 * edge) * strokes[None, :]
        return np.array(HAIR_COLOURS[brow_colour]) * ink[..., None] + skin * (1 - ink[..., None])

    painters["eyebrows"] = brows
    _, shirt_colour = parts["shirt"]
    shirt_seed = _seed("shirt", shirt_colour)
    painters["shirt"] = lambda u, v: np.array(SHIRT_COLOURS[shirt_colour]) * np.broadcast_to(
        0.95 + 0.05 * _periodic_noise(u, shirt_seed, (40, 90)), (len(v), len(u)))[..., None]
    return painters
