"""Reading FLAME-format head-model files safely, and the one place the ×4 scale is applied.

Supported inputs:
  * FLAME 2020 ``generic_model.pkl`` (arrays stored as chumpy objects, Python-2 pickle),
    FLAME 2023 ``flame2023.pkl`` / ``flame2023_Open.pkl`` (numpy / scipy.sparse arrays);
  * the project's own ``.npz`` (same keys, plus ``n_shape``, landmarks, UVs, regions);
  * landmark embeddings (:func:`load_landmark_embedding`): DECA's ``landmark_embedding.npy``
    (a pickled dict inside .npy, 68 iBUG landmarks), FLAME's ``flame_static_embedding.pkl``
    (or the same dict as .npy: the 51 iBUG landmarks 17–67, no jaw contour) and the project's
    ``.npz`` (68 or 70 landmarks);
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
from typing import NamedTuple

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
    "LandmarkEmbedding",
    "ArrayOnlyUnpickler",
    "safe_load_pickle",
    "load_head_model_file",
    "check_components_in_use",
    "load_landmark_embedding",
    "load_texture_space",
    "save_head_model_npz",
    "FLAME_N_SHAPE",
    "N_LANDMARKS",
    "IRIS_MAX_EYE_OFFSET",
]

#: Identity components of FLAME files (the rest of ``shapedirs`` are expression components).
FLAME_N_SHAPE = 300
#: Landmarks of the head model: the 68 iBUG landmarks, then the iris centres of the eye of
#: landmarks 36–41 and of the eye of 42–47.
N_LANDMARKS = 70
#: Largest distance of an iris vertex from the centroid of its eye's six landmarks, in units
#: of that eye's width (corner 36 to 39, or 42 to 45). The iris centre lies about at the
#: centroid in x/y and a few mm in front of it (the eye corners lie deeper than the lids):
#: 0.13 eye widths on the stand-in head, 0.17 on ICT-FaceKit, about 5 mm / 30 mm on FLAME.
#: Other features are ≥ 1 eye width away: brows ≥ 1.1, nose root ≥ 1.3, the other eye ≥ 2.3.
IRIS_MAX_EYE_OFFSET = 0.5


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
    Lengths are in scaled head units (FLAME metres × ``scale``). ``landmark_valid`` marks the
    landmarks the embedding really has; a False row is a placeholder (see
    :func:`load_landmark_embedding`) that consumers such as tracking ignore.
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
    landmark_valid: np.ndarray | None = None  # (L,) bool, False: placeholder row (None: all valid)
    vt: np.ndarray | None = None  # (T, 2) texture coordinates
    ft: np.ndarray | None = None  # (F, 3) indices into vt
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. vertex_region

    @property
    def n_vertices(self) -> int:
        return self.v_template.shape[0]


_REQUIRED = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")
_OPTIONAL = ("lmk_faces_idx", "lmk_bary_coords", "vt", "ft")
_EXTRA_KEYS = ("vertex_region", "region_names", "shape_names", "expr_names")  # project files only


def _read_npz(path: Path) -> dict:
    """All arrays of an .npz; pickled object arrays are refused."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except ValueError as err:
        raise HeadModelError(f"{path}: .npz holds pickled objects, refused ({err})") from None
    except Exception as err:
        raise HeadModelError(f"{path}: cannot read .npz: {err}") from None


def _read_pickled_dict(path: Path) -> dict:
    """A pickled dict of arrays, through :class:`ArrayOnlyUnpickler`."""
    raw = safe_load_pickle(path.read_bytes(), str(path))
    if not isinstance(raw, dict):
        raise HeadModelError(f"{path}: expected a pickled dict of arrays, got {type(raw).__name__}")
    return raw


def _read_raw(path: Path) -> dict:
    if not path.is_file():
        raise HeadModelError(
            f"{path}: head-model file not found. FLAME needs a registration at "
            "flame.is.tue.mpg.de; download generic_model.pkl (or flame2023.pkl) yourself and "
            "set head_model.path, or set head_model.path = null to use the stand-in head."
        )
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path)
    if suffix in (".pkl", ".pickle"):
        return _read_pickled_dict(path)
    raise HeadModelError(f"{path}: unsupported head-model format '{suffix}' (use .pkl or .npz)")


