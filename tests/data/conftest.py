"""Builders of small IMavatar videos for the data tests."""
from __future__ import annotations

import numpy as np
import pytest

from pegasus.data import imavatar
from pegasus.data.imavatar import FlameFrame, FlameParams

SIZE = 32


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _write_video(root, subject: str, video: str, n_frames: int, seed: int = 0, *, with_extras: bool = False,
                 labels=None, part_masks=None) -> dict:
    """Writes a 32² video with a non-trivial camera; returns what was written.

    ``labels`` / ``part_masks``: (T, 32, 32) label maps / masks to write instead of random ones."""
    rng = np.random.default_rng(seed)
    frames = tuple(
        FlameFrame(
            name=name,
            world_mat=np.hstack([_rotation(0.1 * k), [[0.05 * k], [-0.1], [-4.0]]]),
            expression=rng.normal(size=50),
            pose=rng.normal(0, 0.1, 15),
            flame_keypoints=rng.uniform(-1, 1, (70, 2)),
        )
        for k, name in enumerate(imavatar.numbered_frame_names(n_frames))
    )
    params = FlameParams(np.array([-1.8, 1.7, 0.45, 0.55]), rng.normal(size=100), frames)
    content = {
        "images": rng.integers(0, 256, (n_frames, SIZE, SIZE, 3), dtype=np.uint8),
        "masks": rng.integers(0, 256, (n_frames, SIZE, SIZE), dtype=np.uint8),
    }
    if with_extras:
        content["semantics"] = rng.integers(0, 19, (n_frames, SIZE, SIZE), dtype=np.uint8)
        content["keypoints"] = [rng.uniform(0, SIZE, (68, 2)) for _ in range(n_frames)]
    if labels is not None:
        content["semantics"] = np.asarray(labels, np.uint8)
    extra = {} if part_masks is None else {"extra_folders": {imavatar.PART_MASK_DIR: list(part_masks)}}
    imavatar.write_video(imavatar.video_dir(root, subject, video), params, **content, **extra)
    return {"params": params, **content}




@pytest.fixture
def write_test_video():
    """``write_test_video(root, subject, video, n_frames, seed=0, with_extras=False, labels=None,
    part_masks=None)`` writes a 32² video and returns what it wrote."""
    return _write_video
