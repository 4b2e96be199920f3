"""Tests of the generated stand-in head model (pegasus.headmodel.standin)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from smplx.lbs import lbs

from pegasus.headmodel import standin
from pegasus.headmodel.flame_file import load_head_model_file
from pegasus.headmodel.standin import (
    EXPRESSION_COMPONENTS,
    IDENTITY_COMPONENTS,
    REGION_NAMES,
    build_standin_head,
    save_standin_head,
)

REQUIRED_REGIONS = ("scalp", "forehead", "face_skin", "nose", "upper_lip", "lower_lip", "mouth_interior",
                    "left_eyeball", "right_eyeball", "left_ear", "right_ear", "neck", "left_brow_area",
                    "right_brow_area")
# iBUG-68 mirror pairs (subject's right ↔ left) and midline points
MIRROR_PAIRS = ([(i, 16 - i) for i in range(8)] + [(17 + i, 26 - i) for i in range(5)] + [(31, 35), (32, 34)]
                + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
                + [(48, 54), (49, 53), (50, 52), (59, 55), (58, 56), (60, 64), (61, 63), (67, 65), (68, 69)])
MIDLINE = (8, 27, 28, 29, 30, 33, 51, 57, 62, 66)


@pytest.fixture(scope="module")
def head() -> dict[str, np.ndarray]:
    return build_standin_head()


def _edges(faces: np.ndarray) -> np.ndarray:
    return np.unique(np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1), axis=0)


def _linked(edges: np.ndarray, n_vertices: int) -> np.ndarray:
    """(n_vertices,) connected-component label of every vertex of an edge list (E, 2)."""
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n_vertices, n_vertices))
    return connected_components(graph, directed=False)[1]


def _components(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    return _linked(_edges(faces), n_vertices)


def _region(head, name: str) -> np.ndarray:
    return head["vertex_region"] == list(head["region_names"]).index(name)


def _landmarks(head, vertices: np.ndarray) -> np.ndarray:
    corners = vertices[head["f"][head["lmk_faces_idx"]]]
    return (corners * head["lmk_bary_coords"][:, :, None]).sum(1)


def _joints(head) -> np.ndarray:
    return head["J_regressor"] @ head["v_template"]


def _posed(head, shape=None, expression=None, pose=None):
    """smplx.lbs on the file arrays: coefficients by component name, 15-D pose (radians)."""
    names = list(head["shape_names"]) + list(head["expr_names"])
    betas = torch.zeros(1, len(names), dtype=torch.float64)
    for name, value in {**(shape or {}), **(expression or {})}.items():
        betas[0, names.index(name)] = value
    pose = torch.zeros(1, 15, dtype=torch.float64) if pose is None else torch.as_tensor(pose, dtype=torch.float64)
    vertices, joints = _smplx_lbs(head, betas, pose)
    return vertices[0].numpy(), joints[0].numpy()


def _smplx_lbs(head, betas: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """smplx's reference LBS on the file's arrays (posedirs reshaped to (36, V·3) as smplx does)."""
    n_vertices = len(head["v_template"])
    parents = torch.as_tensor(head["kintree_table"][0].astype(np.int64))
    parents[0] = -1
    template = torch.as_tensor(head["v_template"])[None].expand(len(betas), -1, -1)
    posedirs = torch.as_tensor(head["posedirs"]).reshape(n_vertices * 3, 36).T
    return lbs(betas, pose, template, torch.as_tensor(head["shapedirs"]), posedirs,
               torch.as_tensor(head["J_regressor"]), parents, torch.as_tensor(head["weights"]))


def _jaw_pose(angle: float) -> np.ndarray:
    pose = np.zeros((1, 15))
    pose[0, 6] = angle
    return pose


def _eyeball_radius(head, name: str, joint: int) -> float:
    return float(np.linalg.norm(head["v_template"][_region(head, name)] - _joints(head)[joint], axis=1).mean())


def _mirror_map(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of vertices with a unique position and of their mirror images (x → −x)."""
    tree = cKDTree(vertices)
    unique = np.array([len(p) == 1 for p in tree.query_ball_point(vertices, 1e-9)])
    distance, mirror = tree.query(vertices * [-1.0, 1.0, 1.0])
    keep = unique & unique[mirror]
    assert distance[keep].max() < 1e-9
    return np.nonzero(keep)[0], mirror[keep]


