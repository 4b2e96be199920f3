"""Per-video motion: smooth head rotation, expressions, talking jaw, blinks, gaze, camera
shake, and the person's fixed light.

Every signal is a sum of a few sinusoids with random frequencies (in the configured
ranges, Hz) and phases, rescaled to span exactly ± the configured amplitude: each video
visits the full range (e.g. yaw from −30° to +30°) and stays smooth. Blinks are
short closures at random intervals. Everything is deterministic for the seed, the person
and the video name; the light depends on the seed and the person only (one capture session
per person: the training and test videos are lit alike, as consecutive recordings are).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from ..headmodel.lbs import POSE_DIM, POSE_SLOTS
from .settings import SynthDbSettings

__all__ = ["VideoMotion", "sample_motion", "smooth_signal"]

_BLINK_HALF_DURATION_S = 0.09  # a blink closes and reopens within about 0.2 s


@dataclass(frozen=True)
class VideoMotion:
    """Per-frame parameters of one video (T frames).

    Attributes:
        expression: (T, n_expr) float64 expression coefficients (zero beyond the model's own).
        pose: (T, 15) float64 axis-angle, ``POSE_SLOTS`` layout (head rotation in the neck slot).
        camera_offset: (T, 3) float64 smooth displacement of the camera centre (camera
            shake), scaled head units.
        light_direction: (3,) float64 unit vector towards the light in camera space
            (OpenCV axes: x right, y down, z forward), fixed for the person's videos.
    """

    expression: np.ndarray
    pose: np.ndarray
    camera_offset: np.ndarray
    light_direction: np.ndarray

    def __len__(self) -> int:
        return self.pose.shape[0]


def smooth_signal(rng: np.random.Generator, n_frames: int, fps: float, hz: tuple[float, float],
                  waves: int = 3) -> np.ndarray:
    """(n_frames,) smooth signal spanning exactly [−1, 1] (0 for a single frame)."""
    t = np.arange(n_frames) / fps
    freq = rng.uniform(hz[0], hz[1], waves)
    phase = rng.uniform(0.0, 2.0 * np.pi, waves)
    weight = rng.uniform(0.5, 1.0, waves)
    signal = (weight * np.sin(2.0 * np.pi * t[:, None] * freq + phase)).sum(1)
    low, high = signal.min(), signal.max()
    return 2.0 * (signal - low) / (high - low) - 1.0 if high > low else np.zeros(n_frames)


def _blinks(rng: np.random.Generator, n_frames: int, fps: float, interval: tuple[float, float]) -> np.ndarray:
    """(n_frames,) blink closure in [0, 1] (1 = closed) at random intervals."""
    t = np.arange(n_frames) / fps
    closure = np.zeros(n_frames)
    when = rng.uniform(0.2, max(interval[1], 0.3))
    while when < t[-1] + _BLINK_HALF_DURATION_S:
        centre = np.round(when * fps) / fps  # peak on a frame, so the eyes close fully
        closure = np.maximum(closure, np.clip(1.0 - np.abs(t - centre) / _BLINK_HALF_DURATION_S, 0.0, 1.0) ** 0.6)
        when += rng.uniform(interval[0], interval[1])
    return closure


def sample_motion(settings: SynthDbSettings, person: str, video: str, n_frames: int,
                  expr_names, n_expr: int) -> VideoMotion:
    """The motion of one video.

    Args:
        person, video: names (with ``settings.seed`` they seed the motion).
        n_frames: T.
        expr_names: the head model's expression component names (blink components by name).
        n_expr: length of the expression vectors (the model's configured count).
    """
    names = [str(n) for n in expr_names]
    missing = [b for b in settings.blink_components if b not in names]
    if missing:
        raise ValueError(f"synth_db.blink_components: {missing} are not expression components of the head "
                         f"model ({names})")
    rng = np.random.default_rng([settings.seed, zlib.crc32(person.encode()), zlib.crc32(video.encode())])
    fps = settings.fps

    angles = [np.radians(peak) * smooth_signal(rng, n_frames, fps, settings.head_motion_hz)
              for peak in (settings.max_yaw_deg, settings.max_pitch_deg, settings.max_roll_deg)]
    pose = np.zeros((n_frames, POSE_DIM))
    pose[:, POSE_SLOTS["neck"]] = Rotation.from_euler("YXZ", np.stack(angles, 1)).as_rotvec()
    talking = smooth_signal(rng, n_frames, fps, settings.jaw_hz)
    pose[:, POSE_SLOTS["jaw"].start] = settings.max_jaw_opening * np.clip(talking, 0.0, None)
    gaze = settings.gaze_amplitude * np.stack(
        [smooth_signal(rng, n_frames, fps, settings.head_motion_hz) * 0.5,
         smooth_signal(rng, n_frames, fps, settings.head_motion_hz), np.zeros(n_frames)], 1)
    pose[:, POSE_SLOTS["left_eye"]] = gaze
    pose[:, POSE_SLOTS["right_eye"]] = gaze

    expression = np.zeros((n_frames, n_expr))
    blink = _blinks(rng, n_frames, fps, settings.blink_interval_s)
    for index, name in enumerate(names[:n_expr]):
        if name in settings.blink_components:
            expression[:, index] = blink
        else:
            amplitude = settings.expression_amplitude * rng.uniform(0.4, 1.0)
            expression[:, index] = amplitude * smooth_signal(rng, n_frames, fps, settings.expression_hz)

    camera_offset = settings.camera_jitter * np.stack(
        [smooth_signal(rng, n_frames, fps, settings.head_motion_hz) for _ in range(3)], 1)
    session = np.random.default_rng([settings.seed, zlib.crc32(person.encode())])
    azimuth = np.radians(session.uniform(-settings.light_azimuth_deg, settings.light_azimuth_deg))
    elevation = np.radians(session.uniform(*settings.light_elevation_deg))
    light = np.array([np.sin(azimuth) * np.cos(elevation), -np.sin(elevation), -np.cos(azimuth) * np.cos(elevation)])
    return VideoMotion(expression, pose, camera_offset, light)
