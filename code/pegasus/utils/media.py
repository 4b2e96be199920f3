"""Writing pictures and videos: PNGs, image grids, labels and point overlays (uint8 RGB, HWC), mp4s."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from ..data.images import to_uint8, write_rgb
from .atomic import atomic_path

__all__ = ["to_uint8", "image_grid", "draw_points", "put_label", "write_png", "Mp4Writer", "write_mp4"]


def image_grid(tiles: Sequence[np.ndarray], n_cols: int, pad: int = 4, background: int = 255) -> np.ndarray:
    """Lays out equally sized (H, W, 3) tiles row by row with ``pad`` pixels between them."""
    if not tiles:
        raise ValueError("image_grid: no tiles")
    tiles = [to_uint8(t) for t in tiles]
    h, w = tiles[0].shape[:2]
    if any(t.shape[:2] != (h, w) for t in tiles):
        raise ValueError("image_grid: tiles must share one size")
    n_rows = -(-len(tiles) // n_cols)
    grid = np.full((n_rows * (h + pad) + pad, n_cols * (w + pad) + pad, 3), background, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, n_cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + h, x:x + w] = tile
    return grid


def draw_points(image: np.ndarray, uv: np.ndarray, color: tuple[int, int, int], radius: int = 2) -> np.ndarray:
    """Draws filled circles at (N, 2) pixel coordinates (pixel centres at +0.5) on a copy."""
    out = to_uint8(image).copy()
    for x, y in np.asarray(uv, dtype=np.float64):
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(out, (int(x), int(y)), radius, color, -1, lineType=cv2.LINE_AA)
    return out


def put_label(image: np.ndarray, text: str, scale: float = 0.4) -> np.ndarray:
    """Writes ``text`` in the top-left corner of a copy (dark text on a light box)."""
    out = to_uint8(image).copy()
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(out, (0, 0), (tw + 6, th + base + 6), (235, 235, 235), -1)
    cv2.putText(out, text, (3, th + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 1, cv2.LINE_AA)
    return out


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Writes an (H, W, 3) RGB image (float in [0, 1] or uint8) as PNG atomically."""
    write_rgb(path, image)
    return Path(path)


# ---------------------------------------------------------------------------------------
# Videos (H.264 mp4 through imageio-ffmpeg), written atomically


class Mp4Writer:
    """Streams (H, W, 3) RGB frames into an H.264 mp4, written atomically.

    Frames go to a temporary sibling (:func:`pegasus.utils.atomic_path`) that replaces
    ``path`` only when :meth:`close` succeeds; :meth:`abort` (or an exception inside a
    ``with`` block) removes it and leaves ``path`` untouched. The first frame fixes the
    size; frames of odd width or height are padded with white on the right/bottom to an
    even size (yuv420p needs it). Colour is 8-bit RGB, chroma-subsampled by the codec.

    Example::

        with Mp4Writer("out/rgb.mp4", fps=25) as video:
            for frame in frames:        # (H, W, 3) float in [0, 1] or uint8
                video.write(frame)
    """

    def __init__(self, path: str | Path, fps: float, quality: float = 8.0) -> None:
        if not fps > 0:
            raise ValueError(f"Mp4Writer({path}): fps must be > 0, got {fps}")
        self.path, self.fps, self.quality = Path(path), float(fps), float(quality)
        self.n_frames = 0
        self._size: tuple[int, int] | None = None  # (H, W) of the input frames
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self._ffmpeg = None

    def write(self, frame: np.ndarray) -> None:
        """Appends one (H, W, 3) RGB frame, float in [0, 1] or uint8."""
        frame = to_uint8(frame)
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"{self.path}: expected an (H, W, 3) RGB frame, got shape {frame.shape}")
        if self._size is None:
            import imageio_ffmpeg

            self._size = frame.shape[:2]
            h, w = (s + s % 2 for s in self._size)
            self._ffmpeg = imageio_ffmpeg.write_frames(
                str(self._tmp), (w, h), fps=self.fps, codec="libx264", pix_fmt_in="rgb24",
                pix_fmt_out="yuv420p", quality=self.quality, macro_block_size=1, ffmpeg_log_level="error",
            )
            self._ffmpeg.send(None)
        elif frame.shape[:2] != self._size:
            raise ValueError(f"{self.path}: frame of size {frame.shape[:2]} after frames of {self._size}")
        h, w = self._size
        if h % 2 or w % 2:
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), constant_values=255)
        self._ffmpeg.send(np.ascontiguousarray(frame).tobytes())
        self.n_frames += 1

    def close(self) -> Path:
        """Finishes the file and moves it onto ``path``; an mp4 without frames is an error."""
        if self._atomic is None:
            return self.path
        if self._ffmpeg is None:
            self.abort()
            raise ValueError(f"{self.path}: no frames were written")
        try:
            self._ffmpeg.close()
        except BaseException:
            self.abort()
            raise
        atomic, self._atomic = self._atomic, None
        atomic.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        """Stops ffmpeg and deletes the temporary file; ``path`` is left as it was."""
        if self._atomic is None:
            return
        if self._ffmpeg is not None:
            try:
                self._ffmpeg.close()
            except Exception:  # noqa: BLE001 - the partial file is discarded anyway
                pass
        atomic, self._atomic = self._atomic, None
        try:
            atomic.__exit__(RuntimeError, RuntimeError("aborted"), None)
        except RuntimeError:
            pass

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_mp4(path: str | Path, frames: Iterable[np.ndarray], fps: float, quality: float = 8.0) -> Path:
    """Writes (H, W, 3) RGB frames (float in [0, 1] or uint8) as an H.264 mp4, atomically."""
    with Mp4Writer(path, fps, quality) as video:
        for frame in frames:
            video.write(frame)
    return Path(path)