def test_same_seed_same_arrays_and_topology_is_seed_independent(head):
    standin._layout.cache_clear()  # rebuild the mesh from scratch, not from the cache
    again = build_standin_head(seed=0)
    assert again.keys() == head.keys()
    for key in head:
        assert np.array_equal(again[key], head[key]), key
    other = build_standin_head(seed=1)
    assert np.abs(other["v_template"] - head["v_template"]).max() > 5e-4
    assert not np.allclose(other["shapedirs"], head["shapedirs"])
    for key in ("f", "vt", "ft", "vertex_region", "lmk_faces_idx", "lmk_bary_coords", "weights", "J_regressor"):
        assert np.array_equal(other[key], head[key]), key


def test_keys_shapes_and_dtypes(head):
    n_vertices, n_faces = len(head["v_template"]), len(head["f"])
    n_shape, n_expr = len(IDENTITY_COMPONENTS), len(EXPRESSION_COMPONENTS)
    assert 4000 <= n_vertices <= 6000
    expected = {
        "v_template": ((n_vertices, 3), np.float64), "f": ((n_faces, 3), np.int64),
        "shapedirs": ((n_vertices, 3, n_shape + n_expr), np.float64), "n_shape": ((), np.int64),
        "n_expr": ((), np.int64), "posedirs": ((n_vertices, 3, 36), np.float64),
        "J_regressor": ((5, n_vertices), np.float64), "weights": ((n_vertices, 5), np.float64),
        "kintree_table": ((2, 5), np.int64), "lmk_faces_idx": ((70,), np.int64),
        "lmk_bary_coords": ((70, 3), np.float64), "ft": ((n_faces, 3), np.int64),
        "vertex_region": ((n_vertices,), np.int64), "seed": ((), np.int64), "generator_version": ((), np.int64),
    }
    for key, (shape, dtype) in expected.items():
        assert head[key].shape == shape and head[key].dtype == dtype, key
    assert head["vt"].ndim == 2 and head["vt"].shape[1] == 2
    assert int(head["n_shape"]) == n_shape and int(head["n_expr"]) == n_expr
    assert head["kintree_table"][0].tolist() == [4294967295, 0, 1, 1, 1]
    assert tuple(head["region_names"]) == REGION_NAMES and head["region_names"].dtype.kind == "U"
    assert tuple(head["shape_names"]) == IDENTITY_COMPONENTS
    assert len(IDENTITY_COMPONENTS) >= 20 and len(EXPRESSION_COMPONENTS) >= 10


def test_fewer_components_are_a_prefix_and_too_many_are_refused(head):
    small = build_standin_head(n_shape=5, n_expr=3)
    assert small["shapedirs"].shape[2] == 8 and int(small["n_shape"]) == 5
    np.testing.assert_array_equal(small["shapedirs"][:, :, :5], head["shapedirs"][:, :, :5])
    np.testing.assert_array_equal(small["shapedirs"][:, :, 5:], head["shapedirs"][:, :, 24:27])
    with pytest.raises(ValueError, match="n_shape"):
        build_standin_head(n_shape=len(IDENTITY_COMPONENTS) + 1)


def test_saved_file_loads_without_pickle_and_through_the_project_loader(head, tmp_path):
    path = save_standin_head(tmp_path / "standin.npz", seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["standin.npz"]  # no temporary left behind
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) == set(head)
        for key in head:
            np.testing.assert_array_equal(npz[key], head[key])
    data = load_head_model_file(path, scale=4.0)
    assert data.shapedirs.shape[2] == len(IDENTITY_COMPONENTS)
    assert data.exprdirs.shape[2] == len(EXPRESSION_COMPONENTS)
    np.testing.assert_allclose(data.v_template, 4.0 * head["v_template"])
    assert data.parents.tolist() == [-1, 0, 1, 1, 1]


