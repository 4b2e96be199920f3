"""Scores of cross-driven renders against the synthetic database's cross-driven ground truth.

The protocol of ``pegasus test`` (METHOD §8: render eroded and dilated 3×3, images on white),
over the whole image and inside each part region: the ground truth's pixels of the category
grown by round(0.02 · image size) px, as the part-control score of METHOD §8.1 grows its
regions. ``holes``: the share of the ground-truth silhouette the render leaves uncovered.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from ..data import parts
from ..data.dataset import VideoDataset
from ..data.images import read_mask, read_rgb
from ..data.imavatar import IMAGE_DIR, MASK_DIR
from ..eval.metrics import dilate_mask, erode_dilate, frame_metrics, hole_fraction, masked_psnr, mean_metrics
from ..eval.render_sets import write_metrics

__all__ = ["part_categories", "part_columns", "score_cross_driven"]


def part_categories() -> tuple[str, ...]:
    """The latent categories with part labels (hair, hat, eyebrows, …), in code order (read from
    the category table at call time)."""
    return tuple(c.name for c in parts.LATENT_CATEGORIES if c.is_part)


def part_columns() -> tuple[str, ...]:
    """``psnr_<category>`` of every part category."""
    return tuple(f"psnr_{name}" for name in part_categories())


def score_cross_driven(render: Path, truth: Path, person: str, erode: bool = True) -> dict:
    """Scores the frames of a render folder that the ground-truth folder has; writes
    ``metrics.json`` / ``metrics.csv`` into the render folder and returns its means.

    Args:
        render: a cross-driven render folder (:mod:`pegasus.bank.cross_drive`).
        truth: the ground-truth video folder ``<root>/<person>/<person>/<name>``.
        person: the subject folder name of both.
        erode: erode and dilate the render 3×3 first (PointAvatar's protocol, ``test.erode_dilate``).
    """
    render, truth = Path(render), Path(truth)
    first = sorted((render / IMAGE_DIR).glob("*.png"))
    if not first:
        raise FileNotFoundError(f"{render / IMAGE_DIR}: no rendered frames to score")
    size = read_mask(first[0]).shape
    dataset = VideoDataset.of_subject(truth.parents[2], person, [truth.name], load_semantic=True, resolution=size)
    radius = round(0.02 * size[0])
    rows = []
    for index in range(len(dataset)):
        item = dataset[index]
        name = item.frame_name[0]
        if not (render / IMAGE_DIR / f"{name}.png").is_file():
            continue  # a frame the render's stride skipped
        pred = torch.from_numpy(read_rgb(render / IMAGE_DIR / f"{name}.png"))[None]
        coverage = torch.from_numpy(read_mask(render / MASK_DIR / f"{name}.png"))[None]
        pred = erode_dilate(pred) if erode else pred
        scores = frame_metrics(pred, item.rgb)
        row = {"index": len(rows), "frame": name, **{k: float(v[0]) for k, v in scores.items() if v is not None}}
        labels = item.semantic[0].numpy()
        for category, column in zip(part_categories(), part_columns()):
            region = dilate_mask(torch.from_numpy(parts.part_mask(labels, category)), radius)
            value = float(masked_psnr(pred[0], item.rgb[0], region))
            row[column] = value if math.isfinite(value) else None  # the part is not in this frame
        row["holes"] = float(hole_fraction(coverage, item.mask)[0])
        rows.append(row)
    if not rows:
        raise FileNotFoundError(f"{render}: none of the frames of {truth} was rendered (check bank.driver_stride)")
    write_metrics(render, rows, {"ground_truth": str(truth), "erode_dilate": erode, "part_dilation_px": radius})
    return mean_metrics(rows, [k for k in rows[0] if k not in ("index", "frame")])
