"""Triangle-mesh rasterizer for the synthetic datasets and figures (no gradients).

Conventions (cameras and pixels are owned by :mod:`pegasus.geometry.camera`):

* Pixel (row i, col j) is sampled at its centre ``(j + 0.5, i + 0.5)``.
* A pixel centre lying exactly on a shared edge belongs to exactly one of the two faces
  (Direct3D's top-left rule, stated for y-down images), so meshes render without cracks
  or double coverage.
* Front faces are those whose vertices appear counter-clockwise in the image, i.e. whose
  right-hand-rule normal ``(v1 − v0) × (v2 − v0)`` points towards the camera.
  Back-face culling is off by default: visibility is decided by the z-buffer alone.
* Faces with any vertex at camera depth ≤ ``znear`` are dropped (no clipping), as are
  faces with zero projected area and faces outside the image.
* Projected vertices are snapped to 1/1024 px before rasterization (the subpixel grid).
* Barycentric coordinates are perspective-correct; depth is camera-space z.
  Background pixels have ``face_index = -1``, barycentrics 0 and depth 0.
* Ties in depth go to the lower face index, so the output is deterministic.
* Textures: ``uv`` in [0, 1]², u to the right, **v = 0 at the top row**; texel
  (row r, col c) has its centre at ``((c + 0.5) / Wt, (r + 0.5) / Ht)``, the same rule as
  pixels. (OBJ files store v upwards: use ``1 − v``.)

How it works: each face's pixel bounding box is tiled with 4×4-pixel windows, and the
windows of all faces and frames are tested together in a few large broadcast steps laid
out (row, col, window) so that every operation runs along a long axis. Exact float64 edge
functions decide coverage (see ``_SUBPIXELS``) and the face's screen-space plane of 1/z
gives its depth; depth and face index are packed into one int64 key, so
``scatter_reduce('amin')`` is the z-test. Barycentrics are then computed for the winning
face of each covered pixel only. Everything is vectorised torch and runs on any device.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from pegasus.geometry.camera import PinholeCameras, project_points

__all__ = [
    "MeshFragments",
    "MeshRender",
    "rasterize_mesh",
    "interpolate_vertex_attributes",
    "interpolate_face_corner_attributes",
    "gather_face_attributes",
    "vertex_normals",
    "shade_lambertian",
    "sample_texture",
    "render_mesh",
    "uv_sphere",
]

# Projected vertices are snapped to 1/1024 px (GPU rasterizers use 1/256) and edge
# functions are evaluated in float64. For vertices within ±2¹⁴ px of the image origin (and
# images up to 2¹⁴ px) every intermediate value is then an exact multiple of 2⁻²¹ px² below
# 2⁵³ units, so faces sharing an edge or a vertex agree exactly about every pixel centre.
# The fill rule is a bias of ±2⁻²¹ on C (half the spacing of exact values): + on top-left
# edges (w ≥ 0 counts as inside) and − on the others (w > 0); the biased w is never zero.
_SUBPIXELS = 1024.0
_FILL_BIAS = 2.0**-21
# A pixel centre is inside a face where min_k w_k > 0; r = copysign(1/z, min_k w_k) in
# float32 is then +1/z, else −1/z. The z-buffer key is (2³¹ − 1 − int32 bits of r)·2³¹ + face:
# keys below _KEY_COVERED are inside, smaller for nearer faces (then for lower face
# indices); outside keys lie above it.
_FACE_BITS = 31
_FACE_MASK = (1 << _FACE_BITS) - 1
_MAX_FACES = 1 << _FACE_BITS
_KEY_COVERED = ((1 << 31) - 1) << _FACE_BITS
_KEY_BACKGROUND = torch.iinfo(torch.int64).max
# Each face's pixel box is tiled with square windows of this side, all tested alike: one
# shape for all keeps the number of tensor operations per frame small.
_WINDOW_SIDE = 4
# Tests per broadcast step of the rasterizer: small enough for the arrays to stay in cache.
_DEFAULT_CHUNK_ELEMENTS = 1 << 17
# Frames rasterized together hold about this many pixels (at least one frame).
_GROUP_PIXELS = 1 << 18


@dataclass
class MeshFragments:
    """Per-pixel result of :func:`rasterize_mesh` for B frames of H×W pixels.

    Attributes:
        face_index: (B, H, W) int64 index into ``faces`` of the front-most face, −1 where
            no face covers the pixel centre.
        barycentric: (B, H, W, 3) float32 perspective-correct barycentric coordinates of
            the pixel centre in that face (weights of its vertices 0, 1, 2); 0 on background.
        depth: (B, H, W) float32 camera-space z of the surface; 0 on background.
    """

    face_index: torch.Tensor
    barycentric: torch.Tensor
    depth: torch.Tensor

    @property
    def covered(self) -> torch.Tensor:
        """(B, H, W) bool, True where a face covers the pixel centre."""
        return self.face_index >= 0


@dataclass
class MeshRender:
    """Anti-aliased output of :func:`render_mesh` (B frames, H×W pixels).

    Attributes:
        image: (B, H, W, 3) float32 in [0, 1], colour composited over the background.
        mask: (B, H, W) float32 in [0, 1], fraction of covered subsamples (exactly 0 off
            the mesh, exactly 1 inside it, fractional only along silhouettes).
        labels: (B, H, W) int64 label of the pixel's representative subsample (see
            :func:`render_mesh`); the background label where mask < 0.5.
        depth: (B, H, W) float32 camera z of the representative subsample; 0 where mask < 0.5.
        face_index: (B, H, W) int64 face of the representative subsample; −1 where mask < 0.5.
        normals: (B, H, W, 3) float32 unit normals in **camera space** (OpenCV axes) of the
            representative subsample; 0 where mask < 0.5.
        label_coverage: (B, H, W, L) float32 fraction of subsamples carrying each of the
            requested labels (soft part masks), or None when none were requested.
        fragments: the supersampled :class:`MeshFragments` (B, s·H, s·W).
    """

    image: torch.Tensor
    mask: torch.Tensor
    labels: torch.Tensor
    depth: torch.Tensor
    face_index: torch.Tensor
    normals: torch.Tensor
    label_coverage: torch.Tensor | None
    fragments: MeshFragments


# --------------------------------------------------------------------------------------
# Input checks and layout helpers


def _check_faces(faces: torch.Tensor, num_vertices: int) -> None:
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.dtype != torch.int64:
        raise ValueError(f"faces must be (F, 3) int64, got {tuple(faces.shape)} {faces.dtype}")
    if faces.shape[0] >= _MAX_FACES:
        raise ValueError(f"faces: at most {_MAX_FACES - 1} faces are supported, got {faces.shape[0]}")
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= num_vertices):
        raise ValueError(
            f"faces: vertex indices must lie in [0, {num_vertices}), got "
            f"[{int(faces.min())}, {int(faces.max())}]"
        )


def _batched_vertices(
    vertices: torch.Tensor, cameras: PinholeCameras
) -> tuple[torch.Tensor, PinholeCameras]:
    """Broadcasts (V, 3) or (B, V, 3) vertices and a batch of 1 or B cameras to B frames."""
    if vertices.ndim == 2:
        vertices = vertices[None]
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must be (V, 3) or (B, V, 3), got {tuple(vertices.shape)}")
    num_frames = max(vertices.shape[0], len(cameras))
    if vertices.shape[0] not in (1, num_frames) or len(cameras) not in (1, num_frames):
        raise ValueError(
            f"vertices batch {vertices.shape[0]} and cameras batch {len(cameras)} do not "
            "broadcast (each must be 1 or B)"
        )
    if len(cameras) != num_frames:
        cameras = PinholeCameras(
            cameras.K.expand(num_frames, 3, 3),
            cameras.R.expand(num_frames, 3, 3),
            cameras.t.expand(num_frames, 3),
            cameras.image_size,
        )
    return vertices.expand(num_frames, -1, -1), cameras


def _floor_divide(values: torch.Tensor, divisor: int | torch.Tensor) -> torch.Tensor:
    """values // divisor for non-negative int64 values < 2⁵² and positive divisors, via
    float64 (exact there, and faster than int64 division on CPU)."""
    return torch.floor((values.double() + 0.5) / divisor).long()


def _channels_first(image: torch.Tensor) -> torch.Tensor:
    """(B, H, W, C) → (C, B, H, W); a view when the storage is channel-first already."""
    return image.permute(3, 0, 1, 2)


def _normalized(vectors: torch.Tensor) -> torch.Tensor:
    """(3, ...) vectors scaled to unit length along the first dimension (zero stays zero)."""
    norm = (vectors[0] * vectors[0] + vectors[1] * vectors[1] + vectors[2] * vectors[2]).sqrt()
    return vectors / norm.clamp(min=1e-12)


# --------------------------------------------------------------------------------------
# Rasterization


# Rows of the per-face tables built by _screen_faces (one column per frame·face entry).
# Edge k runs from corner k+1 to corner k+2; its edge function w_k(x, y) =
# A_k·x + (B_k·y + C_k) is positive inside; C includes the fill-rule bias (_FILL_BIAS).
_EDGE_A, _EDGE_B, _EDGE_C = 0, 3, 6
# Corner k is at (X_k, Y_k) (snapped) with 1/z = IZ_k.
_CORNER_X, _CORNER_Y, _CORNER_IZ = 0, 3, 6
# 1/z is affine on screen: 1/z = P·x + (Q·y + S).
_PLANE_P, _PLANE_Q, _PLANE_S = 0, 1, 2


@dataclass
class _ScreenFaces:
    """Screen-space data of every (frame, face) entry ``b·F + f``.

    edges: (9, B·F) float64 rows A0..2, B0..2, C0..2 (see _EDGE_*).
    corners: (9, B·F) float32 rows X0..2, Y0..2, IZ0..2 (see _CORNER_*).
    plane: (3, B·F) float32 rows P, Q, S of the screen-space plane of 1/z.
    box: (4, B·F) int64 first column, last column, first row, last row of the pixels whose
    centres lie in the face's bounding box (clipped to the image).
    visible: (B·F,) bool, faces in front of znear with non-zero area and a non-empty box.
    """

    edges: torch.Tensor
    corners: torch.Tensor
    plane: torch.Tensor
    box: torch.Tensor
    visible: torch.Tensor


def _screen_faces(
    uv: torch.Tensor,
    depth: torch.Tensor,
    faces: torch.Tensor,
    image_size: tuple[int, int],
    znear: float,
    cull_backfaces: bool,
) -> _ScreenFaces:
    """Edge functions, 1/z planes and pixel boxes of all faces; uv (B, V, 2), depth (B, V)."""
    height, width = image_size
    uv = torch.round(uv.float() * _SUBPIXELS) / _SUBPIXELS
    corner_x = [uv[..., 0][:, faces[:, k]] for k in range(3)]  # 3 × (B, F) float32
    corner_y = [uv[..., 1][:, faces[:, k]] for k in range(3)]
    z = [depth.float()[:, faces[:, k]] for k in range(3)]
    x, y = [c.double() for c in corner_x], [c.double() for c in corner_y]
    twice_area = (x[1] - x[0]) * (y[2] - y[0]) - (y[1] - y[0]) * (x[2] - x[0])  # < 0: front face
    orientation = torch.sign(twice_area)
    coef_a, coef_b, coef_c = [], [], []
    for k in range(3):
        x_start, y_start = x[(k + 1) % 3], y[(k + 1) % 3]
        x_end, y_end = x[(k + 2) % 3], y[(k + 2) % 3]
        # Evaluated from the lexicographically smaller endpoint, two faces sharing the edge
        # get exactly negated coefficients, which keeps them consistent even beyond ±2¹⁴ px.
        swap = (x_start > x_end) | ((x_start == x_end) & (y_start > y_end))
        x_low, y_low = torch.where(swap, x_end, x_start), torch.where(swap, y_end, y_start)
        x_high, y_high = torch.where(swap, x_start, x_end), torch.where(swap, y_start, y_end)
        sign = torch.where(swap, -orientation, orientation)
        a = (y_low - y_high) * sign
        b = (x_high - x_low) * sign
        top_left = (a > 0) | ((a == 0) & (b > 0))
        coef_a.append(a)
        coef_b.append(b)
        coef_c.append(torch.where(top_left, _FILL_BIAS, -_FILL_BIAS) - (a * x_low + b * y_low))
    edges = torch.stack(coef_a + coef_b + coef_c).reshape(9, -1)
    inv_depth = [1.0 / z_k.clamp(min=znear) for z_k in z]
    corners = torch.stack(corner_x + corner_y + inv_depth).reshape(9, -1)
    # 1/z = Σ_k w_k/z_k / Σ_k w_k, and Σ_k w_k = |2·area| everywhere.
    norm = 1.0 / twice_area.abs().clamp(min=torch.finfo(torch.float64).tiny)
    plane = torch.stack([sum(c[k] * inv_depth[k] for k in range(3)) * norm for c in (coef_a, coef_b, coef_c)])
    plane = plane.float().reshape(3, -1)

    # Pixel centres (j + 0.5, i + 0.5) inside the bounding box, clipped to the image.
    limit = float(max(height, width) + 1)
    (low_x, high_x), (low_y, high_y) = torch.stack(x).aminmax(dim=0), torch.stack(y).aminmax(dim=0)
    box = torch.stack(
        [
            torch.ceil(low_x.clamp(-1.0, limit) - 0.5).clamp(min=0),
            torch.floor(high_x.clamp(-1.0, limit) - 0.5).clamp(max=width - 1),
            torch.ceil(low_y.clamp(-1.0, limit) - 0.5).clamp(min=0),
            torch.floor(high_y.clamp(-1.0, limit) - 0.5).clamp(max=height - 1),
        ]
    ).reshape(4, -1)
    visible = (box[0] <= box[1]) & (box[2] <= box[3]) & (twice_area != 0).reshape(-1)
    visible &= ((z[0] > znear) & (z[1] > znear) & (z[2] > znear)).reshape(-1)
    visible &= torch.isfinite(edges).all(0) & torch.isfinite(plane).all(0)
    if cull_backfaces:
        visible &= (twice_area < 0).reshape(-1)
    return _ScreenFaces(edges=edges, corners=corners, plane=plane, box=box.long(), visible=visible)


def _gather_columns(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """table[:, index] for a (R, E) table; row by row, which is faster for float64 on CPU."""
    result = table.new_empty(table.shape[0], index.shape[0])
    for row in range(table.shape[0]):
        torch.index_select(table[row], 0, index, out=result[row])
    return result


@dataclass
class _Windows:
    """Windows of pixels to test, one per column (N windows).

    edges, plane: (9, N) and (3, N), the face's columns of the :class:`_ScreenFaces`
    tables; origin: (2, N) int64 first column and row; first_pixel: (N,) int64 flat index
    b·H·W + row·W + col of the origin; key_offset: (N,) int64 _KEY_COVERED + face index.
    """

    edges: torch.Tensor
    plane: torch.Tensor
    origin: torch.Tensor
    first_pixel: torch.Tensor
    key_offset: torch.Tensor

    def __getitem__(self, index: slice) -> "_Windows":
        return _Windows(
            self.edges[:, index],
            self.plane[:, index],
            self.origin[:, index],
            self.first_pixel[index],
            self.key_offset[index],
        )


def _face_windows(
    screen: _ScreenFaces, num_faces: int, image_size: tuple[int, int]
) -> tuple[_Windows, tuple[int, int]]:
    """Tiles the pixel box of every visible face with windows of _WINDOW_SIDE² pixels.

    Windows that would leave the image are shifted back in (they may then overlap a
    neighbour of the same face, which changes nothing). Returns the windows and their shape.
    """
    height, width = image_size
    rows, cols = min(_WINDOW_SIDE, height), min(_WINDOW_SIDE, width)
    entry = screen.visible.nonzero()[:, 0]
    box = screen.box.index_select(1, entry)
    tiles_x = (box[1] - box[0] + cols) // cols
    tiles_y = (box[3] - box[2] + rows) // rows
    num_windows = tiles_x * tiles_y
    parent = torch.repeat_interleave(torch.arange(len(entry), device=box.device), num_windows)
    first_window = torch.cumsum(num_windows, 0) - num_windows
    rank = torch.arange(len(parent), device=box.device) - first_window.index_select(0, parent)
    tiles_x = tiles_x.index_select(0, parent)
    tile_row = _floor_divide(rank, tiles_x)
    tile_col = rank - tile_row * tiles_x
    box = box.index_select(1, parent)
    origin_col = torch.clamp(box[0] + tile_col * cols, max=width - cols)
    origin_row = torch.clamp(box[2] + tile_row * rows, max=height - rows)
    window_entry = entry.index_select(0, parent)
    frame = _floor_divide(window_entry, num_faces)
    face = window_entry - frame * num_faces
    windows = _Windows(
        edges=_gather_columns(screen.edges, window_entry),
        plane=screen.plane.index_select(1, window_entry),
        origin=torch.stack([origin_col, origin_row]),
        first_pixel=(frame * height + origin_row) * width + origin_col,
        key_offset=_KEY_COVERED + face,
    )
    return windows, (rows, cols)


def _test_windows(zbuffer: torch.Tensor, windows: _Windows, shape: tuple[int, int], width: int) -> None:
    """Z-tests every pixel of equal rows×cols windows into ``zbuffer`` (B·H·W,) int64.

    Arrays are laid out (rows, cols, N) so that every full-size operation runs along N.
    """
    rows, cols = shape
    device = zbuffer.device
    edges, plane = windows.edges, windows.plane
    x = windows.origin[0].double() + (torch.arange(cols, device=device, dtype=torch.float64) + 0.5)[:, None]
    y = windows.origin[1].double() + (torch.arange(rows, device=device, dtype=torch.float64) + 0.5)[:, None]
    inside_distance = None  # min_k w_k, (rows, cols, N), never 0 (see _FILL_BIAS)
    for k in range(3):
        edge = edges[_EDGE_A + k] * x + (edges[_EDGE_B + k] * y + edges[_EDGE_C + k])[:, None]
        if inside_distance is None:
            inside_distance = edge
        else:
            torch.minimum(inside_distance, edge, out=inside_distance)
    x, y = x.float(), y.float()
    inv_depth = plane[_PLANE_P] * x + (plane[_PLANE_Q] * y + plane[_PLANE_S])[:, None]
    signed = torch.copysign(inv_depth, inside_distance.float(), out=inv_depth)
    key = signed.view(torch.int32).long()
    torch.sub(windows.key_offset, key, alpha=1 << _FACE_BITS, out=key)
    offsets = torch.arange(rows, device=device)[:, None] * width + torch.arange(cols, device=device)
    pixel = windows.first_pixel + offsets[:, :, None]
    zbuffer.scatter_reduce_(0, pixel.view(-1), key.view(-1), "amin")


def _rasterize_screen_faces(
    screen: _ScreenFaces,
    num_frames: int,
    num_faces: int,
    image_size: tuple[int, int],
    max_chunk_elements: int,
) -> torch.Tensor:
    """Z-tests all visible faces; returns the (B·H·W,) int64 buffer of packed keys."""
    height, width = image_size
    zbuffer = torch.full(
        (num_frames * height * width,), _KEY_BACKGROUND, dtype=torch.int64, device=screen.edges.device
    )
    windows, shape = _face_windows(screen, num_faces, image_size)
    per_chunk = max(1, max_chunk_elements // (shape[0] * shape[1]))
    for chunk in range(0, len(windows.first_pixel), per_chunk):
        _test_windows(zbuffer, windows[chunk : chunk + per_chunk], shape, width)
    return zbuffer


@dataclass
class _CoveredPixels:
    """N pixels of B frames of H×W pixels, each covered by a face, in flat-index order.

    pixel: (N,) int64 flat index b·H·W + i·W + j; frame: (N,) int64 b; face: (N,) int64
    covering face; weights: (3, N) its perspective-correct barycentrics.
    """

    pixel: torch.Tensor
    frame: torch.Tensor
    face: torch.Tensor
    weights: torch.Tensor


def _unravel(pixel: torch.Tensor, image_size: tuple[int, int]) -> tuple[torch.Tensor, ...]:
    """Flat pixel indices b·H·W + i·W + j → (b, i, j)."""
    height, width = image_size
    image_row = _floor_divide(pixel, width)
    frame = _floor_divide(image_row, height)
    return frame, image_row - frame * height, pixel - image_row * width


@dataclass
class _Fragments:
    """Flat, channel-first storage of :class:`MeshFragments` for M = B·H·W pixels:
    face_index (M,) int64, depth (M,) float32, barycentric (3, M) float32."""

    face_index: torch.Tensor
    depth: torch.Tensor
    barycentric: torch.Tensor

    @staticmethod
    def background(num_pixels: int, device: torch.device) -> "_Fragments":
        return _Fragments(
            torch.full((num_pixels,), -1, dtype=torch.int64, device=device),
            torch.zeros(num_pixels, device=device),
            torch.zeros(3, num_pixels, device=device),
        )

    def frames(self, start: int, stop: int, pixels_per_frame: int) -> "_Fragments":
        """Views of frames [start, stop)."""
        window = slice(start * pixels_per_frame, stop * pixels_per_frame)
        return _Fragments(self.face_index[window], self.depth[window], self.barycentric[:, window])

    def images(self, image_size: tuple[int, int]) -> MeshFragments:
        """(B, H, W) views as :class:`MeshFragments`."""
        shape = (-1, *image_size)
        barycentric = self.barycentric.reshape(3, *shape).permute(1, 2, 3, 0)
        return MeshFragments(self.face_index.view(shape), barycentric, self.depth.view(shape))


def _resolve_fragments(
    zbuffer: torch.Tensor,
    screen: _ScreenFaces,
    num_faces: int,
    image_size: tuple[int, int],
    output: _Fragments,
) -> _CoveredPixels:
    """Writes face index, perspective-correct barycentrics and depth of each pixel's winning
    face into ``output`` and returns the covered pixels."""
    pixel = (zbuffer < _KEY_COVERED).nonzero()[:, 0]
    face = zbuffer.index_select(0, pixel) & _FACE_MASK
    frame, row, col = _unravel(pixel, image_size)
    corners = screen.corners.index_select(1, face + frame * num_faces)
    x, y = col.float() + 0.5, row.float() + 0.5
    # Edge functions relative to a corner of the edge (small operands: accurate in float32).
    dx = [x - corners[_CORNER_X + k] for k in range(3)]
    dy = [y - corners[_CORNER_Y + k] for k in range(3)]
    edge = []
    for k in range(3):
        start, end = (k + 1) % 3, (k + 2) % 3
        edge_x = corners[_CORNER_X + end] - corners[_CORNER_X + start]
        edge_y = corners[_CORNER_Y + end] - corners[_CORNER_Y + start]
        edge.append(edge_x * dy[start] - edge_y * dx[start])
    total = edge[0] + edge[1] + edge[2]
    # Screen-space barycentrics, ≥ 0 up to rounding, then perspective-corrected by 1/z.
    weights = torch.stack(edge).div_(total).clamp_(min=0.0).mul_(corners[_CORNER_IZ : _CORNER_IZ + 3])
    inv_depth = weights.sum(0)
    weights /= inv_depth
    output.face_index.index_copy_(0, pixel, face)
    output.depth.index_copy_(0, pixel, inv_depth.reciprocal_())
    output.barycentric.index_copy_(1, pixel, weights)
    return _CoveredPixels(pixel, frame, face, weights)


def _rasterize(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    cameras: PinholeCameras,
    znear: float,
    cull_backfaces: bool,
    max_chunk_elements: int,
    output: _Fragments,
) -> _CoveredPixels:
    """:func:`rasterize_mesh` of batched inputs into ``output`` (background-filled, B·H·W
    pixels); returns the covered pixels.

    Frames are rasterized in groups of about _GROUP_PIXELS pixels: batching small frames
    saves per-operation overhead, and capping the group keeps large frames cache-friendly.
    """
    if znear <= 0:
        raise ValueError(f"znear must be > 0, got {znear}")
    if max_chunk_elements < 1:
        raise ValueError(f"max_chunk_elements must be ≥ 1, got {max_chunk_elements}")
    num_frames, num_faces = vertices.shape[0], faces.shape[0]
    height, width = cameras.image_size
    pixels_per_frame = height * width
    group = max(1, _GROUP_PIXELS // pixels_per_frame)
    parts = []
    for start in range(0, num_frames, group):
        stop = min(start + group, num_frames)
        uv, depth = project_points(cameras[start:stop], vertices[start:stop])
        screen = _screen_faces(uv, depth, faces, cameras.image_size, znear, cull_backfaces)
        zbuffer = _rasterize_screen_faces(
            screen, stop - start, num_faces, (height, width), max_chunk_elements
        )
        frames = output.frames(start, stop, pixels_per_frame)
        part = _resolve_fragments(zbuffer, screen, num_faces, (height, width), frames)
        part.pixel += start * pixels_per_frame
        part.frame += start
        parts.append(part)
    if len(parts) == 1:
        return parts[0]
    return _CoveredPixels(
        torch.cat([part.pixel for part in parts]),
        torch.cat([part.frame for part in parts]),
        torch.cat([part.face for part in parts]),
        torch.cat([part.weights for part in parts], dim=1),
    )


@torch.no_grad()
def rasterize_mesh(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    cameras: PinholeCameras,
    *,
    znear: float = 1e-2,
    cull_backfaces: bool = False,
    max_chunk_elements: int = _DEFAULT_CHUNK_ELEMENTS,
) -> MeshFragments:
    """Rasterizes a triangle mesh into B frames: front-most face per pixel centre.

    Args:
        vertices: (V, 3) or (B, V, 3) world coordinates.
        faces: (F, 3) int64 vertex indices, shared by all frames.
        cameras: batch of 1 or B cameras (image size H×W).
        znear: faces with any vertex at camera depth ≤ znear are dropped (world units).
        cull_backfaces: drop faces that appear clockwise in the image (see module doc).
        max_chunk_elements: most (face, pixel) tests evaluated at once; bounds memory
            (about 60 bytes per test) and does not change the output.

    Returns:
        :class:`MeshFragments` of shape (B, H, W), computed in float32. ``barycentric``
        is a (B, H, W, 3) view of channel-first storage.
    """
    vertices, cameras = _batched_vertices(vertices, cameras)
    _check_faces(faces, vertices.shape[1])
    height, width = cameras.image_size
    output = _Fragments.background(vertices.shape[0] * height * width, vertices.device)
    _rasterize(vertices, faces, cameras, znear, cull_backfaces, max_chunk_elements, output)
    return output.images(cameras.image_size)


# --------------------------------------------------------------------------------------
# Attributes


def _covered_pixels(fragments: MeshFragments) -> _CoveredPixels:
    """The covered pixels of ``fragments``."""
    face_index = fragments.face_index.reshape(-1)
    pixel = (face_index >= 0).nonzero()[:, 0]
    frame = _unravel(pixel, tuple(fragments.face_index.shape[1:]))[0]
    weights = _channels_first(fragments.barycentric).reshape(3, -1).index_select(1, pixel)
    return _CoveredPixels(pixel, frame, face_index.index_select(0, pixel), weights)


def _scatter_channels(values: torch.Tensor, pixel: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """(C, N) values at flat ``pixel`` indices → (B, H, W, C) view of a zero-filled (C, B, H, W)."""
    output = values.new_zeros(values.shape[0], shape.numel())
    output.index_copy_(1, pixel, values)
    return output.view(values.shape[0], *shape).permute(1, 2, 3, 0)


def _vertex_table(attributes: torch.Tensor) -> torch.Tensor:
    """(V, C) or (B, V, C) → channel-first (C, V) or (C, B·V)."""
    return attributes.reshape(-1, attributes.shape[-1]).T.contiguous()


def _vertex_values(
    covered: _CoveredPixels, faces: torch.Tensor, table: torch.Tensor, num_vertices: int
) -> torch.Tensor:
    """Barycentric blend (C, N) of the corners' columns of a (C, V) or (C, B·V) vertex table."""
    vertex = faces.T.contiguous().index_select(1, covered.face)  # (3, N)
    if table.shape[1] > num_vertices:
        vertex += covered.frame * num_vertices
    return _blend_corners([table] * 3, list(vertex), covered.weights)


