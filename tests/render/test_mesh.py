"""Tests of pegasus.render.mesh against hand-computed cases, analytic geometry and a naive
per-pixel reference rasterizer."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pegasus.geometry.camera import PinholeCameras
from pegasus.render import mesh as mesh_module
from pegasus.render.mesh import (
    gather_face_attributes,
    interpolate_face_corner_attributes,
    interpolate_vertex_attributes,
    rasterize_mesh,
    render_mesh,
    sample_texture,
    shade_lambertian,
    uv_sphere,
    vertex_normals,
)


# ----------------------------------------------------------------------------- builders


def pixel_cameras(height: int, width: int, batch: int = 1) -> PinholeCameras:
    """Identity cameras (f = 1, c = 0, R = I, t = 0): world (u·z, v·z, z) lands on pixel (u, v)."""
    eye = torch.eye(3).expand(batch, 3, 3).clone()
    return PinholeCameras(eye.clone(), eye, torch.zeros(batch, 3), (height, width))


def on_screen(uvz) -> torch.Tensor:
    """(N, 3) rows (u, v, depth) → world points that project to pixel (u, v) at that depth."""
    uvz = torch.as_tensor(uvz, dtype=torch.float64)
    return torch.stack([uvz[:, 0] * uvz[:, 2], uvz[:, 1] * uvz[:, 2], uvz[:, 2]], dim=1).float()


def look_at_cameras(image_size: int, focal: float, distance: float, batch: int = 1) -> PinholeCameras:
    """Cameras on the −z axis of the world at ``distance``, looking at the origin (OpenCV axes)."""
    K = torch.tensor([[focal, 0.0, image_size / 2], [0.0, focal, image_size / 2], [0.0, 0.0, 1.0]])
    return PinholeCameras(
        K.expand(batch, 3, 3).clone(),
        torch.eye(3).expand(batch, 3, 3).clone(),
        torch.tensor([0.0, 0.0, distance]).expand(batch, 3).clone(),
        (image_size, image_size),
    )


def pixel_centres(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) x and y of every pixel centre."""
    return np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)


def cross2(a: np.ndarray, b: np.ndarray) -> float:
    """z of the cross product of two 2-D vectors."""
    return float(a[0] * b[1] - a[1] * b[0])


def naive_rasterize(vertices: torch.Tensor, faces: torch.Tensor, cameras: PinholeCameras, znear: float = 1e-2):
    """Readable reference: loops over pixels and faces in float64 (frame 0 only).

    Returns face index (H, W), depth (H, W), barycentrics (H, W, 3) and ``margin`` (H, W),
    the smallest |edge distance| or depth gap that decided the pixel (small = ambiguous).
    """
    height, width = cameras.image_size
    cam = (vertices.double() @ cameras.R[0].double().T + cameras.t[0].double()).numpy()
    K = cameras.K[0].double().numpy()
    z = cam[:, 2]
    uv = np.stack([K[0, 0] * cam[:, 0] / z + K[0, 2], K[1, 1] * cam[:, 1] / z + K[1, 2]], axis=1)
    uv = np.round(uv * 1024) / 1024  # the documented subpixel grid
    face_index = -np.ones((height, width), dtype=np.int64)
    depth = np.zeros((height, width))
    bary = np.zeros((height, width, 3))
    margin = np.full((height, width), np.inf)
    for i in range(height):
        for j in range(width):
            p = np.array([j + 0.5, i + 0.5])
            hits = []
            for f, (a, b, c) in enumerate(faces.tolist()):
                if min(z[a], z[b], z[c]) <= znear:
                    continue
                pa, pb, pc = uv[a], uv[b], uv[c]
                area = cross2(pb - pa, pc - pa)
                if area == 0:
                    continue
                l0 = cross2(pc - pb, p - pb) / area
                l1 = cross2(pa - pc, p - pc) / area
                l2 = 1.0 - l0 - l1
                lam = np.array([l0, l1, l2])
                edge_distance = np.abs(lam) * abs(area) / np.array(
                    [np.linalg.norm(pc - pb), np.linalg.norm(pa - pc), np.linalg.norm(pb - pa)]
                )
                margin[i, j] = min(margin[i, j], edge_distance.min())
                if (lam >= 0).all():
                    w = lam / z[[a, b, c]]
                    hits.append((1.0 / w.sum(), f, w / w.sum()))
            if hits:
                hits.sort(key=lambda hit: (hit[0], hit[1]))
                depth[i, j], face_index[i, j], bary[i, j] = hits[0]
                if len(hits) > 1:
                    margin[i, j] = min(margin[i, j], hits[1][0] - hits[0][0])
    return face_index, depth, bary, margin


