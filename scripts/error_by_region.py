"""Where a test set's error lies: its share of the squared error per ground-truth label and in the
band around the silhouette.

Usage (from the repository root)::

    python scripts/error_by_region.py RENDERS GT_VIDEO [--erode-dilate]

RENDERS is a set's rgb folder of ``pegasus test`` (e.g. ``<run>/test/latest/test/rgb/<subject>/<video>``),
GT_VIDEO the video folder it renders (``<root>/<subject>/<subject>/<video>``, with ``semantic/``).
Frames are matched by name; the ground truth is resized to the renders' size and composited
on white as the scorer does.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from pegasus.data.images import (composite_on_white, read_label_map, read_mask, read_rgb, resize_label_map,
                                 resize_mask, resize_rgb)
from pegasus.data.parts import SEMANTIC_LABELS

BAND = 2  # pixels on each side of the silhouette


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("renders", type=Path)
    parser.add_argument("gt_video", type=Path)
    parser.add_argument("--erode-dilate", action="store_true", help="open the renders first, as the scorer does")
    args = parser.parse_args()
    by_label: dict[int, float] = {}
    pixels: dict[int, int] = {}
    total = band = 0.0
    frames = sorted(args.renders.glob("*.png"))
    if not frames:
        raise SystemExit(f"{args.renders}: no PNG renders")
    kernel = np.ones((2 * BAND + 1, 2 * BAND + 1), np.uint8)
    for path in frames:
        pred = read_rgb(path)
        size = pred.shape[:2]
        if args.erode_dilate:
            pred = cv2.dilate(cv2.erode(pred, np.ones((3, 3))), np.ones((3, 3)))
        mask = resize_mask(read_mask(args.gt_video / "mask" / path.name), size)
        truth = composite_on_white(resize_rgb(read_rgb(args.gt_video / "image" / path.name), size), mask)
        labels = resize_label_map(read_label_map(args.gt_video / "semantic" / path.name), size)
        error = ((pred - truth) ** 2).sum(-1)
        inside = (mask > 0.5).astype(np.uint8)
        edge = (cv2.dilate(inside, kernel) - cv2.erode(inside, kernel)) > 0
        total += error.sum()
        band += error[edge].sum()
        for label in np.unique(labels):
            by_label[label] = by_label.get(label, 0.0) + error[labels == label].sum()
            pixels[label] = pixels.get(label, 0) + int((labels == label).sum())
    print(f"{len(frames)} frames; ±{BAND} px silhouette band: {100 * band / total:.1f} % of the squared error")
    print("| label | share of the error | share of the pixels | MSE |")
    print("|---|---|---|---|")
    for label in sorted(by_label, key=lambda k: -by_label[k]):
        print(f"| {SEMANTIC_LABELS[label].name} | {100 * by_label[label] / total:.1f} % | "
              f"{100 * pixels[label] / sum(pixels.values()):.1f} % | {by_label[label] / pixels[label] / 3:.5f} |")


if __name__ == "__main__":
    main()
