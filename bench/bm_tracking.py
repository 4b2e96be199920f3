"""Benchmark: FLAME tracking time per frame and the reprojection error it reaches.

A video of synthetic-database motion (``pegasus.synthdb``: head turns of ±30°, talking,
blinks, gaze, camera shake) of a random stand-in identity; its 70 landmarks are projected
at 512² with the database's camera and, in a second run, disturbed by Gaussian noise
(``--noise`` px per coordinate). The tracker fits them with the ``preprocess.tracking``
settings of ``confs/base.conf`` (focal set to the database's). Reported per thread count:
wall and process CPU milliseconds per frame (median of ``--repeats``, after a short
warm-up fit), the mean reprojection error against the given landmarks, the mean error
against the noise-free landmarks, and the largest translation and neck-rotation errors.
The load average before and after is printed (the machine may be shared).

Usage (from the repository root)::

    python bench/bm_tracking.py [section.key=value ...] [--frames 100] [--repeats 1]
                                [--noise 1.0] [--quick] [--threads 1 2]

(config overrides before ``--threads``, which takes a list).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import logging
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from pegasus.config import load_config
from pegasus.headmodel import head_model_from_config
from pegasus.headmodel.lbs import POSE_SLOTS
from pegasus.preprocess.tracking import LandmarkModel, TrackingSettings, project_landmarks, track_videos
from pegasus.synthdb.motion import sample_motion
from pegasus.synthdb.scene import video_cameras

CONF = Path(__file__).resolve().parents[1] / "confs" / "base.conf"
SIZE = 512
MOTION_FRAMES = 100


def make_video(cfg, head_model, frames: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Known parameters and their (T, 70, 2) pixel landmarks: the first T frames of a motion
    of at least MOTION_FRAMES frames (the database scales each motion to its full range)."""
    synth = cfg.synth_db
    motion = sample_motion(synth, "bench", "train", max(frames, MOTION_FRAMES), head_model.extras["expr_names"],
                           head_model.n_expr)
    intrinsics, world_mats = video_cameras(synth, motion)
    motion = dataclasses.replace(motion, expression=motion.expression[:frames], pose=motion.pose[:frames])
    world_mats = world_mats[:frames]
    shape = np.zeros(head_model.n_shape)
    count = len(head_model.extras["shape_names"])
    shape[:count] = np.random.default_rng(seed).normal(size=count)
    f32 = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        points = LandmarkModel(head_model)(f32(shape)[None], f32(motion.expression), f32(motion.pose))
        landmarks = project_landmarks(points, f32(world_mats[:, :, 3]), f32(intrinsics), SIZE)
    return {"landmarks": landmarks.double().numpy(), "world_mats": world_mats, "pose": motion.pose}


def neck_error_deg(fitted: np.ndarray, truth: np.ndarray) -> float:
    """Largest angle between fitted and true neck rotations, degrees."""
    neck = POSE_SLOTS["neck"]
    difference = Rotation.from_rotvec(fitted[:, neck]).inv() * Rotation.from_rotvec(truth[:, neck])
    return float(np.degrees(difference.magnitude()).max())


def measure(landmarks: np.ndarray, truth: dict, head_model, settings: TrackingSettings, repeats: int) -> dict:
    names = [str(k + 1) for k in range(len(landmarks))]
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        video = track_videos([landmarks], SIZE, head_model, settings, [names]).videos[0]
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    frames = video.params.frames
    translation = np.stack([f.world_mat[:, 3] for f in frames])
    return {
        "wall_ms": 1000 * statistics.median(walls) / len(landmarks),
        "cpu_ms": 1000 * statistics.median(cpus) / len(landmarks),
        "reprojection_px": float(video.reprojection_error.mean()),
        "truth_px": float(np.linalg.norm(video.landmarks - truth["landmarks"], axis=-1).mean()),
        "translation": float(np.abs(translation - truth["world_mats"][:, :, 3]).max()),
        "neck_deg": neck_error_deg(np.stack([f.pose for f in frames]), truth["pose"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--noise", type=float, default=1.0, help="landmark noise std, pixels per coordinate")
    parser.add_argument("--quick", action="store_true", help="20 frames")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    frames = 20 if args.quick else args.frames
    base = load_config(CONF, [f"synth_db.image_size={SIZE}"])
    cfg = base.with_overrides([f"preprocess.tracking.focal={base.synth_db.focal}", *args.overrides])
    head_model = head_model_from_config(cfg)
    settings = cfg.preprocess.tracking
    truth = make_video(cfg, head_model, frames)
    noisy = truth["landmarks"] + args.noise * np.random.default_rng(1).normal(size=truth["landmarks"].shape)
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}; load average before: {os.getloadavg()}")
    print(f"{frames} frames at {SIZE}², {settings.rigid_iterations} + {settings.iterations} Adam steps, "
          f"head model {head_model.source} ({head_model.n_vertices} vertices)\n")
    print("| threads | landmark noise (px) | wall ms/frame | CPU ms/frame | reprojection error (px) "
          "| error vs noise-free (px) | max translation error | max neck error (°) |")
    print("|---|---|---|---|---|---|---|---|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        warm_up = dataclasses.replace(settings, rigid_iterations=5, iterations=5)
        track_videos([truth["landmarks"][:5]], SIZE, head_model, warm_up, [[str(k) for k in range(5)]])
        for noise, landmarks in ((0.0, truth["landmarks"]), (args.noise, noisy)):
            row = measure(landmarks, truth, head_model, settings, args.repeats)
            print(f"| {threads} | {noise:g} | {row['wall_ms']:.1f} | {row['cpu_ms']:.1f} "
                  f"| {row['reprojection_px']:.3f} | {row['truth_px']:.3f} | {row['translation']:.4f} "
                  f"| {row['neck_deg']:.2f} |", flush=True)
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
