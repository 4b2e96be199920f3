"""Optional backends of the preprocessing chain that need files the user supplies.

None of these weights can be downloaded here, and all need a registration or a cloud
drive, so they are never fetched at run time. Each backend is chosen in the config and
checks its file or package when it is built, raising :class:`MissingBackendError` that names
the file, the config key and where to get it (``docs/preprocess.md``).

- MODNet matting (``preprocess.matte.backend = "modnet"``): an ONNX export of MODNet,
  run with OpenCV's DNN module (no extra package).
- BiSeNet face parsing (``preprocess.parsing.backend = "bisenet"``): an ONNX export of a
  BiSeNet face-parsing model with the 19 CelebAMask-HQ classes, run with OpenCV's DNN module.
- face_alignment landmarks (``preprocess.landmarks.backend = "face_alignment"``): the
  ``face-alignment`` package (FAN), on the box of the face mesh.
- SAM accessory masks (``preprocess.accessories.backend = "sam"``): the ``segment-anything``
  package and a SAM checkpoint, prompted with boxes derived from the mesh for the
  accessories the subject wears (``preprocess.accessories.worn``).
- DECA initialisation of the FLAME fit (``preprocess.tracking.init_backend = "deca"``):
  DECA's codes, from its encoder run here (the ``decalib`` package and ``deca_model.tar``)
  or from an .npz written elsewhere (``preprocess.tracking.deca_codes``), converted to an
  :class:`~pegasus.preprocess.tracking.InitialParams` by :func:`deca_to_initial`.
"""
from __future__ import annotations

import importlib
import os
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
import torch

from ..data.images import DataError
from ..data.parts import label_id
from ..headmodel import HeadModel
from ..headmodel.lbs import POSE_DIM, POSE_SLOTS, axis_angle_to_matrix
from .face import mesh_box
from .parsing import mesh_polygons
from .settings import TrackingSettings
from .tracking import InitialParams
from .video import source_fingerprint

__all__ = ["MissingBackendError", "require_file", "ModnetMatting", "BisenetParsing", "FaceAlignmentLandmarks",
           "SamAccessories", "InitSettings", "DecaCodes", "DecaEncoder", "DecaInitialiser", "deca_crop_transforms",
           "read_deca_codes", "deca_to_initial"]

MODNET_SOURCE = ("the MODNet repository (github.com/ZHKKKe/MODNet): download "
                 "modnet_photographic_portrait_matting.ckpt from its Google Drive and export it with its "
                 "onnx/export_onnx.py, or take the pre-exported modnet_photographic_portrait_matting.onnx")
BISENET_SOURCE = ("an ONNX export of BiSeNet face parsing with the 19 CelebAMask-HQ classes: export "
                  "79999_iter.pth of github.com/zllrunning/face-parsing.PyTorch with torch.onnx.export "
                  "(input 1x3x512x512), or take resnet18.onnx from github.com/yakhyo/face-parsing releases")
SAM_SOURCE = ("the segment-anything checkpoints (github.com/facebookresearch/segment-anything#model-checkpoints), "
              "e.g. sam_vit_b_01ec64.pth; `pip install segment-anything` (needs torchvision)")
DECA_SOURCE = ("DECA's data download (github.com/yfeng95/DECA, README \"Prepare data\": deca_model.tar from its "
               "Google Drive link; FLAME 2020 needs a registration at flame.is.tue.mpg.de)")
DECALIB_INSTALL = ("clone github.com/yfeng95/DECA, install its requirements (torchvision, yacs, scikit-image) and "
                   "put the clone on PYTHONPATH, or set preprocess.tracking.deca_codes to codes computed elsewhere")
DECA_INPUT = 224  # side of DECA's input image, pixels
DECA_CROP_SCALE = 1.25 * 1.1  # DECA's TestData: box side = 1.25 × 1.1 × mean side of the 68 landmarks' box
_DECA_CODES = {"shape": 100, "exp": 50, "pose": 6, "cam": 3}  # DECA's widths (shape and exp may differ)
_DECA_LAYOUT = ", ".join(f"{k} (T, {v})" for k, v in _DECA_CODES.items()) + " and optionally tform (T, 3, 3)"
_ROOT, _NECK = 0, 1  # joint ids (the POSE_SLOTS order)
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
_MODNET_STRIDE = 32  # MODNet needs sides that are multiples of 32


