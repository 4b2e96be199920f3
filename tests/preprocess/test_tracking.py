"""FLAME tracking (pegasus.preprocess.tracking) on landmarks projected from known parameters.

Ground truth follows the synthetic database: synthdb motion and cameras, landmarks of the
full head model projected with ``cameras_from_imavatar`` + ``project_points``.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from pegasus.config import ConfigError, load_config
from pegasus.data.imavatar import read_flame_params, write_flame_params
from pegasus.geometry.camera import cameras_from_imavatar, normalized_to_pixels, project_points
from pegasus.headmodel import HeadModel, head_model_from_config
from pegasus.headmodel.lbs import POSE_SLOTS, axis_angle_to_matrix
from pegasus.preprocess.tracking import (MIN_POINTS, InitialParams, LandmarkModel, TrackingError, TrackingSettings,
                                         track_videos)
from pegasus.synthdb.motion import sample_motion
from pegasus.synthdb.scene import video_cameras

CONFS = Path(__file__).resolve().parents[2] / "confs"
SIZE = 256  # synth_db.image_size of base.conf
FAST = ["preprocess.tracking.rigid_iterations=60", "preprocess.tracking.iterations=300"]
# Weak priors, no smoothness, a longer run: the fit should then reach the landmarks almost exactly.
EXACT = dict(shape_prior=1e-4, expression_prior=1e-4, pose_prior=0.0, smooth_expression=0.0, smooth_pose=0.0,
             smooth_translation=0.0, lr=0.05, lr_decay=0.01, rigid_iterations=100, iterations=600)


@dataclass
class Clip:
    """A video of T frames with known parameters; landmarks (T, 70, 2) pixels (noisy), clean."""

    landmarks: np.ndarray
    clean: np.ndarray
    shape: np.ndarray
    expression: np.ndarray
    pose: np.ndarray
    world_mats: np.ndarray
    names: list[str]


@pytest.fixture(scope="module")
def cfg(tmp_path_factory, sweep_smoothing):
    standin = tmp_path_factory.mktemp("standin") / "standin_head.npz"
    # FLAME's component counts (the stand-in's zero-padded), which the fit's priors were tuned with
    base = load_config(CONFS / "base.conf", [f"standin.output={standin}", "head_model.n_shape=100",
                                             "head_model.n_expr=50"])
    return base.with_overrides([f"preprocess.tracking.focal={base.synth_db.focal}", *FAST, *sweep_smoothing])


@pytest.fixture(scope="module")
def head_model(cfg) -> HeadModel:
    return head_model_from_config(cfg)


@pytest.fixture(scope="module")
def settings(cfg) -> TrackingSettings:
    return cfg.preprocess.tracking


def render_landmarks(head_model: HeadModel, shape, expression, pose, intrinsics, world_mats) -> np.ndarray:
    """(T, 70, 2) pixel landmarks of the full head model, projected as the synthetic database does."""
    f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        points = head_model(f32(shape)[None], f32(expression), f32(pose)).landmarks
        cameras = cameras_from_imavatar(f32(intrinsics), f32(world_mats), (SIZE, SIZE))
        uv, depth = project_points(cameras, points)
    assert bool((depth > 0).all())
    return uv.double().numpy()


def make_clip(cfg, head_model: HeadModel, frames: int, person: str = "p0", video: str = "train", noise: float = 0.0,
              start: int = 40, seed: int = 0) -> Clip:
    """``frames`` consecutive frames of a 100-frame synthdb motion of a random identity."""
    synth = cfg.synth_db
    motion = sample_motion(synth, person, video, 100, head_model.extras["expr_names"], head_model.n_expr)
    intrinsics, world_mats = video_cameras(synth, motion)
    rng = np.random.default_rng(seed)
    shape = np.zeros(head_model.n_shape)
    shape[:len(head_model.extras["shape_names"])] = rng.normal(size=len(head_model.extras["shape_names"]))
    window = slice(start, start + frames)
    clean = render_landmarks(head_model, shape, motion.expression[window], motion.pose[window], intrinsics,
                             world_mats[window])
    return Clip(clean + noise * rng.normal(size=clean.shape), clean, shape, motion.expression[window],
                motion.pose[window], world_mats[window], [str(k + 1) for k in range(frames)])


def fitted_params(video) -> dict[str, np.ndarray]:
    frames = video.params.frames
    return {name: np.stack([getattr(f, field) for f in frames])
            for name, field in (("world_mats", "world_mat"), ("expression", "expression"), ("pose", "pose"))}


def rotation_error(pose_a: np.ndarray, pose_b: np.ndarray) -> np.ndarray:
    """(T,) angle in radians between the neck rotations of two (T, 15) poses."""
    a, b = (axis_angle_to_matrix(torch.as_tensor(p[:, POSE_SLOTS["neck"]])) for p in (pose_a, pose_b))
    cos = ((a.transpose(1, 2) @ b).diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2
    return torch.arccos(cos.clamp(-1, 1)).numpy()


def jitter(landmarks: np.ndarray) -> float:
    """Mean norm of the second temporal difference of (T, L, 2) landmarks, pixels."""
    return float(np.linalg.norm(landmarks[2:] - 2 * landmarks[1:-1] + landmarks[:-2], axis=-1).mean())


@pytest.fixture(scope="module")
def clean_fit(cfg, head_model, settings):
    clip = make_clip(cfg, head_model, 8)
    result = track_videos([clip.landmarks], SIZE, head_model, dataclasses.replace(settings, **EXACT), [clip.names])
    return clip, result.videos[0]


def test_landmark_model_equals_the_full_head_model(head_model):
    generator = torch.Generator().manual_seed(1)
    shape = torch.randn(1, head_model.n_shape, generator=generator)
    expression = torch.randn(5, head_model.n_expr, generator=generator)
    pose = 0.3 * torch.randn(5, 15, generator=generator)
    model = LandmarkModel(head_model)
    assert model.v_template.shape[0] < head_model.n_vertices / 10
    with torch.no_grad():
        expected = head_model(shape, expression, pose).landmarks
        torch.testing.assert_close(model(shape, expression, pose), expected, atol=2e-6, rtol=0)


def test_recovers_landmarks_camera_and_head_rotation(clean_fit, head_model):
    clip, video = clean_fit
    assert video.reprojection_error.mean() < 0.05  # pixels at 256²
    params = fitted_params(video)
    reproduced = render_landmarks(head_model, video.params.shape_params, params["expression"], params["pose"],
                                  video.params.intrinsics, params["world_mats"])
    assert np.linalg.norm(reproduced - clip.clean, axis=-1).max() < 0.25
    assert np.abs(params["world_mats"][:, :, 3] - clip.world_mats[:, :, 3]).max() < 0.02  # depth ≈ 4
    assert np.all(params["world_mats"][:, :, :3] == np.eye(3))
    assert rotation_error(params["pose"], clip.pose).max() < np.radians(0.5)
    assert np.all(params["pose"][:, POSE_SLOTS["global"]] == 0)
    assert not video.interpolated.any() and video.losses["landmark"] > 0


def test_noise_gives_an_error_near_the_noise_level_and_is_filtered(cfg, head_model, settings):
    sigma = 1.0
    clip = make_clip(cfg, head_model, 8, noise=sigma)
    video = track_videos([clip.landmarks], SIZE, head_model, settings, [clip.names]).videos[0]
    expected = sigma * np.sqrt(np.pi / 2)  # mean distance of a perfect fit to the noisy points
    assert 0.75 * expected < video.reprojection_error.mean() < 1.1 * expected
    assert np.linalg.norm(video.landmarks - clip.clean, axis=-1).mean() < 0.75 * sigma


def test_temporal_smoothness_reduces_jitter(cfg, head_model, settings):
    clip = make_clip(cfg, head_model, 16, noise=1.5)
    rough_settings = dataclasses.replace(settings, smooth_expression=0.0, smooth_pose=0.0, smooth_translation=0.0)
    rough, smooth = (track_videos([clip.landmarks], SIZE, head_model, s, [clip.names]).videos[0]
                     for s in (rough_settings, settings))
    assert jitter(rough.landmarks) > 3 * jitter(clip.clean)  # the noise does reach the unsmoothed fit
    assert jitter(smooth.landmarks) < 0.6 * jitter(rough.landmarks)
    error = [np.linalg.norm(v.landmarks - clip.clean, axis=-1).mean() for v in (rough, smooth)]
    assert error[1] < error[0]


def test_frames_without_landmarks_are_interpolated(cfg, head_model, settings):
    clip = make_clip(cfg, head_model, 10)
    landmarks = clip.landmarks.copy()
    landmarks[[0, 5, 6]] = np.nan
    landmarks[3, 68:] = np.nan  # iris missing: still fitted on its other points
    landmarks[8, MIN_POINTS - 1:] = np.nan  # too few points left: missing
    video = track_videos([landmarks], SIZE, head_model, settings, [clip.names]).videos[0]
    missing = np.isin(np.arange(10), [0, 5, 6, 8])
    assert np.array_equal(video.interpolated, missing)
    assert np.isnan(video.reprojection_error[missing]).all() and np.isfinite(video.reprojection_error[~missing]).all()
    assert video.summary()["interpolated"] == ["1", "6", "7", "9"] and video.summary()["fitted"] == 6
    params = fitted_params(video)
    for values in (params["expression"], params["pose"], params["world_mats"]):
        np.testing.assert_allclose(values[0], values[1], atol=1e-12)
        np.testing.assert_allclose(values[5], (2 * values[4] + values[7]) / 3, atol=1e-6)
        np.testing.assert_allclose(values[6], (values[4] + 2 * values[7]) / 3, atol=1e-6)
        np.testing.assert_allclose(values[8], (values[7] + values[9]) / 2, atol=1e-6)
    assert all(f.flame_keypoints is not None and np.isfinite(f.flame_keypoints).all() for f in video.params.frames)
    # the motion is smooth, so the interpolated frames stay close to the truth
    assert np.linalg.norm(video.landmarks[5:7] - clip.clean[5:7], axis=-1).mean() < 1.0


def test_landmarks_the_head_model_lacks_are_ignored(cfg, head_model, settings):
    """FLAME's 51-point static embedding: the jaw-contour landmarks are placeholders, their points ignored."""
    quick = dataclasses.replace(settings, rigid_iterations=20, iterations=60)
    clip = make_clip(cfg, head_model, 4)
    lacking = copy.deepcopy(head_model)
    lacking.landmark_valid[:17] = False
    moved, without = clip.landmarks.copy(), clip.landmarks.copy()
    moved[:, :17] += 40.0  # far off, and ignored
    moved[1, 17:] = np.nan  # only jaw-contour points left: a missing frame
    without[:, :17] = np.nan
    without[1] = np.nan
    ignored = track_videos([moved], SIZE, lacking, quick, [clip.names]).videos[0]
    expected = track_videos([without], SIZE, head_model, quick, [clip.names]).videos[0]
    assert ignored.interpolated.tolist() == [False, True, False, False]
    np.testing.assert_allclose(ignored.landmarks, expected.landmarks, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ignored.reprojection_error, expected.reprojection_error, rtol=0, atol=1e-9)


