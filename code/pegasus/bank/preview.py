"""A preview sheet of the bank's cross-driven renders: per person, a few driver frames."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.images import read_label_map, read_rgb, resize_rgb
from ..data.imavatar import IMAGE_DIR, SEMANTIC_DIR, read_video
from ..data.parts import colour_labels
from ..utils.media import image_grid, put_label, write_png

__all__ = ["preview_sheet"]


def _frames(folder: Path, count: int) -> list[str]:
    names = [f.name for f in read_video(folder, require_images=False).frames]
    return [names[k] for k in np.linspace(0, len(names) - 1, min(count, len(names))).round().astype(int)]


def preview_sheet(path: Path, driver_folder: Path, renders: Sequence[tuple[str, Path]], count: int = 4) -> Path:
    """Writes a PNG grid: the first row the driver's frames, then per (person, render folder)
    a row of its renders of those frames beside their label maps (when it has them).

    Args:
        path: the PNG to write.
        driver_folder: the driver's video folder (its images, at any size).
        renders: (person name, cross-driven render folder) pairs.
        count: frames per row, evenly spaced over the render.
    """
    names = _frames(renders[0][1], count)
    first = read_rgb(renders[0][1] / IMAGE_DIR / f"{names[0]}.png")
    size = first.shape[:2]
    has_labels = all((folder / SEMANTIC_DIR).is_dir() for _, folder in renders)
    per_frame = 2 if has_labels else 1
    tiles = []
    for name in names:
        tiles.append(put_label(resize_rgb(read_rgb(driver_folder / IMAGE_DIR / f"{name}.png"), size), f"driver {name}"))
        tiles.extend([np.full((*size, 3), 255, np.uint8)] * (per_frame - 1))
    for person, folder in renders:
        for name in names:
            tiles.append(put_label(read_rgb(folder / IMAGE_DIR / f"{name}.png"), person))
            if has_labels:
                tiles.append(colour_labels(read_label_map(folder / SEMANTIC_DIR / f"{name}.png")))
    return write_png(path, image_grid(tiles, n_cols=len(names) * per_frame))