def _blend_corners(
    corner_tables: list[torch.Tensor], corner_index: list[torch.Tensor], weights: torch.Tensor
) -> torch.Tensor:
    """Σ_k weights[k] · corner_tables[k][:, corner_index[k]] → (C, N)."""
    blended = None
    for k in range(3):
        term = corner_tables[k].index_select(1, corner_index[k]).mul_(weights[k].to(corner_tables[k].dtype))
        blended = term if blended is None else blended.add_(term)
    return blended


def _face_corner_values(covered: _CoveredPixels, attributes: torch.Tensor) -> torch.Tensor:
    """Barycentric blend (C, N) of per-corner attributes (B', F, 3, C), B' = 1 or B."""
    num_faces = attributes.shape[1]
    entry = covered.face + covered.frame * num_faces if attributes.shape[0] > 1 else covered.face
    tables = attributes.permute(2, 3, 0, 1).reshape(3, attributes.shape[3], -1)  # (3, C, B'·F)
    return _blend_corners(list(tables), [entry] * 3, covered.weights)


def interpolate_face_corner_attributes(
    fragments: MeshFragments, face_corner_attributes: torch.Tensor
) -> torch.Tensor:
    """Interpolates attributes given per face corner (so they may differ across seams).

    Args:
        face_corner_attributes: (F, 3, C) or (B, F, 3, C), e.g. per-corner UVs.

    Returns:
        (B, H, W, C) barycentric blend of the covering face's corners; 0 on background.
        A view of channel-first storage.
    """
    num_frames = fragments.face_index.shape[0]
    attributes = face_corner_attributes
    if attributes.ndim == 3:
        attributes = attributes[None]
    if attributes.ndim != 4 or attributes.shape[2] != 3 or attributes.shape[0] not in (1, num_frames):
        raise ValueError(
            f"face_corner_attributes must be (F, 3, C) or ({num_frames}, F, 3, C), "
            f"got {tuple(face_corner_attributes.shape)}"
        )
    covered = _covered_pixels(fragments)
    values = _face_corner_values(covered, attributes)
    return _scatter_channels(values, covered.pixel, fragments.face_index.shape)