def test_shape_is_shared_across_the_videos_of_a_person(cfg, head_model, settings):
    quick = dataclasses.replace(settings, rigid_iterations=20, iterations=60)
    clips = [make_clip(cfg, head_model, 4, video=name) for name in ("train", "test")]
    args = ([c.landmarks for c in clips], SIZE, head_model)
    shared = track_videos(*args, quick, [c.names for c in clips]).videos
    alone = track_videos(*args, dataclasses.replace(quick, shared_shape=False), [c.names for c in clips]).videos
    assert np.array_equal(shared[0].params.shape_params, shared[1].params.shape_params)
    assert not np.allclose(alone[0].params.shape_params, alone[1].params.shape_params)
    assert np.any(shared[0].params.shape_params != 0)


def test_activation_ranges_and_fixed_components_hold_in_the_fit(cfg, head_model, settings):
    """A head model of blendshape activations keeps its fit in range; a fixed component stays zero."""
    quick = dataclasses.replace(settings, rigid_iterations=20, iterations=60)
    clip = make_clip(cfg, head_model, 4)
    names = [str(n) for n in head_model.extras["expr_names"]]
    free = track_videos([clip.landmarks], SIZE, head_model, quick, [clip.names]).videos[0]
    assert (np.stack([f.expression for f in free.params.frames]) < 0).any()  # a signed basis goes negative
    bounded_model = copy.copy(head_model)
    bounded_model.expression_range = (0.0, 1.0)
    fixed = dataclasses.replace(quick, fixed_expressions=(names[0],))
    bounded = track_videos([clip.landmarks], SIZE, bounded_model, fixed, [clip.names]).videos[0]
    expression = np.stack([f.expression for f in bounded.params.frames])
    assert expression.min() >= 0 and expression.max() <= 1 and not expression[:, 0].any()
    with pytest.raises(TrackingError, match="'brows' is not an expression component"):
        track_videos([clip.landmarks], SIZE, head_model, dataclasses.replace(quick, fixed_expressions=("brows",)),
                     [clip.names])


