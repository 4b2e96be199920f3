"""Square crops (pegasus.preprocess.crop): boxes, the crop itself, and the maps between images."""
from __future__ import annotations

import numpy as np
import pytest

from pegasus.preprocess.crop import CropSettings, crop_frame, crop_to_source, face_boxes_to_crops, source_to_crop

FIXED = CropSettings("fixed", scale=2.0, vertical_offset=-0.1, smoothing_s=0.5)
FOLLOW = CropSettings("follow", scale=2.0, vertical_offset=0.0, smoothing_s=0.2)


def _moving_faces(count: int = 40) -> np.ndarray:
    """(count, 4) face boxes of side 100 drifting right with per-frame jitter."""
    rng = np.random.default_rng(0)
    x = np.linspace(200, 300, count) + rng.normal(0, 4, count)
    y = np.full(count, 250.0) + rng.normal(0, 4, count)
    return np.stack([x, y, x + 100, y + 100], 1)


def test_fixed_box_is_one_box_inside_the_frame():
    boxes = face_boxes_to_crops(_moving_faces(), (640, 480), 25.0, FIXED)
    assert boxes.dtype == np.int64 and (boxes == boxes[0]).all()
    x0, y0, side = boxes[0]
    assert side == pytest.approx(2.0 * 100, abs=12)  # scale × a high percentile of the face size
    assert 0 <= x0 and x0 + side <= 640 and 0 <= y0 and y0 + side <= 480


def test_follow_box_tracks_the_face_smoothly():
    faces = _moving_faces()
    boxes = face_boxes_to_crops(faces, (640, 480), 25.0, FOLLOW)
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    face_centres = (faces[:, :2] + faces[:, 2:]) / 2
    assert np.abs(centres[:, 0] - face_centres[:, 0]).mean() < 6
    assert np.abs(np.diff(centres[:, 0], 2)).mean() < 0.5 * np.abs(np.diff(face_centres[:, 0], 2)).mean()


def test_missing_faces_are_interpolated():
    faces = _moving_faces()
    faces[10:15] = np.nan
    boxes = face_boxes_to_crops(faces, (640, 480), 25.0, FOLLOW)
    assert np.isfinite(boxes).all() and boxes[9, 0] <= boxes[12, 0] <= boxes[15, 0]


def test_a_box_larger_than_the_frame_shrinks_to_it():
    faces = np.array([[0.0, 0.0, 400.0, 400.0]])
    assert face_boxes_to_crops(faces, (480, 360), 25.0, FIXED).tolist() == [[20, 0, 360]]  # centre x 200, y clamped


def test_maps_are_inverse():
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 480, (5, 70, 2))
    boxes = np.array([[10, 20, 300]] * 5) + np.arange(5)[:, None]
    there = source_to_crop(points, boxes, 512)
    np.testing.assert_allclose(crop_to_source(there, boxes, 512), points, atol=1e-9)
    np.testing.assert_allclose(source_to_crop(points[0], boxes[0], 512), there[0])


@pytest.mark.parametrize("box", [[37, 51, 300], [0, 0, 480], [100, 90, 128]])
def test_crop_puts_a_source_point_where_the_map_says(box):
    """A bright Gaussian blob at a sub-pixel source point lands at source_to_crop(point)."""
    point = np.array([box[0] + 0.37 * box[2] + 0.3, box[1] + 0.61 * box[2] + 0.7])
    ys, xs = np.mgrid[0:480, 0:480] + 0.5
    blob = np.exp(-((xs - point[0]) ** 2 + (ys - point[1]) ** 2) / (2 * 6.0**2))
    crop = crop_frame((blob * 255).astype(np.float32), np.array(box), 512)
    weights = np.clip(crop - 0.2 * crop.max(), 0, None)
    cys, cxs = np.mgrid[0:512, 0:512] + 0.5
    found = np.array([(weights * cxs).sum(), (weights * cys).sum()]) / weights.sum()
    expected = source_to_crop(point[None], np.array(box), 512)[0]
    np.testing.assert_allclose(found, expected, atol=0.25)
