"""Landmark embeddings in the layouts FLAME users have, and the check of the iris vertices.

The stand-in head (its own 70-landmark embedding: iBUG-68 in standard order, then the iris
centres as vertices) plays the FLAME-format model; files in DECA's, FLAME's and the
project's layouts are cut from its embedding. The real ICT-FaceKit model checks the iris
test against another topology.
"""
from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from pegasus.headmodel.flame_file import (
    IRIS_MAX_EYE_OFFSET,
    HeadModelError,
    load_head_model_file,
    load_landmark_embedding,
)
from pegasus.headmodel.model import HeadModel
from pegasus.headmodel.standin import build_standin_head

ROOT = Path(__file__).resolve().parents[2]
# the shared data beside the checkout, or inside it
ICT_LIGHT = next((p for p in (ROOT.parent / "shared", ROOT / "shared") if p.is_dir()),
                 ROOT.parent / "shared") / "data/heads/ict_light/ict_light.npz"
FLAME_IRIS_IDS = (4051, 4597)  # FLAME's iris-centre vertices (the config default)
ICT_IRIS_IDS = (16861, 15291)  # per ict_light/README.md


@pytest.fixture(scope="module")
def standin() -> dict[str, np.ndarray]:
    return build_standin_head()


@pytest.fixture(scope="module")
def ict_light():
    if not ICT_LIGHT.is_file():
        pytest.skip(f"{ICT_LIGHT} is absent (the shared ICT-FaceKit light model)")
    return load_head_model_file(ICT_LIGHT, scale=1.0)


def iris_ids(head: dict) -> tuple[int, int]:
    """The stand-in's iris-centre vertices: its landmarks 68, 69 lie exactly on them."""
    rows = head["f"][head["lmk_faces_idx"][68:]]
    return tuple(int(face[bary.argmax()]) for face, bary in zip(rows, head["lmk_bary_coords"][68:]))