def test_written_flame_params_load_and_reproject_like_the_dataset(clean_fit, head_model, tmp_path):
    clip, video = clean_fit
    path = tmp_path / "flame_params.json"
    write_flame_params(path, video.params)
    loaded = read_flame_params(path)
    assert [f.name for f in loaded.frames] == clip.names
    np.testing.assert_array_equal(loaded.intrinsics, video.params.intrinsics)
    np.testing.assert_array_equal(loaded.shape_params, video.params.shape_params)
    for written, read in zip(video.params.frames, loaded.frames):
        for field in ("world_mat", "expression", "pose", "bbox", "flame_keypoints"):
            np.testing.assert_array_equal(getattr(read, field), getattr(written, field))
    params = {k: np.stack([getattr(f, k) for f in loaded.frames]) for k in ("world_mat", "expression", "pose")}
    projected = render_landmarks(head_model, loaded.shape_params, params["expression"], params["pose"],
                                 loaded.intrinsics, params["world_mat"])
    stored = normalized_to_pixels(torch.from_numpy(np.stack([f.flame_keypoints for f in loaded.frames])),
                                  (SIZE, SIZE)).numpy()
    assert np.abs(projected - stored).max() < 1e-3
    assert np.abs(stored - video.landmarks).max() < 1e-9
    assert np.linalg.norm(stored - clip.landmarks, axis=-1).mean() < 0.05
    bbox = np.stack([f.bbox for f in loaded.frames])
    np.testing.assert_allclose(bbox[:, :2], (2 * stored[:, :68].min(1) / SIZE) - 1, atol=1e-9)
    np.testing.assert_allclose(bbox[:, 2:], (2 * stored[:, :68].max(1) / SIZE) - 1, atol=1e-9)
    summary = video.summary()
    assert summary["frames"] == 8 and summary["reprojection_error_px"]["max"] < 0.05


