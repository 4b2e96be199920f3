"""The one table of semantic label ids, their display colours, the avatar's semantic classes,
part groups and latent categories.

Label maps use the 19 CelebAMask-HQ / BiSeNet face-parsing ids (0 background … 18 hat).
The avatar's semantic head predicts :data:`SEMANTIC_CLASSES`, groups of those ids. PEGASUS
groups ids into parts, and its latent code has one block per category in the fixed order of
:data:`LATENT_CATEGORIES`. Synthesis, the avatar, previews and evaluation all read these
tables; nothing else in the project spells out label ids, colours or category names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "SemanticLabel",
    "SemanticClass",
    "SEMANTIC_CLASSES",
    "LABEL_COLOURS",
    "colour_labels",
    "class_of_label",
    "category_classes",
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
    """One face-parsing class: its id in label maps, its CelebAMask-HQ name and its display
    colour (uint8 RGB; background white)."""

    id: int
    name: str
    colour: tuple[int, int, int]


SEMANTIC_LABELS: tuple[SemanticLabel, ...] = tuple(
    SemanticLabel(i, name, colour)
    for i, (name, colour) in enumerate(
        (
            ("background", (255, 255, 255)),
            ("skin", (230, 180, 150)),
            ("l_brow", (120, 60, 20)),
            ("r_brow", (170, 90, 30)),
            ("l_eye", (40, 110, 220)),
            ("r_eye", (40, 170, 230)),
            ("eyeglasses", (230, 200, 0)),
            ("l_ear", (200, 120, 200)),
            ("r_ear", (150, 70, 160)),
            ("earring", (255, 0, 120)),
            ("nose", (250, 130, 60)),
            ("mouth", (120, 20, 40)),
            ("u_lip", (220, 40, 60)),
            ("l_lip", (160, 20, 90)),
            ("neck", (190, 160, 130)),
            ("necklace", (0, 200, 160)),
            ("cloth", (90, 140, 90)),
            ("hair", (60, 40, 30)),
            ("hat", (30, 60, 160)),
        )
    )
)
NUM_SEMANTIC_LABELS = len(SEMANTIC_LABELS)

LABEL_COLOURS = np.array([label.colour for label in SEMANTIC_LABELS], np.uint8)
"""(NUM_SEMANTIC_LABELS, 3) uint8 display colour of each semantic id."""


def colour_labels(labels: np.ndarray) -> np.ndarray:
    """(H, W) semantic ids → (H, W, 3) uint8 display colours."""
    return LABEL_COLOURS[np.asarray(labels)]


@dataclass(frozen=True)
class SemanticClass:
    """One output of the avatar's semantic head: a group of label ids.

    Attributes:
        name: class name. label_ids: the ids it stands for; the first class is the
            background, which the renderer fills where no point covers a pixel.
    """

    name: str
    label_ids: frozenset[int]

    @property
    def label(self) -> int:
        """The id a rendered label map uses for the class (its smallest)."""
        return min(self.label_ids)


SEMANTIC_CLASSES: tuple[SemanticClass, ...] = (
    SemanticClass("background", frozenset({0})),
    SemanticClass("skin", frozenset({1})),
    SemanticClass("brows", frozenset({2, 3})),
    SemanticClass("eyes", frozenset({4, 5})),
    SemanticClass("eyeglasses", frozenset({6})),
    SemanticClass("ears", frozenset({7, 8, 9})),
    SemanticClass("nose", frozenset({10})),
    SemanticClass("mouth_interior", frozenset({11})),
    SemanticClass("lips", frozenset({12, 13})),
    SemanticClass("neck", frozenset({14})),
    SemanticClass("cloth", frozenset({15, 16})),
    SemanticClass("hair", frozenset({17})),
    SemanticClass("hat", frozenset({18})),
)
"""Classes of the avatar's semantic head, background first; every label id is in one class."""


def class_of_label(classes: tuple[SemanticClass, ...] | None = None) -> np.ndarray:
    """(NUM_SEMANTIC_LABELS,) int64: the position in ``classes`` (default
    :data:`SEMANTIC_CLASSES`) of the class of each label id."""
    classes = SEMANTIC_CLASSES if classes is None else classes
    table = np.full(NUM_SEMANTIC_LABELS, -1, np.int64)
    for k, cls in enumerate(classes):
        table[list(cls.label_ids)] = k
    if (table < 0).any():
        raise ValueError(f"semantic classes leave label ids {np.flatnonzero(table < 0).tolist()} unassigned")
    return table

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
    """Position of a latent category in the code, e.g. ``"identity"`` → 0 (read from
    :data:`LATENT_CATEGORIES` at call time: a category added to the table is found)."""
    try:
        return category_names().index(name)
    except ValueError:
        raise KeyError(
            f"unknown latent category {name!r}; categories in order: {list(category_names())}"
        ) from None


def category(name: str) -> LatentCategory:
    """The :class:`LatentCategory` called ``name``."""
    return LATENT_CATEGORIES[category_index(name)]


def category_names() -> tuple[str, ...]:
    """Names of the latent categories in code order."""
    return tuple(c.name for c in LATENT_CATEGORIES)


def category_classes(category_name: str, classes: tuple[SemanticClass, ...] | None = None) -> tuple[int, ...]:
    """Positions in ``classes`` (default :data:`SEMANTIC_CLASSES`) of the classes that make
    up a part category, e.g. mouth → mouth_interior and lips; empty for identity."""
    classes = SEMANTIC_CLASSES if classes is None else classes
    labels = category(category_name).label_ids
    return tuple(k for k, cls in enumerate(classes) if cls.label_ids & labels)


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
