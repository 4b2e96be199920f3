"""The one owner of the IMavatar dataset layout: reading, validating, selecting and writing.

Layout (see docs/data.md)::

    <root>/<subject>/<subject>/          subject folder (the name is doubled, as in IMavatar)
        blacklist.json                   optional {video: ["12.png", ...]} excluded frames
        <video>/
            flame_params.json            cameras, FLAME shape and per-frame parameters
            image/<k>.png|.jpg           RGB frames, 1-indexed names
            mask/<k>.png                 soft foreground matte 0–255 (gray or RGB)
            semantic/<k>.png             optional face-parsing ids 0..18
            mask_object/<k>.png          optional soft mask of the part a synthetic video swapped
            keypoint.json                optional {"<k>.png": [[x, y] × 68]} pixels
            iris.json                    optional {"<k>.png": [[x, y] × 2]} pixels
            views.json                   optional {"frames": [{"frame": "<k>", ...}]}: what each frame
                                         of a generated view set shows (e.g. yaw and pitch offsets)

A frame is identified by its *stem* (``"12"``): the last part of ``file_path`` in
``flame_params.json`` (``"./image/12"``), matched against file names without suffix.
Splits are made by video (train videos vs test videos), never by frames of one video.
"""

from __future__ import annotations

import json
import logging
import math
import operator
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from pegasus.data.images import (
    IMAGE_SUFFIXES,
    DataError,
    read_image_size,
    write_label_map,
    write_mask,
    write_rgb,
)
from pegasus.geometry.camera import pixels_to_normalized
from pegasus.utils import write_json

__all__ = [
    "with_identity",
    "FLAME_PARAMS_FILE",
    "KEYPOINTS_FILE",
    "IRIS_FILE",
    "BLACKLIST_FILE",
    "VIEWS_FILE",
    "IMAGE_DIR",
    "MASK_DIR",
    "SEMANTIC_DIR",
    "PART_MASK_DIR",
    "POSE_DIM",
    "KEYPOINT_COUNT",
    "IRIS_COUNT",
    "FlameFrame",
    "FlameParams",
    "keypoint_fields",
    "VideoFrame",
    "Video",
    "FrameSelection",
    "subject_dir",
    "video_dir",
    "list_videos",
    "frame_stem",
    "numbered_frame_names",
    "read_flame_params",
    "write_flame_params",
    "read_landmarks",
    "read_views",
    "read_blacklist",
    "write_blacklist",
    "read_video",
    "select_frames",
    "write_video",
]

logger = logging.getLogger(__name__)

FLAME_PARAMS_FILE = "flame_params.json"
KEYPOINTS_FILE = "keypoint.json"
IRIS_FILE = "iris.json"
BLACKLIST_FILE = "blacklist.json"
VIEWS_FILE = "views.json"
IMAGE_DIR = "image"
MASK_DIR = "mask"
SEMANTIC_DIR = "semantic"
PART_MASK_DIR = "mask_object"
POSE_DIM = 15
"""FLAME pose layout: global 3 | neck 3 | jaw 3 | left eye 3 | right eye 3 (axis-angle)."""
KEYPOINT_COUNT = 68
IRIS_COUNT = 2
_FRAME_FOLDERS = (("image_path", IMAGE_DIR), ("mask_path", MASK_DIR), ("semantic_path", SEMANTIC_DIR),
                  ("part_mask_path", PART_MASK_DIR))
_LANDMARK_FILES = (("keypoints", KEYPOINTS_FILE, KEYPOINT_COUNT), ("iris", IRIS_FILE, IRIS_COUNT))
_SHOWN = 5  # how many offending names an error message lists


# ---------------------------------------------------------------------------------------
# Parameters