def random_mesh(num_faces: int, image_size: int, generator: torch.Generator):
    """Independent random triangles spilling over the image edges, at depths 1–3."""
    uv = torch.rand(num_faces * 3, 2, generator=generator, dtype=torch.float64) * (image_size + 8) - 4
    depth = 1.0 + 2.0 * torch.rand(num_faces * 3, 1, generator=generator, dtype=torch.float64)
    vertices = on_screen(torch.cat([uv, depth], dim=1))
    return vertices, torch.arange(num_faces * 3).view(num_faces, 3)


def fan_mesh(center: tuple[float, float], angles: torch.Tensor, radii: torch.Tensor):
    """Triangles (hub, rim k, rim k+1) around a hub on the screen at depth 1; rim points at
    the given angles (increasing) and radii in pixels."""
    rim = torch.stack([center[0] + radii * angles.cos(), center[1] + radii * angles.sin(), torch.ones_like(radii)], 1)
    hub = torch.tensor([[center[0], center[1], 1.0]], dtype=rim.dtype)
    sides = len(angles)
    rim_index = 1 + torch.arange(sides)
    faces = torch.stack([torch.zeros(sides, dtype=torch.int64), rim_index, 1 + rim_index % sides], 1)
    return on_screen(torch.cat([hub, rim])), faces


# -------------------------------------------------------------------------- rasterizer


def test_single_triangle_coverage_and_barycentrics():
    # Right triangle (1,1), (7,1), (1,7): centres with x, y > 1 and x + y < 8 are inside;
    # centres on the hypotenuse x + y = 8 are not (it is a bottom-right edge).
    vertices = on_screen([[1, 1, 1], [7, 1, 1], [1, 7, 1]])
    fragments = rasterize_mesh(vertices, torch.tensor([[0, 1, 2]]), pixel_cameras(8, 8))
    x, y = pixel_centres(8, 8)
    expected = (x > 1) & (y > 1) & (x + y < 8)
    assert expected.sum() == 15
    np.testing.assert_array_equal(fragments.covered[0].numpy(), expected)
    bary = fragments.barycentric[0].numpy()
    l1, l2 = (x - 1) / 6, (y - 1) / 6
    np.testing.assert_allclose(bary[expected], np.stack([1 - l1 - l2, l1, l2], -1)[expected], atol=1e-6)
    np.testing.assert_allclose(fragments.depth[0].numpy()[expected], 1.0, atol=1e-6)
    assert (fragments.face_index[0][~torch.from_numpy(expected)] == -1).all()
    assert (fragments.barycentric[0][~torch.from_numpy(expected)] == 0).all()


def test_top_left_rule_includes_left_edges():
    # The other half of the square [1,7]²: the hypotenuse is now its left edge, so the
    # 6 centres on it belong to this triangle; together the halves cover each centre once.
    vertices = on_screen([[1, 1, 1], [7, 1, 1], [1, 7, 1], [7, 7, 1]])
    faces = torch.tensor([[0, 1, 2], [3, 2, 1]])
    x, y = pixel_centres(8, 8)
    upper = rasterize_mesh(vertices, faces[1:], pixel_cameras(8, 8)).covered[0].numpy()
    np.testing.assert_array_equal(upper, (x < 7) & (y < 7) & (x + y >= 8))
    both = rasterize_mesh(vertices, faces, pixel_cameras(8, 8))
    np.testing.assert_array_equal(both.covered[0].numpy(), (x > 1) & (y > 1) & (x < 7) & (y < 7))
    np.testing.assert_array_equal(both.face_index[0].numpy()[(x + y == 8) & (x > 1) & (x < 7)], 1)


def per_face_coverage(vertices: torch.Tensor, faces: torch.Tensor, cameras: PinholeCameras) -> np.ndarray:
    """(H, W) number of faces covering each pixel centre, each face rasterized alone (one
    frame per face, the other faces moved behind the camera)."""
    keep = torch.zeros(faces.shape[0], vertices.shape[0], dtype=torch.bool)
    keep[torch.arange(faces.shape[0])[:, None], faces] = True
    per_face = torch.where(keep[..., None], vertices, vertices - torch.tensor([0.0, 0.0, 10.0]))
    return rasterize_mesh(per_face, faces, cameras).covered.sum(0).numpy()


