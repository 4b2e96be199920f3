"""Pictures of the database: preview frames and the contact sheet."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ..data.images import to_uint8
from ..data.parts import colour_labels
from ..utils.media import image_grid, put_label
from .people import Person

__all__ = ["preview_frame", "person_card", "contact_sheet"]

_TEXT_SCALE = 0.4
_LINE_HEIGHT = 15


def preview_frame(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(H, W, 3) image and (H, W) labels → (H, 2W, 3) uint8: the frame beside its labels."""
    return np.concatenate([to_uint8(image), colour_labels(labels)], axis=1)


def _text_panel(lines: Sequence[str], width: int) -> np.ndarray:
    """(len(lines)·line height + 6, width, 3) uint8 white panel with dark text lines."""
    panel = np.full((len(lines) * _LINE_HEIGHT + 6, width, 3), 255, np.uint8)
    for k, line in enumerate(lines):
        cv2.putText(panel, line, (4, (k + 1) * _LINE_HEIGHT), cv2.FONT_HERSHEY_SIMPLEX, _TEXT_SCALE, (20, 20, 20), 1,
                    cv2.LINE_AA)
    return panel


def person_card(person: Person, tiles: Sequence[np.ndarray]) -> np.ndarray:
    """A labelled card: the person's tiles side by side above the list of its parts."""
    row = image_grid([put_label(tiles[0], person.name), *tiles[1:]], n_cols=len(tiles), pad=2)
    lines = [f"{person.name} ({person.role}), {person.identity.skin} skin, {person.identity.shirt} shirt"]
    lines += [f"{name}: {variant.describe()}" for name, variant in person.parts]
    return np.concatenate([row, _text_panel(lines, row.shape[1])], axis=0)


def contact_sheet(cards: Sequence[np.ndarray], n_cols: int) -> np.ndarray:
    """Cards (equal sizes) laid out in a grid."""
    return image_grid(list(cards), n_cols=n_cols, pad=8, background=235)
