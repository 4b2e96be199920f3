"""Previews (pegasus.preprocess.preview): tiles with the overlays, mp4 and grid files."""
from __future__ import annotations

import cv2
import numpy as np

from pegasus.preprocess.preview import caption, preview_frame, write_preview


def _frame(fitted: bool) -> np.ndarray:
    """A 128² preview frame (scale 1): gray image, a centred square matte of skin, points."""
    image = np.full((128, 128, 3), 128, np.uint8)
    matte = np.zeros((128, 128), np.uint8)
    matte[32:96, 32:96] = 255
    labels = (matte > 0).astype(np.uint8)
    landmarks = np.tile([[64.0, 64.0]], (68, 1))
    iris = np.array([[40.0, 40.0], [88.0, 40.0]])
    fitted_points = np.tile([[20.0, 100.0]], (70, 1)) if fitted else None
    return preview_frame(image, matte, labels, landmarks, iris, fitted_points, caption("3", ["blur"]), 128)


def test_tiles_show_landmarks_matte_and_labels():
    frame = _frame(fitted=True)
    assert frame.shape == (128, 384, 3) and frame.dtype == np.uint8
    points, composited, blended = frame[:, :128], frame[:, 128:256], frame[:, 256:]
    assert points[64, 64, 1] > points[64, 64, 0] + 50  # a green detected landmark
    assert points[40, 40, 0] > points[40, 40, 2] + 50  # a red iris
    assert points[100, 20, 2] > points[100, 20, 0] + 50  # a blue fitted landmark
    assert (points[110, 110] == 128).all()
    assert (composited[5, 5] == 255).all() and (composited[64, 64] == 128).all()  # white outside the matte
    assert (blended[64, 64] != 128).any() and (blended[64, 64] != blended[5, 5]).any()


def test_preview_files_are_written(tmp_path):
    frames = [_frame(fitted=k % 2 == 0) for k in range(7)]
    write_preview(iter(frames), len(frames), 25.0, tmp_path / "p.mp4", tmp_path / "p.png")
    capture = cv2.VideoCapture(str(tmp_path / "p.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 7
    grid = cv2.imread(str(tmp_path / "p.png"))
    assert grid.shape[1] == 384 + 8 and grid.shape[0] == 6 * (128 + 4) + 4  # six frames in one column


def test_caption_lists_the_reasons():
    assert caption("12", []) == "12" and caption("12", ["blur", "jump"]) == "12: blur, jump"
