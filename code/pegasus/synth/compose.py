"""Image operations of the part-swap synthesis on one frame (METHOD §6), pure numpy / OpenCV.

Images are (H, W, 3) float32 RGB in [0, 1] on white, masks (H, W) float32 in [0, 1] or bool,
label maps (H, W) int64 semantic ids (:mod:`pegasus.data.parts`). Three ways to put a DB
person's part on the target, one per :data:`METHODS` entry:

- ``face_part``: inpaint the target's own part away (inside its grown mask), then paste the
  render's part with a feathered alpha, in the render's colours, scaled to the target's skin
  tone, or re-shaded: the target's skin shading on the DB person's head-model normals
  (:data:`COLOURS`);
- ``bald``: replace the target's part by its bald head (a shaded head-model render,
  :mod:`pegasus.synth.head`) and, off the head, by the inpainted background, then paste the
  render's part (hair);
- ``overlay``: paste the render's part over the target as it is (hat, eyeglasses).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["METHODS", "FrameLayers", "Composite", "grow", "nearest_fill", "consistent_labels", "inpaint",
           "feathered_alpha", "skin_colour",
           "skin_gain", "unpremultiply", "compose_frame", "COLOURS"]

METHODS: tuple[str, ...] = ("face_part", "bald", "overlay")
COLOURS: tuple[str, ...] = ("render", "skin_gain", "reshade")
"""Colours of a pasted part: the render's; the render's × target skin / render skin (median
colours near the part); or ``reshade``: :attr:`FrameLayers.reshaded_rgb`, the target's fitted
skin shading evaluated on the DB person's head-model normals (a skin-coloured part keeps its
shape but takes the target's skin and light, which the render, lit as the DB person was, lacks)."""


@dataclass(frozen=True)
class FrameLayers:
    """The inputs of one composite.

    Attributes:
        target_rgb, target_mask, target_labels: the target's frame, soft mask and label map.
        render_rgb, render_mask, render_labels: the DB person's cross-driven render of that frame.
        old_part, new_part: (H, W) bool, the category's pixels in the target and in the render.
        bald_rgb, bald_cover: for ``bald``: the target's shaded bald head (H, W, 3) and the
            head model's coverage (H, W) float; None otherwise.
        reshaded_rgb: for the ``reshade`` colour: (H, W, 3) the part re-shaded; None otherwise.
    """

    target_rgb: np.ndarray
    target_mask: np.ndarray
    target_labels: np.ndarray
    render_rgb: np.ndarray
    render_mask: np.ndarray
    render_labels: np.ndarray
    old_part: np.ndarray
    new_part: np.ndarray
    bald_rgb: np.ndarray | None = None
    bald_cover: np.ndarray | None = None
    reshaded_rgb: np.ndarray | None = None


@dataclass(frozen=True)
class Composite:
    """One synthesized frame: image (H, W, 3), mask (H, W) float, labels (H, W) int64, the new
    part's soft mask ``part`` (H, W) float, and ``removed`` (H, W) bool, the pixels that were
    rebuilt (inpainted or balded) before the paste."""

    image: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    part: np.ndarray
    removed: np.ndarray