def grid_mesh(cells: int, cell_size: float, jitter: float, generator: torch.Generator):
    """A square grid of cells×cells quads (2 triangles each) on the screen, interior vertices
    jittered by multiples of 0.5 px so that many pixel centres fall exactly on edges."""
    ticks = torch.arange(cells + 1, dtype=torch.float64) * cell_size + 0.5
    v, u = torch.meshgrid(ticks, ticks, indexing="ij")
    offsets = torch.randint(-2, 3, (2, cells + 1, cells + 1), generator=generator) * jitter
    interior = torch.zeros(cells + 1, cells + 1, dtype=torch.bool)
    interior[1:-1, 1:-1] = True
    u = u + offsets[0] * interior
    v = v + offsets[1] * interior
    uvz = torch.stack([u.reshape(-1), v.reshape(-1), torch.ones((cells + 1) ** 2, dtype=torch.float64)], dim=1)
    index = torch.arange((cells + 1) ** 2).view(cells + 1, cells + 1)
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    flip = torch.rand(cells, cells, generator=generator) < 0.5  # both diagonal directions
    first = torch.where(flip[..., None], torch.stack([a, b, d], -1), torch.stack([a, b, c], -1))
    second = torch.where(flip[..., None], torch.stack([a, d, c], -1), torch.stack([b, d, c], -1))
    faces = torch.cat([first.reshape(-1, 3), second.reshape(-1, 3)])
    return on_screen(uvz), faces, (ticks[0].item(), ticks[-1].item())


def test_shared_edges_cover_every_pixel_exactly_once():
    generator = torch.Generator().manual_seed(1)
    vertices, faces, (low, high) = grid_mesh(cells=4, cell_size=6.0, jitter=0.5, generator=generator)
    cameras = pixel_cameras(28, 28)
    counts = per_face_coverage(vertices, faces, cameras)
    x, y = pixel_centres(28, 28)
    strictly_inside = (x > low) & (x < high) & (y > low) & (y < high)
    assert counts.max() == 1
    assert (counts[strictly_inside] == 1).all()
    together = rasterize_mesh(vertices, faces, cameras).covered[0].numpy()
    np.testing.assert_array_equal(together, counts == 1)


@pytest.mark.parametrize("seed", range(4))
def test_fan_around_a_pixel_centre_covers_it_exactly_once(seed):
    # Edges through the hub at pixel centre (5.5, 5.5) from rim points with inexact
    # coordinates: the edge functions there are rounding noise, and each pair of
    # neighbours must still agree on which of them owns the hub pixel.
    generator = torch.Generator().manual_seed(seed)
    sides = 24
    angles = torch.sort(torch.rand(sides, generator=generator, dtype=torch.float64) * 2 * math.pi).values
    radius = 2.5 + 2.5 * torch.rand(sides, generator=generator, dtype=torch.float64)
    vertices, faces = fan_mesh((5.5, 5.5), angles, radius)
    counts = per_face_coverage(vertices, faces, pixel_cameras(11, 11))
    assert counts.max() == 1
    assert counts[5, 5] == 1


def test_closed_mesh_without_cracks_matches_its_silhouette():
    vertices, faces = uv_sphere(1.0, rings=12, segments=24)
    cameras = look_at_cameras(48, focal=60.0, distance=4.0)
    fragments = rasterize_mesh(vertices, faces, cameras)
    culled = rasterize_mesh(vertices, faces, cameras, cull_backfaces=True)
    # Inside the silhouette the front faces cover every pixel: culling back faces only
    # removes hidden ones, and no pixel inside is left uncovered.
    torch.testing.assert_close(culled.face_index, fragments.face_index)
    torch.testing.assert_close(culled.depth, fragments.depth)
    # Every face lies outside the sphere of radius cos(15°)·cos(7.5°) > 0.95, whose
    # silhouette (radius f·r/√(d² − r²) about the image centre) must be fully covered.
    x, y = pixel_centres(48, 48)
    silhouette = 60.0 * 0.95 / math.sqrt(16.0 - 0.95**2)
    inside = np.hypot(x - 24, y - 24) < silhouette
    assert inside.sum() > 400
    assert fragments.covered[0][torch.from_numpy(inside)].all()


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_depth_ordering_is_independent_of_submission_order(order):
    near = [[2, 2, 2.0], [14, 3, 2.0], [4, 14, 2.0]]
    far = [[1, 10, 5.0], [15, 1, 3.0], [15, 15, 4.0]]
    triangles = [near, far]
    vertices = on_screen(triangles[order[0]] + triangles[order[1]])
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    near_index = order.index(0)
    fragments = rasterize_mesh(vertices, faces, pixel_cameras(16, 16))
    near_alone = rasterize_mesh(on_screen(near), torch.tensor([[0, 1, 2]]), pixel_cameras(16, 16))
    far_alone = rasterize_mesh(on_screen(far), torch.tensor([[0, 1, 2]]), pixel_cameras(16, 16))
    overlap = near_alone.covered & far_alone.covered
    assert overlap.sum() > 10
    assert (fragments.face_index[near_alone.covered] == near_index).all()
    assert (fragments.face_index[far_alone.covered & ~near_alone.covered] == 1 - near_index).all()
    near_depth = fragments.depth[near_alone.covered]
    torch.testing.assert_close(near_depth, torch.full_like(near_depth, 2.0))