@dataclass(frozen=True, eq=False)
class FlameFrame:
    """One entry of ``flame_params.json``'s ``frames``.

    Attributes:
        name: frame stem, e.g. ``"12"`` for ``file_path`` ``"./image/12"``.
        world_mat: (3, 4) float64 world-to-camera ``[R|t]`` of a −z-looking camera,
            scaled head units (convert with :func:`pegasus.geometry.camera.cameras_from_imavatar`).
        expression: (E,) float64 FLAME expression coefficients (E = 50 or 100 in practice).
        pose: (15,) float64 axis-angle, layout in :data:`POSE_DIM`.
        bbox: (4,) float64 ``[xmin, ymin, xmax, ymax]`` in [−1, 1], or None if absent.
        flame_keypoints: (K, 2) float64 projected FLAME landmarks in [−1, 1] (K = 70 with
            iris), or None if absent.
    """

    name: str
    world_mat: np.ndarray
    expression: np.ndarray
    pose: np.ndarray
    bbox: np.ndarray | None = None
    flame_keypoints: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class FlameParams:
    """The content of one ``flame_params.json``.

    Attributes:
        intrinsics: (4,) float64 ``[fx_s/W, fy_s/H, cx/W, cy/H]``, fx_s negative by convention.
        shape_params: (S,) float64 FLAME identity coefficients (S = 100 in practice).
        frames: per-frame parameters in file order.
    """

    intrinsics: np.ndarray
    shape_params: np.ndarray
    frames: tuple[FlameFrame, ...]


def with_identity(params: FlameParams, shape_params: np.ndarray) -> FlameParams:
    """Another person driven by ``params``: the same cameras, expressions and poses with the
    identity ``shape_params`` (S,). The frames' ``bbox`` and ``flame_keypoints`` belonged to the
    driving person's face and are dropped (None)."""
    shape_params = np.asarray(shape_params, dtype=np.float64)
    if shape_params.ndim != 1:
        raise ValueError(f"with_identity: shape_params must be (S,), got {shape_params.shape}")
    frames = tuple(FlameFrame(f.name, f.world_mat, f.expression, f.pose) for f in params.frames)
    return FlameParams(params.intrinsics, shape_params, frames)