def test_size_and_axes_match_flame(head):
    v = head["v_template"]
    skin = ~(_region(head, "left_ear") | _region(head, "right_ear"))
    width = v[skin, 0].max() - v[skin, 0].min()
    assert 0.145 <= width <= 0.165
    assert -0.215 < v[:, 1].min() < -0.185 and 0.12 < v[:, 1].max() < 0.14
    assert -0.115 < v[:, 2].min() < -0.09 and 0.11 < v[:, 2].max() < 0.13
    # the face looks toward +z, the left (+x) eye is the left joint, the crown is up
    assert _region(head, "nose")[v[:, 2].argmax()]
    joints = _joints(head)
    assert joints[3, 0] > 0.02 and joints[4, 0] < -0.02
    assert _region(head, "scalp")[v[:, 1].argmax()]


def test_faces_are_valid_outward_and_closed_except_at_neck_and_eyes(head):
    v, f = head["v_template"], head["f"]
    assert f.min() >= 0 and f.max() < len(v) and len(np.unique(f)) == len(v)
    area = 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    assert area.min() > 1e-9
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    assert len(np.unique(directed, axis=0)) == len(directed), "an edge is used twice in one direction"
    edges, counts = np.unique(np.sort(directed, 1), axis=0, return_counts=True)
    assert counts.max() <= 2
    labels = _components(f, len(v))
    assert len(np.unique(labels)) == 3  # head (with mouth cavity) and two eyeballs
    for label in np.unique(labels):
        tri = v[f[labels[f[:, 0]] == label]]
        volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
        assert volume > 0, "faces must be counter-clockwise seen from outside"
    # boundary loops: the neck opening and the two eye openings, nothing else
    boundary = edges[counts == 1]
    loops = _linked(boundary, len(v))[np.unique(boundary)]
    assert len(np.unique(loops)) == 3
    on_boundary = np.unique(boundary)
    lids = _region(head, "left_eyelid") | _region(head, "right_eyelid")
    assert np.all((v[on_boundary, 1] < -0.18) | lids[on_boundary])


def test_eyeballs_are_separate_components_driven_by_their_eye_joints(head):
    v, f = head["v_template"], head["f"]
    labels = _components(f, len(v))
    joints = _joints(head)
    for name, joint in (("left_eyeball", 3), ("right_eyeball", 4)):
        ball = _region(head, name)
        assert len(np.unique(labels[ball])) == 1 and np.sum(labels == labels[ball][0]) == ball.sum()
        np.testing.assert_allclose(head["weights"][ball, joint], 1.0)
        radius = np.linalg.norm(v[ball] - joints[joint], axis=1)  # the joint is the eyeball's centre
        assert 0.011 < radius.mean() < 0.014 and radius.std() < 1e-9
    # rotating the left eye keeps its eyeball in place and leaves everything else alone
    pose = np.zeros((1, 15))
    pose[0, 10] = 0.4
    moved, _ = _posed(head, pose=pose)
    changed = np.linalg.norm(moved - head["v_template"], axis=1) > 1e-9
    assert np.array_equal(changed, _region(head, "left_eyeball") & changed)
    np.testing.assert_allclose(np.linalg.norm(moved[_region(head, "left_eyeball")] - joints[3], axis=1),
                               _eyeball_radius(head, "left_eyeball", 3), atol=1e-9)


def test_mouth_slit_opens_with_the_jaw(head):
    v = head["v_template"]
    upper, lower = _region(head, "upper_lip"), _region(head, "lower_lip")
    # closed mouth: each slit vertex of the upper lip has a twin on the lower lip within 0.5 mm
    distance, twin = cKDTree(v[lower]).query(v[upper])
    slit = np.stack([np.nonzero(upper)[0], np.nonzero(lower)[0][twin]], 1)[distance < 5e-4]
    assert len(slit) >= 10, "the slit's lips must have their own vertices"
    edges = {tuple(e) for e in _edges(head["f"])}
    assert not any(tuple(sorted(pair)) in edges for pair in slit.tolist()), "the lips must not be connected"
    opened, _ = _posed(head, pose=_jaw_pose(0.3))
    gap = np.linalg.norm(opened[slit[:, 0]] - opened[slit[:, 1]], axis=1)
    central = np.abs(v[slit[:, 0], 0]) < 0.012
    assert gap[central].min() > 0.015
    # the upper lip stays with the head; the lower lip and the chin follow the jaw
    middle = upper & (np.abs(v[:, 0]) < 0.02)
    assert np.abs(opened[middle] - v[middle]).max() < 1e-3
    chin = _landmarks(head, opened)[8] - _landmarks(head, v)[8]
    assert chin[1] < -0.01 and chin[2] < 0.0


