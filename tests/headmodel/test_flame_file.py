import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import torch

from pegasus.headmodel.flame_file import (
    HeadModelError,
    check_components_in_use,
    load_head_model_file,
    load_landmark_embedding,
    load_texture_space,
    save_head_model_npz,
)
from pegasus.headmodel.model import HeadModel


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_side_effect(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({"v_template": _Evil(marker)}, protocol=2))
    with pytest.raises(HeadModelError, match=r"generic_model.pkl: unsafe.*refused global '(posix|os)\.system'"):
        load_head_model_file(path)
    assert not marker.exists()


def test_pickle_with_builtin_call_is_refused(tmp_path):
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({"v_template": print}))
    with pytest.raises(HeadModelError, match="refused global 'builtins.print'"):
        load_head_model_file(path)


def _fake_module(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def _chumpy_style_pickle(arrays: dict) -> bytes:
    """A Python-2-era FLAME pickle: chumpy Ch objects and an old-path csc_matrix, made without chumpy."""

    class Ch:
        def __init__(self, x):
            self.x = x

        def __getstate__(self):
            return {"x": self.x, "_dirty_vars": set(), "_parents": {}}

    class csc_matrix:  # noqa: N801 - mirrors the pickled class name
        def __init__(self, m):
            self.__dict__.update({"_shape": m.shape, "data": m.data, "indices": m.indices,
                                  "indptr": m.indptr, "maxprint": 50, "format": "csc"})

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    csc_matrix.__module__, csc_matrix.__qualname__ = "scipy.sparse.csc", "csc_matrix"
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch", "scipy.sparse.csc")}
    sys.modules.update({"chumpy": _fake_module("chumpy"), "chumpy.ch": _fake_module("chumpy.ch", Ch=Ch),
                        "scipy.sparse.csc": _fake_module("scipy.sparse.csc", csc_matrix=csc_matrix)})
    try:
        payload = dict(arrays)
        for key in ("v_template", "shapedirs", "posedirs", "weights"):
            payload[key] = Ch(arrays[key])
        payload["J_regressor"] = csc_matrix(scipy.sparse.csc_matrix(arrays["J_regressor"]))
        payload["bs_style"] = "lbs"
        return pickle.dumps(payload, protocol=2)
    finally:
        for key, mod in saved.items():
            if mod is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = mod


def test_flame2020_style_pickle_loads_without_chumpy(tmp_path, flame_like):
    arrays = flame_like(n_vertices=240, n_shape=300, n_expr=100)
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(_chumpy_style_pickle(arrays))
    assert "chumpy" not in sys.modules
    data = load_head_model_file(path, scale=4.0)
    np.testing.assert_allclose(data.v_template, arrays["v_template"] * 4)
    np.testing.assert_allclose(data.j_regressor, arrays["J_regressor"])
    assert data.shapedirs.shape == (240, 3, 300) and data.exprdirs.shape == (240, 3, 100)
    np.testing.assert_allclose(data.exprdirs, arrays["shapedirs"][:, :, 300:] * 4)
    assert data.parents.tolist() == [-1, 0, 1, 1, 1]


def test_other_vertex_count_and_53_expressions(tmp_path, flame_like):
    arrays = flame_like(n_vertices=517, n_shape=300, n_expr=53)
    arrays["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])  # FLAME 2023 style
    path = tmp_path / "flame2023.pkl"
    path.write_bytes(pickle.dumps(arrays))
    data = load_head_model_file(path)
    assert data.n_vertices == 517 and data.exprdirs.shape[2] == 53
    model = HeadModel(data, n_shape=100, n_expr=50)
    assert model.exprdirs.shape == (517, 3, 50)
    padded = HeadModel(data, n_shape=100, n_expr=60)  # more than the file has: zero-padded
    assert padded.exprdirs.shape == (517, 3, 60) and padded.exprdirs[:, :, 53:].abs().max() == 0
    out = padded(expression=torch.randn(2, 60), pose=torch.randn(2, 15) * 0.2)
    assert out.vertices.shape == (2, 517, 3) and out.landmarks.shape == (2, 70, 3)


def test_project_npz_round_trip_and_pickled_npz_refused(tmp_path, flame_like):
    arrays = flame_like(n_vertices=100, n_shape=20, n_expr=10)
    arrays["n_shape"] = np.array(20)
    arrays["vt"] = np.random.rand(100, 2)
    arrays["ft"] = arrays["f"].astype(np.int64)
    path = save_head_model_npz(tmp_path / "head.npz", arrays)
    data = load_head_model_file(path, scale=1.0)
    assert data.shapedirs.shape[2] == 20 and data.exprdirs.shape[2] == 10
    assert data.vt.shape == (100, 2) and data.lmk_faces_idx.shape == (70,)
    bad = tmp_path / "bad.npz"
    np.savez(bad, v_template=np.array([{"a": 1}], dtype=object))
    with pytest.raises(HeadModelError, match="bad.npz: .npz holds pickled objects"):
        load_head_model_file(bad)


def test_identity_block_narrower_than_flames_needs_the_split(tmp_path, flame_like):
    arrays = flame_like(n_vertices=120, n_shape=100, n_expr=100)  # identity not padded to 300
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(_chumpy_style_pickle(arrays))
    with pytest.raises(HeadModelError, match=r"generic_model.pkl: identity/expression split 300 \(FLAME's 300, the "
                       r"file does not say\) is outside \[1, 200\).*head_model.identity_components"):
        load_head_model_file(path)
    data = load_head_model_file(path, scale=4.0, identity_components=100)
    np.testing.assert_allclose(data.shapedirs, arrays["shapedirs"][:, :, :100] * 4)
    np.testing.assert_allclose(data.exprdirs, arrays["shapedirs"][:, :, 100:] * 4)
    assert HeadModel(data, n_shape=100, n_expr=50).exprdirs.shape == (120, 3, 50)


def test_explicit_split_overrides_the_files_and_must_leave_both_blocks(tmp_path, flame_like):
    path = save_head_model_npz(tmp_path / "head.npz", {**flame_like(60, 20, 10), "n_shape": 20})
    data = load_head_model_file(path, identity_components=25)
    assert data.shapedirs.shape[2] == 25 and data.exprdirs.shape[2] == 5
    for split, origin in ((0, "head_model.identity_components"), (30, "head_model.identity_components"),
                          (True, "head_model.identity_components")):
        with pytest.raises(HeadModelError, match=rf"head.npz: identity/expression split {split} \({origin}\) "
                           r"is outside \[1, 30\)"):
            load_head_model_file(path, identity_components=split)
    bad = save_head_model_npz(tmp_path / "bad.npz", {**flame_like(60, 20, 10), "n_shape": 30})
    with pytest.raises(HeadModelError, match=r"bad.npz: .* split 30 \(the file's n_shape entry\)"):
        load_head_model_file(bad)


def test_zero_components_in_use_are_reported(tmp_path, flame_like):
    """A 100-wide identity block zero-padded to 300: fine as long as only real components are used."""
    arrays = flame_like(n_vertices=90, n_shape=300, n_expr=100)
    arrays["shapedirs"][:, :, 100:300] = 0.0
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps(arrays, protocol=2))
    data = load_head_model_file(path)  # FLAME's split 300 is right
    check_components_in_use(data, n_shape=100, n_expr=50)
    HeadModel(data, n_shape=100, n_expr=50)
    with pytest.raises(HeadModelError, match=r"generic_model.pkl: identity components 100–299 of the 300 in use "
                       r"\(head_model.n_shape = 300\) are all zeros with shapedirs split into 300 identity \+ 100 "
                       r"expression columns. Set head_model.identity_components"):
        check_components_in_use(data, n_shape=300, n_expr=50)
    wrong = load_head_model_file(path, identity_components=100)  # expression block starts in the padding
    with pytest.raises(HeadModelError, match=r"expression components 0–49 of the 50 in use \(head_model.n_expr = "
                       r"50\) are all zeros with shapedirs split into 100 identity \+ 300 expression"):
        HeadModel(wrong, n_shape=100, n_expr=50)
    with pytest.raises(HeadModelError, match=r"expression components 0–199 of the 250 in use"):
        check_components_in_use(wrong, n_shape=100, n_expr=250)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: a.pop("weights"), "missing keys \\['weights'\\]"),
        (lambda a: a.update(f=a["f"] + 10_000), "f must be"),
        (lambda a: a.update(posedirs=a["posedirs"][:, :, :30]), "posedirs must be"),
        (lambda a: a["v_template"].__setitem__((0, 0), np.nan), "'v_template' contains NaN"),
        (lambda a: a.update(J_regressor=a["J_regressor"][:4]), "J_regressor must be"),
    ],
)
def test_malformed_models_name_file_and_problem(tmp_path, flame_like, mutate, message):
    arrays = flame_like(n_vertices=50, n_shape=300, n_expr=5)
    mutate(arrays)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(arrays))
    with pytest.raises(HeadModelError, match=f"model.pkl: .*{message}"):
        load_head_model_file(path)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(HeadModelError, match="registration"):
        load_head_model_file(tmp_path / "generic_model.pkl")
    (tmp_path / "model.obj").write_text("v 0 0 0\n")
    with pytest.raises(HeadModelError, match="unsupported head-model format"):
        load_head_model_file(tmp_path / "model.obj")
    (tmp_path / "trunc.pkl").write_bytes(pickle.dumps({"a": np.zeros(10)})[:20])
    with pytest.raises(HeadModelError, match="trunc.pkl: cannot read pickle"):
        load_head_model_file(tmp_path / "trunc.pkl")


def test_landmark_npy_with_hostile_pickle_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "landmark_embedding.npy"
    np.save(path, np.array([_Evil(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(HeadModelError, match="landmark_embedding.npy: unsafe"):
        load_landmark_embedding(path, 10, np.zeros((10, 3), dtype=np.int64), vertices=np.zeros((3, 3)))
    assert not marker.exists()


def test_texture_space_file(tmp_path):
    path = tmp_path / "FLAME_texture.npz"
    np.savez(path, vt=np.random.rand(12, 2), ft=np.random.randint(0, 12, (4, 3)), mean=np.zeros(3))
    vt, ft = load_texture_space(path, n_faces=4)
    assert vt.shape == (12, 2) and ft.shape == (4, 3)
    with pytest.raises(HeadModelError, match="ft \\(5, 3\\)"):
        load_texture_space(path, n_faces=5)