def keypoint_fields(landmarks: np.ndarray, image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A frame's ``bbox`` and ``flame_keypoints`` from its projected head-model landmarks.

    Args:
        landmarks: (K, 2) projected landmarks in pixels of an image of ``image_size`` (H, W).

    Returns:
        bbox (4,) ``[xmin, ymin, xmax, ymax]`` of the first 68 (iBUG) keypoints and
        flame_keypoints (K, 2), float64 normalised image coordinates in [−1, 1].
    """
    normalised = pixels_to_normalized(torch.as_tensor(landmarks, dtype=torch.float64), image_size).numpy()
    face = normalised[:KEYPOINT_COUNT]
    return np.concatenate([face.min(0), face.max(0)]), normalised


def _numbers(value, path: Path, key: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """Parses a JSON value into a finite float64 array of the given shape (None = any size)."""
    expected = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
    if value is None:
        raise DataError(f"{path}: {key} is missing or null; expected numbers of shape {expected}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: {key} is not an array of numbers of shape {expected}") from None
    if array.ndim != len(shape) or any(
        s is not None and s != n for s, n in zip(shape, array.shape, strict=True)
    ):
        raise DataError(f"{path}: {key} has shape {array.shape}, expected {expected}")
    if array.size == 0:
        raise DataError(f"{path}: {key} is empty, expected shape {expected}")
    if not np.isfinite(array).all():
        raise DataError(f"{path}: {key} contains non-finite values (NaN or Infinity)")
    return array


def frame_stem(name: str) -> str:
    """Frame key of a path or file name: ``"./image/12"``, ``"12.png"`` and ``"12"`` → ``"12"``."""
    last = PurePosixPath(str(name).replace("\\", "/")).name
    stem, suffix = os.path.splitext(last)
    return stem if suffix.lower() in IMAGE_SUFFIXES else last


def numbered_frame_names(count: int) -> list[str]:
    """IMavatar's 1-indexed frame stems ``["1", …, str(count)]``."""
    return [str(k) for k in range(1, count + 1)]


def _read_json(path: Path):
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: malformed JSON ({err}); fix or regenerate the file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read ({err})") from None


def _parse_frame(entry, position: int, path: Path) -> FlameFrame:
    where = f"frames[{position}]"
    if not isinstance(entry, dict):
        raise DataError(f"{path}: {where} must be an object, got {type(entry).__name__}")
    file_path = entry.get("file_path")
    if not isinstance(file_path, str) or not file_path.strip():
        raise DataError(f'{path}: {where}.file_path must be a string like "./image/1"')
    where = f"{where} ({file_path})"
    world_mat = _numbers(entry.get("world_mat"), path, f"{where}.world_mat", (None, 4))
    if world_mat.shape[0] not in (3, 4):
        raise DataError(f"{path}: {where}.world_mat has shape {world_mat.shape}, expected (3, 4) or (4, 4)")
    optional = {}
    if entry.get("bbox") is not None:
        optional["bbox"] = _numbers(entry["bbox"], path, f"{where}.bbox", (4,))
    if entry.get("flame_keypoints") is not None:
        optional["flame_keypoints"] = _numbers(
            entry["flame_keypoints"], path, f"{where}.flame_keypoints", (None, 2)
        )
    return FlameFrame(
        name=frame_stem(file_path),
        world_mat=world_mat[:3],
        expression=_numbers(entry.get("expression"), path, f"{where}.expression", (None,)),
        pose=_numbers(entry.get("pose"), path, f"{where}.pose", (POSE_DIM,)),
        **optional,
    )


def _check_consistent(frames: Sequence[FlameFrame], field: str, path: Path) -> None:
    """All frames must agree on the shape (and presence) of an array field."""
    shapes = {np.shape(getattr(f, field)) if getattr(f, field) is not None else None for f in frames}
    if len(shapes) > 1:
        raise DataError(
            f"{path}: frames disagree on {field}: shapes {sorted(map(str, shapes))}; "
            f"every frame must have the same {field} layout"
        )


def _parse_flame_params(data, path: Path) -> FlameParams:
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object with intrinsics, shape_params and frames")
    for key in ("intrinsics", "shape_params", "frames"):
        if key not in data:
            raise DataError(f"{path}: missing key {key!r}")
    intrinsics = _numbers(data["intrinsics"], path, "intrinsics", (4,))
    if intrinsics[0] == 0 or intrinsics[1] == 0:
        raise DataError(f"{path}: intrinsics {intrinsics.tolist()} have a zero focal length")
    shape_params = _numbers(data["shape_params"], path, "shape_params", (None,))
    if not isinstance(data["frames"], list) or not data["frames"]:
        raise DataError(f"{path}: frames must be a non-empty list")
    frames = tuple(_parse_frame(entry, i, path) for i, entry in enumerate(data["frames"]))
    for field in ("expression", "bbox", "flame_keypoints"):
        _check_consistent(frames, field, path)
    names = [f.name for f in frames]
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise DataError(f"{path}: frames repeat file_path stems {duplicates[:_SHOWN]}")
    return FlameParams(intrinsics, shape_params, frames)


def read_flame_params(path: str | os.PathLike) -> FlameParams:
    """Reads and validates a ``flame_params.json``; unknown keys (e.g. ``transform_matrix``) are ignored.

    Raises:
        DataError: naming the file and the problem (missing file or key, malformed JSON,
            non-finite number, wrong length, duplicate frames, inconsistent layouts).
    """
    path = Path(path)
    return _parse_flame_params(_read_json(path), path)


def _flame_params_to_json(params: FlameParams) -> dict:
    frames = []
    for frame in params.frames:
        entry = {
            "file_path": f"./{IMAGE_DIR}/{frame.name}",
            "world_mat": np.asarray(frame.world_mat, dtype=np.float64)[:3].tolist(),
            "expression": np.asarray(frame.expression, dtype=np.float64).tolist(),
            "pose": np.asarray(frame.pose, dtype=np.float64).tolist(),
        }
        if frame.bbox is not None:
            entry["bbox"] = np.asarray(frame.bbox, dtype=np.float64).tolist()
        if frame.flame_keypoints is not None:
            entry["flame_keypoints"] = np.asarray(frame.flame_keypoints, dtype=np.float64).tolist()
        frames.append(entry)
    return {
        "intrinsics": np.asarray(params.intrinsics, dtype=np.float64).tolist(),
        "shape_params": np.asarray(params.shape_params, dtype=np.float64).tolist(),
        "frames": frames,
    }


def write_flame_params(path: str | os.PathLike, params: FlameParams) -> None:
    """Writes ``flame_params.json`` atomically; refuses content the reader would reject."""
    path = Path(path)
    data = _flame_params_to_json(params)
    _parse_flame_params(data, path)
    write_json(path, data)


# ---------------------------------------------------------------------------------------
# Landmarks and blacklist


def read_landmarks(
    path: str | os.PathLike, frame_names: Sequence[str], n_points: int
) -> dict[str, np.ndarray | None]:
    """Reads ``keypoint.json`` or ``iris.json`` → {frame stem: (n_points, 2) float64 pixels or None}.

    Accepted forms: an object keyed by frame file name (``"12.png"``; matched by stem) or a
    list in frame order; each value a list of ``[x, y]`` pairs, a flat ``[x0, y0, x1, …]``
    list, or null. Null or empty entries, frames absent from the file, and entries with a
    different number of points (a known failure of the original iris detector) become None;
    the last are logged.
    """
    path = Path(path)
    data = _read_json(path)
    if isinstance(data, list):
        if len(data) != len(frame_names):
            raise DataError(
                f"{path}: list form has {len(data)} entries but the video has "
                f"{len(frame_names)} frames; use an object keyed by file name instead"
            )
        by_stem = dict(zip(frame_names, data, strict=True))
    elif isinstance(data, dict):
        by_stem = {frame_stem(key): value for key, value in data.items()}
    else:
        raise DataError(f'{path}: expected an object like {{"1.png": [[x, y], ...]}}')
    landmarks: dict[str, np.ndarray | None] = {}
    incomplete = []
    for name in frame_names:
        value = by_stem.get(name)
        if value is None or (isinstance(value, list) and not value):
            landmarks[name] = None
            continue
        points = _landmark_points(value, path, name)
        if points.size != 2 * n_points:
            incomplete.append(name)
            landmarks[name] = None
            continue
        landmarks[name] = points.reshape(n_points, 2)
    if incomplete:
        logger.warning(
            "%s: %d frames have a number of points other than %d and are treated as missing: %s",
            path,
            len(incomplete),
            n_points,
            incomplete[:_SHOWN],
        )
    return landmarks


def _landmark_points(value, path: Path, name: str) -> np.ndarray:
    """A non-empty landmark entry → finite float64 array (flat or (K, 2))."""
    try:
        points = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        points = None
    if points is None or points.ndim not in (1, 2) or (points.ndim == 2 and points.shape[1] != 2):
        raise DataError(f"{path}: entry {name!r} is not a list of [x, y] pairs or a flat list of numbers")
    if not np.isfinite(points).all():
        raise DataError(f"{path}: entry {name!r} contains non-finite values (NaN or Infinity)")
    return points


def read_views(video_path: str | os.PathLike) -> dict[str, dict]:
    """``{frame stem: what the frame shows}`` from a video's ``views.json`` (generated view sets).

    Raises:
        DataError: the file is missing or not ``{"frames": [{"frame": ..., ...}, ...]}``.
    """
    path = Path(video_path) / VIEWS_FILE
    data = _read_json(path)
    try:
        return {frame_stem(str(entry["frame"])): dict(entry) for entry in data["frames"]}
    except (KeyError, TypeError):
        raise DataError(f'{path}: expected {{"frames": [{{"frame": "<k>", ...}}, ...]}}') from None


def read_blacklist(subject_path: str | os.PathLike) -> dict[str, frozenset[str]]:
    """Reads ``<subject_path>/blacklist.json`` → {video: frame stems to exclude}; {} if absent."""
    path = Path(subject_path) / BLACKLIST_FILE
    if not path.exists():
        return {}
    data = _read_json(path)
    if not isinstance(data, dict) or not all(
        isinstance(names, list) and all(isinstance(n, (str, int)) for n in names) for names in data.values()
    ):
        raise DataError(f'{path}: expected an object like {{"<video>": ["12.png", ...]}}')
    return {video: frozenset(frame_stem(str(n)) for n in names) for video, names in data.items()}


def write_blacklist(subject_path: str | os.PathLike, blacklist: Mapping[str, Collection[str]]) -> None:
    """Writes ``blacklist.json`` atomically as {video: ["<stem>.png", ...]}, replacing the file."""
    data = {
        video: [f"{frame_stem(n)}.png" for n in sorted(names, key=_natural_key)]
        for video, names in sorted(blacklist.items())
    }
    write_json(Path(subject_path) / BLACKLIST_FILE, data)


def _natural_key(name: str) -> tuple:
    stem = frame_stem(name)
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)


