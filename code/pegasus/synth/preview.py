"""Preview sheets of the synthesis, one per category: per DB person a row of a few frames,
each as the target's own frame | the DB render used (aligned) | the composite."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.images import read_rgb, resize_rgb
from ..data.imavatar import IMAGE_DIR, read_video, video_dir
from ..utils.media import image_grid, put_label, write_png

__all__ = ["preview_sheets"]


def _spread(names: list[str], count: int) -> list[str]:
    return [names[k] for k in np.linspace(0, len(names) - 1, min(count, len(names))).round().astype(int)]


def preview_sheets(root: Path, subject: str, own: Path, records: list[dict], count: int = 3) -> list[Path]:
    """Writes ``<root>/preview_<category>.png`` for every category with kept frames.

    Args:
        root: the edited video's dataset root (``<synth.root>/<video>``).
        subject: the target subject; ``own`` its source video folder (images at any size).
        records: the job records of that video (``name``, ``category``, ``db_person``, ``kept``).
        count: frames per row, evenly spaced over the kept frames.
    """
    written = []
    for category in dict.fromkeys(r["category"] for r in records if r["kept"]):
        tiles = []
        for record in (r for r in records if r["category"] == category and r["kept"]):
            folder = video_dir(root, subject, record["name"])
            names = _spread([f.name for f in read_video(folder, require_images=False).frames], count)
            for name in names:
                edited = read_rgb(folder / IMAGE_DIR / f"{name}.png")
                size = edited.shape[:2]
                tiles += [put_label(resize_rgb(read_rgb(own / IMAGE_DIR / f"{name}.png"), size), f"own {name}"),
                          put_label(read_rgb(folder / "render_image" / f"{name}.png"), record["db_person"]),
                          put_label(edited, category)]
            tiles += [np.full_like(tiles[-1], 255)] * (3 * (count - len(names)))
        written.append(write_png(root / f"preview_{category}.png", image_grid(tiles, n_cols=3 * count)))
    return written