def interpolate_vertex_attributes(
    fragments: MeshFragments, faces: torch.Tensor, attributes: torch.Tensor
) -> torch.Tensor:
    """Interpolates per-vertex attributes with the perspective-correct barycentrics.

    Args:
        faces: (F, 3) int64, the faces that were rasterized.
        attributes: (V, C) or (B, V, C).

    Returns:
        (B, H, W, C); 0 on background. A view of channel-first storage.
    """
    num_frames = fragments.face_index.shape[0]
    if attributes.ndim not in (2, 3) or (attributes.ndim == 3 and attributes.shape[0] not in (1, num_frames)):
        raise ValueError(f"attributes must be (V, C) or ({num_frames}, V, C), got {tuple(attributes.shape)}")
    _check_faces(faces, attributes.shape[-2])
    covered = _covered_pixels(fragments)
    values = _vertex_values(covered, faces, _vertex_table(attributes), attributes.shape[-2])
    return _scatter_channels(values, covered.pixel, fragments.face_index.shape)


def gather_face_attributes(
    fragments: MeshFragments, face_attributes: torch.Tensor, background: float | int = 0
) -> torch.Tensor:
    """Looks up a per-face value (e.g. an integer label) at each pixel.

    Args:
        face_attributes: (F,) or (F, C), any dtype.
        background: value written where no face covers the pixel.

    Returns:
        (B, H, W) or (B, H, W, C) with ``face_attributes``' dtype.
    """
    if face_attributes.ndim not in (1, 2):
        raise ValueError(f"face_attributes must be (F,) or (F, C), got {tuple(face_attributes.shape)}")
    if face_attributes.shape[0] == 0 and bool(fragments.covered.any()):
        raise ValueError("face_attributes is empty but the fragments cover pixels")
    background_row = face_attributes.new_full((1, *face_attributes.shape[1:]), background)
    padded = torch.cat([background_row, face_attributes])
    values = padded.index_select(0, fragments.face_index.reshape(-1) + 1)
    return values.view(*fragments.face_index.shape, *face_attributes.shape[1:])


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals (right-hand rule over each face's corners).

    Args:
        vertices: (V, 3) or (B, V, 3).
        faces: (F, 3) int64.

    Returns:
        Same shape as ``vertices``; 0 for vertices that belong to no face of non-zero area.
    """
    if vertices.ndim not in (2, 3) or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must be (V, 3) or (B, V, 3), got {tuple(vertices.shape)}")
    _check_faces(faces, vertices.shape[-2])
    batched = vertices if vertices.ndim == 3 else vertices[None]
    num_frames, num_vertices = batched.shape[:2]
    # Channel-first (3, B·V) layout: every operation below runs along the long axis.
    points = batched.permute(2, 0, 1).reshape(3, -1)
    offsets = torch.arange(num_frames, device=faces.device)[:, None] * num_vertices
    corner_index = [(faces[:, k] + offsets).reshape(-1) for k in range(3)]
    corner = [points.index_select(1, index) for index in corner_index]
    u, v = corner[1] - corner[0], corner[2] - corner[0]
    face_normals = torch.stack(
        [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]]
    )
    normals = torch.zeros_like(points)
    for index in corner_index:
        normals.index_add_(1, index, face_normals)
    return _normalized(normals).view(3, num_frames, num_vertices).permute(1, 2, 0).reshape(vertices.shape)


# --------------------------------------------------------------------------------------
# Shading and textures


def _light_directions(light_direction, num_frames: int, like: torch.Tensor) -> torch.Tensor:
    """(3,) or (B, 3) → (B, 3) unit vectors with ``like``'s dtype and device."""
    light = torch.as_tensor(light_direction, dtype=like.dtype, device=like.device)
    if light.shape not in ((3,), (num_frames, 3)):
        raise ValueError(f"light_direction must be (3,) or ({num_frames}, 3), got {tuple(light.shape)}")
    if bool((light.norm(dim=-1) == 0).any()):
        raise ValueError("light_direction must be non-zero")
    return F.normalize(light, dim=-1).expand(num_frames, 3)


def _shade(
    normals: torch.Tensor, albedo: torch.Tensor, light: torch.Tensor, ambient: float, diffuse: float
) -> torch.Tensor:
    """Lambertian shading of channel-first (3, ...) normals and albedo; ``light`` (3, ...)
    unit directions broadcast against them."""
    cosine = (normals[0] * light[0] + normals[1] * light[1] + normals[2] * light[2]).clamp(min=0.0)
    return (albedo * (ambient + diffuse * cosine)).clamp(0.0, 1.0)


def shade_lambertian(
    normals: torch.Tensor,
    albedo: torch.Tensor,
    light_direction: torch.Tensor,
    ambient: float,
    diffuse: float,
) -> torch.Tensor:
    """Lambertian shading ``albedo · (ambient + diffuse · max(0, n·l))`` clamped to [0, 1].

    Args:
        normals: (B, H, W, 3) unit normals.
        albedo: (B, H, W, 3) in [0, 1].
        light_direction: (3,) or (B, 3) direction from the surface towards the light, in
            the space of ``normals``; normalised here.
        ambient, diffuse: non-negative weights.

    Returns:
        (B, H, W, 3) colour in [0, 1].
    """
    if normals.ndim != 4 or normals.shape[-1] != 3 or albedo.shape != normals.shape:
        raise ValueError(
            f"normals and albedo must both be (B, H, W, 3), got {tuple(normals.shape)} and "
            f"{tuple(albedo.shape)}"
        )
    if ambient < 0 or diffuse < 0:
        raise ValueError(f"ambient and diffuse must be ≥ 0, got {ambient} and {diffuse}")
    light = _light_directions(light_direction, normals.shape[0], normals).T[:, :, None, None]
    shaded = _shade(_channels_first(normals), _channels_first(albedo), light, ambient, diffuse)
    return shaded.permute(1, 2, 3, 0)


def _bilinear(texture: torch.Tensor, uv: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
    """Samples a (B', Ht, Wt, C) texture at uv (2, N) of frames ``frame`` (N,) → (C, N)
    (see :func:`sample_texture` for the convention); B' = 1 or B."""
    num_textures, height, width, channels = texture.shape
    table = texture.reshape(-1, channels).T.to(uv.dtype).contiguous()  # (C, B'·Ht·Wt)
    # Continuous texel coordinates, texel centres at integers, clamped to the edge texels.
    x = (uv[0] * width - 0.5).clamp_(0.0, width - 1)
    y = (uv[1] * height - 0.5).clamp_(0.0, height - 1)
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0
    col0, row0 = x0.long(), y0.long()
    col1, row1 = (col0 + 1).clamp_(max=width - 1), (row0 + 1).clamp_(max=height - 1)
    start = frame * (height * width) if num_textures > 1 else 0
    corner = [
        table.index_select(1, start + row * width + col) for row in (row0, row1) for col in (col0, col1)
    ]
    top = corner[0] * (1 - fx) + corner[1] * fx
    bottom = corner[2] * (1 - fx) + corner[3] * fx
    return (top * (1 - fy) + bottom * fy).to(texture.dtype)


def sample_texture(texture: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear texture lookup with clamp-to-edge.

    Args:
        texture: (Ht, Wt, C) or (B, Ht, Wt, C).
        uv: (B, H, W, 2) finite, in [0, 1]; u right, v = 0 at the top row, texel (row r,
            col c) centred at ((c + 0.5)/Wt, (r + 0.5)/Ht).

    Returns:
        (B, H, W, C) in the texture's dtype; a view of channel-first storage.
    """
    if uv.ndim != 4 or uv.shape[-1] != 2:
        raise ValueError(f"uv must be (B, H, W, 2), got {tuple(uv.shape)}")
    if texture.ndim == 3:
        texture = texture[None]
    if texture.ndim != 4 or texture.shape[0] not in (1, uv.shape[0]):
        raise ValueError(
            f"texture must be (Ht, Wt, C) or ({uv.shape[0]}, Ht, Wt, C), got {tuple(texture.shape)}"
        )
    num_frames, height, width = uv.shape[:3]
    frame = torch.arange(num_frames, device=uv.device).repeat_interleave(height * width)
    sampled = _bilinear(texture, _channels_first(uv).reshape(2, -1), frame)
    return sampled.view(-1, num_frames, height, width).permute(1, 2, 3, 0)


# --------------------------------------------------------------------------------------
# Anti-aliased rendering


def _supersampled_cameras(cameras: PinholeCameras, factor: int) -> PinholeCameras:
    """Cameras of an image ``factor`` times larger: subpixels spread evenly in each pixel."""
    scale = cameras.K.new_tensor([factor, factor, 1.0])[:, None]
    height, width = cameras.image_size
    return PinholeCameras(cameras.K * scale, cameras.R, cameras.t, (height * factor, width * factor))


def _subsample_offsets(factor: int) -> list[tuple[int, int]]:
    """(row, col) offsets of the s² subsamples inside a pixel, nearest the centre first
    (then in raster order)."""
    offsets = [(row, col) for row in range(factor) for col in range(factor)]
    centre = (factor - 1) / 2
    return sorted(offsets, key=lambda offset: (offset[0] - centre) ** 2 + (offset[1] - centre) ** 2)


def _subsamples(image: torch.Tensor, factor: int) -> list[torch.Tensor]:
    """(..., s·H, s·W) → s² strided views (..., H, W), nearest-to-centre subsample first."""
    return [image[..., row::factor, col::factor] for row, col in _subsample_offsets(factor)]


def _representative_subsample(labels: list[torch.Tensor], covered: list[torch.Tensor]) -> torch.Tensor:
    """Index (B, H, W) of the covered subsample whose label is the most common among the
    covered subsamples of its pixel; labels, covered: S × (B, H, W), nearest-to-centre
    first; ties go to the earliest."""
    # Uncovered subsamples get distinct negative labels, so they only ever match themselves.
    labels = [torch.where(cover, label, -1 - k) for k, (label, cover) in enumerate(zip(labels, covered))]
    best_score = torch.zeros(labels[0].shape, dtype=torch.int16, device=labels[0].device)
    best = torch.zeros(labels[0].shape, dtype=torch.int64, device=labels[0].device)
    for k, label in enumerate(labels):
        score = covered[k].to(torch.int16)  # a covered subsample beats an uncovered one
        for other in labels:
            score += (label == other).to(torch.int16) * 2
        better = score > best_score
        best_score = torch.where(better, score, best_score)
        best.masked_fill_(better, k)
    return best


def _subsample_pixels(representative: torch.Tensor, factor: int) -> torch.Tensor:
    """Flat index into (B, s·H, s·W) of subsample ``representative`` (B, H, W) of each pixel."""
    num_frames, height, width = representative.shape
    device = representative.device
    offsets = [row * width * factor + col for row, col in _subsample_offsets(factor)]
    offsets = torch.tensor(offsets, device=device)
    frame = torch.arange(num_frames, device=device)[:, None, None] * (height * width * factor * factor)
    row = torch.arange(height, device=device)[:, None] * (width * factor * factor)
    col = torch.arange(width, device=device) * factor
    return frame + row + col + offsets.take(representative)


def _label_coverage(
    labels: list[torch.Tensor], covered: list[torch.Tensor], wanted: Sequence[int]
) -> torch.Tensor:
    """(B, H, W, L) fraction of each pixel's subsamples (S × (B, H, W)) covered by each of
    the L ``wanted`` labels."""
    per_label = []
    for label in wanted:
        count = sum(((label_k == label) & cover).float() for label_k, cover in zip(labels, covered))
        per_label.append(count / len(labels))
    return torch.stack(per_label, dim=-1)


@dataclass
class _Appearance:
    """Checked shading inputs of B frames: vertex_colors (B', V, 3) or None; texture
    (B', Ht, Wt, 3) and face_uvs (F, 3, 2), or None (B' = 1 or B); light (B, 3) unit
    directions in camera space, or None for unlit; Lambertian weights; background (3,)."""

    vertex_colors: torch.Tensor | None
    texture: torch.Tensor | None
    face_uvs: torch.Tensor | None
    light: torch.Tensor | None
    ambient: float
    diffuse: float
    background_color: torch.Tensor

    def frames(self, index: slice) -> "_Appearance":
        """The inputs of frames ``index`` (batches of 1 are shared by all frames)."""

        def pick(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return tensor if tensor is None or tensor.shape[0] == 1 else tensor[index]

        return _Appearance(
            vertex_colors=pick(self.vertex_colors),
            texture=pick(self.texture),
            face_uvs=self.face_uvs,
            light=pick(self.light),
            ambient=self.ambient,
            diffuse=self.diffuse,
            background_color=self.background_color,
        )


def _render_frames(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    cameras: PinholeCameras,
    appearance: _Appearance,
    face_labels: torch.Tensor,
    coverage_labels: Sequence[int],
    background_label: int,
    supersample: int,
    znear: float,
    cull_backfaces: bool,
    subsamples: _Fragments,
) -> MeshRender:
    """:func:`render_mesh` for checked inputs of B frames (vertices (B, V, 3), cameras (B)),
    rasterizing into ``subsamples`` (background-filled storage for B·s²·H·W subsamples)."""
    num_frames, num_vertices = vertices.shape[:2]
    height, width = cameras.image_size
    device = vertices.device
    hires_cameras = _supersampled_cameras(cameras, supersample)
    covered = _rasterize(
        vertices, faces, hires_cameras, znear, cull_backfaces, _DEFAULT_CHUNK_ELEMENTS, subsamples
    )
    fragments = subsamples.images(hires_cameras.image_size)

    # Camera-space normals and colour of the covered subsamples, channel-first (C, N).
    camera_normals = vertex_normals(vertices, faces) @ cameras.R.transpose(1, 2).to(vertices.dtype)
    normal_table = _vertex_table(camera_normals).float()
    normals = _normalized(_vertex_values(covered, faces, normal_table, num_vertices))
    if appearance.vertex_colors is not None:
        albedo = _vertex_values(covered, faces, _vertex_table(appearance.vertex_colors).float(), num_vertices)
    elif appearance.texture is not None:
        uv = _face_corner_values(covered, appearance.face_uvs.float()[None])
        albedo = _bilinear(appearance.texture.float(), uv, covered.frame)
    else:
        albedo = torch.ones_like(normals)
    if appearance.light is None:
        color = albedo.clamp(0.0, 1.0)
    else:
        light = appearance.light.T.index_select(1, covered.frame)
        color = _shade(normals, albedo, light, appearance.ambient, appearance.diffuse)

    # Box filter: sum the covered subsamples of each pixel, composite over the background.
    samples = supersample * supersample
    frame, row, col = _unravel(covered.pixel, hires_cameras.image_size)
    pixel = (frame * height + _floor_divide(row, supersample)) * width + _floor_divide(col, supersample)
    num_pixels = num_frames * height * width
    mask = torch.bincount(pixel, minlength=num_pixels).float().div_(samples)
    image = torch.zeros(3, num_pixels, device=device).index_add_(1, pixel, color).div_(samples)
    image += (1.0 - mask) * appearance.background_color[:, None]

    # Exact values of each pixel's representative subsample (pick: flat subsample index).
    shape = (num_frames, height, width)
    subsample_labels = gather_face_attributes(fragments, face_labels, background_label)
    label_samples = _subsamples(subsample_labels, supersample)
    covered_samples = _subsamples(fragments.covered, supersample)
    if supersample == 1:
        pick = torch.arange(num_pixels, device=device).view(shape)
    else:
        pick = _subsample_pixels(_representative_subsample(label_samples, covered_samples), supersample)
    mask = mask.view(shape)
    solid = mask >= 0.5
    chosen = solid.reshape(-1).nonzero()[:, 0]
    # Position of each covered subsample in the list ``covered`` (only those are read).
    list_position = torch.empty(fragments.face_index.numel(), dtype=torch.int64, device=device)
    list_position[covered.pixel] = torch.arange(len(covered.pixel), device=device)
    picked_normals = normals.index_select(1, list_position.take(pick.reshape(-1).index_select(0, chosen)))
    label_coverage = None
    if len(coverage_labels):
        label_coverage = _label_coverage(label_samples, covered_samples, coverage_labels)
    return MeshRender(
        image=image.view(3, *shape).permute(1, 2, 3, 0).contiguous(),
        mask=mask,
        labels=torch.where(solid, subsample_labels.take(pick), background_label),
        depth=fragments.depth.take(pick) * solid,
        face_index=torch.where(solid, fragments.face_index.take(pick), -1),
        normals=_scatter_channels(picked_normals, chosen, torch.Size(shape)).contiguous(),
        label_coverage=label_coverage,
        fragments=fragments,
    )


def _checked_appearance(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    vertex_colors: torch.Tensor | None,
    texture: torch.Tensor | None,
    face_uvs: torch.Tensor | None,
    light_direction: Sequence[float] | torch.Tensor | None,
    ambient: float,
    diffuse: float,
    background_color: Sequence[float],
) -> _Appearance:
    """Checks render_mesh's shading arguments (per-frame ones have a batch of 1 or B)."""
    num_frames, num_vertices = vertices.shape[:2]
    num_faces = faces.shape[0]
    if vertex_colors is not None and texture is not None:
        raise ValueError("give either vertex_colors or texture + face_uvs, not both")
    if (texture is None) != (face_uvs is None):
        raise ValueError("texture and face_uvs must be given together")
    if vertex_colors is not None:
        if vertex_colors.ndim == 2:
            vertex_colors = vertex_colors[None]
        batch_ok = vertex_colors.ndim == 3 and vertex_colors.shape[0] in (1, num_frames)
        if not batch_ok or vertex_colors.shape[1:] != (num_vertices, 3):
            raise ValueError(
                f"vertex_colors must be ({num_vertices}, 3) or ({num_frames}, {num_vertices}, 3), "
                f"got {tuple(vertex_colors.shape)}"
            )
    if texture is not None:
        if texture.ndim == 3:
            texture = texture[None]
        if texture.ndim != 4 or texture.shape[0] not in (1, num_frames) or texture.shape[-1] != 3:
            raise ValueError(
                f"texture must be (Ht, Wt, 3) or ({num_frames}, Ht, Wt, 3), got {tuple(texture.shape)}"
            )
        if face_uvs.shape != (num_faces, 3, 2):
            raise ValueError(f"face_uvs must be ({num_faces}, 3, 2), got {tuple(face_uvs.shape)}")
    light = None
    if light_direction is not None:
        light = _light_directions(light_direction, num_frames, vertices.float())
    background = torch.as_tensor(background_color, dtype=torch.float32, device=vertices.device)
    if background.shape != (3,):
        raise ValueError(f"background_color must be 3 numbers, got {background_color}")
    return _Appearance(vertex_colors, texture, face_uvs, light, ambient, diffuse, background)


@torch.no_grad()
def render_mesh(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    cameras: PinholeCameras,
    *,
    vertex_colors: torch.Tensor | None = None,
    texture: torch.Tensor | None = None,
    face_uvs: torch.Tensor | None = None,
    face_labels: torch.Tensor | None = None,
    coverage_labels: Sequence[int] = (),
    light_direction: Sequence[float] | torch.Tensor | None = (0.0, 0.0, -1.0),
    ambient: float = 0.35,
    diffuse: float = 0.65,
    background_color: Sequence[float] = (1.0, 1.0, 1.0),
    background_label: int = 0,
    supersample: int = 2,
    znear: float = 1e-2,
    cull_backfaces: bool = False,
) -> MeshRender:
    """Renders an anti-aliased, shaded, labelled image of a mesh in B frames.

    The mesh is rasterized at ``supersample`` × the camera resolution (s² subsamples per
    pixel, evenly spread) and box-filtered down. Colour is averaged over the covered
    subsamples and composited over ``background_color`` with the coverage as alpha.
    Labels, depth, face index and normals are exact, never blended: each pixel takes them
    from one *representative* subsample, the covered subsample whose face label is the
    most common among the covered subsamples (ties: the subsample nearest the pixel
    centre, then raster order). Where coverage < 0.5 they are background.

    Args:
        vertices: (V, 3) or (B, V, 3) world coordinates.
        faces: (F, 3) int64.
        cameras: batch of 1 or B cameras; the output has their image size.
        vertex_colors: (V, 3) or (B, V, 3) albedo in [0, 1]; or use texture + face_uvs;
            with neither, the albedo is 1 (white clay).
        texture: (Ht, Wt, 3) or (B, Ht, Wt, 3) albedo in [0, 1], sampled at ``face_uvs``.
        face_uvs: (F, 3, 2) per-corner texture coordinates (see :func:`sample_texture`).
        face_labels: (F,) int64 label per face (e.g. semantic ids); default 1 for all faces.
        coverage_labels: labels whose soft coverage maps are returned (``label_coverage``).
        light_direction: (3,) or (B, 3) towards the light in camera space (OpenCV axes;
            the default (0, 0, −1) is a headlight); None renders unlit albedo.
        ambient, diffuse: Lambertian weights (see :func:`shade_lambertian`).
        background_color: RGB in [0, 1].
        background_label: label where coverage < 0.5.
        supersample: subsamples per pixel side, ≥ 1.
        znear, cull_backfaces: see :func:`rasterize_mesh`.
    """
    if not isinstance(supersample, int) or supersample < 1:
        raise ValueError(f"supersample must be an integer ≥ 1, got {supersample!r}")
    if ambient < 0 or diffuse < 0:
        raise ValueError(f"ambient and diffuse must be ≥ 0, got {ambient} and {diffuse}")
    if znear <= 0:
        raise ValueError(f"znear must be > 0, got {znear}")
    vertices, cameras = _batched_vertices(vertices, cameras)
    _check_faces(faces, vertices.shape[1])
    appearance = _checked_appearance(
        vertices, faces, vertex_colors, texture, face_uvs, light_direction, ambient, diffuse, background_color
    )
    num_frames, num_faces = vertices.shape[0], faces.shape[0]
    if face_labels is None:
        face_labels = torch.ones(num_faces, dtype=torch.int64, device=vertices.device)
    elif face_labels.shape != (num_faces,):
        raise ValueError(f"face_labels must be ({num_faces},), got {tuple(face_labels.shape)}")

    # Frames are rendered in groups of about _GROUP_PIXELS subsamples (see _rasterize).
    height, width = cameras.image_size
    subsamples_per_frame = height * width * supersample * supersample
    subsamples = _Fragments.background(num_frames * subsamples_per_frame, vertices.device)
    group = max(1, _GROUP_PIXELS // subsamples_per_frame)
    output = None
    for start in range(0, num_frames, group):
        stop = min(start + group, num_frames)
        frames = slice(start, stop)
        part = _render_frames(
            vertices[frames],
            faces,
            cameras[frames],
            appearance.frames(frames),
            face_labels.long(),
            coverage_labels,
            background_label,
            supersample,
            znear,
            cull_backfaces,
            subsamples.frames(start, stop, subsamples_per_frame),
        )
        if group >= num_frames:
            return part
        if output is None:
            output = MeshRender(
                **{
                    name: None if value is None else value.new_empty(num_frames, *value.shape[1:])
                    for name, value in vars(part).items()
                    if name != "fragments"
                },
                fragments=subsamples.images((height * supersample, width * supersample)),
            )
        for name, value in vars(part).items():
            if value is not None and name != "fragments":
                getattr(output, name)[frames] = value
    return output


# --------------------------------------------------------------------------------------
# Test and accessory geometry


def uv_sphere(
    radius: float = 1.0, rings: int = 16, segments: int = 32, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """A closed latitude/longitude sphere centred at the origin (eyeballs, tests, benchmarks).

    Args:
        rings: latitude bands (≥ 2); segments: longitude segments (≥ 3).

    Returns:
        vertices (2 + (rings − 1)·segments, 3) and faces (2·segments·(rings − 1), 3) int64,
        outward-facing by the right-hand rule.
    """
    if rings < 2 or segments < 3:
        raise ValueError(f"uv_sphere needs rings ≥ 2 and segments ≥ 3, got {rings} and {segments}")
    polar = torch.arange(1, rings, dtype=torch.float64) * torch.pi / rings
    azimuth = torch.arange(segments, dtype=torch.float64) * 2 * torch.pi / segments
    polar, azimuth = torch.meshgrid(polar, azimuth, indexing="ij")
    ring_points = torch.stack(
        [polar.sin() * azimuth.cos(), polar.sin() * azimuth.sin(), polar.cos()], dim=-1
    ).reshape(-1, 3)
    poles = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]], dtype=torch.float64)
    vertices = torch.cat([poles[:1], ring_points, poles[1:]]) * radius
    ring = torch.arange(rings - 1)[:, None]
    segment = torch.arange(segments)[None, :]
    next_segment = (segment + 1) % segments
    ring_start = 1 + ring * segments
    upper_left, upper_right = ring_start + segment, ring_start + next_segment
    lower_left, lower_right = upper_left + segments, upper_right + segments
    lower_triangles = torch.stack([upper_left, lower_left, lower_right], -1)
    upper_triangles = torch.stack([upper_left, lower_right, upper_right], -1)
    quads = torch.stack([lower_triangles, upper_triangles], dim=2)[:-1].reshape(-1, 3)
    north = torch.stack([torch.zeros(segments, dtype=torch.int64), 1 + segment[0], 1 + next_segment[0]], -1)
    last_ring_start = 1 + (rings - 2) * segments
    south_pole = torch.full((segments,), vertices.shape[0] - 1)
    south = torch.stack([south_pole, last_ring_start + next_segment[0], last_ring_start + segment[0]], -1)
    faces = torch.cat([north, quads, south]).long()
    return vertices.to(dtype), faces
