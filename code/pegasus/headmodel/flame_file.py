"""Reading FLAME-format head-model files safely, and the one place the ×4 scale is applied.

Supported inputs:
  * FLAME 2020 ``generic_model.pkl`` (arrays stored as chumpy objects, Python-2 pickle),
    FLAME 2023 ``flame2023.pkl`` / ``flame2023_Open.pkl`` (numpy / scipy.sparse arrays);
  * the project's own ``.npz`` (same keys, plus ``n_shape``, landmarks, UVs, regions);
  * landmark embeddings: DECA/FLAME ``landmark_embedding.npy`` (a pickled dict inside .npy)
    or the project's ``.npz`` with ``lmk_faces_idx`` (L,) / ``lmk_bary_coords`` (L, 3);
  * FLAME texture space (``vt``, ``ft``) from an ``.npz`` such as ``FLAME_texture.npz``.

Pickles are read with :class:`ArrayOnlyUnpickler`, which rebuilds only numpy arrays,
scipy.sparse matrices and chumpy arrays (as plain data, without importing chumpy) and
refuses every other global *before* anything is called, so a hostile file has no effect.
"""
from __future__ import annotations

import io
import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse

from ..utils import atomic_path

try:  # numpy ≥ 2
    from numpy._core.multiarray import _reconstruct, scalar
    from numpy._core.numeric import _frombuffer
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct, scalar
    from numpy.core.numeric import _frombuffer

log = logging.getLogger(__name__)

__all__ = [
    "HeadModelError",
    "HeadModelData",
    "ArrayOnlyUnpickler",
    "safe_load_pickle",
    "load_head_model_file",
    "load_landmark_embedding",
    "load_texture_space",
    "save_head_model_npz",
    "FLAME_N_SHAPE",
]

#: Identity components of FLAME files (the rest of ``shapedirs`` are expression components).
FLAME_N_SHAPE = 300


class HeadModelError(ValueError):
    """A head-model, landmark or texture file is missing, unsafe or malformed."""


class RefusedGlobalError(pickle.UnpicklingError):
    """A pickle asked for a global outside the allowed array-data set."""


class _PickledObject:
    """Stand-in for a chumpy / scipy.sparse object: keeps only its pickled state."""

    qualname = "?"

    def __init__(self, *args):
        self.args = args
        self.state = None

    def __setstate__(self, state):
        self.state = state


def _placeholder(module: str, name: str) -> type:
    return type(name, (_PickledObject,), {"qualname": f"{module}.{name}"})


_NUMPY_GLOBALS = {
    ("_reconstruct",): _reconstruct,
    ("scalar",): scalar,
    ("_frombuffer",): _frombuffer,
    ("ndarray",): np.ndarray,
    ("dtype",): np.dtype,
}
def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes; strings only."""
    if not isinstance(text, str) or encoding.replace("-", "").lower() != "latin1":
        raise RefusedGlobalError("_codecs.encode is allowed only as encode(str, 'latin1')")
    return text.encode("latin1")


_BUILTIN_GLOBALS = {"object": object, "set": set, "frozenset": frozenset}
_SPARSE_NAMES = {"csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array"}


class ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can only build array data.

    Allowed: numpy array reconstruction, ``copyreg._reconstructor`` / ``object`` (used by
    protocol-2 pickles to create instances), ``set``/``frozenset``, ``_codecs.encode`` of a
    latin-1 string (protocol-2 bytes), chumpy classes and scipy.sparse matrix classes
    (both replaced by inert placeholders holding their state). Anything else raises
    :class:`RefusedGlobalError` naming the refused global; nothing is executed.
    """

    def find_class(self, module: str, name: str):
        root = module.split(".")[0]
        if root == "numpy" and (name,) in _NUMPY_GLOBALS and module in (
            "numpy", "numpy.core.multiarray", "numpy._core.multiarray",
            "numpy.core.numeric", "numpy._core.numeric",
        ):
            return _NUMPY_GLOBALS[(name,)]
        if (module, name) in {("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor")}:
            import copyreg

            return copyreg._reconstructor
        if module in ("__builtin__", "builtins") and name in _BUILTIN_GLOBALS:
            return _BUILTIN_GLOBALS[name]
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        if root == "chumpy" or (module.startswith("scipy.sparse") and name in _SPARSE_NAMES):
            return _placeholder(module, name)
        raise RefusedGlobalError(
            f"refused global '{module}.{name}': only numpy/scipy.sparse/chumpy array data is allowed"
        )