# ---------------------------------------------------------------------------------------
# Videos


def subject_dir(root: str | os.PathLike, subject: str) -> Path:
    """``<root>/<subject>/<subject>``: the subject folder (name doubled, as in IMavatar)."""
    return Path(root) / subject / subject


def video_dir(root: str | os.PathLike, subject: str, video: str) -> Path:
    """``<root>/<subject>/<subject>/<video>``."""
    return subject_dir(root, subject) / video


def list_videos(root: str | os.PathLike, subject: str) -> list[str]:
    """Names of the subject's videos (folders holding a ``flame_params.json``), sorted.

    Hidden folders (e.g. a ``write_video`` staging folder) are not videos.
    """
    folder = subject_dir(root, subject)
    if not folder.is_dir():
        raise DataError(f"{folder}: subject folder not found (layout is <root>/<subject>/<subject>/<video>)")
    return sorted(
        p.name for p in folder.iterdir() if not p.name.startswith(".") and (p / FLAME_PARAMS_FILE).is_file()
    )


@dataclass(frozen=True, eq=False)
class VideoFrame:
    """One frame of a video with its files.

    Attributes:
        index: 0-based position in ``flame_params.json``'s frame list (stable under selection).
        flame: the frame's FLAME parameters and camera.
        image_path, mask_path, semantic_path, part_mask_path: files, None where the folder is absent.
        keypoints: (68, 2) float64 iBUG-68 landmarks in pixels of the stored image, or None.
        iris: (2, 2) float64 iris centres in pixels (order as stored), or None.
    """

    index: int
    flame: FlameFrame
    image_path: Path | None = None
    mask_path: Path | None = None
    semantic_path: Path | None = None
    part_mask_path: Path | None = None
    keypoints: np.ndarray | None = None
    iris: np.ndarray | None = None

    @property
    def name(self) -> str:
        """Frame stem, e.g. ``"12"``."""
        return self.flame.name


