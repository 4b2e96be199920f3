"""Assembles one person (head + eyebrows + accessories + texture) and renders video frames.

A person's scene is one triangle mesh per frame: the head model posed by FLAME's LBS, the
eyebrow decal glued to its posed surface, and the accessories, each posed rigidly by its
joint's skinning transform. It is rendered with :func:`pegasus.render.mesh.render_mesh`
(z-buffer, perspective-correct texture lookup, Lambertian + ambient light, soft anti-aliased
mask, exact per-face labels, soft per-label coverage for part masks).

Stand-in regions map to CelebAMask-HQ labels as follows (``l_`` = the subject's left,
x > 0): scalp, forehead, face skin, eyelids and brow areas → skin; nose → nose; upper /
lower lip → u_lip / l_lip; mouth interior → mouth; left / right eyeball → l_eye / r_eye;
left / right ear → l_ear / r_ear; neck → neck. The eyebrow decal carries l_brow / r_brow,
and the accessories hair, hat, eyeglasses (frames and tinted lenses) and cloth (the shirt).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..data.parts import category, label_id
from ..geometry.camera import PinholeCameras, cameras_from_imavatar, cameras_to_imavatar, project_points
from ..headmodel import HeadModel
from ..headmodel.lbs import POSE_SLOTS, skin_points
from ..render.mesh import render_mesh
from .accessories import (BROW_SHAPES, GLASSES_STYLES, HAIR_STYLES, HAT_STYLES, AccessoryMesh, HeadFit, SurfaceDecal,
                          brow_decal, glasses_mesh, hair_mesh, hat_mesh, shirt_mesh)
from .appearance import HeadAtlas, atlas_uvs, face_majority, paint_skin, paint_texture
from .motion import VideoMotion
from .people import Person
from .settings import SynthDbSettings

__all__ = ["REGION_LABELS", "PersonScene", "RenderedFrames", "SceneRenderer", "video_cameras", "orbit_camera"]

#: Stand-in region name → CelebAMask-HQ label name.
REGION_LABELS: dict[str, str] = {
    "scalp": "skin", "forehead": "skin", "face_skin": "skin", "nose": "nose", "upper_lip": "u_lip",
    "lower_lip": "l_lip", "mouth_interior": "mouth", "left_eyeball": "l_eye", "right_eyeball": "r_eye",
    "left_eyelid": "skin", "right_eyelid": "skin", "left_ear": "l_ear", "right_ear": "r_ear", "neck": "neck",
    "left_brow_area": "skin", "right_brow_area": "skin",
}
_JOINTS = tuple(POSE_SLOTS)
_CACHE_SIZE = 4  # identities whose skull fit and skin layer a renderer keeps (ground truth reuses them)


@dataclass
class PersonScene:
    """Everything needed to render one person (CPU tensors). Vertices are ordered head (V),
    decal (D), accessories (N).

    Attributes:
        person: the person.
        shape: (n_shape,) identity coefficients of the head model.
        decal: the eyebrow decal (glued to the posed head each frame).
        accessory_vertices: (N, 3) rest positions of the accessories, scaled head units.
        accessory_weights: (N, 5) one-hot joint of each accessory vertex.
        faces: (F, 3) int64 over all vertices.
        face_uvs: (F, 3, 2) float32 atlas coordinates of each face corner.
        face_labels: (F,) int64 semantic id per face.
        texture: (N_t, 2 N_t, 3) float32 colour atlas.
    """

    person: Person
    shape: torch.Tensor
    decal: SurfaceDecal
    accessory_vertices: torch.Tensor
    accessory_weights: torch.Tensor
    faces: torch.Tensor
    face_uvs: torch.Tensor
    face_labels: torch.Tensor
    texture: torch.Tensor


@dataclass
class RenderedFrames:
    """B rendered frames of H×W pixels.

    Attributes:
        images: (B, H, W, 3) float32 RGB in [0, 1] on a white background.
        masks: (B, H, W) float32 soft foreground masks in [0, 1].
        labels: (B, H, W) uint8 CelebAMask-HQ ids.
        part_masks: {category: (B, H, W) float32} soft masks of the requested categories.
        landmarks: (B, 70, 2) float64 projected head-model landmarks, pixels.
    """

    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    part_masks: dict[str, np.ndarray]
    landmarks: np.ndarray


def video_cameras(settings: SynthDbSettings, motion: VideoMotion) -> tuple[np.ndarray, np.ndarray]:
    """IMavatar cameras of a video: intrinsics (4,) and world_mat (T, 3, 4), float64.

    The camera looks down −z at height ``camera_height`` from ``camera_distance``; its centre
    moves by the video's smooth ``camera_offset``; converted by ``cameras_to_imavatar``.
    """
    count, size = len(motion), settings.image_size
    focal = settings.focal * size
    K = torch.tensor([[focal, 0.0, size / 2], [0.0, focal, size / 2], [0.0, 0.0, 1.0]], dtype=torch.float64)
    R = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))  # OpenCV axes looking down −z
    centre = torch.tensor([0.0, settings.camera_height, settings.camera_distance], dtype=torch.float64)
    t = -(centre[None] + torch.from_numpy(motion.camera_offset)) @ R.T  # camera centres shaken by the offset
    cameras = PinholeCameras(K.expand(count, 3, 3), R.expand(count, 3, 3), t, (size, size))
    intrinsics, world_mat = cameras_to_imavatar(cameras)
    return intrinsics[0].numpy(), world_mat.numpy()


def orbit_camera(settings: SynthDbSettings, yaw_deg: float, image_size: int) -> PinholeCameras:
    """A camera of the database's framing, turned ``yaw_deg`` around the head (contact sheet)."""
    yaw = math.radians(yaw_deg)
    cos, sin = math.cos(yaw), math.sin(yaw)
    rotation = torch.tensor([[cos, 0.0, sin], [0.0, 1.0, 0.0], [-sin, 0.0, cos]])
    translation = torch.tensor([[0.0], [-settings.camera_height], [-settings.camera_distance]])
    world_mat = torch.cat([rotation, translation], 1)[None]
    intrinsics = torch.tensor([-settings.focal, settings.focal, 0.5, 0.5])
    return cameras_from_imavatar(intrinsics, world_mat, (image_size, image_size))