def safe_load_pickle(data: bytes | io.BufferedIOBase, source: str) -> object:
    """Unpickles array data with :class:`ArrayOnlyUnpickler` (Python-2 pickles via latin1)."""
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    try:
        return ArrayOnlyUnpickler(stream, encoding="latin1").load()
    except RefusedGlobalError as err:
        raise HeadModelError(f"{source}: unsafe pickle: {err}") from None
    except Exception as err:  # truncated or corrupt stream
        raise HeadModelError(f"{source}: cannot read pickle data: {err}") from None


def _to_array(value, key: str, source: str) -> np.ndarray:
    """Converts a pickled value (ndarray, chumpy or sparse placeholder) to a dense ndarray."""
    if isinstance(value, _PickledObject):
        state = value.state if isinstance(value.state, dict) else {}
        if value.qualname.startswith("chumpy"):
            if "x" not in state:
                raise HeadModelError(
                    f"{source}: key '{key}' is a chumpy expression ({value.qualname}) without "
                    "stored values; re-save the model with plain arrays"
                )
            return _to_array(state["x"], key, source)
        return _sparse_from_state(state, key, source).toarray()
    if scipy.sparse.issparse(value):
        return value.toarray()
    try:
        return np.asarray(value)
    except Exception as err:
        raise HeadModelError(f"{source}: key '{key}' is not array data: {err}") from None


def _sparse_from_state(state: dict, key: str, source: str):
    fmt = state.get("format") or ("csc" if "indptr" in state else "coo")
    shape = state.get("_shape", state.get("shape"))
    try:
        if fmt in ("csc", "csr"):
            cls = scipy.sparse.csc_matrix if fmt == "csc" else scipy.sparse.csr_matrix
            return cls((state["data"], state["indices"], state["indptr"]), shape=shape)
        coords = state.get("coords") or (state["row"], state["col"])
        return scipy.sparse.coo_matrix((state["data"], tuple(coords)), shape=shape)
    except (KeyError, TypeError, ValueError) as err:
        raise HeadModelError(f"{source}: key '{key}': malformed sparse matrix ({err})") from None


@dataclass
class HeadModelData:
    """A FLAME-format head model as numpy arrays, already scaled.

    Shapes: V vertices, F faces, J joints (5 for FLAME), S identity and E expression
    components as *stored in the file* (the torch module selects / zero-pads), L landmarks.
    Lengths are in scaled head units (FLAME metres × ``scale``).
    """

    v_template: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3) int64
    shapedirs: np.ndarray  # (V, 3, S)
    exprdirs: np.ndarray  # (V, 3, E)
    posedirs: np.ndarray  # (V, 3, 9*(J-1))
    j_regressor: np.ndarray  # (J, V) dense
    lbs_weights: np.ndarray  # (V, J)
    parents: np.ndarray  # (J,) int64, parents[0] = -1
    scale: float
    source: str
    lmk_faces_idx: np.ndarray | None = None  # (L,) int64
    lmk_bary_coords: np.ndarray | None = None  # (L, 3)
    vt: np.ndarray | None = None  # (T, 2) texture coordinates
    ft: np.ndarray | None = None  # (F, 3) indices into vt
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. vertex_region

    @property
    def n_vertices(self) -> int:
        return self.v_template.shape[0]


_REQUIRED = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")
_OPTIONAL = ("lmk_faces_idx", "lmk_bary_coords", "vt", "ft")
_EXTRA_KEYS = ("vertex_region", "region_names", "shape_names", "expr_names")  # project files only


def _read_raw(path: Path) -> dict:
    if not path.is_file():
        raise HeadModelError(
            f"{path}: head-model file not found. FLAME needs a registration at "
            "flame.is.tue.mpg.de; download generic_model.pkl (or flame2023.pkl) yourself and "
            "set head_model.path, or set head_model.path = null to use the stand-in head."
        )
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except ValueError as err:
            raise HeadModelError(f"{path}: .npz holds pickled objects, refused ({err})") from None
        except Exception as err:
            raise HeadModelError(f"{path}: cannot read .npz: {err}") from None
    if suffix in (".pkl", ".pickle"):
        raw = safe_load_pickle(path.read_bytes(), str(path))
        if not isinstance(raw, dict):
            raise HeadModelError(f"{path}: expected a pickled dict of arrays, got {type(raw).__name__}")
        return raw
    raise HeadModelError(f"{path}: unsupported head-model format '{suffix}' (use .pkl or .npz)")


