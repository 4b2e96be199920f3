import pytest
import torch

from pegasus.avatar.knn import knn_points, nearest_neighbours, nearest_vertex


def _naive(points, vertices, k):
    d = ((points[:, None] - vertices[None]) ** 2).sum(-1)
    dist, idx = torch.sort(d, dim=1, stable=True)
    return dist[:, :k], idx[:, :k]


@pytest.mark.parametrize("k", [1, 3])
def test_matches_brute_force_and_chunking_does_not_matter(k):
    g = torch.Generator().manual_seed(0)
    points, vertices = torch.randn(500, 3, generator=g), torch.randn(77, 3, generator=g)
    expected = _naive(points.double(), vertices.double(), k)
    for chunk in (77, 1000, 1 << 23):
        dist, idx = knn_points(points, vertices, k, chunk_elements=chunk)
        assert torch.equal(idx, expected[1])
        torch.testing.assert_close(dist, expected[0].float(), atol=1e-6, rtol=1e-5)


def test_exact_near_the_surface_and_ties():
    # points almost on a far-away vertex set: the expanded form alone would cancel badly
    vertices = torch.randn(200, 3) + 100.0
    points = vertices[:50] + 1e-4 * torch.randn(50, 3)
    assert torch.equal(nearest_vertex(points, vertices), torch.arange(50))
    tie = torch.tensor([[0.0, 0.0, 0.0]])
    two = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    assert int(knn_points(tie, two)[1]) == 0  # brute force: ties go to the lower index
    assert int(nearest_vertex(tie, two)) in (0, 1)  # CPU k-d tree: either


def test_nearest_vertex_on_cpu_equals_the_brute_force():
    g = torch.Generator().manual_seed(2)
    points, vertices = torch.randn(3, 500, 3, generator=g), torch.randn(300, 3, generator=g)
    torch.testing.assert_close(nearest_vertex(points, vertices), knn_points(points, vertices)[1][..., 0],
                               rtol=0, atol=0)
    assert nearest_vertex(torch.zeros(0, 3), vertices).shape == (0,)


def test_batched_and_empty():
    g = torch.Generator().manual_seed(1)
    points, vertices = torch.randn(2, 30, 3, generator=g), torch.randn(20, 3, generator=g)
    idx = nearest_vertex(points, vertices)
    assert idx.shape == (2, 30)
    assert torch.equal(idx[1], nearest_vertex(points[1], vertices))
    dist, idx = knn_points(torch.zeros(0, 3), vertices)
    assert dist.shape == (0, 1) and idx.shape == (0, 1)
    with pytest.raises(ValueError, match="k must lie"):
        knn_points(points[0], vertices, k=21)


def test_nearest_neighbours_match_the_brute_force():
    generator = torch.Generator().manual_seed(2)
    queries, points = torch.randn(300, 3, generator=generator), torch.randn(200, 3, generator=generator)
    distances, index = nearest_neighbours(queries, points, k=3)
    brute = torch.cdist(queries.double(), points.double())
    expected, expected_index = brute.topk(3, dim=1, largest=False)
    torch.testing.assert_close(distances.double(), expected, rtol=0, atol=1e-5)
    assert torch.equal(index, expected_index)
    with pytest.raises(ValueError, match="k must lie"):
        nearest_neighbours(queries, points[:2], k=3)