def points(vertices: np.ndarray, faces: np.ndarray, faces_idx: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """(L, 3) landmarks at the barycentric points of the template."""
    return (vertices[faces[faces_idx]] * bary[:, :, None]).sum(1)


def load(path, head: dict, iris=None):
    return load_landmark_embedding(path, len(head["f"]), head["f"], iris, vertices=head["v_template"])


def deca_dict(faces_idx: np.ndarray, bary: np.ndarray) -> dict:
    """DECA's landmark_embedding layout: (1, 68) full rows plus the static / dynamic entries."""
    return {"static_lmk_faces_idx": faces_idx[17:68], "static_lmk_bary_coords": bary[17:68],
            "dynamic_lmk_faces_idx": np.zeros((79, 17), np.int64), "dynamic_lmk_bary_coords": np.zeros((79, 17, 3)),
            "full_lmk_faces_idx": faces_idx[None, :68], "full_lmk_bary_coords": bary[None, :68]}


def chumpy_pickle(arrays: dict) -> bytes:
    """A Python-2-era pickle whose arrays are chumpy Ch objects, made without chumpy."""

    class Ch:
        def __init__(self, x):
            self.x = x

        def __getstate__(self):
            return {"x": self.x, "_dirty_vars": set(), "_parents": {}}

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    chumpy_ch = types.ModuleType("chumpy.ch")
    chumpy_ch.Ch = Ch
    sys.modules.update({"chumpy": types.ModuleType("chumpy"), "chumpy.ch": chumpy_ch})
    try:
        return pickle.dumps({k: Ch(v) for k, v in arrays.items()}, protocol=2)
    finally:
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module


def test_deca_embedding_gets_the_iris_vertices(tmp_path, standin):
    path = tmp_path / "landmark_embedding.npy"
    np.save(path, deca_dict(standin["lmk_faces_idx"], standin["lmk_bary_coords"]), allow_pickle=True)
    iris = iris_ids(standin)
    faces_idx, bary, valid = load(path, standin, iris)
    assert faces_idx.shape == (70,) and bary.shape == (70, 3) and valid.all()
    np.testing.assert_array_equal(faces_idx[:68], standin["lmk_faces_idx"][:68])
    for k, vid in zip((68, 69), iris):  # iris rows land exactly on their vertex
        assert standin["f"][faces_idx[k]][bary[k].argmax()] == vid and bary[k].max() == 1
    with pytest.raises(HeadModelError, match="landmark_embedding.npy: 68 landmarks only; configure "
                       "head_model.iris_vertex_ids"):
        load(path, standin, None)


@pytest.mark.parametrize("layout", ["pkl", "pkl with chumpy arrays", "npy"])
def test_flame_static_embedding_marks_the_jaw_contour_invalid(tmp_path, standin, layout):
    static = {"lmk_face_idx": standin["lmk_faces_idx"][17:68].astype(np.uint32),
              "lmk_b_coords": standin["lmk_bary_coords"][17:68]}
    path = tmp_path / f"flame_static_embedding.{layout[:3]}"
    if layout == "npy":
        np.save(path, static, allow_pickle=True)
    else:
        path.write_bytes(chumpy_pickle(static) if "chumpy" in layout else pickle.dumps(static, protocol=2))
    assert "chumpy" not in sys.modules
    faces_idx, bary, valid = load(path, standin, iris_ids(standin))
    assert faces_idx.shape == (70,) and bary.shape == (70, 3)
    assert not valid[:17].any() and valid[17:].all()
    args = (standin["v_template"], standin["f"])
    expected = points(*args, standin["lmk_faces_idx"], standin["lmk_bary_coords"])
    np.testing.assert_allclose(points(*args, faces_idx, bary)[17:], expected[17:], atol=1e-12)
    # placeholders: the nose tip, on the mesh and without vertices of their own
    np.testing.assert_array_equal(faces_idx[:17], faces_idx[30])
    np.testing.assert_allclose(points(*args, faces_idx, bary)[:17], np.repeat(expected[30:31], 17, 0))


def test_project_npz_with_68_or_70_landmarks(tmp_path, standin):
    full = tmp_path / "embedding.npz"
    np.savez(full, lmk_faces_idx=standin["lmk_faces_idx"], lmk_bary_coords=standin["lmk_bary_coords"])
    faces_idx, bary, valid = load(full, standin, (-1, -1))  # iris ids unused with 70 landmarks
    np.testing.assert_array_equal(faces_idx, standin["lmk_faces_idx"])
    np.testing.assert_array_equal(bary, standin["lmk_bary_coords"])
    assert valid.all()
    ibug = tmp_path / "ibug.npz"
    np.savez(ibug, lmk_faces_idx=standin["lmk_faces_idx"][:68], lmk_bary_coords=standin["lmk_bary_coords"][:68])
    faces_idx, bary, valid = load(ibug, standin, iris_ids(standin))
    args = (standin["v_template"], standin["f"])
    np.testing.assert_allclose(points(*args, faces_idx, bary),
                               points(*args, standin["lmk_faces_idx"], standin["lmk_bary_coords"]), atol=1e-12)


@pytest.mark.parametrize("content", [
    {"landmarks": np.zeros((68, 3))},
    {"lmk_face_idx": np.zeros(51, np.int64)},  # half of FLAME's pair
])
def test_unknown_keys_list_the_accepted_ones(tmp_path, standin, content):
    path = tmp_path / "landmarks.pkl"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(HeadModelError, match=r"landmarks.pkl: no landmark embedding among its keys \[.*\]; accepted: "
                       r"'full_lmk_faces_idx' \+ 'full_lmk_bary_coords' \(DECA.*'lmk_faces_idx' \+ 'lmk_bary_coords' "
                       r"\(project.*'lmk_face_idx' \+ 'lmk_b_coords' \(FLAME flame_static_embedding.pkl or .npy, 51"):
        load(path, standin, iris_ids(standin))


def test_other_landmark_counts_and_formats_are_refused(tmp_path, standin):
    path = tmp_path / "embedding.npz"
    np.savez(path, lmk_faces_idx=standin["lmk_faces_idx"][:60], lmk_bary_coords=standin["lmk_bary_coords"][:60])
    with pytest.raises(HeadModelError, match=r"embedding.npz: 'lmk_faces_idx' has 60 landmarks; expected 51 "
                       r"\(iBUG 17-67\), 68 \(iBUG\) or 70"):
        load(path, standin, iris_ids(standin))
    (tmp_path / "embedding.txt").write_text("0 0 0\n")
    with pytest.raises(HeadModelError, match=r"embedding.txt: unsupported landmark format '.txt' \(use .npy, .pkl "
                       r"or .npz\)"):
        load(tmp_path / "embedding.txt", standin)
    with pytest.raises(HeadModelError, match="missing.npy: landmark embedding not found"):
        load(tmp_path / "missing.npy", standin)


@pytest.fixture
def deca_file(tmp_path, standin) -> Path:
    path = tmp_path / "landmark_embedding.npy"
    np.save(path, deca_dict(standin["lmk_faces_idx"], standin["lmk_bary_coords"]), allow_pickle=True)
    return path


def test_iris_vertex_ids_outside_the_model(deca_file, standin):
    right, left = iris_ids(standin)
    count = len(standin["v_template"])
    for ids, bad in (((right, count), [count]), ((-1, left), [-1])):
        with pytest.raises(HeadModelError, match=rf"landmark_embedding.npy: iris vertex ids \[{ids[0]}, {ids[1]}\]: "
                           rf"\[{bad[0]}\] outside \[0, {count}\) \(the model has {count} vertices\); set "
                           r"head_model.iris_vertex_ids"):
            load(deca_file, standin, ids)


def test_iris_vertex_ids_off_the_eyes(deca_file, standin):
    right, left = iris_ids(standin)
    nose = int(standin["f"][standin["lmk_faces_idx"][30]][0])
    with pytest.raises(HeadModelError, match=rf"iris vertex {nose} \(head_model.iris_vertex_ids\[1\]\) is [0-9.]+ eye "
                       r"widths from the centroid of landmarks 42-47 \(at most 0.5\): not on that eye; set "
                       r"head_model.iris_vertex_ids to this model's iris-centre vertices"):
        load(deca_file, standin, (right, nose))
    with pytest.raises(HeadModelError, match=r"iris_vertex_ids\[0\]\) .* landmarks 36-41 .* on the other eye: "
                       r"swapped\?; iris vertex .*iris_vertex_ids\[1\]\) .* swapped\?"):
        load(deca_file, standin, (left, right))


def test_flames_iris_ids_are_refused_on_ict_and_its_own_accepted(tmp_path, ict_light):
    """ICT-FaceKit: another topology, on which FLAME's iris vertices are far from the eyes."""
    head = {"v_template": ict_light.v_template, "f": ict_light.faces}
    path = tmp_path / "landmark_embedding.npy"
    np.save(path, deca_dict(ict_light.lmk_faces_idx, ict_light.lmk_bary_coords), allow_pickle=True)
    with pytest.raises(HeadModelError, match=r"iris vertex ids \[4051, 4597\]: iris vertex 4051 .* not on that eye; "
                       r"iris vertex 4597 .* not on that eye; set head_model.iris_vertex_ids"):
        load(path, head, FLAME_IRIS_IDS)
    faces_idx, bary, valid = load(path, head, ICT_IRIS_IDS)
    args = (ict_light.v_template, ict_light.faces)
    np.testing.assert_allclose(points(*args, faces_idx, bary),
                               points(*args, ict_light.lmk_faces_idx, ict_light.lmk_bary_coords), atol=1e-12)
    # the tolerance has a margin on a real face: its iris centres are ~0.17 eye widths from the eye centroid
    eye = points(*args, ict_light.lmk_faces_idx[36:42], ict_light.lmk_bary_coords[36:42])
    offset = np.linalg.norm(ict_light.v_template[ICT_IRIS_IDS[0]] - eye.mean(0)) / np.linalg.norm(eye[0] - eye[3])
    assert offset < IRIS_MAX_EYE_OFFSET / 2


def test_head_model_carries_the_validity_of_its_landmarks(tmp_path, ict_light):
    assert HeadModel(ict_light, n_shape=100, n_expr=53).landmark_valid.all()
    head = {"v_template": ict_light.v_template, "f": ict_light.faces}
    path = tmp_path / "flame_static_embedding.pkl"
    path.write_bytes(pickle.dumps({"lmk_face_idx": ict_light.lmk_faces_idx[17:68],
                                   "lmk_b_coords": ict_light.lmk_bary_coords[17:68]}, protocol=2))
    data = load_head_model_file(ICT_LIGHT, scale=1.0)
    data.lmk_faces_idx, data.lmk_bary_coords, data.landmark_valid = load(path, head, ICT_IRIS_IDS)
    model = HeadModel(data, n_shape=100, n_expr=53)
    assert model.landmark_valid.tolist() == [False] * 17 + [True] * 53
    assert model().landmarks.shape == (1, 70, 3)
    data.landmark_valid = data.landmark_valid[:68]
    with pytest.raises(HeadModelError, match=r"ict_light.npz: landmark_valid \(68,\) does not match the 70 landmarks"):
        HeadModel(data, n_shape=100, n_expr=53)
