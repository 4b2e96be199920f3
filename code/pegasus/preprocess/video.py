"""Decoding raw videos with OpenCV: RGB uint8 frames, with errors that name the file."""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..data.images import DataError

__all__ = ["VideoInfo", "probe_video", "read_frames", "source_fingerprint"]

log = logging.getLogger(__name__)

_FALLBACK_FPS = 25.0  # when the container states no usable frame rate


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video.

    Attributes:
        path: the file.
        width, height: frame size, pixels.
        fps: frames per second (25 when the container gives none).
        frame_count: frames the container announces (may be approximate or 0).
    """

    path: Path
    width: int
    height: int
    fps: float
    frame_count: int


def _open(path: Path) -> cv2.VideoCapture:
    if not path.exists():
        raise DataError(f"{path}: video file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file (expected a video such as an .mp4)")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise DataError(f"{path}: cannot open the video (corrupt, truncated or a format OpenCV cannot decode); "
                        "re-encode it, e.g. `ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4`")
    return capture


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Opens ``path``, decodes its first frame and returns its properties.

    Raises:
        DataError: the file is missing, not a file, cannot be opened or has no decodable frame.
    """
    path = Path(path)
    capture = _open(path)
    try:
        ok, frame = capture.read()
        if not ok or frame is None or frame.size == 0:
            raise DataError(f"{path}: no decodable frame (corrupt or unsupported video codec); re-encode it, "
                            "e.g. `ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4`")
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        if not (math.isfinite(fps) and fps > 0):
            log.warning("%s: the container gives no frame rate; assuming %.0f fps", path, _FALLBACK_FPS)
            fps = _FALLBACK_FPS
        count = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        return VideoInfo(path, int(frame.shape[1]), int(frame.shape[0]), fps, count)
    finally:
        capture.release()


def read_frames(path: str | os.PathLike, stride: int = 1, max_frames: int | None = None, start: int = 0,
                end: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yields ``(source index, (H, W, 3) uint8 RGB frame)`` for every ``stride``-th frame.

    Args:
        stride: keep source frames start, start + stride, start + 2·stride, …
        max_frames: stop after this many kept frames (None: all).
        start, end: the source frames [start, end) are read (end None: to the last frame).

    Raises:
        DataError: the file cannot be opened or no frame can be decoded in the range.
    """
    if stride < 1 or start < 0:
        raise ValueError(f"read_frames: need stride ≥ 1 and start ≥ 0, got {stride}, {start}")
    path = Path(path)
    capture = _open(path)
    kept = 0
    try:
        index = 0
        while (max_frames is None or kept < max_frames) and (end is None or index < end):
            wanted = index >= start and (index - start) % stride == 0
            if wanted:
                ok, frame = capture.read()
            else:
                ok, frame = capture.grab(), None
            if not ok:
                break
            if frame is not None:
                kept += 1
                yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()
    if kept == 0:
        where = "" if start == 0 and end is None else f" in frames [{start}, {end if end is not None else 'end'})"
        raise DataError(f"{path}: no decodable frame{where} (corrupt or unsupported video codec, or a range "
                        "past the end of the clip)")


def source_fingerprint(path: str | os.PathLike) -> dict:
    """Identity of a source file for stage records: resolved path, size and modification time."""
    path = Path(path).resolve()
    stat = path.stat()
    return {"path": str(path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