def test_perspective_correct_barycentrics_match_ray_plane_intersection():
    # A square tilted 60° about the x axis, seen in perspective.
    angle = math.radians(60.0)
    corners = torch.tensor([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [-1.0, 1.0, 0.0]])
    cos, sin = math.cos(angle), math.sin(angle)
    tilt = torch.tensor([[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]])
    vertices = corners @ tilt.T
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    cameras = look_at_cameras(32, focal=40.0, distance=3.0)
    fragments = rasterize_mesh(vertices, faces, cameras)
    covered = fragments.covered[0]
    assert covered.sum() > 150
    interpolated = interpolate_vertex_attributes(fragments, faces, vertices)[0][covered].double()
    # Ray through each covered pixel centre, intersected with the plane n·X = 0.
    x, y = pixel_centres(32, 32)
    directions = np.stack([(x - 16) / 40.0, (y - 16) / 40.0, np.ones_like(x)], -1)[covered.numpy()]
    origin = np.array([0.0, 0.0, -3.0])
    normal = tilt.double().numpy() @ np.array([0.0, 0.0, 1.0])
    distance = -(origin @ normal) / (directions @ normal)
    hits = origin + distance[:, None] * directions
    # Vertices snap to 1/1024 px (~1e-4 world units here); affine interpolation would be
    # off by ~1e-2.
    np.testing.assert_allclose(interpolated.numpy(), hits, atol=1e-4)
    np.testing.assert_allclose(fragments.depth[0][covered].numpy(), hits[:, 2] + 3.0, atol=1e-4)


def test_faces_behind_camera_or_off_screen_are_dropped():
    inside = [[4, 4, 2.0], [12, 4, 2.0], [4, 12, 2.0]]
    vertices = torch.cat(
        [
            on_screen(inside),
            torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, -1.0], [0.0, 1.0, 1.0]]),  # one vertex behind
            on_screen([[20, 20, 1.0], [30, 20, 1.0], [20, 30, 1.0]]),  # right of and below the image
            on_screen([[-30, 2, 1.0], [-2, 2, 1.0], [-10, 14, 1.0]]),  # left of the image
            on_screen([[8, 8, 1e-3], [9, 8, 1e-3], [8, 9, 1e-3]]),  # closer than znear
        ]
    )
    faces = torch.arange(15).view(5, 3)
    fragments = rasterize_mesh(vertices, faces, pixel_cameras(16, 16))
    alone = rasterize_mesh(on_screen(inside), torch.tensor([[0, 1, 2]]), pixel_cameras(16, 16))
    torch.testing.assert_close(fragments.face_index, alone.face_index)


def test_face_partly_off_screen_is_clipped_to_the_image():
    vertices = on_screen([[-50, -50, 1.0], [61.3, -40, 1.0], [-40, 60.7, 1.0]])
    fragments = rasterize_mesh(vertices, torch.tensor([[0, 1, 2]]), pixel_cameras(12, 20))
    reference = naive_rasterize(vertices, torch.tensor([[0, 1, 2]]), pixel_cameras(12, 20))[0]
    np.testing.assert_array_equal(fragments.face_index[0].numpy(), reference)
    assert 150 < fragments.covered.sum() < 240


def test_empty_and_degenerate_meshes_render_background():
    cameras = pixel_cameras(8, 8)
    empty = rasterize_mesh(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.int64), cameras)
    assert (empty.face_index == -1).all() and (empty.depth == 0).all()
    collinear = on_screen([[1, 1, 1], [4, 4, 1], [7, 7, 1]])
    degenerate = rasterize_mesh(collinear, torch.tensor([[0, 1, 2], [0, 0, 1]]), cameras)
    assert (degenerate.face_index == -1).all()
    rendered = render_mesh(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.int64), cameras, background_label=5)
    assert (rendered.image == 1).all() and (rendered.mask == 0).all() and (rendered.labels == 5).all()


