"""The part-control score of METHOD §8.1: one scorer for synthesis, PEGASUS renders and zero-shot.

For a person p, a category c and a DB person k, the ground-truth entry
``<ground_truth>/<p>/<p>/<c>_<k>/`` holds p's test frames with k's part c. A method's images of
the same frames (the *edited* images, an IMavatar-like folder ``<edited_root>/<p>/<p>/<c>_<k>/image/``)
are compared with it inside and outside the part region:

- IN = grow(M_new ∪ M_old), M_new = the entry's ``mask_object`` ≥ 0.5, M_old = p's own label
  map's pixels of c; OUT = every other pixel; REMOVED = grow(M_old \\ M_new); the growth is
  round(0.02 · image side) px (:func:`part_regions`);
- ``psnr_in``, ``psnr_out``, ``psnr_removed``: PSNR of the mean squared error over those pixels;
  ``ssim`` (and ``lpips`` with weights) over the whole image;
- the same scores of the *unedited* image (the method's image of p with its own part) against
  the ground truth (``ref_*``: what "no edit" scores), ``recon_psnr_out`` of the unedited image
  against p's own frame, ``out_vs_unedited`` = PSNR_out of the edited against the unedited image
  (how much the edit moved the rest of the face), and ``disentanglement`` = psnr_out −
  recon_psnr_out (null when the unedited image is p's frame itself, as for the synthesis).

Frames a method dropped (absent from its folder) are counted, not scored.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data import parts
from ..data.dataset import parse_resolution
from ..data.images import DataError, read_label_map, read_mask, read_rgb, resize_label_map, resize_mask, resize_rgb
from ..data.imavatar import IMAGE_DIR, PART_MASK_DIR, SEMANTIC_DIR, video_dir
from ..utils import write_json
from ..utils.media import image_grid, put_label, write_png
from .metrics import LPIPS, PSNR_MSE_FLOOR, dilate_mask, masked_psnr, mean_metrics, ssim

__all__ = ["GroundTruthEntry", "read_ground_truth", "part_regions", "score_entry", "score_part_control",
           "part_contact_sheets", "METRICS", "REFERENCE_METRICS"]

METRICS = ("psnr_in", "psnr_out", "psnr_removed", "ssim", "lpips")
REFERENCE_METRICS = tuple(f"ref_{m}" for m in METRICS)
_DERIVED = ("out_vs_unedited", "recon_psnr_out", "disentanglement")
_IDENTICAL_DB = -10.0 * math.log10(PSNR_MSE_FLOOR) - 1e-6


@dataclass(frozen=True)
class GroundTruthEntry:
    """One entry of ``ground_truth/manifest.json``: ``person``, ``category``, ``db_person``,
    ``name`` (``<category>_<db>``), ``frames`` (names) and its folder."""

    person: str
    category: str
    db_person: str
    name: str
    frames: tuple[str, ...]
    folder: Path


def read_ground_truth(root: str | Path, person: str, categories: Sequence[str] | None = None
                      ) -> list[GroundTruthEntry]:
    """The ground-truth entries of ``person`` (optionally of some categories) from
    ``<root>/manifest.json``.

    Raises:
        DataError: the manifest is missing or malformed.
    """
    path = Path(root) / "manifest.json"
    if not path.is_file():
        raise DataError(f"{path}: ground-truth manifest not found (pegasus synth-db writes it)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = [GroundTruthEntry(e["person"], e["category"], e["db_person"], e["name"], tuple(e["frames"]),
                                    video_dir(root, e["person"], e["name"]))
                   for e in data["entries"] if e["person"] == person]
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: malformed ground-truth manifest ({err})") from None
    return [e for e in entries if categories is None or e.category in categories]


def part_regions(new_part: np.ndarray, own_labels: np.ndarray, category: str) -> dict[str, torch.Tensor]:
    """The §8.1 regions of one frame: ``in``, ``out``, ``removed`` (H, W) bool tensors from the
    entry's soft part mask ``new_part`` (H, W) and p's own label map ``own_labels`` (H, W)."""
    radius = round(0.02 * max(new_part.shape))
    new = torch.from_numpy(np.asarray(new_part) >= 0.5)
    old = torch.from_numpy(parts.part_mask(own_labels, category))
    inside = dilate_mask(new | old, radius)
    return {"in": inside, "out": ~inside, "removed": dilate_mask(old & ~new, radius)}


def _image(folder: Path, name: str, size: tuple[int, int]) -> torch.Tensor | None:
    path = folder / IMAGE_DIR / f"{name}.png"
    return torch.from_numpy(resize_rgb(read_rgb(path), size)) if path.is_file() else None


def _psnr(a: torch.Tensor, b: torch.Tensor, region: torch.Tensor) -> float | None:
    value = float(masked_psnr(a, b, region))
    return None if math.isnan(value) else value


def _scores(image: torch.Tensor, truth: torch.Tensor, regions: dict[str, torch.Tensor], lpips: LPIPS | None,
            prefix: str = "") -> dict[str, float | None]:
    return {f"{prefix}psnr_in": _psnr(image, truth, regions["in"]),
            f"{prefix}psnr_out": _psnr(image, truth, regions["out"]),
            f"{prefix}psnr_removed": _psnr(image, truth, regions["removed"]),
            f"{prefix}ssim": float(ssim(image, truth)),
            f"{prefix}lpips": None if lpips is None else float(lpips(image[None], truth[None]))}


def score_entry(entry: GroundTruthEntry, edited: Path, unedited: Path, own: Path, resolution,
                lpips: LPIPS | None = None) -> tuple[list[dict], int]:
    """Scores one entry's frames.

    Args:
        edited: the method's folder of the entry (``image/<frame>.png``; frames may be missing).
        unedited: the method's folder of p's own part (``image/<frame>.png``, every frame).
        own: p's own test video folder (``image/``, ``semantic/``).
        resolution: size the images are compared at, an int (square) or (H, W) (all are resized to it).

    Returns:
        (one row per scored frame, the number of frames the method did not produce).

    Raises:
        DataError: naming a missing ground-truth, unedited or own file.
    """
    size = parse_resolution(resolution)
    rows, missing = [], 0
    for name in entry.frames:
        image = _image(edited, name, size)
        if image is None:
            missing += 1
            continue
        truth, reference = _image(entry.folder, name, size), _image(unedited, name, size)
        frame = reference if unedited == own else _image(own, name, size)
        for tensor, folder in ((truth, entry.folder), (reference, unedited), (frame, own)):
            if tensor is None:
                raise DataError(f"{folder / IMAGE_DIR / (name + '.png')}: frame not found (needed by the part score)")
        new_part = resize_mask(read_mask(entry.folder / PART_MASK_DIR / f"{name}.png"), size)
        own_labels = resize_label_map(read_label_map(own / SEMANTIC_DIR / f"{name}.png"), size)
        regions = part_regions(new_part, own_labels, entry.category)
        row = {"entry": entry.name, "category": entry.category, "db_person": entry.db_person, "frame": name,
               **_scores(image, truth, regions, lpips), **_scores(reference, truth, regions, lpips, "ref_")}
        out_vs_unedited = _psnr(image, reference, regions["out"])
        recon = _psnr(reference, frame, regions["out"])
        row.update(out_vs_unedited=out_vs_unedited, recon_psnr_out=recon,
                   disentanglement=None if recon is None or recon >= _IDENTICAL_DB or row["psnr_out"] is None
                   else row["psnr_out"] - recon)
        rows.append(row)
    return rows, missing


def _summary(rows: list[dict], counts: dict[str, tuple[int, int]]) -> dict:
    keys = METRICS + REFERENCE_METRICS + _DERIVED
    out = {"all": {**mean_metrics(rows, keys), "frames": len(rows)}}
    for category in dict.fromkeys(r["category"] for r in rows):
        chosen = [r for r in rows if r["category"] == category]
        entries = dict.fromkeys(r["entry"] for r in chosen)
        per_entry = {e: mean_metrics([r for r in chosen if r["entry"] == e], ("psnr_in",))["psnr_in"]
                     for e in entries}
        worst = min((e for e in per_entry if per_entry[e] is not None), key=lambda e: per_entry[e], default=None)
        out[category] = {**mean_metrics(chosen, keys), "frames": len(chosen),
                         "dropped": sum(counts[e][1] for e in entries),
                         "worst": None if worst is None else {"entry": worst, "psnr_in": per_entry[worst]}}
    return out


def score_part_control(entries: Sequence[GroundTruthEntry], edited_root: str | Path, unedited: str | Path,
                       own: str | Path, resolution, lpips: LPIPS | None = None,
                       out: str | Path | None = None) -> dict:
    """Scores every entry and writes ``part_scores.json`` (rows, per-category means, worst
    entries, dropped frames) into ``out`` (default ``edited_root``); returns that report.

    ``edited_root`` holds ``<p>/<p>/<c>_<k>/`` folders; an entry without a folder counts all of
    its frames as dropped."""
    edited_root, unedited, own = Path(edited_root), Path(unedited), Path(own)
    rows, counts = [], {}
    for entry in entries:
        folder = video_dir(edited_root, entry.person, entry.name)
        entry_rows, missing = score_entry(entry, folder, unedited, own, resolution, lpips)
        rows += entry_rows
        counts[entry.name] = (len(entry_rows), missing)
    report = {"resolution": list(parse_resolution(resolution)), "edited_root": str(edited_root),
              "unedited": str(unedited),
              "summary": _summary(rows, counts) if rows else {},
              "entries": {name: {"scored": n, "dropped": m} for name, (n, m) in counts.items()}, "rows": rows}
    write_json(Path(out or edited_root) / "part_scores.json", report, indent=1)
    return report


def _error_map(image: torch.Tensor, truth: torch.Tensor, scale: float = 4.0) -> np.ndarray:
    """|image − truth| averaged over channels, ×``scale``, as a white-to-red picture (H, W, 3)."""
    error = (image - truth).abs().mean(-1).mul(scale).clamp(0, 1).numpy()
    return np.stack([np.ones_like(error), 1.0 - error, 1.0 - error], axis=-1)


def part_contact_sheets(entries: Sequence[GroundTruthEntry], edited_root: str | Path, unedited: str | Path,
                        resolution, out_dir: str | Path, source_folder: str = "render_image") -> list[Path]:
    """One sheet per category, ``<out_dir>/contact_<category>.png``: a row per entry (its first
    frame the method produced): unedited | the part's source (``<edited>/<source_folder>/``, the
    DB render, when present) | edited | ground truth | error map (|edited − truth| × 4)."""
    size = parse_resolution(resolution)
    edited_root, unedited, out_dir = Path(edited_root), Path(unedited), Path(out_dir)
    written = []
    for category in dict.fromkeys(e.category for e in entries):
        tiles, n_cols = [], 5
        for entry in (e for e in entries if e.category == category):
            folder = video_dir(edited_root, entry.person, entry.name)
            name = next((n for n in entry.frames if (folder / IMAGE_DIR / f"{n}.png").is_file()), None)
            if name is None:
                continue
            image, truth = _image(folder, name, size), _image(entry.folder, name, size)
            source = folder / source_folder / f"{name}.png"
            row = [_image(unedited, name, size).numpy(),
                   resize_rgb(read_rgb(source), size) if source.is_file() else np.ones((*size, 3), np.float32),
                   image.numpy(), truth.numpy(), _error_map(image, truth)]
            tiles += [put_label(tile, label) for tile, label in
                      zip(row, ("own", entry.db_person, "edited", "truth", "error x4"), strict=True)]
        if tiles:
            path = out_dir / f"contact_{category}.png"
            write_png(path, image_grid(tiles, n_cols))
            written.append(path)
    return written