def test_skinning_weights(head):
    weights, v = head["weights"], head["v_template"]
    assert weights.min() >= 0.0
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-12)
    neck_bottom = v[:, 1] < v[:, 1].min() + 0.01
    assert weights[neck_bottom, 0].min() > 0.9
    crown = v[:, 1] > v[:, 1].max() - 0.03
    np.testing.assert_allclose(weights[crown, 1], 1.0)
    assert weights[_region(head, "upper_lip"), 2].max() < 0.55  # only the shared corners are mixed
    lower = _region(head, "lower_lip") & (np.abs(v[:, 0]) < 0.015)
    assert weights[lower, 2].min() > 0.95
    chin = head["f"][head["lmk_faces_idx"][8]]
    assert weights[chin, 2].min() > 0.9
    # smooth: along edges outside the mouth the weights change gradually
    e = _edges(head["f"])
    far = (np.linalg.norm(v[e] - [0.0, -0.05, 0.09], axis=2) > 0.035).all(1)
    far &= ~_region(head, "mouth_interior")[e].any(1)
    assert np.abs(weights[e[far, 0]] - weights[e[far, 1]]).max() < 0.5


def test_joints_are_anatomical(head):
    regressor = head["J_regressor"]
    assert regressor.min() >= 0.0
    np.testing.assert_allclose(regressor.sum(1), 1.0, atol=1e-9)
    joints = _joints(head)
    root, neck, jaw, left_eye, right_eye = joints
    v = head["v_template"]
    lmk = _landmarks(head, v)
    ears = v[_region(head, "left_ear") | _region(head, "right_ear")]
    assert np.abs(joints[:3, 0]).max() < 1e-3
    np.testing.assert_allclose(left_eye * [-1, 1, 1], right_eye, atol=1e-9)
    # jaw: in front of the ears, behind the eyes, below the eye line, above the chin
    assert ears[:, 2].mean() < jaw[2] < left_eye[2]
    assert lmk[8, 1] + 0.05 < jaw[1] < left_eye[1] - 0.01
    assert abs(jaw[1] - ears[:, 1].mean()) < 0.02
    # root low in the head, neck below it in the neck column
    assert lmk[8, 1] < neck[1] < root[1] < left_eye[1]
    assert abs(root[2]) < 0.03 and abs(neck[2]) < 0.03


def test_components_are_smooth_localised_and_plausibly_scaled(head):
    dirs = head["shapedirs"]
    v = head["v_template"]
    e = _edges(head["f"])
    length = np.linalg.norm(v[e[:, 0]] - v[e[:, 1]], axis=1)
    fractions = []
    for k, name in enumerate(IDENTITY_COMPONENTS + EXPRESSION_COMPONENTS):
        magnitude = np.linalg.norm(dirs[:, :, k], axis=1)
        top = magnitude.max()
        assert 5e-4 < top < 0.015, f"{name}: {top * 1e3:.2f} mm per unit"
        jump = np.linalg.norm(dirs[e[:, 0], :, k] - dirs[e[:, 1], :, k], axis=1) / top
        assert jump.max() < 0.7, f"{name}: an edge carries {jump.max():.2f} of the maximum"
        assert (jump / (length / 0.01)).max() < 3.0, f"{name}: changes too fast along an edge"
        fractions.append(np.mean(magnitude > 0.1 * top))
        assert fractions[-1] < 0.5, f"{name}: moves {fractions[-1]:.0%} of the vertices"
    assert np.median(fractions) < 0.2