def test_backface_culling_drops_clockwise_faces():
    # Counter-clockwise in the image (y down) = front-facing.
    front = on_screen([[2, 2, 1], [2, 12, 1], [12, 2, 1]])
    faces = torch.tensor([[0, 1, 2]])
    cameras = pixel_cameras(16, 16)
    assert rasterize_mesh(front, faces, cameras, cull_backfaces=True).covered.any()
    assert not rasterize_mesh(front, faces.flip(1), cameras, cull_backfaces=True).covered.any()
    assert rasterize_mesh(front, faces.flip(1), cameras).covered.any()


def test_fast_path_matches_naive_reference_on_random_mesh():
    generator = torch.Generator().manual_seed(3)
    vertices, faces = random_mesh(24, 16, generator)
    cameras = pixel_cameras(16, 16)
    fragments = rasterize_mesh(vertices, faces, cameras)
    face_index, depth, bary, margin = naive_rasterize(vertices, faces, cameras)
    decided = margin > 1e-4  # pixels not sitting on an edge or a depth tie
    assert decided.mean() > 0.95 and (face_index >= 0).mean() > 0.5
    np.testing.assert_array_equal(fragments.face_index[0].numpy()[decided], face_index[decided])
    np.testing.assert_allclose(fragments.depth[0].numpy()[decided], depth[decided], rtol=1e-5)
    np.testing.assert_allclose(fragments.barycentric[0].numpy()[decided], bary[decided], atol=1e-5)


def test_chunk_size_does_not_change_the_output():
    generator = torch.Generator().manual_seed(4)
    vertices, faces = random_mesh(40, 32, generator)
    cameras = pixel_cameras(32, 32)
    default = rasterize_mesh(vertices, faces, cameras)
    tiny_chunks = rasterize_mesh(vertices, faces, cameras, max_chunk_elements=7)
    torch.testing.assert_close(tiny_chunks.face_index, default.face_index)
    torch.testing.assert_close(tiny_chunks.barycentric, default.barycentric)


@pytest.mark.parametrize("group_pixels", [1 << 18, 2 * 64 * 64])
def test_batched_frames_equal_single_frames(group_pixels, monkeypatch):
    # Frames are rasterized in groups of ~group_pixels pixels (here all 3, or 2 + 1).
    monkeypatch.setattr(mesh_module, "_GROUP_PIXELS", group_pixels)
    vertices, faces = uv_sphere(1.0, rings=8, segments=16)
    spin = torch.linalg.matrix_exp(torch.tensor([[0.0, -0.4, 0.1], [0.4, 0.0, -0.2], [-0.1, 0.2, 0.0]]))
    frames = torch.stack([vertices, vertices * 0.8 + 0.2, vertices @ spin])
    colors = torch.rand(3, vertices.shape[0], 3)
    lights = torch.tensor([[0.0, 0.0, -1.0], [0.5, -0.5, -1.0], [-0.3, 0.2, -1.0]])
    cameras = look_at_cameras(32, focal=40.0, distance=4.0, batch=3)
    cameras.t[1, 2] = 3.0
    labels = torch.arange(faces.shape[0]) % 5
    options = dict(face_labels=labels, coverage_labels=(1, 2))
    batched = render_mesh(frames, faces, cameras, vertex_colors=colors, light_direction=lights, **options)
    for b in range(3):
        single = render_mesh(
            frames[b], faces, cameras[b], vertex_colors=colors[b], light_direction=lights[b], **options
        )
        for name in ("image", "mask", "labels", "depth", "face_index", "normals", "label_coverage"):
            torch.testing.assert_close(getattr(batched, name)[b : b + 1], getattr(single, name), msg=name)
        torch.testing.assert_close(batched.fragments.face_index[b : b + 1], single.fragments.face_index)
        torch.testing.assert_close(batched.fragments.barycentric[b : b + 1], single.fragments.barycentric)
    one_camera = rasterize_mesh(frames, faces, cameras[0])
    alone = rasterize_mesh(frames[1], faces, cameras[0])
    torch.testing.assert_close(one_camera.face_index[1:2], alone.face_index)