def grow(mask: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) bool mask grown by ``radius`` px with a disc → bool."""
    mask = np.asarray(mask, bool)
    if radius <= 0:
        return mask.copy()
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), disc).astype(bool)


def nearest_fill(image: np.ndarray, source: np.ndarray) -> np.ndarray:
    """``image`` (H, W) or (H, W, C) with every pixel outside ``source`` (H, W) bool replaced by
    the value of its nearest ``source`` pixel (unchanged when ``source`` is empty)."""
    source = np.asarray(source, bool)
    if not source.any() or source.all():
        return image.copy()
    _, nearest = cv2.distanceTransformWithLabels((~source).astype(np.uint8), cv2.DIST_L2, 5,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    position = np.zeros(int(nearest.max()) + 1, np.int64)
    position[nearest[source]] = np.flatnonzero(source)
    flat = image.reshape(source.size, -1)
    return flat[position[nearest]].reshape(image.shape)


def inpaint(rgb: np.ndarray, region: np.ndarray, radius: int, source: np.ndarray | None = None) -> np.ndarray:
    """Fills ``region`` (H, W) bool of ``rgb`` from its surroundings (OpenCV's Telea method,
    ``radius`` px neighbourhood), drawing only on the pixels of ``source`` (H, W) bool when
    given (e.g. skin, so hair next to an eyebrow does not bleed in: other pixels first take
    their nearest source pixel's colour); pixels outside the region are returned unchanged."""
    region = np.asarray(region, bool)
    if not region.any():
        return rgb.copy()
    base = rgb if source is None else nearest_fill(rgb, np.asarray(source, bool) & ~region)
    filled = cv2.inpaint(np.round(base * 255.0).astype(np.uint8), region.astype(np.uint8), max(radius, 1),
                         cv2.INPAINT_TELEA).astype(np.float32) / 255.0
    return np.where(region[..., None], filled, rgb).astype(np.float32)


def feathered_alpha(part: np.ndarray, coverage: np.ndarray, sigma: float) -> np.ndarray:
    """Soft alpha of a pasted part: the (H, W) bool part blurred by a Gaussian of ``sigma`` px
    (0: hard), times the render's coverage ``coverage`` (H, W) → (H, W) float32 in [0, 1]."""
    alpha = np.asarray(part, np.float32)
    if sigma > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)
    return np.clip(alpha * np.asarray(coverage, np.float32), 0.0, 1.0)


def skin_colour(rgb: np.ndarray, labels: np.ndarray, near: np.ndarray, skin_labels: np.ndarray) -> np.ndarray | None:
    """(3,) median colour of the skin pixels (``labels`` in ``skin_labels``) inside ``near``
    (H, W) bool; None when there are fewer than 8 such pixels."""
    pixels = rgb[np.isin(labels, skin_labels) & near]
    return np.median(pixels, axis=0) if len(pixels) >= 8 else None


def skin_gain(layers: FrameLayers, colour: np.ndarray, ring: np.ndarray, skin_labels: np.ndarray) -> np.ndarray:
    """``colour`` (H, W, 3), the render's, scaled per channel by target skin / render skin (median colours in
    ``ring``): a skin-coloured part (the nose) takes the target's skin tone and keeps the
    render's shading. Unchanged when either image shows too little skin there."""
    target = skin_colour(layers.target_rgb, layers.target_labels, ring, skin_labels)
    render = skin_colour(layers.render_rgb, layers.render_labels, ring, skin_labels)
    if target is None or render is None:
        return colour
    gain = target / np.maximum(render, 1e-3)
    return np.clip(colour * gain, 0.0, 1.0).astype(np.float32)