def test_components_are_mirror_symmetric(head):
    names = list(IDENTITY_COMPONENTS + EXPRESSION_COMPONENTS)
    index, mirror = _mirror_map(head["v_template"])
    flip = np.array([-1.0, 1.0, 1.0])
    dirs = head["shapedirs"]
    for k, name in enumerate(names):
        if name in ("blink_left", "blink_right", "jaw_sideways"):
            continue
        np.testing.assert_allclose(dirs[mirror, :, k], dirs[index, :, k] * flip, atol=1e-7, err_msg=name)
    left, right = names.index("blink_left"), names.index("blink_right")
    np.testing.assert_allclose(dirs[mirror, :, right], dirs[index, :, left] * flip, atol=1e-7)
    sideways = names.index("jaw_sideways")
    np.testing.assert_allclose(dirs[mirror, :, sideways], -dirs[index, :, sideways] * flip, atol=1e-7)


def test_expressions_do_what_they_say(head):
    v = head["v_template"]
    neutral = _landmarks(head, v)

    def lid_gap(lmk, eye):  # upper-lid to lower-lid landmark distance of one eye
        upper, lower = ((43, 44), (47, 46)) if eye == "left" else ((38, 37), (40, 41))
        return np.linalg.norm(lmk[list(upper)] - lmk[list(lower)], axis=1).mean()

    blink, _ = _posed(head, expression={"blink_left": 2.0})
    closed = _landmarks(head, blink)
    assert lid_gap(closed, "left") < 0.3 * lid_gap(neutral, "left")
    assert lid_gap(closed, "right") == pytest.approx(lid_gap(neutral, "right"), abs=1e-9)
    opened, _ = _posed(head, expression={"jaw_open": 2.0})
    assert np.linalg.norm(_landmarks(head, opened)[62] - _landmarks(head, opened)[66]) > 0.01
    smile, _ = _posed(head, expression={"smile": 2.0})
    corners = _landmarks(head, smile)[[48, 54]] - neutral[[48, 54]]
    assert corners[:, 1].min() > 0.003
    raised, _ = _posed(head, expression={"brow_raise": 2.0})
    assert (_landmarks(head, raised)[17:27, 1] - neutral[17:27, 1]).min() > 0.002


def test_landmark_embedding_is_valid_and_plausible(head):
    faces_idx, bary = head["lmk_faces_idx"], head["lmk_bary_coords"]
    assert faces_idx.min() >= 0 and faces_idx.max() < len(head["f"])
    assert bary.min() >= 0.0
    np.testing.assert_allclose(bary.sum(1), 1.0, atol=1e-12)
    lmk = _landmarks(head, head["v_template"])
    assert lmk[:68, 2].argmax() == 30  # nose tip is the most forward
    assert lmk[:17, 1].argmin() == 8  # chin is the lowest point of the jaw contour
    for right, left in MIRROR_PAIRS:
        assert lmk[right, 0] < 0 < lmk[left, 0], (right, left)
        np.testing.assert_allclose(lmk[right] * [-1, 1, 1], lmk[left], atol=1.5e-3, err_msg=f"{right}/{left}")
    assert np.abs(lmk[list(MIDLINE), 0]).max() < 1e-3
    joints = _joints(head)
    for first, joint in ((36, 4), (42, 3)):
        distance = np.linalg.norm(lmk[first:first + 6] - joints[joint], axis=1)
        assert distance.max() < 0.0125 + 0.002  # on the lid margin, which hugs the eyeball
    for iris, joint, name in ((68, 4, "right_eyeball"), (69, 3, "left_eyeball")):
        offset, radius = lmk[iris] - joints[joint], _eyeball_radius(head, name, joint)
        assert np.linalg.norm(offset) == pytest.approx(radius, abs=1e-9)
        assert offset[2] > 0.99 * radius
    # vertical order: brows over eyes over nose tip over upper lip over lower lip over chin
    assert lmk[19, 1] > lmk[37, 1] > lmk[30, 1] > lmk[51, 1] > lmk[57, 1] > lmk[8, 1]
    assert np.linalg.norm(lmk[62] - lmk[66]) < 1e-3  # closed mouth: inner lips meet
    assert _region(head, "upper_lip")[head["f"][faces_idx[62]]].all()
    assert _region(head, "lower_lip")[head["f"][faces_idx[66]]].all()