def test_invalid_inputs_name_the_argument():
    cameras = pixel_cameras(8, 8)
    vertices = on_screen([[1, 1, 1], [7, 1, 1], [1, 7, 1]])
    with pytest.raises(ValueError, match="faces"):
        rasterize_mesh(vertices, torch.tensor([[0, 1, 3]]), cameras)
    with pytest.raises(ValueError, match="faces"):
        rasterize_mesh(vertices, torch.tensor([[0, 1, 2]], dtype=torch.int32), cameras)
    with pytest.raises(ValueError, match="vertices"):
        rasterize_mesh(vertices[None].expand(2, 3, 3), torch.tensor([[0, 1, 2]]), pixel_cameras(8, 8, batch=3))
    with pytest.raises(ValueError, match="supersample"):
        render_mesh(vertices, torch.tensor([[0, 1, 2]]), cameras, supersample=0)
    with pytest.raises(ValueError, match="vertex_colors"):
        render_mesh(vertices, torch.tensor([[0, 1, 2]]), cameras, vertex_colors=torch.ones(4, 3))
    with pytest.raises(ValueError, match="face_uvs"):
        render_mesh(vertices, torch.tensor([[0, 1, 2]]), cameras, texture=torch.ones(4, 4, 3))
    with pytest.raises(ValueError, match="light_direction"):
        render_mesh(vertices, torch.tensor([[0, 1, 2]]), cameras, light_direction=(0.0, 0.0, 0.0))


# -------------------------------------------------------------------------- attributes


def test_vertex_and_face_attributes():
    vertices = on_screen([[1, 1, 2], [7, 1, 2], [1, 7, 2], [7, 7, 2]])
    faces = torch.tensor([[0, 1, 2], [3, 2, 1]])
    fragments = rasterize_mesh(vertices, faces, pixel_cameras(8, 8))
    colors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    interpolated = interpolate_vertex_attributes(fragments, faces, colors)[0]
    x, y = pixel_centres(8, 8)
    covered = fragments.covered[0].numpy()
    # Channel 0 is 1 at vertices 0 and 3: 1 − u − v on face 0, u + v − 1 on face 1.
    u, v = (x - 1) / 6, (y - 1) / 6
    lower = x + y < 8
    expected = np.where(lower, 1 - u - v, u + v - 1)
    np.testing.assert_allclose(interpolated[..., 0].numpy()[covered], expected[covered], atol=1e-6)
    labels = gather_face_attributes(fragments, torch.tensor([4, 9]), background=-1)[0].numpy()
    np.testing.assert_array_equal(labels, np.where(covered, np.where(lower, 4, 9), -1))
    per_frame = interpolate_vertex_attributes(fragments, faces, colors[None])
    torch.testing.assert_close(per_frame[0], interpolated)
    corners = colors[faces]
    torch.testing.assert_close(interpolate_face_corner_attributes(fragments, corners)[0], interpolated)


def test_vertex_normals_of_a_sphere_point_outwards():
    vertices, faces = uv_sphere(2.0, rings=16, segments=32)
    normals = vertex_normals(vertices, faces)
    cosine = (normals * vertices / 2.0).sum(-1)
    assert cosine.min() > 0.995
    batched = vertex_normals(torch.stack([vertices, -vertices]), faces)
    torch.testing.assert_close(batched[0], normals)
    torch.testing.assert_close(batched[1], normals)  # point reflection keeps every cross product


def test_shade_lambertian():
    normals = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0], [0.6, 0.0, -0.8]]).view(1, 1, 3, 3)
    albedo = torch.full_like(normals, 0.5)
    shaded = shade_lambertian(normals, albedo, torch.tensor([0.0, 0.0, -2.0]), ambient=0.2, diffuse=0.8)
    torch.testing.assert_close(shaded[0, 0, :, 0], torch.tensor([0.5, 0.1, 0.5 * (0.2 + 0.8 * 0.8)]))
    assert shade_lambertian(normals, albedo * 4, torch.tensor([0.0, 0.0, -1.0]), 1.0, 1.0).max() == 1.0
    with pytest.raises(ValueError, match="light_direction"):
        shade_lambertian(normals, albedo, torch.zeros(3), 0.2, 0.8)


def test_sample_texture_convention():
    texture = torch.arange(12, dtype=torch.float32).view(3, 4, 1)  # value = 4·row + col
    uv = torch.tensor([[0.125, 1 / 6], [0.875, 5 / 6], [0.25, 1 / 6], [0.0, 0.0], [1.0, 1.0]]).view(1, 1, 5, 2)
    sampled = sample_texture(texture, uv)[0, 0, :, 0]
    # texel centres; v = 0 is the top row; halfway between cols 0 and 1; clamped corners
    torch.testing.assert_close(sampled, torch.tensor([0.0, 11.0, 0.5, 0.0, 11.0]))