def load_head_model_file(path: str | Path, scale: float = 4.0) -> HeadModelData:
    """Loads a FLAME-format model and applies ``scale`` to template and all bases, once.

    The identity/expression split of ``shapedirs`` is the file's ``n_shape`` entry when it
    has one (project files), else FLAME's 300.
    """
    path = Path(path)
    raw = _read_raw(path)
    src = str(path)
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise HeadModelError(f"{path}: not a FLAME-format model, missing keys {missing}")
    arr = {k: _to_array(raw[k], k, src) for k in _REQUIRED + _OPTIONAL if k in raw}
    v_template = arr["v_template"].astype(np.float64)
    if v_template.ndim != 2 or v_template.shape[1] != 3 or len(v_template) == 0:
        raise HeadModelError(f"{path}: v_template must be (V, 3), got {v_template.shape}")
    n_vert = v_template.shape[0]
    faces = arr["f"].astype(np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min(initial=0) < 0 or faces.max(initial=0) >= n_vert:
        raise HeadModelError(f"{path}: f must be (F, 3) vertex indices < {n_vert}")
    shapedirs_all = arr["shapedirs"].astype(np.float64)
    if shapedirs_all.ndim != 3 or shapedirs_all.shape[:2] != (n_vert, 3):
        raise HeadModelError(f"{path}: shapedirs must be ({n_vert}, 3, K), got {shapedirs_all.shape}")
    n_shape = int(np.asarray(raw["n_shape"])) if "n_shape" in raw else FLAME_N_SHAPE
    n_shape = min(n_shape, shapedirs_all.shape[2])
    posedirs = arr["posedirs"].astype(np.float64)
    weights = arr["weights"].astype(np.float64)
    n_joints = weights.shape[1] if weights.ndim == 2 else -1
    if weights.shape != (n_vert, n_joints) or n_joints < 1:
        raise HeadModelError(f"{path}: weights must be ({n_vert}, J), got {weights.shape}")
    if posedirs.shape != (n_vert, 3, 9 * (n_joints - 1)):
        raise HeadModelError(
            f"{path}: posedirs must be ({n_vert}, 3, {9 * (n_joints - 1)}), got {posedirs.shape}"
        )
    j_regressor = arr["J_regressor"].astype(np.float64)
    if j_regressor.shape != (n_joints, n_vert):
        raise HeadModelError(f"{path}: J_regressor must be ({n_joints}, {n_vert}), got {j_regressor.shape}")
    parents = arr["kintree_table"].astype(np.int64)[0].copy()
    if parents.shape != (n_joints,):
        raise HeadModelError(f"{path}: kintree_table must be (2, {n_joints})")
    parents[0] = -1  # FLAME stores uint32 max for the root
    if any(not 0 <= p < j for j, p in enumerate(parents) if j > 0):
        raise HeadModelError(f"{path}: kintree_table parents must precede their children")
    for key, value in [("v_template", v_template), ("shapedirs", shapedirs_all), ("posedirs", posedirs),
                       ("weights", weights), ("J_regressor", j_regressor)]:
        if not np.isfinite(value).all():
            raise HeadModelError(f"{path}: '{key}' contains NaN or Inf")
    data = HeadModelData(
        v_template=v_template * scale,
        faces=faces,
        shapedirs=shapedirs_all[:, :, :n_shape] * scale,
        exprdirs=shapedirs_all[:, :, n_shape:] * scale,
        posedirs=posedirs * scale,
        j_regressor=j_regressor,
        lbs_weights=weights,
        parents=parents,
        scale=float(scale),
        source=src,
        extras={k: np.asarray(v) for k, v in raw.items()
                if k in _EXTRA_KEYS and isinstance(v, np.ndarray)},
    )
    if "lmk_faces_idx" in arr and "lmk_bary_coords" in arr:
        data.lmk_faces_idx, data.lmk_bary_coords = _check_embedding(
            arr["lmk_faces_idx"], arr["lmk_bary_coords"], len(faces), src)
    if "vt" in arr and "ft" in arr:
        data.vt, data.ft = _check_texture_space(arr["vt"], arr["ft"], len(faces), src)
    return data


def _check_embedding(faces_idx, bary, n_faces: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    faces_idx = np.asarray(faces_idx).astype(np.int64).reshape(-1)
    bary = np.asarray(bary, dtype=np.float64).reshape(-1, 3)
    if len(faces_idx) != len(bary):
        raise HeadModelError(f"{source}: {len(faces_idx)} landmark faces but {len(bary)} barycentric rows")
    if faces_idx.size and (faces_idx.min() < 0 or faces_idx.max() >= n_faces):
        raise HeadModelError(f"{source}: landmark face index outside [0, {n_faces})")
    if not np.isfinite(bary).all() or np.abs(bary.sum(1) - 1).max(initial=0) > 1e-3:
        raise HeadModelError(f"{source}: landmark barycentric coordinates must be finite and sum to 1")
    return faces_idx, bary


def _check_texture_space(vt, ft, n_faces: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    vt = np.asarray(vt, dtype=np.float64)
    ft = np.asarray(ft).astype(np.int64)
    if vt.ndim != 2 or vt.shape[1] != 2 or ft.shape != (n_faces, 3):
        raise HeadModelError(f"{source}: expected vt (T, 2) and ft ({n_faces}, 3), got {vt.shape}, {ft.shape}")
    if ft.min(initial=0) < 0 or ft.max(initial=0) >= len(vt):
        raise HeadModelError(f"{source}: ft indexes outside vt")
    return vt, ft


def _read_npy_dict(path: Path) -> dict:
    """Reads a .npy holding a pickled dict (DECA's format) through the restricted unpickler."""
    with path.open("rb") as handle:
        try:
            version = np.lib.format.read_magic(handle)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(handle)
        except ValueError as err:
            raise HeadModelError(f"{path}: not a .npy file ({err})") from None
        if dtype.hasobject:
            obj = safe_load_pickle(handle.read(), str(path))
            if isinstance(obj, np.ndarray) and obj.dtype == object and obj.size == 1:
                obj = obj.item()
        else:
            handle.seek(0)
            obj = np.load(handle, allow_pickle=False)
    if not isinstance(obj, dict):
        raise HeadModelError(f"{path}: expected a dict of landmark arrays, got {type(obj).__name__} {shape}")
    return obj


def load_landmark_embedding(
    path: str | Path, n_faces: int, faces: np.ndarray, iris_vertex_ids: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Reads a landmark embedding and returns (faces_idx (70,), bary (70, 3)).

    DECA's ``landmark_embedding.npy`` provides the 68 iBUG landmarks (``full_lmk_faces_idx``,
    ``full_lmk_bary_coords``); the 2 iris centres are then the given vertices, expressed as
    barycentric (1, 0, 0) on a face containing each vertex. A project ``.npz`` stores all 70.
    """
    path = Path(path)
    if not path.is_file():
        raise HeadModelError(f"{path}: landmark embedding not found")
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            raw = {k: npz[k] for k in npz.files}
    elif path.suffix.lower() == ".npy":
        raw = _read_npy_dict(path)
    else:
        raise HeadModelError(f"{path}: unsupported landmark format (use .npy or .npz)")
    if "lmk_faces_idx" in raw:
        faces_idx, bary = raw["lmk_faces_idx"], raw["lmk_bary_coords"]
    elif "full_lmk_faces_idx" in raw:
        faces_idx, bary = raw["full_lmk_faces_idx"], raw["full_lmk_bary_coords"]
    else:
        raise HeadModelError(f"{path}: no 'lmk_faces_idx' or 'full_lmk_faces_idx' entry")
    faces_idx, bary = _check_embedding(_to_array(faces_idx, "faces", str(path)),
                                       _to_array(bary, "bary", str(path)), n_faces, str(path))
    if len(faces_idx) == 68:
        if iris_vertex_ids is None:
            raise HeadModelError(f"{path}: 68 landmarks only; configure head_model.iris_vertex_ids")
        iris_faces, iris_bary = [], []
        for vid in iris_vertex_ids:
            hits = np.nonzero((faces == vid).any(1))[0]
            if hits.size == 0:
                raise HeadModelError(f"{path}: iris vertex {vid} is not used by any face of the model")
            corner = int(np.nonzero(faces[hits[0]] == vid)[0][0])
            iris_faces.append(hits[0])
            iris_bary.append(np.eye(3)[corner])
        faces_idx = np.concatenate([faces_idx, iris_faces])
        bary = np.concatenate([bary, np.stack(iris_bary)])
    if len(faces_idx) != 70:
        raise HeadModelError(f"{path}: expected 68 or 70 landmarks, got {len(faces_idx)}")
    return faces_idx, bary


def load_texture_space(path: str | Path, n_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Reads ``vt`` (T, 2) and ``ft`` (F, 3) from an .npz such as FLAME's ``FLAME_texture.npz``."""
    path = Path(path)
    if not path.is_file():
        raise HeadModelError(f"{path}: texture-space file not found")
    with np.load(path, allow_pickle=False) as npz:
        if "vt" not in npz.files or "ft" not in npz.files:
            raise HeadModelError(f"{path}: needs 'vt' and 'ft' arrays, has {npz.files}")
        return _check_texture_space(npz["vt"], npz["ft"], n_faces, str(path))


def save_head_model_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Writes a FLAME-format model dict as .npz atomically (no pickled objects)."""
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)
    return Path(path)