def load_head_model_file(
    path: str | Path, scale: float = 4.0, identity_components: int | None = None
) -> HeadModelData:
    """Loads a FLAME-format model and applies ``scale`` to template and all bases, once.

    Args:
        path: FLAME ``.pkl`` or project ``.npz``.
        scale: factor applied to lengths (FLAME metres → head units; FLAME ×4).
        identity_components: where ``shapedirs`` (V, 3, K) splits into identity (the first
            ``identity_components`` columns) and expression (the rest). None: the file's
            ``n_shape`` entry when it has one (project files), else FLAME's 300 (FLAME 2020
            and 2023 store 300 identity + 100 expression; a .pkl does not say where the
            split is).

    Raises:
        HeadModelError: missing or unreadable file, unsafe pickle, missing keys, arrays of
            the wrong shape or with NaN/Inf, or a split outside [1, K) (the message names
            ``head_model.identity_components``).

    Whether the split leaves all-zero components among those in use is checked by
    :func:`check_components_in_use` (called by :class:`~pegasus.headmodel.model.HeadModel`).
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
    n_shape = _identity_split(raw, identity_components, shapedirs_all.shape[2], src)
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
        data.landmark_valid = np.ones(len(data.lmk_faces_idx), dtype=bool)
    if "vt" in arr and "ft" in arr:
        data.vt, data.ft = _check_texture_space(arr["vt"], arr["ft"], len(faces), src)
    return data


def _identity_split(raw: dict, identity_components: int | None, total: int, source: str) -> int:
    """The number of identity columns of ``shapedirs`` (K = ``total`` columns), checked."""
    if identity_components is not None:
        split, origin = identity_components, "head_model.identity_components"
    elif "n_shape" in raw:
        split, origin = int(np.asarray(raw["n_shape"])), "the file's n_shape entry"
    else:
        split, origin = FLAME_N_SHAPE, f"FLAME's {FLAME_N_SHAPE}, the file does not say"
    if isinstance(split, bool) or not isinstance(split, (int, np.integer)) or not 1 <= split < total:
        raise HeadModelError(
            f"{source}: identity/expression split {split!r} ({origin}) is outside [1, {total}): shapedirs has "
            f"{total} columns, identity first, then expression. Set head_model.identity_components to the "
            "file's number of identity components (FLAME 2020 and 2023: 300)"
        )
    return int(split)


def _zero_ranges(columns: np.ndarray) -> str:
    """(n,) bool, True = all-zero column → e.g. ``"0–199, 250"``."""
    zero = np.flatnonzero(columns)
    runs = np.split(zero, np.flatnonzero(np.diff(zero) > 1) + 1)
    return ", ".join(f"{r[0]}" if len(r) == 1 else f"{r[0]}–{r[-1]}" for r in runs)


def check_components_in_use(data: HeadModelData, n_shape: int, n_expr: int) -> None:
    """Refuses a model whose identity or expression components in use contain all-zero columns.

    In use: the first ``n_shape`` identity and the first ``n_expr`` expression components
    that the file has (components beyond the file are zero-padded by the head model and are
    not checked). An all-zero column is a component without effect: either the
    identity/expression split is wrong (e.g. a 100-wide identity block zero-padded to 300 read
    with split 100: the expression block starts with 200 zero columns) or more components are
    configured than the file really has.

    Raises:
        HeadModelError: naming the file, the split, the zero columns and the config keys
            ``head_model.identity_components``, ``head_model.n_shape``, ``head_model.n_expr``.
    """
    split = data.shapedirs.shape[2]
    problems = []
    for what, dirs, count, key in (("identity", data.shapedirs, n_shape, "head_model.n_shape"),
                                   ("expression", data.exprdirs, n_expr, "head_model.n_expr")):
        zero = ~dirs[:, :, :count].any(axis=(0, 1))
        if zero.any():
            problems.append(f"{what} components {_zero_ranges(zero)} of the {len(zero)} in use ({key} = {count}) "
                            "are all zeros")
    if problems:
        raise HeadModelError(
            f"{data.source}: {'; '.join(problems)} with shapedirs split into {split} identity + "
            f"{data.exprdirs.shape[2]} expression columns. Set head_model.identity_components to the file's "
            "number of identity components, or use fewer components (head_model.n_shape, head_model.n_expr)"
        )


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


class LandmarkEmbedding(NamedTuple):
    """The head model's :data:`N_LANDMARKS` landmarks as barycentric points of its faces.

    Unpacks as ``faces_idx, bary_coords, valid``.
    """

    faces_idx: np.ndarray  # (70,) int64 face of each landmark
    bary_coords: np.ndarray  # (70, 3) float64 barycentric coordinates in that face, rows sum to 1
    valid: np.ndarray  # (70,) bool; False: placeholder, the file does not have this landmark


#: Accepted landmark-file entries (faces key, barycentric key, what), in order of preference.
_EMBEDDING_KEYS = (
    ("full_lmk_faces_idx", "full_lmk_bary_coords", "DECA landmark_embedding.npy, 68 iBUG landmarks"),
    ("lmk_faces_idx", "lmk_bary_coords", "project .npz, 68 iBUG landmarks or 70 with the iris centres"),
    ("lmk_face_idx", "lmk_b_coords", "FLAME flame_static_embedding.pkl or .npy, 51 iBUG landmarks 17-67"),
)
_STATIC_FIRST = 17  # a 51-landmark embedding holds iBUG landmarks 17–67 (no jaw contour 0–16)
_NOSE_TIP = 30  # iBUG landmark whose point the missing jaw-contour rows repeat
_EYES = ((36, 39), (42, 45))  # per eye: first landmark and the opposite corner (6 landmarks each)


def _read_landmark_dict(path: Path) -> dict:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path)
    if suffix == ".npy":
        return _read_npy_dict(path)
    if suffix in (".pkl", ".pickle"):
        return _read_pickled_dict(path)
    raise HeadModelError(f"{path}: unsupported landmark format '{suffix}' (use .npy, .pkl or .npz)")


def load_landmark_embedding(
    path: str | Path,
    n_faces: int,
    faces: np.ndarray,
    iris_vertex_ids: tuple[int, int] | None = None,
    *,
    vertices: np.ndarray,
) -> LandmarkEmbedding:
    """Reads a landmark embedding as the head model's 70 landmarks.

    Accepted files (the layout follows the number of rows):
      * DECA's ``landmark_embedding.npy`` (a pickled dict inside .npy): ``full_lmk_faces_idx``
        (1, 68) / ``full_lmk_bary_coords`` (1, 68, 3), the 68 iBUG landmarks;
      * FLAME's ``flame_static_embedding.pkl``, or the same dict as .npy: ``lmk_face_idx``
        (51,) / ``lmk_b_coords`` (51, 3), the iBUG landmarks 17–67. The 17 jaw-contour rows
        0–16 are then placeholders: they repeat the nose tip (landmark 30), so they stay on
        the mesh and add no vertex, and ``valid`` is False for them;
      * the project's ``.npz``: ``lmk_faces_idx`` (L,) / ``lmk_bary_coords`` (L, 3), L = 68 or 70.

    Without the 2 iris rows (L < 70), the iris centres are the vertices ``iris_vertex_ids``
    [eye of landmarks 36–41, eye of 42–47], as barycentric (1, 0, 0) on a face containing
    each. They are checked against the template mesh: in [0, V), and each within
    :data:`IRIS_MAX_EYE_OFFSET` eye widths of the centroid of its eye's six landmarks.

    Args:
        path: the landmark file (.npy, .pkl or .npz; pickles are read with
            :class:`ArrayOnlyUnpickler`).
        n_faces: F, the model's face count.
        faces: (F, 3) vertex indices of the model's faces.
        iris_vertex_ids: (2,) vertex ids of the iris centres (``head_model.iris_vertex_ids``);
            needed when the file has no iris rows, ignored otherwise.
        vertices: (V, 3) template vertices of the model (any length unit).

    Raises:
        HeadModelError: a missing, unreadable or unsafe file; none of the accepted entries
            (the message lists them); indices or barycentric rows out of range; a landmark
            count other than 51, 68 or 70; iris vertex ids missing, outside [0, V), not on
            the eyes or on no face (the message names ``head_model.iris_vertex_ids``).
    """
    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise HeadModelError(f"{path}: landmark embedding not found")
    raw = _read_landmark_dict(path)
    entry = next(((f, b) for f, b, _ in _EMBEDDING_KEYS if f in raw and b in raw), None)
    if entry is None:
        accepted = "; ".join(f"'{f}' + '{b}' ({what})" for f, b, what in _EMBEDDING_KEYS)
        raise HeadModelError(f"{path}: no landmark embedding among its keys {sorted(map(str, raw))}; "
                             f"accepted: {accepted}")
    faces_idx, bary = _check_embedding(_to_array(raw[entry[0]], entry[0], src),
                                       _to_array(raw[entry[1]], entry[1], src), n_faces, src)
    count = len(faces_idx)
    if count not in (68 - _STATIC_FIRST, 68, N_LANDMARKS):
        raise HeadModelError(f"{path}: '{entry[0]}' has {count} landmarks; expected 51 (iBUG 17-67), 68 (iBUG) "
                             f"or {N_LANDMARKS} (iBUG + 2 iris centres)")
    valid = np.ones(N_LANDMARKS, dtype=bool)
    if count == 68 - _STATIC_FIRST:
        nose = _NOSE_TIP - _STATIC_FIRST
        faces_idx = np.concatenate([np.full(_STATIC_FIRST, faces_idx[nose]), faces_idx])
        bary = np.concatenate([np.repeat(bary[nose:nose + 1], _STATIC_FIRST, 0), bary])
        valid[:_STATIC_FIRST] = False
    if len(faces_idx) == 68:
        if iris_vertex_ids is None:
            raise HeadModelError(f"{path}: 68 landmarks only; configure head_model.iris_vertex_ids")
        iris_faces, iris_bary = _iris_rows(iris_vertex_ids, np.asarray(vertices, dtype=np.float64), faces,
                                           faces_idx, bary, src)
        faces_idx = np.concatenate([faces_idx, iris_faces])
        bary = np.concatenate([bary, iris_bary])
    return LandmarkEmbedding(faces_idx, bary, valid)


def _iris_rows(iris_vertex_ids, vertices: np.ndarray, faces: np.ndarray, faces_idx: np.ndarray,
               bary: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Checks the 2 iris vertex ids against the template (V, 3) and the eye landmarks of the
    68-row embedding; returns their (2,) faces and (2, 3) barycentric rows."""
    ids = np.asarray(iris_vertex_ids).reshape(-1)
    fix = ("; set head_model.iris_vertex_ids to this model's iris-centre vertices [eye of landmarks 36-41, "
           "eye of 42-47] (FLAME's: [4051, 4597])")
    if len(ids) != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise HeadModelError(f"{source}: iris vertex ids {ids.tolist()} are not 2 integers{fix}")
    n_vert = len(vertices)
    outside = [int(v) for v in ids if not 0 <= v < n_vert]
    if outside:
        raise HeadModelError(f"{source}: iris vertex ids {ids.tolist()}: {outside} outside [0, {n_vert}) "
                             f"(the model has {n_vert} vertices){fix}")
    corners = vertices[faces[faces_idx]]  # (68, 3, 3)
    landmarks = (corners * bary[:, :, None]).sum(1)  # (68, 3)
    centres = np.stack([landmarks[first:first + 6].mean(0) for first, _ in _EYES])
    widths = np.array([np.linalg.norm(landmarks[first] - landmarks[corner]) for first, corner in _EYES])
    offsets = np.linalg.norm(vertices[ids][:, None] - centres[None], axis=-1) / np.maximum(widths, 1e-12)
    problems = []
    for k, ((first, _), vid) in enumerate(zip(_EYES, ids)):
        if offsets[k, k] > IRIS_MAX_EYE_OFFSET:
            swapped = "; it is on the other eye: swapped?" if offsets[k, 1 - k] <= IRIS_MAX_EYE_OFFSET else ""
            problems.append(f"iris vertex {int(vid)} (head_model.iris_vertex_ids[{k}]) is {offsets[k, k]:.2f} "
                            f"eye widths from the centroid of landmarks {first}-{first + 5} (at most "
                            f"{IRIS_MAX_EYE_OFFSET}): not on that eye{swapped}")
    if problems:
        raise HeadModelError(f"{source}: iris vertex ids {ids.tolist()}: {'; '.join(problems)}{fix}")
    iris_faces, iris_bary = [], []
    for vid in ids:
        hits = np.nonzero((faces == vid).any(1))[0]
        if hits.size == 0:
            raise HeadModelError(f"{source}: iris vertex {int(vid)} is not used by any face of the model{fix}")
        corner = int(np.nonzero(faces[hits[0]] == vid)[0][0])
        iris_faces.append(hits[0])
        iris_bary.append(np.eye(3)[corner])
    return np.array(iris_faces, dtype=np.int64), np.stack(iris_bary)


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
