"""Fixtures of the preprocessing-chain tests: configs, synthetic faces with known landmarks,
and small videos (synthetic, real first frames, noise, corrupt).

Synthetic faces are frames of the embedded database's people (stand-in head, 512², the
database's renderer) with head rotations scaled down to near-frontal: their 68 + 2 landmarks
are the projected head-model landmarks, known exactly. Real clips come from
``../shared/data/real`` (the ``real_data_dir`` fixture skips where it is absent).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from pegasus.config import Config, load_config
from pegasus.data.images import to_uint8
from pegasus.utils.media import write_mp4

CONFS = Path(__file__).resolve().parents[2] / "confs"
SIZE = 512
# Fast but real settings: fewer tracking steps and small previews.
FAST = ["preprocess.tracking.rigid_iterations=40", "preprocess.tracking.iterations=120",
        "preprocess.preview_size=96"]
SYNTH_FRAMES = 4  # frames per synthetic person
SYNTH_POSE_SCALE = 0.3  # the database's head rotations scaled down to near-frontal
REAL_CLIP = "d18.mp4"  # plain background; d19 (glasses) and d20 (outdoors) in the folder test
REAL_FRAMES = 12
SHOT_CUT = 10.0  # mean absolute difference (0–255) between consecutive crops above which the shot changed


@dataclass(frozen=True)
class SyntheticFaces:
    """N rendered frames with known geometry.

    Attributes:
        images: (N, 512, 512, 3) uint8 RGB on white; masks: (N, 512, 512) float32 in [0, 1];
        labels: (N, 512, 512) uint8 ids; landmarks: (N, 70, 2) float64 pixels (68 iBUG + 2 iris).
    """

    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    landmarks: np.ndarray


@pytest.fixture(scope="session")
def sweep_smoothing() -> list[str]:
    """IMavatar's weak temporal smoothness, for the synthetic test clips: each sweeps a whole
    motion in a few frames (its signals span their range over the clip), far faster than a
    video moves, which the defaults (tuned on real video-rate motion) would hold back."""
    return ["preprocess.tracking.smooth_expression=0.1", "preprocess.tracking.smooth_pose=10.0",
            "preprocess.tracking.smooth_translation=10.0"]


@pytest.fixture(scope="session")
def chain_standin(tmp_path_factory) -> Path:
    """Where the stand-in head model is generated once for the session."""
    return tmp_path_factory.mktemp("standin") / "standin_head.npz"


@pytest.fixture(scope="session")
def chain_config(chain_standin):
    """chain_config(output_root, *overrides) → the preprocessing config writing to output_root."""

    def make(root: Path, *overrides: str) -> Config:
        return load_config(CONFS / "preprocess.conf", [f"preprocess.output_root={root}",
                                                       f"standin.output={chain_standin}", *FAST, *overrides])

    return make


@pytest.fixture(scope="session")
def chain_settings(chain_config, tmp_path_factory):
    """The shipped defaults (confs/preprocess.conf) as PreprocessSettings."""

    return chain_config(tmp_path_factory.mktemp("unused")).preprocess


@pytest.fixture(scope="session")
def synthetic_faces(chain_standin) -> SyntheticFaces:
    """Three people (target, one DB person, new person) × SYNTH_FRAMES near-frontal frames."""
    from pegasus.geometry.camera import cameras_from_imavatar
    from pegasus.headmodel import head_model_from_config
    from pegasus.synthdb.motion import sample_motion
    from pegasus.synthdb.people import sample_population
    from pegasus.synthdb.scene import SceneRenderer, video_cameras

    cfg = load_config(CONFS / "embedded.conf", [f"standin.output={chain_standin}", f"synth_db.image_size={SIZE}",
                                                "synth_db.supersample=1", "synth_db.texture_size=512",
                                                "synth_db.n_db=1"])
    settings = cfg.synth_db
    model = head_model_from_config(cfg)
    renderer = SceneRenderer(model, settings)
    parts = {"images": [], "masks": [], "labels": [], "landmarks": []}
    for person in sample_population(settings, renderer.shape_names):
        motion = sample_motion(settings, person.name, settings.train_video, SYNTH_FRAMES, renderer.expr_names,
                               model.n_expr)
        intrinsics, world_mats = video_cameras(settings, motion)
        cameras = cameras_from_imavatar(torch.from_numpy(intrinsics).float(), torch.from_numpy(world_mats).float(),
                                        (SIZE, SIZE))
        frames = renderer.render(renderer.scene(person), motion.expression, SYNTH_POSE_SCALE * motion.pose, cameras,
                                 motion.light_direction)
        parts["images"].append(to_uint8(frames.images))
        parts["masks"].append(frames.masks)
        parts["labels"].append(frames.labels)
        parts["landmarks"].append(frames.landmarks)
    return SyntheticFaces(**{name: np.concatenate(values) for name, values in parts.items()})


@dataclass(frozen=True)
class SyntheticVideo:
    """An H.264 mp4 (25 fps) of the first synthetic person; landmarks (T, 70, 2) its known ones."""

    path: Path
    landmarks: np.ndarray


@pytest.fixture(scope="session")
def synthetic_video(tmp_path_factory, synthetic_faces) -> SyntheticVideo:
    path = tmp_path_factory.mktemp("synthetic_video") / "synthetic.mp4"
    write_mp4(path, synthetic_faces.images[:SYNTH_FRAMES], fps=25.0, quality=9.0)
    return SyntheticVideo(path, synthetic_faces.landmarks[:SYNTH_FRAMES])


@pytest.fixture(scope="session")
def noise_video(tmp_path_factory) -> Path:
    """An mp4 of random noise: decodable frames without a face."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("noise") / "noise.mp4"
    return write_mp4(path, (rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for _ in range(6)), fps=25.0)