@pytest.mark.parametrize("landmarks, names, size, message", [
    (np.zeros((3, 68, 2)), ["1", "2", "3"], SIZE, r"must be \(T, 70, 2\).*\(3, 68, 2\)"),
    (np.zeros((70, 2)), ["1"], SIZE, r"must be \(T, 70, 2\)"),
    (np.zeros((0, 70, 2)), [], SIZE, "T ≥ 1"),
    (np.zeros((3, 70, 2)), ["1", "2"], SIZE, "3 landmark frames but 2 frame names"),
    (np.full((3, 70, 2), np.inf), ["1", "2", "3"], SIZE, "infinite"),
    (np.full((3, 70, 2), np.nan), ["1", "2", "3"], SIZE, "no frame has at least 3 finite landmarks"),
    (np.zeros((2, 70, 2)), ["1", "1.png"], SIZE, r"frame names repeat: \['1'\]"),
    (np.zeros((3, 70, 2)), ["1", "2", "3"], 0, "image_size"),
])
def test_bad_input_is_a_clear_error(head_model, settings, landmarks, names, size, message):
    good = np.full((2, 70, 2), 100.0)
    with pytest.raises(TrackingError, match=message):
        track_videos([good, landmarks], size, head_model, settings, [["1", "2"], names])


def near_truth(clip: Clip, seed: int = 3) -> InitialParams:
    """The clip's true parameters, perturbed (global rotation left at zero)."""
    rng = np.random.default_rng(seed)
    pose = clip.pose.copy()
    pose[:, 3:] += 0.02 * rng.normal(size=pose[:, 3:].shape)
    return InitialParams(clip.expression + 0.05 * rng.normal(size=clip.expression.shape), pose,
                         clip.world_mats[:, :, 3] + 0.01 * rng.normal(size=(len(pose), 3)),
                         clip.shape + 0.05 * rng.normal(size=clip.shape.shape))