def test_textured_quad_reproduces_the_texture():
    # A quad covering a 6×10 image exactly, textured with a 6×10 image per frame: each
    # pixel centre maps onto its own texel centre, so the unlit render is the texture.
    height, width = 6, 10
    textures = torch.rand(2, height, width, 3)
    vertices = on_screen([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]])
    faces = torch.tensor([[0, 2, 1], [1, 2, 3]])
    corner_uv = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])[faces]
    cameras = pixel_cameras(height, width, batch=2)
    options = dict(face_uvs=corner_uv, light_direction=None, supersample=1)
    rendered = render_mesh(vertices, faces, cameras, texture=textures, **options)
    torch.testing.assert_close(rendered.image, textures, atol=1e-5, rtol=0)
    shared = render_mesh(vertices, faces, cameras, texture=textures[1], **options)
    torch.testing.assert_close(shared.image[0], textures[1], atol=1e-5, rtol=0)


# ------------------------------------------------------------------------ anti-aliasing


def regular_polygon(center: tuple[float, float], radius: float, sides: int):
    """A regular polygon on the screen at depth 1, as a fan of triangles."""
    angles = torch.arange(sides, dtype=torch.float64) * 2 * math.pi / sides
    return fan_mesh(center, angles, torch.full((sides,), radius, dtype=torch.float64))


@pytest.mark.parametrize("supersample", [2, 4])
def test_antialiased_disk_area_and_edges(supersample):
    sides, radius, center = 128, 20.3, (31.7, 32.4)
    vertices, faces = regular_polygon(center, radius, sides)
    rendered = render_mesh(vertices, faces, pixel_cameras(64, 64), supersample=supersample, light_direction=None)
    area = 0.5 * sides * radius**2 * math.sin(2 * math.pi / sides)
    assert abs(rendered.mask.sum().item() - area) / area < 0.01
    # Pixels whose four corners are inside the inscribed circle are solid; pixels whose
    # square misses the circumscribed circle are empty; only the rim is fractional.
    corners_x, corners_y = np.meshgrid(np.arange(65), np.arange(65))
    corner_distance = np.hypot(corners_x - center[0], corners_y - center[1])
    corners = [corner_distance[:-1, :-1], corner_distance[1:, :-1], corner_distance[:-1, 1:], corner_distance[1:, 1:]]
    near = np.stack(corners)
    x, y = pixel_centres(64, 64)
    centre_distance = np.hypot(x - center[0], y - center[1])
    solid = near.max(0) < radius * math.cos(math.pi / sides)
    empty = centre_distance > radius + 0.75
    mask = rendered.mask[0].numpy()
    assert (mask[solid] == 1).all() and (mask[empty] == 0).all()
    fractional = (mask > 0) & (mask < 1)
    assert fractional.any() and not (fractional & (solid | empty)).any()
    np.testing.assert_allclose(rendered.image[0].numpy(), 1.0, atol=1e-6)  # white on white, unlit


def test_antialiased_square_area():
    vertices = on_screen([[10.3, 11.6, 1], [40.7, 11.6, 1], [10.3, 42.2, 1], [40.7, 42.2, 1]])
    faces = torch.tensor([[0, 2, 1], [1, 2, 3]])
    rendered = render_mesh(
        vertices, faces, pixel_cameras(48, 48), supersample=4, background_color=(0.0, 0.0, 0.0), light_direction=None
    )
    area = 30.4 * 30.6
    assert abs(rendered.mask.sum().item() - area) / area < 0.01
    # unlit white albedo over black: the image is the mask
    torch.testing.assert_close(rendered.image[0, ..., 1], rendered.mask[0])


