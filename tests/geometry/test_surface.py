import pytest
import torch

from pegasus.geometry.surface import face_areas, sample_mesh_surface

# Two triangles in the z = 0 plane: a 1×1 right triangle and a 3×1 one (area 0.5 and 1.5).
VERTICES = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0],
                         [2.0, 0.0, 0.0], [5.0, 0.0, 0.0], [2.0, 1.0, 0.0]])
FACES = torch.tensor([[0, 1, 2], [3, 4, 5]])


def test_face_areas():
    torch.testing.assert_close(face_areas(VERTICES, FACES), torch.tensor([0.5, 1.5]))


def test_samples_lie_on_the_faces_in_proportion_to_their_area():
    points = sample_mesh_surface(VERTICES, FACES, 20000, torch.Generator().manual_seed(0))
    assert points.shape == (20000, 3) and points.dtype == torch.float32
    assert torch.all(points[:, 2] == 0)
    first = points[:, 0] < 1.5
    x, y = points[:, 0], points[:, 1]
    inside_first = (x >= 0) & (y >= 0) & (x + y <= 1 + 1e-6)
    inside_second = (x >= 2) & (y >= 0) & ((x - 2) / 3 + y <= 1 + 1e-6)
    assert torch.all(torch.where(first, inside_first, inside_second))
    assert float(first.float().mean()) == pytest.approx(0.25, abs=0.015)
    # uniform inside a triangle: the centroid of the samples is the triangle's centroid
    torch.testing.assert_close(points[first, :2].mean(0), torch.tensor([1 / 3, 1 / 3]), atol=0.02, rtol=0)


def test_seeded_generator_repeats_and_degenerate_meshes_are_refused():
    a = sample_mesh_surface(VERTICES, FACES, 50, torch.Generator().manual_seed(4))
    b = sample_mesh_surface(VERTICES, FACES, 50, torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b)
    assert sample_mesh_surface(VERTICES, FACES, 0).shape == (0, 3)
    with pytest.raises(ValueError, match="positive area"):
        sample_mesh_surface(torch.zeros(3, 3), torch.tensor([[0, 1, 2]]), 5)
    with pytest.raises(ValueError, match="expected"):
        sample_mesh_surface(VERTICES[:, :2], FACES, 5)