@dataclass(frozen=True, eq=False)
class Video:
    """A validated video folder.

    Attributes:
        path: the video folder.
        intrinsics: (4,) float64 IMavatar intrinsics shared by the frames.
        shape_params: (S,) float64 FLAME shape of the video.
        frames: the frames, in file order (possibly a selection).
        image_size: (H, W) of the stored images, or None when read without images.
    """

    path: Path
    intrinsics: np.ndarray
    shape_params: np.ndarray
    frames: tuple[VideoFrame, ...]
    image_size: tuple[int, int] | None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def has_masks(self) -> bool:
        return all(f.mask_path is not None for f in self.frames)

    @property
    def has_semantic(self) -> bool:
        return all(f.semantic_path is not None for f in self.frames)

    @property
    def has_part_masks(self) -> bool:
        return all(f.part_mask_path is not None for f in self.frames)

    def flame_params(self) -> FlameParams:
        """The parameters of this video's (selected) frames, e.g. to write a derived video."""
        return FlameParams(self.intrinsics, self.shape_params, tuple(f.flame for f in self.frames))


def _index_frame_files(folder: Path) -> dict[str, Path]:
    """{stem: path} of the image files in ``folder`` (hidden files ignored)."""
    files: dict[str, Path] = {}
    for path in folder.iterdir():
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.stem in files:
            raise DataError(
                f"{folder}: two files for frame {path.stem!r}: {files[path.stem].name}, {path.name}"
            )
        files[path.stem] = path
    return files


def _match_frame_files(folder: Path, names: Sequence[str]) -> list[Path]:
    """Paths of ``names`` in ``folder``; every frame needs a file and every file a frame."""
    files = _index_frame_files(folder)
    missing = [n for n in names if n not in files]
    if missing:
        raise DataError(
            f"{folder}: no file for {len(missing)} frame(s) listed in {FLAME_PARAMS_FILE}: "
            f"{missing[:_SHOWN]}; add the files or remove those frames from {FLAME_PARAMS_FILE}"
        )
    extra = sorted(set(files) - set(names), key=_natural_key)
    if extra:
        raise DataError(
            f"{folder}: {len(files)} files but {FLAME_PARAMS_FILE} lists {len(names)} frames; "
            f"files without a frame: {extra[:_SHOWN]}; remove them or add their frames"
        )
    return [files[n] for n in names]


