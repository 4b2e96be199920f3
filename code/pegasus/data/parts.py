"""The one table of semantic label ids, part groups and latent categories.

Label maps use the 19 CelebAMask-HQ / BiSeNet face-parsing ids (0 background … 18 hat).
PEGASUS groups some of them into parts, and its latent code has one block per category in
the fixed order of :data:`LATENT_CATEGORIES`. Synthesis, the avatar and evaluation all read
this table; nothing else in the project spells out label ids or category names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "SemanticLabel",
    "SEMANTIC_LABELS",
    "NUM_SEMANTIC_LABELS",
    "CLOTH_LABEL_IDS",
    "LatentCategory",
    "LATENT_CATEGORIES",
    "label_id",
    "label_name",
    "category",
    "category_index",
    "category_names",
    "labels_mask",
    "part_mask",
]


@dataclass(frozen=True)
class SemanticLabel:
    """One face-parsing class: its id in label maps and its CelebAMask-HQ name."""

    id: int
    name: str


SEMANTIC_LABELS: tuple[SemanticLabel, ...] = tuple(
    SemanticLabel(i, name)
    for i, name in enumerate(
        (
            "background",
            "skin",
            "l_brow",
            "r_brow",
            "l_eye",
            "r_eye",
            "eyeglasses",
            "l_ear",
            "r_ear",
            "earring",
            "nose",
            "mouth",
            "u_lip",
            "l_lip",
            "neck",
            "necklace",
            "cloth",
            "hair",
            "hat",
        )
    )
)
NUM_SEMANTIC_LABELS = len(SEMANTIC_LABELS)

CLOTH_LABEL_IDS: frozenset[int] = frozenset({15, 16})
"""Necklace and cloth: the labels removed for the "no cloth" evaluation."""


@dataclass(frozen=True)
class LatentCategory:
    """One block of the PEGASUS latent code.

    Attributes:
        name: category name, also the prefix of synthetic video names ``<name>_<db>``.
        label_ids: semantic ids that make up the part; empty for ``identity``, which
            stands for the whole person rather than one part.
        swappable: whether part-swap synthesis produces videos for this category.
    """

    name: str
    label_ids: frozenset[int]
    swappable: bool

    @property
    def is_part(self) -> bool:
        """True when the category owns image regions (every category but identity)."""
        return bool(self.label_ids)


LATENT_CATEGORIES: tuple[LatentCategory, ...] = (
    LatentCategory("identity", frozenset(), swappable=False),
    LatentCategory("ears", frozenset({7, 8}), swappable=False),
    LatentCategory("eyebrows", frozenset({2, 3}), swappable=True),
    LatentCategory("eyes", frozenset({4, 5}), swappable=True),
    LatentCategory("hair", frozenset({17}), swappable=True),
    LatentCategory("hat", frozenset({18}), swappable=True),
    LatentCategory("mouth", frozenset({11, 12, 13}), swappable=True),
    LatentCategory("nose", frozenset({10}), swappable=True),
    LatentCategory("eyeglasses", frozenset({6}), swappable=False),
)
"""Latent categories in the fixed order of the code's blocks."""

_LABEL_IDS_BY_NAME = {label.name: label.id for label in SEMANTIC_LABELS}
_CATEGORY_INDEX_BY_NAME = {c.name: i for i, c in enumerate(LATENT_CATEGORIES)}


def label_id(name: str) -> int:
    """Semantic id of a label name, e.g. ``"nose"`` → 10."""
    try:
        return _LABEL_IDS_BY_NAME[name]
    except KeyError:
        raise KeyError(
            f"unknown semantic label {name!r}; known labels: {sorted(_LABEL_IDS_BY_NAME)}"
        ) from None


def label_name(label: int) -> str:
    """Name of a semantic id, e.g. 10 → ``"nose"``."""
    if not 0 <= label < NUM_SEMANTIC_LABELS:
        raise KeyError(f"unknown semantic label id {label}; ids are 0..{NUM_SEMANTIC_LABELS - 1}")
    return SEMANTIC_LABELS[label].name


def category_index(name: str) -> int:
    """Position of a latent category in the code, e.g. ``"identity"`` → 0."""
    try:
        return _CATEGORY_INDEX_BY_NAME[name]
    except KeyError:
        raise KeyError(
            f"unknown latent category {name!r}; categories in order: {list(category_names())}"
        ) from None


def category(name: str) -> LatentCategory:
    """The :class:`LatentCategory` called ``name``."""
    return LATENT_CATEGORIES[category_index(name)]


def category_names() -> tuple[str, ...]:
    """Names of the latent categories in code order."""
    return tuple(c.name for c in LATENT_CATEGORIES)


def labels_mask(label_map: np.ndarray, label_ids) -> np.ndarray:
    """(H, W) integer label map → (H, W) bool, True where the label is in ``label_ids``."""
    return np.isin(np.asarray(label_map), np.fromiter(label_ids, dtype=np.int64))


def part_mask(label_map: np.ndarray, category_name: str) -> np.ndarray:
    """(H, W) integer label map → (H, W) bool mask of a part category (e.g. ``"mouth"``).

    Raises:
        ValueError: for ``identity``, which has no part labels.
    """
    part = category(category_name)
    if not part.is_part:
        raise ValueError(
            f"latent category {category_name!r} has no part labels; part masks exist for "
            f"{[c.name for c in LATENT_CATEGORIES if c.is_part]}"
        )
    return labels_mask(label_map, part.label_ids)