def place_decal(decal: SurfaceDecal, head_vertices: torch.Tensor, head_faces: torch.Tensor) -> torch.Tensor:
    """(B, V, 3) posed head vertices → (B, D, 3) decal vertices on the posed surface."""
    corners = head_vertices[:, head_faces[torch.from_numpy(decal.face_index)]]  # (B, D, 3, 3)
    points = (corners * torch.from_numpy(decal.barycentric).to(corners)[None, :, :, None]).sum(2)
    normals = torch.linalg.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0])
    return points + decal.lift * torch.nn.functional.normalize(normals, dim=-1)


def _remember(cache: dict, key, value) -> None:
    """Stores a value, dropping the oldest entries beyond _CACHE_SIZE."""
    cache[key] = value
    while len(cache) > _CACHE_SIZE:
        cache.pop(next(iter(cache)))


class SceneRenderer:
    """Builds and renders people with one head model (state shared by all jobs of a process).

    Args:
        model: the stand-in head model (needs UVs, vertex regions and component names).
        settings: the database settings.
    """

    def __init__(self, model: HeadModel, settings: SynthDbSettings):
        for key in ("vertex_region", "region_names", "shape_names", "expr_names"):
            if key not in model.extras:
                raise ValueError(f"{model.source}: the synthetic database needs the stand-in head model "
                                 f"(no {key!r}); set head_model.path = null")
        self.model = model
        self.settings = settings
        self.atlas = HeadAtlas.build(model, settings.texture_size)
        self.region_names = tuple(str(n) for n in model.extras["region_names"])
        self.regions = np.asarray(model.extras["vertex_region"])
        self.shape_names = tuple(str(n) for n in model.extras["shape_names"])
        self.expr_names = tuple(str(n) for n in model.extras["expr_names"])
        faces = model.faces.numpy()
        region_label = np.array([label_id(REGION_LABELS[n]) for n in self.region_names])
        self.head_labels = region_label[face_majority(self.regions[faces])]
        self.head_uvs = atlas_uvs(None, model.vt.numpy()[model.ft.numpy()], settings.texture_size)
        self._template = model.v_template.numpy().astype(np.float64)
        landmarks = model().landmarks[0].numpy()
        self._template_brows = np.stack([landmarks[22:27], landmarks[21:16:-1]])  # [left, right], inner → outer
        self._brow_decals: dict[str, SurfaceDecal] = {}
        self._fits: dict[bytes, HeadFit] = {}
        self._skins: dict[tuple[str, int], np.ndarray] = {}

    def shape_vector(self, person: Person) -> torch.Tensor:
        """(n_shape,) identity coefficients of a person in the model's component order."""
        shape = torch.zeros(self.model.n_shape)
        for name, value in person.shape_coefficients().items():
            index = self.shape_names.index(name)
            if index < self.model.n_shape:
                shape[index] = value
        return shape

    @torch.no_grad()
    def head_fit(self, person: Person) -> HeadFit:
        """Measurements of the person's rest head (identity applied, neutral, zero pose)."""
        shape = self.shape_vector(person)
        key = shape.numpy().tobytes()
        if key not in self._fits:
            rest = self.model(shape[None])
            _remember(self._fits, key, HeadFit(rest.vertices[0].numpy(), self.regions, self.region_names,
                                               rest.landmarks[0].numpy(), rest.joints[0].numpy()))
        return self._fits[key]

    def skin_layer(self, person: Person) -> np.ndarray:
        """The person's painted skin (identity only; the parts are painted over a copy)."""
        key = (person.identity.skin, person.identity.texture_seed)
        if key not in self._skins:
            _remember(self._skins, key, paint_skin(*key, self.atlas))
        return self._skins[key]

    def accessories(self, person: Person) -> list[AccessoryMesh]:
        """The person's shirt, hair, hat and eyeglasses meshes in rest space."""
        fit = self.head_fit(person)
        meshes = [shirt_mesh(fit)]
        hair = HAIR_STYLES[person.part("hair").style] if person.has_part("hair") else None
        if hair is not None:
            meshes.append(hair_mesh(hair, fit))
        if person.has_part("hat"):
            meshes.append(hat_mesh(HAT_STYLES[person.part("hat").style], fit, hair))
        if person.has_part("eyeglasses"):
            meshes.append(glasses_mesh(GLASSES_STYLES[person.part("eyeglasses").style], fit))
        return meshes

    def brow_decal(self, style: str) -> SurfaceDecal:
        """The eyebrow decal of a brow style (identity-independent, built once per style)."""
        if style not in self._brow_decals:
            self._brow_decals[style] = brow_decal(BROW_SHAPES[style], self._template, self.model.faces.numpy(),
                                                  self.head_labels == label_id("skin"), self._template_brows)
        return self._brow_decals[style]

    def scene(self, person: Person) -> PersonScene:
        """Builds the person's meshes and texture."""
        size = self.settings.texture_size
        meshes = self.accessories(person)
        decal = self.brow_decal(person.part("eyebrows").style)
        texture = paint_texture(person.identity.skin, self.skin_layer(person), person.texture_parts(), self.atlas)
        counts = [self.model.n_vertices, len(decal.face_index)] + [len(m.vertices) for m in meshes]
        offsets = np.cumsum([0] + counts)
        pieces = [(self.model.faces.numpy(), self.head_uvs, self.head_labels),
                  (decal.faces, atlas_uvs(decal.name, decal.uvs, size), decal.labels)]
        pieces += [(m.faces, atlas_uvs(m.name, m.uvs, size), m.labels) for m in meshes]
        weights = np.concatenate([np.tile(np.eye(len(_JOINTS))[_JOINTS.index(m.joint)], (len(m.vertices), 1))
                                  for m in meshes])
        return PersonScene(
            person=person,
            shape=self.shape_vector(person),
            decal=decal,
            accessory_vertices=torch.from_numpy(np.concatenate([m.vertices for m in meshes])).float(),
            accessory_weights=torch.from_numpy(weights).float(),
            faces=torch.from_numpy(np.concatenate([f + o for (f, _, _), o in zip(pieces, offsets)])).long(),
            face_uvs=torch.from_numpy(np.concatenate([uv for _, uv, _ in pieces])).float(),
            face_labels=torch.from_numpy(np.concatenate([label for _, _, label in pieces])).long(),
            texture=torch.from_numpy(texture),
        )

    @torch.no_grad()
    def render(self, scene: PersonScene, expression: np.ndarray, pose: np.ndarray, cameras: PinholeCameras,
               light_direction: np.ndarray, categories: Sequence[str] = ()) -> RenderedFrames:
        """Renders B frames.

        Args:
            expression: (B, n_expr); pose: (B, 15) axis-angle; cameras: B cameras (float32).
            light_direction: (3,) towards the light, camera space (OpenCV axes).
            categories: part categories whose soft masks are returned.
        """
        out = self.model(scene.shape[None], torch.as_tensor(expression, dtype=torch.float32),
                         torch.as_tensor(pose, dtype=torch.float32))
        batch = out.vertices.shape[0]
        decal = place_decal(scene.decal, out.vertices, self.model.faces)
        accessories = skin_points(scene.accessory_vertices.expand(batch, -1, -1), scene.accessory_weights,
                                  out.transforms)
        part_labels = {name: sorted(category(name).label_ids) for name in categories}
        coverage_labels = sorted({i for ids in part_labels.values() for i in ids})
        render = render_mesh(torch.cat([out.vertices, decal, accessories], 1), scene.faces, cameras,
                             texture=scene.texture, face_uvs=scene.face_uvs, face_labels=scene.face_labels,
                             coverage_labels=coverage_labels, light_direction=torch.as_tensor(light_direction).float(),
                             ambient=self.settings.ambient, diffuse=self.settings.diffuse,
                             background_label=label_id("background"), supersample=self.settings.supersample)
        part_masks = {name: render.label_coverage[..., [coverage_labels.index(i) for i in ids]].sum(-1).numpy()
                      for name, ids in part_labels.items()}
        uv, _ = project_points(cameras, out.landmarks.to(cameras.K.dtype))
        return RenderedFrames(render.image.numpy(), render.mask.numpy(), render.labels.to(torch.uint8).numpy(),
                              part_masks, uv.double().numpy())