def unpremultiply(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The colour of a render composited on white with coverage ``alpha`` (H, W): (rgb − (1 − α)) / α,
    white where α = 0."""
    alpha = np.asarray(alpha, np.float32)[..., None]
    colour = (rgb - (1.0 - alpha)) / np.maximum(alpha, 1e-3)
    return np.where(alpha > 1e-3, np.clip(colour, 0.0, 1.0), 1.0).astype(np.float32)


def _paste(base: np.ndarray, layer: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return (base * (1.0 - alpha[..., None]) + layer * alpha[..., None]).astype(np.float32)


def compose_frame(
    layers: FrameLayers,
    method: str,
    *,
    grow_px: int,
    inpaint_px: int,
    feather_px: float,
    colour: str = "render",
    own_outline: bool = False,
    fill_label: int,
    skin_labels: np.ndarray,
) -> Composite:
    """The target of ``layers`` wearing the render's part.

    Args:
        method: one of :data:`METHODS`.
        grow_px: the target's part is grown by this many px before it is removed
            (``face_part``, ``bald``), so no rim of it is left.
        inpaint_px: neighbourhood of the inpainting, px.
        feather_px: Gaussian sigma of the pasted part's alpha, px.
        colour: one of :data:`COLOURS`.
        own_outline: ``face_part`` keeps the target's outline of the part and only fills it with
            the render's colours (eyes: the DB person's eyeballs behind the target's lids);
            render pixels missing inside the outline are inpainted from the render's part.
        fill_label: label id of rebuilt pixels (skin).
        skin_labels: ids counted as skin when colours are matched and shading is fitted.
    """
    if method not in METHODS:
        raise ValueError(f"unknown synthesis method {method!r}; methods: {list(METHODS)}")
    if colour not in COLOURS or (colour == "reshade" and layers.reshaded_rgb is None):
        raise ValueError(f"colour {colour!r}: expected one of {list(COLOURS)} (reshade needs reshaded_rgb)")
    image, mask, labels = layers.target_rgb.copy(), layers.target_mask.astype(np.float32), layers.target_labels.copy()
    removed = np.zeros(labels.shape, bool)
    paste_rgb = unpremultiply(layers.render_rgb, layers.render_mask)
    if method == "face_part" and own_outline:
        outline = layers.old_part & (mask >= 0.5)
        paste_rgb = inpaint(paste_rgb, outline & ~layers.new_part, inpaint_px, source=layers.new_part)
        alpha = feathered_alpha(outline, mask, feather_px) * outline
        return Composite(_paste(image, paste_rgb, alpha), mask, consistent_labels(labels, mask), alpha, removed)
    if method == "face_part":
        skin = np.isin(labels, skin_labels)
        removed = grow(layers.old_part, grow_px) & (layers.old_part | skin)
        image = inpaint(image, removed, inpaint_px, source=skin & ~removed)
        labels[removed & layers.old_part] = fill_label
    elif method == "bald":
        if layers.bald_rgb is None or layers.bald_cover is None:
            raise ValueError("compose_frame: the bald method needs bald_rgb and bald_cover")
        rim = np.isin(labels, skin_labels) | (labels == 0)  # the part's anti-aliased edge on skin or background
        removed = grow(layers.old_part, grow_px) & (layers.old_part | rim)
        head = removed & (layers.bald_cover > 0.5)
        cover = np.where(removed, layers.bald_cover, 1.0).astype(np.float32)
        # behind the old part: the frame's background (white in the synthetic data, a room in a
        # real clip), inpainted from the background pixels, under the scalp's soft edge
        background = inpaint(image, removed, inpaint_px, source=(labels == 0) & ~removed)
        scalp = _paste(background, layers.bald_rgb, cover)
        image = np.where(removed[..., None], scalp, image).astype(np.float32)
        mask = np.where(removed, cover, mask).astype(np.float32)
        labels[removed] = 0
        labels[head] = fill_label
    if colour == "skin_gain":
        ring = grow(layers.new_part | layers.old_part, 3 * max(grow_px, 1))
        paste_rgb = skin_gain(layers, paste_rgb, ring, skin_labels)
    elif colour == "reshade":
        paste_rgb = layers.reshaded_rgb
    alpha = feathered_alpha(layers.new_part, layers.render_mask, feather_px)
    image = _paste(image, paste_rgb, alpha)
    mask = np.maximum(mask, alpha)
    new = (alpha >= 0.5) & layers.new_part
    labels[new] = layers.render_labels[new]
    return Composite(image, mask, consistent_labels(labels, mask), alpha, removed)


def consistent_labels(labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Labels that agree with the mask: 0 where mask < 0.5, and a foreground pixel without a
    label (a part's soft edge, or a resized input) takes its nearest labelled pixel's id."""
    labels = np.where(mask < 0.5, 0, labels)
    unlabelled = (mask >= 0.5) & (labels == 0)
    if unlabelled.any() and (labels > 0).any():
        labels = np.where(unlabelled, nearest_fill(labels, labels > 0), labels)
    return labels