@pytest.fixture
def corrupt_video(tmp_path) -> Path:
    """A file named .mp4 that holds no video."""
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    return path


@pytest.fixture
def real_clip(real_data_dir) -> Path:
    return real_data_dir / REAL_CLIP


@dataclass(frozen=True)
class RealCrops:
    """The first REAL_FRAMES frames of a real clip, cropped like the chain does (fixed box).

    Attributes:
        crops: (T, 512, 512, 3) uint8 RGB; meshes: (T, 478, 2) float64 crop pixels (NaN: no face).
        same_shot: (T − 1,) bool, frames k and k + 1 belong to one shot (d20 starts with a cut).
    """

    crops: np.ndarray
    meshes: np.ndarray
    same_shot: np.ndarray


@pytest.fixture(scope="session")
def _real_crop_cache() -> dict:
    return {}


@pytest.fixture
def real_crops(real_data_dir, _real_crop_cache, chain_settings) -> dict[str, RealCrops]:
    """{clip stem: RealCrops} of the three real clips (computed once per session)."""
    from pegasus.preprocess.crop import crop_frame, face_boxes_to_crops, source_to_crop
    from pegasus.preprocess.face import MESH_POINT_COUNT, FaceMeshTracker, mesh_box
    from pegasus.preprocess.video import probe_video, read_frames

    if not _real_crop_cache:
        for path in sorted(real_data_dir.glob("*.mp4")):
            info = probe_video(path)
            frames = [frame for _, frame in read_frames(path, max_frames=REAL_FRAMES)]
            with FaceMeshTracker(0.5, 0.5) as tracker:
                meshes = np.stack([m if (m := tracker(f)) is not None else np.full((MESH_POINT_COUNT, 2), np.nan)
                                   for f in frames])
            boxes = face_boxes_to_crops(mesh_box(meshes), (info.width, info.height), info.fps, chain_settings.crop)
            crops = np.stack([crop_frame(f, b, SIZE) for f, b in zip(frames, boxes)])
            change = np.abs(np.diff(crops.astype(np.float32), axis=0)).mean((1, 2, 3))
            _real_crop_cache[path.stem] = RealCrops(crops, source_to_crop(meshes, boxes, SIZE), change < SHOT_CUT)
    return _real_crop_cache
