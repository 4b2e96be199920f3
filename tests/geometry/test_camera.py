import numpy as np
import pytest
import torch

from pegasus.geometry.camera import (
    PinholeCameras,
    cameras_from_imavatar,
    cameras_to_imavatar,
    ndc_per_pixel,
    normalized_to_pixels,
    pixels_to_normalized,
    project_points,
)


def _imavatar_project(intrinsics, world_mat, size, p):
    """The stored IMavatar formula: u = fx_s·x/z + cx with (x, y, z) = world_mat · p."""
    h, w = size
    x, y, z = world_mat[:, :3] @ p + world_mat[:, 3]
    return np.array([intrinsics[0] * w * x / z + intrinsics[2] * w, intrinsics[1] * h * y / z + intrinsics[3] * h])


@pytest.mark.parametrize("fx_sign", [-1.0, 1.0])
def test_imavatar_conversion_matches_stored_formula(fx_sign):
    rng = np.random.default_rng(1)
    size = (64, 80)
    intr = np.array([fx_sign * 1.4, 1.7, 0.52, 0.47])
    rot = torch.linalg.matrix_exp(torch.tensor([[0, -0.1, 0.2], [0.1, 0, -0.05], [-0.2, 0.05, 0]])).numpy()
    wm = np.concatenate([rot, [[0.05], [-0.02], [-4.0]]], 1)
    cams = cameras_from_imavatar(torch.tensor(intr), torch.tensor(wm)[None], size)
    pts = rng.normal(scale=0.3, size=(10, 3))
    uv, depth = project_points(cams, torch.tensor(pts)[None])
    assert (depth > 0).all(), "points in front of a -z camera must get positive OpenCV depth"
    for p, got in zip(pts, uv[0].numpy()):
        np.testing.assert_allclose(got, _imavatar_project(intr, wm, size, p), atol=1e-9)
    assert cams.K[0, 0, 0] > 0 and cams.K[0, 1, 1] > 0


def test_imavatar_round_trip_and_orientation():
    intr = torch.tensor([-1.5, 1.5, 0.5, 0.5], dtype=torch.float64)
    wm = torch.tensor([[[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, -4]]], dtype=torch.float64)
    cams = cameras_from_imavatar(intr, wm, (32, 32))
    back_intr, back_wm = cameras_to_imavatar(cams)
    torch.testing.assert_close(back_intr[0], intr)
    torch.testing.assert_close(back_wm, wm)
    # Head at the origin lands at the image centre; +y (up) goes up in the image (smaller v);
    # +x (the subject's left) appears on the image right for a camera facing the subject.
    uv, _ = project_points(cams, torch.tensor([[[0, 0, 0], [0, 0.1, 0], [0.1, 0, 0]]], dtype=torch.float64))
    torch.testing.assert_close(uv[0, 0], torch.tensor([16.0, 16.0], dtype=torch.float64))
    assert uv[0, 1, 1] < 16 and uv[0, 2, 0] > 16
    torch.testing.assert_close(cams.centers[0], torch.tensor([0, 0, 4.0], dtype=torch.float64))


def test_normalized_coordinates_and_ndc():
    uv = torch.tensor([[0.0, 0.0], [40.0, 20.0], [80.0, 40.0]])
    xy = pixels_to_normalized(uv, (40, 80))
    torch.testing.assert_close(xy, torch.tensor([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]]))
    torch.testing.assert_close(normalized_to_pixels(xy, (40, 80)), uv)
    assert ndc_per_pixel((40, 80)) == pytest.approx(2 / 40)


def test_bad_shapes_are_reported():
    with pytest.raises(ValueError, match="world_mat"):
        cameras_from_imavatar(torch.zeros(4), torch.zeros(3, 4), (8, 8))
    with pytest.raises(ValueError, match="intrinsics"):
        cameras_from_imavatar(torch.ones(3), torch.zeros(1, 3, 4), (8, 8))
    with pytest.raises(ValueError, match="PinholeCameras"):
        PinholeCameras(torch.eye(3)[None], torch.eye(3)[None], torch.zeros(2, 3), (8, 8))