def test_an_initialisation_near_the_truth_converges_in_fewer_iterations(cfg, head_model, settings):
    clip = make_clip(cfg, head_model, 8)
    assert np.all(clip.pose[:, POSE_SLOTS["global"]] == 0)
    short = dataclasses.replace(settings, rigid_iterations=0, iterations=100)  # 100 steps against 60 + 300
    zero, zero_short, started = (track_videos([clip.landmarks], SIZE, head_model, s, [clip.names], initial=i).videos[0]
                                 for s, i in ((settings, None), (short, None), (short, [near_truth(clip)])))
    error = {name: v.reprojection_error.mean() for name, v in (("zero", zero), ("zero_short", zero_short),
                                                              ("started", started))}
    assert error["started"] <= error["zero"] < 0.2, error
    assert error["zero_short"] > 5 * error["zero"], error  # the short run does need the good start


def test_nan_rows_and_missing_fields_start_like_no_initialisation(cfg, head_model, settings):
    clip = make_clip(cfg, head_model, 4)
    quick = dataclasses.replace(settings, rigid_iterations=0, iterations=1, lr=1e-9)
    none = InitialParams(np.full(clip.expression.shape, np.nan), np.full(clip.pose.shape, np.nan))
    plain, empty = (track_videos([clip.landmarks], SIZE, head_model, quick, [clip.names], initial=i).videos[0]
                    for i in (None, [none]))
    np.testing.assert_allclose(empty.landmarks, plain.landmarks, atol=1e-4)
    given = near_truth(clip)
    partial = InitialParams(given.expression, given.pose, np.where(np.arange(4)[:, None] == 2, np.nan,
                                                                   given.translation))
    fitted = fitted_params(track_videos([clip.landmarks], SIZE, head_model, quick, [clip.names],
                                        initial=[partial]).videos[0])
    start = fitted_params(plain)["world_mats"][:, :, 3]
    np.testing.assert_allclose(fitted["world_mats"][[0, 1, 3], :, 3], given.translation[[0, 1, 3]], atol=1e-5)
    np.testing.assert_allclose(fitted["world_mats"][2, :, 3], start[2], atol=1e-5)  # the closed form
    np.testing.assert_allclose(fitted["pose"], given.pose, atol=1e-5)


@pytest.mark.parametrize("change, message", [
    (dict(expression=np.zeros((3, 50))), r"video 1: initial expression must be a numeric \(T, n_expr\) = \(2, 50\)"
                                         r".*got \(3, 50\)"),
    (dict(pose=np.zeros((2, 9))), r"initial pose must be .*\(2, 15\).*got \(2, 9\)"),
    (dict(pose=None), r"initial pose must be .*got nothing"),
    (dict(translation=np.zeros(3)), r"initial translation must be .*\(2, 3\)"),
    (dict(shape=np.zeros(7)), r"initial shape must be .*\(100,\).*got \(7,\)"),
    (dict(shape=np.full(100, np.nan)), "initial shape has NaN"),
    (dict(expression=np.full((2, 50), np.inf)), "infinite values; use a NaN row"),
    (dict(pose=np.full((2, 15), 0.1)), r"non-zero global rotation at frames \[0, 1\].*neck slot"),
    (dict(expression=[["a"] * 50] * 2), "initial expression must be a numeric.*got a non-numeric value"),
])
def test_bad_initialisation_is_a_clear_error(head_model, settings, change, message):
    good = np.full((2, 70, 2), 100.0)
    initial = dataclasses.replace(InitialParams(np.zeros((2, 50)), np.zeros((2, 15))), **change)
    with pytest.raises(TrackingError, match=message):
        track_videos([good, good], SIZE, head_model, settings, [["1", "2"]] * 2, initial=[None, initial])
    with pytest.raises(TrackingError, match="2 landmark arrays but 1 initialisations"):
        track_videos([good, good], SIZE, head_model, settings, [["1", "2"]] * 2, initial=[None])


def test_bad_settings_name_the_key(cfg, head_model, settings):
    with pytest.raises(ConfigError, match=r"preprocess\.tracking\.lr=-1.0: must be > 0(.|\n)*jaw_opening_range"):
        cfg.with_overrides(["preprocess.tracking.lr=-1.0", "preprocess.tracking.jaw_opening_range=[0.5, 0.1]"])
    with pytest.raises(TrackingError, match="lr_decay"):
        track_videos([np.zeros((1, 70, 2))], SIZE, head_model, dataclasses.replace(settings, lr_decay=0.0), [["1"]])