class MissingBackendError(DataError):
    """An optional backend's file or package is missing; the message says where to get it."""


def require_file(path: str | None, key: str, what: str, source: str) -> Path:
    """The existing file at ``path`` or a :class:`MissingBackendError` naming ``key`` and ``source``."""
    if path is None:
        raise MissingBackendError(f"{key} is null: {what} needs a weights file, which is never downloaded at run "
                                  f"time. Get it from {source}, then set {key}")
    if not Path(path).is_file():
        raise MissingBackendError(f"{path}: {what} weights not found ({key}). Get them from {source}")
    return Path(path)


def _require_package(module: str, what: str, install: str):
    try:
        return importlib.import_module(module)
    except Exception as err:  # ImportError, or a broken dependency such as torchvision
        raise MissingBackendError(f"{what} needs the Python package {module!r}, which cannot be imported ({err}); "
                                  f"{install}") from err


def _read_onnx(path: Path, what: str) -> cv2.dnn.Net:
    try:
        return cv2.dnn.readNetFromONNX(os.fspath(path))
    except cv2.error as err:
        raise MissingBackendError(f"{path}: {what} is not an ONNX model OpenCV can read ({err})") from None


class ModnetMatting:
    """MODNet (ONNX) matting: (H, W, 3) uint8 RGB → (H, W) float32 alpha in [0, 1].

    Args:
        weights: the ONNX file (``preprocess.matte.modnet_weights``).
    """

    def __init__(self, weights: str | None):
        path = require_file(weights, "preprocess.matte.modnet_weights", "MODNet matting", MODNET_SOURCE)
        self._net = _read_onnx(path, "MODNet")

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        height, width = rgb.shape[:2]
        side = (max(height, width) + _MODNET_STRIDE - 1) // _MODNET_STRIDE * _MODNET_STRIDE
        scaled = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA if side < height else cv2.INTER_LINEAR)
        blob = ((scaled.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None]
        self._net.setInput(np.ascontiguousarray(blob))
        alpha = self._net.forward()[0, 0]
        return np.clip(cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


class BisenetParsing:
    """BiSeNet (ONNX) face parsing: (H, W, 3) uint8 RGB → (H, W) uint8 CelebAMask-HQ ids.

    The network runs at 512² on ImageNet-normalised RGB; its 19 output channels are the
    project's label ids (``pegasus.data.parts``).

    Args:
        weights: the ONNX file (``preprocess.parsing.bisenet_weights``).
    """

    input_size = 512

    def __init__(self, weights: str | None):
        path = require_file(weights, "preprocess.parsing.bisenet_weights", "BiSeNet face parsing", BISENET_SOURCE)
        self._net = _read_onnx(path, "BiSeNet")

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        height, width = rgb.shape[:2]
        scaled = cv2.resize(rgb, (self.input_size, self.input_size), interpolation=cv2.INTER_LINEAR)
        blob = ((scaled.astype(np.float32) / 255.0 - _IMAGENET_MEAN) / _IMAGENET_STD).transpose(2, 0, 1)[None]
        self._net.setInput(np.ascontiguousarray(blob))
        labels = self._net.forward()[0].argmax(0).astype(np.uint8)
        return cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)


class FaceAlignmentLandmarks:
    """FAN 68-point landmarks of the ``face-alignment`` package, on the face-mesh box.

    Args:
        device: torch device string ("cpu", "cuda").
    """

    def __init__(self, device: str):
        module = _require_package(
            "face_alignment", "preprocess.landmarks.backend = face_alignment",
            "`pip install face-alignment`; it downloads its FAN weights into the torch hub cache "
            "($TORCH_HOME/hub/checkpoints) on first use, so run it once with internet access or copy the files there")
        self._model = module.FaceAlignment(module.LandmarksType.TWO_D, device=device, flip_input=False)

    def __call__(self, rgb: np.ndarray, mesh: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB and its (478, 2) mesh → (68, 2) float64 pixels (NaN when FAN fails)."""
        found = self._model.get_landmarks_from_image(rgb, detected_faces=[mesh_box(mesh)])
        if not found:
            return np.full((68, 2), np.nan)
        return np.asarray(found[0], dtype=np.float64)[:, :2] + 0.5  # FAN gives pixel indices


class SamAccessories:
    """SAM masks of the accessories a subject wears, painted into the label map.

    For each category in ``worn`` SAM is prompted with a box derived from the mesh: the
    eye band between the face sides (eyeglasses), or the band from the top of the
    foreground down to the eyebrows (hat).

    Args:
        checkpoint: SAM checkpoint (``preprocess.accessories.sam_checkpoint``).
        model_type: "vit_h", "vit_l" or "vit_b" (must match the checkpoint).
        worn: accessory label names, any of "eyeglasses", "hat".
        device: torch device string.
    """

    def __init__(self, checkpoint: str | None, model_type: str, worn: Sequence[str], device: str):
        path = require_file(checkpoint, "preprocess.accessories.sam_checkpoint", "SAM accessory masks", SAM_SOURCE)
        module = _require_package("segment_anything", "preprocess.accessories.backend = sam",
                                  "`pip install segment-anything` (it imports torchvision)")
        model = module.sam_model_registry[model_type](checkpoint=os.fspath(path)).to(device)
        self._predictor = module.SamPredictor(model)
        self._worn = tuple(worn)

    def _prompt_box(self, name: str, mesh: np.ndarray, matte: np.ndarray) -> np.ndarray:
        """(4,) ``[x0, y0, x1, y1]`` pixels around where accessory ``name`` sits."""
        polygons = mesh_polygons()
        x0, y0, x1, _ = mesh_box(mesh)
        brows = mesh[[i for path in (*polygons.left_brow, *polygons.right_brow) for i in path]]
        if name == "eyeglasses":
            nose_bottom = mesh[list(polygons.nose), 1].max()
            return np.array([x0, brows[:, 1].min(), x1, nose_bottom])
        rows = np.flatnonzero((matte > 0.5).any(1))
        top = rows[0] if len(rows) else 0
        margin = 0.25 * (x1 - x0)
        return np.array([x0 - margin, top, x1 + margin, brows[:, 1].mean()])

    def __call__(self, rgb: np.ndarray, mesh: np.ndarray, matte: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Returns a copy of ``labels`` (H, W) uint8 with the worn accessories' ids painted in the foreground."""
        self._predictor.set_image(rgb)
        out = labels.copy()
        for name in self._worn:
            masks, _, _ = self._predictor.predict(box=self._prompt_box(name, mesh, matte), multimask_output=False)
            out[masks[0] & (matte > 0.5)] = label_id(name)
        return out


# ---------------------------------------------------------------------------------------
# DECA initialisation of the FLAME fit


@dataclass(frozen=True)
class InitSettings:
    """The initialisation keys of ``preprocess.tracking`` (meanings in the schema)."""

    init_backend: str
    deca_model: str | None
    deca_codes: str | None

    @classmethod
    def from_tracking(cls, tracking: TrackingSettings) -> "InitSettings":
        """The initialisation keys of the ``preprocess.tracking`` section."""
        return cls(**{f.name: getattr(tracking, f.name) for f in fields(cls)})

    def codes_path(self, video: str) -> Path:
        """The .npz of ``video``: ``deca_codes`` with ``{video}`` replaced by the video name."""
        return Path(self.deca_codes.replace("{video}", video))

    def key(self, videos: Sequence[str]) -> dict:
        """The settings and the identity (path, size, mtime) of the files they name, for stage keys."""
        if self.init_backend == "none":
            return {"init_backend": "none"}
        files = [self.codes_path(v) for v in videos] if self.deca_codes else [self.deca_model]
        return {**asdict(self), "files": [source_fingerprint(f) if f and Path(f).is_file() else f for f in files]}


@dataclass(frozen=True, eq=False)
class DecaCodes:
    """DECA's outputs for the T frames of one video; a row with a NaN is a frame without a code.

    Attributes:
        shape: (T, 100) FLAME identity coefficients.
        exp: (T, 50) FLAME expression coefficients.
        pose: (T, 6) axis-angle radians: global rotation, then jaw.
        cam: (T, 3) orthographic camera [s, tx, ty]: DECA's normalised input coordinates are
            ``n = s·(X + tx), −s·(Y + ty)`` (y down) for FLAME points (X, Y, Z) in metres.
        tform: (T, 3, 3) similarity from the frame's pixel indices to those of DECA's 224²
            input (DECA's TestData ``tform.params``, pixel centres at integers).
    """

    shape: np.ndarray
    exp: np.ndarray
    pose: np.ndarray
    cam: np.ndarray
    tform: np.ndarray


def deca_crop_transforms(landmarks: np.ndarray) -> np.ndarray:
    """(T, 68, 2) pixels (centres at +0.5) → (T, 3, 3) DECA's crop of each frame (``tform``).

    As DECA's TestData does with 68 landmarks: a square of side 1.25·1.1·(w + h)/2 around
    the centre of their box (w, h) whose corners go to pixels 0 and 223. Frames with a
    non-finite landmark get NaN.
    """
    tforms = np.full((len(landmarks), 3, 3), np.nan)
    usable = np.isfinite(landmarks).all((1, 2))
    points = landmarks[usable] - 0.5  # pixel indices, as DECA's detectors give them
    low, high = points.min(1), points.max(1)
    side = DECA_CROP_SCALE * (high - low).sum(1) / 2
    scale = (DECA_INPUT - 1) / side
    corner = (low + high) / 2 - side[:, None] / 2
    tforms[usable] = 0.0
    tforms[usable, 0, 0] = tforms[usable, 1, 1] = scale
    tforms[usable, :2, 2] = -scale[:, None] * corner
    tforms[usable, 2, 2] = 1.0
    return tforms


def _whole_image_tforms(count: int, image_size: int) -> np.ndarray:
    """(count, 3, 3) DECA's tform without cropping (``iscrop=False``): the image resized to 224²."""
    tform = np.diag([(DECA_INPUT - 1) / (image_size - 1)] * 2 + [1.0])
    return np.repeat(tform[None], count, 0)


def read_deca_codes(path: str | Path, count: int, image_size: int) -> DecaCodes:
    """DECA codes of one video of ``count`` frames from an .npz (see docs/preprocess.md).

    The .npz holds per-frame ``shape`` (T, 100), ``exp`` (T, 50), ``pose`` (T, 6), ``cam``
    (T, 3) as DECA's ``encode`` returns them, in frame order, NaN rows for frames without a
    code; optionally ``tform`` (T, 3, 3), DECA's crop of each frame. Without ``tform`` the
    codes must be of the whole square frames resized to 224² (DECA's ``iscrop=False``).

    Raises:
        DataError: unreadable file, missing arrays, wrong shapes; the message names the file.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: np.asarray(npz[name], dtype=np.float64) for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: not a readable .npz of DECA codes ({err})") from None
    missing = [name for name in _DECA_CODES if name not in arrays]
    if missing:
        raise DataError(f"{path}: no array {', '.join(missing)}; a DECA codes file holds {_DECA_LAYOUT}")
    arrays.setdefault("tform", _whole_image_tforms(count, image_size))
    expected = {"shape": None, "exp": None, "pose": (6,), "cam": (3,), "tform": (3, 3)}  # None: any width
    for name, rest in expected.items():
        values = arrays[name]
        if values.ndim != (3 if name == "tform" else 2) or len(values) != count or rest and values.shape[1:] != rest:
            raise DataError(f"{path}: {name} has shape {values.shape}; expected {count} frames (the video's) in "
                            f"the layout {_DECA_LAYOUT}")
    linear = arrays["tform"][:, :2, :2]
    bent = np.abs(linear - linear[:, :1, :1] * np.eye(2)).max((1, 2)) > 1e-6 * np.abs(linear[:, 0, 0])
    if bent.any():
        raise DataError(f"{path}: tform of frames {np.flatnonzero(bent)[:5].tolist()} rotates or shears; only DECA's "
                        "crops (scale and shift) are supported")
    return DecaCodes(**{name: arrays[name] for name in expected})


class DecaEncoder:
    """DECA's coarse encoder (``E_flame`` of ``deca_model.tar``) on DECA's crops of the frames.

    Args:
        weights: ``deca_model.tar`` (``preprocess.tracking.deca_model``).
        device: torch device string.
    """

    batch_size = 16

    def __init__(self, weights: str | None, device: str):
        path = require_file(weights, "preprocess.tracking.deca_model", "DECA initialisation", DECA_SOURCE)
        what = "preprocess.tracking.init_backend = deca"
        encoders = _require_package("decalib.models.encoders", what, DECALIB_INSTALL)
        model_cfg = _require_package("decalib.utils.config", what, DECALIB_INSTALL).cfg.model
        self._sizes = {name: int(model_cfg[f"n_{name}"]) for name in model_cfg["param_list"]}
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)["E_flame"]
        except Exception as err:  # a pickle error, a missing key: not DECA's checkpoint
            raise MissingBackendError(f"{path}: not a DECA checkpoint with E_flame weights ({err!r})") from None
        net = encoders.ResnetEncoder(outsize=sum(self._sizes.values()))
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            raise MissingBackendError(f"{path}: its E_flame weights do not fit decalib's encoder ({err})") from None
        self._net, self._device = net.to(device).eval(), device

    def _encode(self, images: list[np.ndarray]) -> dict[str, np.ndarray]:
        """(B, 3, 224, 224) RGB in [0, 1] → DECA's codes, {name: (B, n)}."""
        with torch.no_grad():
            out = self._net(torch.from_numpy(np.stack(images)).to(self._device)).double().cpu().numpy()
        ends = np.cumsum(list(self._sizes.values()))
        return {name: out[:, end - size:end] for (name, size), end in zip(self._sizes.items(), ends)}

    def __call__(self, crops: Iterable[tuple[int, np.ndarray]], landmarks: np.ndarray) -> DecaCodes:
        """Codes of the frames ``crops`` yields as ``(k, (S, S, 3) uint8 RGB)``, k < T, cropped
        around their (T, 68, 2) ``landmarks`` (pixels; frames with a NaN get NaN rows)."""
        tforms = deca_crop_transforms(landmarks)
        codes = {name: np.full((len(landmarks), self._sizes[name]), np.nan) for name in _DECA_CODES}
        frames, images = [], []

        def flush() -> None:
            for name, values in self._encode(images).items():
                if name in codes:
                    codes[name][frames] = values
            frames.clear()
            images.clear()

        for k, rgb in crops:
            if np.isfinite(tforms[k]).all():
                crop = cv2.warpAffine(rgb, tforms[k, :2], (DECA_INPUT, DECA_INPUT), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                frames.append(k)
                images.append(crop.astype(np.float32).transpose(2, 0, 1) / 255.0)
                if len(frames) == self.batch_size:
                    flush()
        if frames:
            flush()
        return DecaCodes(**codes, tform=tforms)


class DecaInitialiser:
    """DECA codes per video: read from ``deca_codes`` when set, else from :class:`DecaEncoder`.

    Checks its files (and builds the encoder) up front, so a missing file stops the tracking
    stage before any work.

    Args:
        settings: the initialisation keys.
        head_model_path: ``head_model.path``; DECA's coefficients are FLAME's, so null (the
            stand-in head) is refused.
        videos: names of the videos to initialise.
        device: torch device string for the encoder.
    """

    def __init__(self, settings: InitSettings, head_model_path: str | None, videos: Sequence[str], device: str):
        if head_model_path is None:
            raise MissingBackendError(
                "preprocess.tracking.init_backend = deca needs the FLAME head model: DECA's shape, expression and "
                "jaw are FLAME 2020 coefficients, but head_model.path is null (the stand-in head). Set head_model.path "
                "to FLAME 2020's generic_model.pkl and head_model.landmark_embedding to DECA's landmark_embedding.npy "
                "(flame.is.tue.mpg.de, docs/preprocess.md)")
        self._settings, self._encoder = settings, None
        if settings.deca_codes is None:
            self._encoder = DecaEncoder(settings.deca_model, device)
            return
        if len(videos) > 1 and "{video}" not in settings.deca_codes:
            raise MissingBackendError(f"preprocess.tracking.deca_codes = {settings.deca_codes!r} names one file for "
                                      f"{len(videos)} videos; put {{video}} in the path for the video name")
        for video in videos:
            require_file(str(settings.codes_path(video)), "preprocess.tracking.deca_codes",
                         f"DECA initialisation of video {video!r}",
                         "DECA run on the video's cropped frames (docs/preprocess.md: the .npz layout)")

    def codes(self, video: str, crops: Iterable[tuple[int, np.ndarray]], landmarks: np.ndarray,
              image_size: int) -> DecaCodes:
        """Codes of ``video``: its (T, 68, 2) ``landmarks`` (pixels) and crops place DECA's input."""
        if self._encoder is None:
            return read_deca_codes(self._settings.codes_path(video), len(landmarks), image_size)
        return self._encoder(crops, landmarks)


def _fit_width(values: np.ndarray, width: int) -> np.ndarray:
    """(..., n) → (..., width): the first components, zero-padded."""
    out = np.zeros(values.shape[:-1] + (width,))
    keep = min(width, values.shape[-1])
    out[..., :keep] = values[..., :keep]
    return out


def deca_to_initial(codes: DecaCodes, head_model: HeadModel, image_size: int, focal: float,
                    units_per_metre: float) -> InitialParams:
    """DECA's codes → the tracker's starting point (docs/preprocess.md derives the formulas).

    Shape: the mean over the frames with a code, zero-padded or cut to n_shape (same for the
    expression). Pose: DECA's global rotation R goes to the neck slot (where tracking keeps
    the head rotation), the jaw to the jaw slot. Translation: DECA's orthographic camera as
    a perspective camera ``[I | t]`` of focal ``F = focal·image_size`` pixels that agrees with
    it at the depth of the landmarks' centroid. With a = pixels per DECA unit n (from
    ``tform``), (b_x, b_y) = the pixel of n = 0, c = image_size/2, κ = ``units_per_metre``
    and δ = (R − I)(J_neck − J_root) (turning about the neck joint instead of the root):
    ``t_x = δ_x + κ·tx + (b_x − c)·κ/(a·s)``, ``t_y = δ_y + κ·ty − (b_y − c)·κ/(a·s)``,
    ``t_z = −F·κ/(a·s) − z̄``, z̄ the mean landmark depth of the posed head model.

    ``tform`` must be a scale and shift (DECA's crops; :func:`read_deca_codes` checks it).
    """
    count = len(codes.cam)
    valid = np.isfinite(np.concatenate([codes.shape, codes.exp, codes.pose, codes.cam,
                                        codes.tform.reshape(count, 9)], 1)).all(1) & (codes.cam[:, 0] > 0)
    expression = np.full((count, head_model.n_expr), np.nan)
    pose = np.full((count, POSE_DIM), np.nan)
    translation = np.full((count, 3), np.nan)
    shape = _fit_width(codes.shape[valid].mean(0), head_model.n_shape) if valid.any() else None
    if shape is None:
        return InitialParams(expression, pose, translation, shape)
    inverse = np.linalg.inv(codes.tform[valid])  # DECA input pixel indices → frame pixel indices
    half = DECA_INPUT / 2  # DECA input pixel q = half·(n + 1), as its transform_points draws results
    a = half * inverse[:, 0, 0]
    b = inverse[:, :2, :2] @ np.full(2, half) + inverse[:, :2, 2] + 0.5  # + 0.5: this project's pixel centres

    expression[valid] = _fit_width(codes.exp[valid], head_model.n_expr)
    pose[valid] = 0.0
    pose[valid, POSE_SLOTS["neck"]] = codes.pose[valid, :3]
    pose[valid, POSE_SLOTS["jaw"]] = codes.pose[valid, 3:]
    buffer = head_model.v_template
    with torch.no_grad():
        betas, psi = buffer.new_tensor(shape)[None], buffer.new_tensor(expression[valid])
        rest = head_model(betas, psi, None).joints.double()  # (N, J, 3) unposed joints
        posed = head_model(betas, psi, buffer.new_tensor(pose[valid])).landmarks.double()
        rotation = axis_angle_to_matrix(torch.from_numpy(codes.pose[valid, :3]))
        eye = torch.eye(3, dtype=rotation.dtype)
        delta = ((rotation - eye) @ (rest[:, _NECK] - rest[:, _ROOT])[..., None])[..., 0].numpy()
    kappa, s = units_per_metre, codes.cam[valid, 0]
    per_pixel = kappa / (a * s)  # head units per pixel at the reference depth
    centre = image_size / 2
    translation[valid, 0] = delta[:, 0] + kappa * codes.cam[valid, 1] + (b[:, 0] - centre) * per_pixel
    translation[valid, 1] = delta[:, 1] + kappa * codes.cam[valid, 2] - (b[:, 1] - centre) * per_pixel
    translation[valid, 2] = -focal * image_size * per_pixel - posed[..., 2].mean(1).numpy()
    return InitialParams(expression, pose, translation, shape)