def read_video(path: str | os.PathLike, *, require_images: bool = True) -> Video:
    """Reads and validates one video folder.

    Args:
        path: ``<root>/<subject>/<subject>/<video>``.
        require_images: when False only the JSON files are read (e.g. to drive an avatar
            with another video's FLAME parameters); file paths and image_size are then None.

    Raises:
        DataError: naming the file or folder and the problem.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: video folder not found")
    params = read_flame_params(path / FLAME_PARAMS_FILE)
    names = [f.name for f in params.frames]
    columns: dict[str, list] = {}
    image_size = None
    if require_images:
        if not (path / IMAGE_DIR).is_dir():
            raise DataError(f"{path / IMAGE_DIR}: image folder not found")
        for key, folder in _FRAME_FOLDERS:
            if (path / folder).is_dir():
                columns[key] = _match_frame_files(path / folder, names)
        image_size = read_image_size(columns["image_path"][0])
    for key, file_name, n_points in _LANDMARK_FILES:
        if (path / file_name).exists():
            landmarks = read_landmarks(path / file_name, names, n_points)
            columns[key] = [landmarks[n] for n in names]
    frames = tuple(
        VideoFrame(index=i, flame=flame, **{key: values[i] for key, values in columns.items()})
        for i, flame in enumerate(params.frames)
    )
    return Video(path, params.intrinsics, params.shape_params, frames, image_size)


@dataclass(frozen=True)
class FrameSelection:
    """Which frames of a video to use; at most one of stride ≠ 1, count, indices.

    Attributes:
        stride: every ``stride``-th frame.
        count: this many frames, evenly spaced; a video with fewer frames gives all of them
            (logged, never an error).
        indices: explicit 0-based positions in ``flame_params.json``'s frame list.
    """

    stride: int = 1
    count: int | None = None
    indices: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.stride, bool) or not isinstance(self.stride, int) or self.stride < 1:
            raise ValueError(f"FrameSelection: stride must be an integer ≥ 1, got {self.stride!r}")
        if self.count is not None and (not isinstance(self.count, int) or self.count < 1):
            raise ValueError(f"FrameSelection: count must be an integer ≥ 1, got {self.count!r}")
        if self.indices is not None:
            message = f"FrameSelection: indices must be integers ≥ 0, got {self.indices!r}"
            try:
                indices = tuple(operator.index(i) for i in self.indices)
            except TypeError:
                raise ValueError(message) from None
            if any(i < 0 for i in indices):
                raise ValueError(message)
            object.__setattr__(self, "indices", indices)
        chosen = [self.stride != 1, self.count is not None, self.indices is not None]
        if sum(chosen) > 1:
            raise ValueError("FrameSelection: give at most one of stride, count, indices")


def _evenly_spaced(n: int, count: int) -> list[int]:
    """``count`` ≤ n distinct positions spread over 0..n−1, first and last included."""
    if count == 1:
        return [0]
    step = (n - 1) / (count - 1)
    return [math.floor(i * step + 0.5) for i in range(count)]


def select_frames(
    video: Video, selection: FrameSelection = FrameSelection(), excluded: Collection[str] = ()
) -> Video:
    """Returns ``video`` restricted to the selected frames, blacklisted frames removed.

    Blacklisted frames (``excluded``, names or stems) are removed first, then stride or count
    apply to the remaining frames. Explicit indices are positions in the full frame list;
    blacklisted ones among them are dropped.

    Raises:
        DataError: indices out of range, or no frame left.
    """
    excluded = {frame_stem(n) for n in excluded}
    frames = video.frames
    if selection.indices is not None:
        out_of_range = [i for i in selection.indices if i >= len(frames)]
        if out_of_range:
            raise DataError(
                f"{video.path}: frame indices {out_of_range[:_SHOWN]} out of range; "
                f"the video has {len(frames)} frames (0..{len(frames) - 1})"
            )
        chosen = [frames[i] for i in selection.indices]
        kept = [f for f in chosen if f.name not in excluded]
        if len(kept) < len(chosen):
            logger.info("%s: %d selected frames are blacklisted", video.path, len(chosen) - len(kept))
    else:
        kept = [f for f in frames if f.name not in excluded]
        if selection.count is not None:
            if selection.count > len(kept):
                logger.warning(
                    "%s: %d frames requested but only %d available; using all of them",
                    video.path,
                    selection.count,
                    len(kept),
                )
            else:
                kept = [kept[i] for i in _evenly_spaced(len(kept), selection.count)]
        kept = kept[:: selection.stride]
    if not kept:
        raise DataError(f"{video.path}: no frames left after the blacklist and frame selection")
    return replace(video, frames=tuple(kept))


def _landmarks_to_json(names: Sequence[str], points: Sequence[np.ndarray | None], n_points: int) -> dict:
    data = {}
    for name, value in zip(names, points, strict=True):
        if value is not None:
            value = np.asarray(value, dtype=np.float64)
            if value.shape != (n_points, 2) or not np.isfinite(value).all():
                raise ValueError(
                    f"landmarks of frame {name!r}: expected finite ({n_points}, 2), got {value.shape}"
                )
            value = value.tolist()
        data[f"{name}.png"] = value
    return data


def _check_aligned(label: str, values: Sequence | None, count: int) -> None:
    if values is not None and len(values) != count:
        raise ValueError(f"write_video: {label} has {len(values)} entries for {count} frames")


def write_video(
    path: str | os.PathLike,
    flame_params: FlameParams,
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    *,
    semantics: Sequence[np.ndarray] | None = None,
    keypoints: Sequence[np.ndarray | None] | None = None,
    iris: Sequence[np.ndarray | None] | None = None,
    extra_folders: Mapping[str, Sequence[np.ndarray]] | None = None,
    extra_files: Mapping[str, object] | None = None,
    overwrite: bool = False,
) -> Path:
    """Writes a complete video folder atomically (into a temporary folder, then renamed).

    Frame ``i`` is written as ``image/<stem>.png`` etc. with ``stem = flame_params.frames[i].name``.

    Args:
        path: the video folder ``<root>/<subject>/<subject>/<video>``.
        flame_params: parameters, one frame per image.
        images: (H, W, 3) RGB, float in [0, 1] or uint8, one per frame.
        masks: (H, W) soft masks, float in [0, 1] or uint8.
        semantics: optional (H, W) label maps, ids 0..18.
        keypoints: optional (68, 2) pixel landmarks (None for a frame without).
        iris: optional (2, 2) pixel iris centres (None for a frame without).
        extra_folders: {folder: per-frame images}, e.g. ``mask_object``; (H, W) arrays are
            written as gray masks, (H, W, 3) as RGB.
        extra_files: {file name: JSON data} written into the folder with the frames (e.g. a
            record that marks the folder complete).
        overwrite: replace an existing folder; otherwise an existing folder is an error.

    Returns:
        The video folder.
    """
    path = Path(path)
    names = [f.name for f in flame_params.frames]
    extra_folders = dict(extra_folders or {})
    for label, values in (
        ("images", images),
        ("masks", masks),
        ("semantics", semantics),
        ("keypoints", keypoints),
        ("iris", iris),
        *extra_folders.items(),
    ):
        _check_aligned(label, values, len(names))
    groups = (images, masks, () if semantics is None else semantics, *extra_folders.values())
    sizes = {np.shape(a)[:2] for group in groups for a in group}
    if len(sizes) > 1:
        raise ValueError(f"write_video: frames differ in image size: {sorted(sizes)}")
    landmark_files = {
        file_name: _landmarks_to_json(names, values, n_points)
        for (_, file_name, n_points), values in zip(_LANDMARK_FILES, (keypoints, iris), strict=True)
        if values is not None
    }
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        write_flame_params(staging / FLAME_PARAMS_FILE, flame_params)
        for i, name in enumerate(names):
            write_rgb(staging / IMAGE_DIR / f"{name}.png", images[i])
            write_mask(staging / MASK_DIR / f"{name}.png", masks[i])
            if semantics is not None:
                write_label_map(staging / SEMANTIC_DIR / f"{name}.png", semantics[i])
            for folder, values in extra_folders.items():
                writer = write_rgb if np.ndim(values[i]) == 3 else write_mask
                writer(staging / folder / f"{name}.png", values[i])
        for file_name, data in {**landmark_files, **(extra_files or {})}.items():
            write_json(staging / file_name, data)
        os.chmod(staging, 0o755)
        _replace_folder(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def _replace_folder(source: Path, target: Path) -> None:
    """Renames ``source`` to ``target``; an existing ``target`` is moved aside, then deleted."""
    if not target.exists():
        os.replace(source, target)
        return
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
    os.replace(target, old / target.name)
    os.replace(source, target)
    shutil.rmtree(old, ignore_errors=True)
