"""The one owner of image value range, channel order, resizing and compositing.

In memory, images are numpy arrays in HWC order with RGB channels:
- colour: (H, W, 3) float32 in [0, 1];
- soft mask (foreground matte): (H, W) float32 in [0, 1] (files store 0–255);
- label map: (H, W) uint8 semantic ids 0..18 (see :mod:`pegasus.data.parts`).

Ground-truth colour is composited on **white** with the soft mask: ``rgb·m + (1 − m)``.
Files are written as 8-bit PNG (or JPEG by suffix) through :func:`pegasus.utils.atomic_path`,
so a reader never sees half a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from pegasus.data.parts import NUM_SEMANTIC_LABELS
from pegasus.utils import atomic_path

__all__ = [
    "DataError",
    "IMAGE_SUFFIXES",
    "read_rgb",
    "read_mask",
    "read_label_map",
    "read_image_size",
    "composite_on_white",
    "resize_rgb",
    "resize_mask",
    "resize_label_map",
    "write_rgb",
    "write_mask",
    "write_label_map",
    "to_uint8",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""File suffixes recognised as frames (lower case; matching ignores case)."""

_LUMA_BGR = np.array([0.114, 0.587, 0.299])  # ITU-R 601 weights, as PIL's convert("L")


class DataError(ValueError):
    """A dataset file is missing or malformed; the message names the file and the fix."""


def _read_unchanged(path: Path) -> np.ndarray:
    """Decodes an image file with OpenCV, keeping bit depth and channels (BGR order)."""
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(f"{path}: cannot decode image (corrupt or not a PNG/JPEG); re-export it")
    return image


def _to_unit_float(image: np.ndarray, path: Path) -> np.ndarray:
    """uint8 / uint16 pixel values → float32 in [0, 1]."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    raise DataError(f"{path}: unsupported pixel type {image.dtype}; expected 8- or 16-bit")


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Reads a colour image (PNG/JPEG, gray, RGB or RGBA) → (H, W, 3) float32 RGB in [0, 1].

    An alpha channel is dropped; a gray image is repeated into three channels.
    """
    path = Path(path)
    image = _read_unchanged(path)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    elif image.shape[2] == 4:
        image = image[..., :3]
    if image.shape[2] != 3:
        raise DataError(f"{path}: expected a gray, RGB or RGBA image, got {image.shape[2]} channels")
    return _to_unit_float(np.ascontiguousarray(image[..., ::-1]), path)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Reads a soft foreground matte (0–255, gray or RGB) → (H, W) float32 in [0, 1].

    A colour matte with equal channels is read from one channel; otherwise its luma is used
    (ITU-R 601, as the original loaders' ``as_gray``).
    """
    path = Path(path)
    image = _read_unchanged(path)
    if image.ndim == 3:
        bgr = image[..., :3]
        if (bgr == bgr[..., :1]).all():
            image = bgr[..., 0]
        else:
            luma = bgr.astype(np.float64) @ _LUMA_BGR
            image = np.clip(np.rint(luma), 0, np.iinfo(image.dtype).max).astype(image.dtype)
    return _to_unit_float(image, path)


def read_label_map(path: str | os.PathLike) -> np.ndarray:
    """Reads a face-parsing label map → (H, W) uint8 ids in 0..18.

    Accepts gray or palette PNGs (the pixel value is the id) and RGB files with equal
    channels. Raises :class:`DataError` naming the file for colour-coded maps or ids > 18.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: label map not found")
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            labels = np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataError(f"{path}: cannot decode label map ({err}); re-export it") from None
    if mode in ("LA", "PA"):
        labels = labels[..., 0]
    elif labels.ndim == 3:
        if not (labels[..., :3] == labels[..., :1]).all():
            raise DataError(
                f"{path}: label map is colour-coded ({mode}); expected one channel whose "
                f"value is the semantic id 0..{NUM_SEMANTIC_LABELS - 1}"
            )
        labels = labels[..., 0]
    out_of_range = (labels < 0) | (labels >= NUM_SEMANTIC_LABELS)
    if out_of_range.any():
        bad = np.unique(labels[out_of_range])[:10].tolist()
        raise DataError(
            f"{path}: label ids {bad} out of range; expected CelebAMask-HQ ids "
            f"0..{NUM_SEMANTIC_LABELS - 1} (see pegasus.data.parts)"
        )
    return labels.astype(np.uint8)


def read_image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) of an image file, read from its header without decoding the pixels."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataError(f"{path}: cannot read image header ({err}); re-export it") from None
    return height, width


def composite_on_white(rgb, mask):
    """Composites colour on a white background with a soft mask: ``rgb·m + (1 − m)``.

    Args:
        rgb: (..., H, W, 3) float in [0, 1], numpy array or torch tensor.
        mask: (..., H, W) float in [0, 1], same type as ``rgb``.

    Returns:
        (..., H, W, 3), same type and dtype as ``rgb``.
    """
    m = mask[..., None]
    return rgb * m + (1 - m)


def _resize(image: np.ndarray, size: tuple[int, int], nearest: bool) -> np.ndarray:
    """Resizes to (H, W): nearest for labels, area when shrinking, bilinear when enlarging."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    if nearest:
        interpolation = cv2.INTER_NEAREST
    elif height <= image.shape[0] and width <= image.shape[1]:
        interpolation = cv2.INTER_AREA
    else:
        interpolation = cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) float32 → (H, W, 3) float32 for ``size = (H, W)``."""
    return _resize(rgb, size, nearest=False)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) float32 → (H, W) float32 for ``size = (H, W)``, values stay in [0, 1]."""
    return np.clip(_resize(mask, size, nearest=False), 0.0, 1.0)


def resize_label_map(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) uint8 ids → (H, W) uint8 ids (nearest neighbour, ids never blend)."""
    return _resize(labels, size, nearest=True)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float in [0, 1] (clipped, rounded) or uint8 → uint8."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(image.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def _write_encoded(path: Path, image: np.ndarray) -> None:
    """Encodes a uint8 HW or HWC-BGR array in the format of the path's suffix; writes atomically."""
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"{path}: unsupported image suffix {suffix!r}; use one of {IMAGE_SUFFIXES}")
    ok, buffer = cv2.imencode(suffix, image)
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode an array of shape {image.shape}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.tobytes())


def write_rgb(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Writes (H, W, 3) RGB, float in [0, 1] or uint8, as an 8-bit image (atomic)."""
    path = Path(path)
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"{path}: expected (H, W, 3) RGB, got shape {rgb.shape}")
    _write_encoded(path, np.ascontiguousarray(to_uint8(rgb)[..., ::-1]))


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> None:
    """Writes an (H, W) soft mask, float in [0, 1] or uint8, as 8-bit gray (atomic)."""
    path = Path(path)
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{path}: expected an (H, W) mask, got shape {mask.shape}")
    _write_encoded(path, to_uint8(mask))


def write_label_map(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Writes an (H, W) map of semantic ids 0..18 as 8-bit gray PNG (atomic)."""
    path = Path(path)
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: expected an (H, W) integer label map, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_SEMANTIC_LABELS):
        raise ValueError(f"{path}: label ids must be in 0..{NUM_SEMANTIC_LABELS - 1}")
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: label maps must be PNG (JPEG would blend ids)")
    _write_encoded(path, labels.astype(np.uint8))