def test_labels_are_exact_inside_and_coverage_sums_to_mask():
    # Two quads side by side (labels 3 and 7) sharing the vertical edge x = 20.
    top, bottom = [[4.2, 4.2, 1], [20, 4.2, 1], [35.6, 4.2, 1]], [[4.2, 27.8, 1], [20, 27.8, 1], [35.6, 27.8, 1]]
    vertices = on_screen(top + bottom)
    faces = torch.tensor([[0, 3, 1], [1, 3, 4], [1, 4, 2], [2, 4, 5]])
    labels = torch.tensor([3, 3, 7, 7])
    rendered = render_mesh(
        vertices, faces, pixel_cameras(32, 40), face_labels=labels, coverage_labels=(3, 7), supersample=3
    )
    x, y = pixel_centres(32, 40)
    inside_y = (y > 5) & (y < 27)
    np.testing.assert_array_equal(rendered.labels[0].numpy()[inside_y & (x > 5) & (x < 19.5)], 3)
    np.testing.assert_array_equal(rendered.labels[0].numpy()[inside_y & (x > 20.5) & (x < 35)], 7)
    outside = (x < 4) | (x > 36) | (y < 4) | (y > 28)
    np.testing.assert_array_equal(rendered.labels[0].numpy()[outside], 0)
    np.testing.assert_array_equal(rendered.face_index[0].numpy()[outside], -1)
    assert ((rendered.mask[0] < 0.5) == (rendered.labels[0] == 0)).all()
    torch.testing.assert_close(rendered.label_coverage.sum(-1), rendered.mask)
    # The pixels on either side of the shared edge x = 20 are entirely one label.
    torch.testing.assert_close(rendered.label_coverage[0][inside_y & (x == 19.5)][:, 0], torch.ones(22))
    torch.testing.assert_close(rendered.label_coverage[0][inside_y & (x == 20.5)][:, 1], torch.ones(22))


def test_label_is_the_majority_of_covered_subsamples():
    # One 1×1-pixel image, 2×2 subsamples at (¼|¾, ¼|¾). Label 3 covers only the first
    # subsample (top-left), label 7 the other three: the majority wins over the first.
    quads = {3: (0.0, 0.0, 0.5, 0.5), 7: (0.5, 0.0, 1.0, 1.0), 8: (0.0, 0.5, 0.5, 1.0)}
    corners, faces, labels = [], [], []
    for label, (x0, y0, x1, y1) in quads.items():
        first = len(corners)
        corners += [[x0, y0, 1.0], [x1, y0, 1.0], [x0, y1, 1.0], [x1, y1, 1.0]]
        faces += [[first, first + 2, first + 1], [first + 1, first + 2, first + 3]]
        labels += [label, label]
    vertices, faces = on_screen(corners), torch.tensor(faces)
    majority = render_mesh(vertices, faces, pixel_cameras(1, 1), face_labels=torch.tensor([3, 3, 7, 7, 7, 7]))
    assert majority.labels.item() == 7 and majority.face_index.item() in (2, 3, 4, 5)
    # A 1–1–2 split (labels 3, 7, 8): 7 has two subsamples and wins.
    split = render_mesh(vertices, faces, pixel_cameras(1, 1), face_labels=torch.tensor(labels))
    assert split.labels.item() == 7
    # A 2–2 tie (3 and 8 on the left column, 7 on the right): the first subsample decides.
    tie = render_mesh(vertices, faces, pixel_cameras(1, 1), face_labels=torch.tensor([3, 3, 7, 7, 3, 3]))
    assert tie.labels.item() == 3 and tie.face_index.item() in (0, 1)


def test_render_outputs_are_consistent():
    vertices, faces = uv_sphere(1.0, rings=24, segments=48)
    cameras = look_at_cameras(32, focal=45.0, distance=4.0)
    colors = (vertices + 1) / 2
    rendered = render_mesh(vertices, faces, cameras, vertex_colors=colors, supersample=2)
    assert rendered.image.shape == rendered.normals.shape == (1, 32, 32, 3)
    assert rendered.fragments.face_index.shape == (1, 64, 64)
    assert rendered.mask.shape == rendered.labels.shape == rendered.depth.shape == rendered.face_index.shape
    solid = rendered.mask[0] >= 0.5
    assert (rendered.face_index[0][solid] >= 0).all() and (rendered.face_index[0][~solid] == -1).all()
    assert ((rendered.depth[0][solid] > 2.9) & (rendered.depth[0][solid] < 4.0)).all()
    # Camera-space normals of a sphere facing the camera point to −z (towards it).
    assert (rendered.normals[0][solid][:, 2] < 0).all()
    torch.testing.assert_close(rendered.normals[0][solid].norm(dim=-1), torch.ones(int(solid.sum())))
    assert rendered.image.min() >= 0 and rendered.image.max() <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    generator = torch.Generator().manual_seed(5)
    vertices, faces = random_mesh(60, 32, generator)
    cameras = pixel_cameras(32, 32)
    cpu = rasterize_mesh(vertices, faces, cameras)
    cuda = rasterize_mesh(vertices.cuda(), faces.cuda(), cameras.to("cuda"))
    torch.testing.assert_close(cuda.face_index.cpu(), cpu.face_index)
    torch.testing.assert_close(cuda.barycentric.cpu(), cpu.barycentric, atol=1e-5, rtol=0)