def _coverage(uv_triangles: np.ndarray, size: int) -> np.ndarray:
    """(size, size) count of triangles covering each pixel centre (strictly inside)."""
    count = np.zeros((size, size), np.int32)
    pix = uv_triangles * size
    for (x0, y0), (x1, y1), (x2, y2) in pix:
        cols = np.arange(int(np.floor(min(x0, x1, x2))), int(np.ceil(max(x0, x1, x2))) + 1)
        rows = np.arange(int(np.floor(min(y0, y1, y2))), int(np.ceil(max(y0, y1, y2))) + 1)
        cx, cy = np.meshgrid(cols + 0.5, rows + 0.5)
        d = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)
        a = ((y1 - y2) * (cx - x2) + (x2 - x1) * (cy - y2)) / d
        b = ((y2 - y0) * (cx - x2) + (x0 - x2) * (cy - y2)) / d
        inside = (a > 1e-9) & (b > 1e-9) & (1 - a - b > 1e-9)
        count[np.clip(cy[inside].astype(int), 0, size - 1), np.clip(cx[inside].astype(int), 0, size - 1)] += 1
    return count


def test_uv_layout_covers_faces_without_overlap(head):
    vt, ft = head["vt"], head["ft"]
    assert vt.min() >= 0.0 and vt.max() <= 1.0 and ft.min() >= 0 and ft.max() < len(vt)
    tri = vt[ft]
    signed = 0.5 * ((tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1])
                    - (tri[:, 1, 1] - tri[:, 0, 1]) * (tri[:, 2, 0] - tri[:, 0, 0]))
    assert signed.min() > 1e-9, "every face needs a non-degenerate, counter-clockwise UV triangle"
    assert _coverage(tri, 512).max() == 1, "UV charts overlap"
    face = np.isin(head["vertex_region"][head["f"][:, 0]],
                   [list(REGION_NAMES).index(n) for n in ("forehead", "nose", "upper_lip", "lower_lip",
                                                           "left_eyelid", "right_eyelid")])
    face |= (head["vertex_region"][head["f"][:, 0]] == list(REGION_NAMES).index("face_skin")) & (
        head["v_template"][head["f"][:, 0], 2] > 0.04)
    assert signed[face].sum() > 0.15, "the face should get a good share of the texture"


def test_regions_cover_the_named_parts(head):
    v = head["v_template"]
    for name in REQUIRED_REGIONS:
        assert _region(head, name).sum() >= 10, name
    for side, sign in (("left", 1), ("right", -1)):
        for part in ("ear", "eyeball", "brow_area", "eyelid"):
            assert np.all(sign * v[_region(head, f"{side}_{part}"), 0] > 0), f"{side}_{part}"
    height = {name: v[_region(head, name), 1].mean() for name in ("scalp", "forehead", "nose")}
    assert height["scalp"] > height["forehead"] > height["nose"]
    assert v[_region(head, "neck"), 1].max() < v[_region(head, "nose"), 1].min()
    inside = _region(head, "mouth_interior")
    assert v[inside, 2].mean() < v[_region(head, "upper_lip"), 2].min()


def test_pose_correctives_are_small_and_sparse(head):
    posedirs = head["posedirs"]
    assert np.isfinite(posedirs).all() and np.abs(posedirs).max() < 0.02
    assert (np.abs(posedirs).max(axis=(0, 1)) > 0).sum() <= 6
    assert np.mean(np.abs(posedirs).max(axis=(1, 2)) > 1e-4) < 0.35  # mostly (near) zero


def test_lbs_runs_with_random_shape_expression_and_pose(head):
    rng = np.random.default_rng(0)
    betas = torch.as_tensor(rng.standard_normal((3, head["shapedirs"].shape[2])))
    pose = torch.as_tensor(0.2 * rng.standard_normal((3, 15)))
    vertices, joints = _smplx_lbs(head, betas, pose)
    assert vertices.shape == (3, len(head["v_template"]), 3) and joints.shape == (3, 5, 3)
    assert torch.isfinite(vertices).all() and torch.isfinite(joints).all()
    assert vertices.abs().max() < 0.4  # still a head-sized thing around the origin
