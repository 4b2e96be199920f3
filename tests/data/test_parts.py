"""The part-label table: ids, groups, category order and masks."""

from __future__ import annotations

import numpy as np
import pytest

from pegasus.data import parts


def test_semantic_ids_are_contiguous_and_names_unique():
    ids = [label.id for label in parts.SEMANTIC_LABELS]
    names = [label.name for label in parts.SEMANTIC_LABELS]
    assert ids == list(range(19)) == list(range(parts.NUM_SEMANTIC_LABELS))
    assert len(set(names)) == len(names)
    for label in parts.SEMANTIC_LABELS:
        assert parts.label_id(label.name) == label.id
        assert parts.label_name(label.id) == label.name


def test_label_table_matches_celebamask_hq_ids():
    # The data contract (METHOD.md §2) fixes these ids.
    assert parts.label_id("background") == 0
    assert parts.label_id("skin") == 1
    assert parts.label_id("eyeglasses") == 6
    assert parts.label_id("nose") == 10
    assert parts.label_id("hair") == 17
    assert parts.label_id("hat") == 18
    assert {parts.label_name(i) for i in parts.CLOTH_LABEL_IDS} == {"necklace", "cloth"}


def test_latent_categories_order_and_groups():
    assert parts.category_names() == (
        "identity",
        "ears",
        "eyebrows",
        "eyes",
        "hair",
        "hat",
        "mouth",
        "nose",
        "eyeglasses",
    )
    groups = {c.name: set(c.label_ids) for c in parts.LATENT_CATEGORIES}
    assert groups == {
        "identity": set(),
        "ears": {7, 8},
        "eyebrows": {2, 3},
        "eyes": {4, 5},
        "hair": {17},
        "hat": {18},
        "mouth": {11, 12, 13},
        "nose": {10},
        "eyeglasses": {6},
    }
    swappable = {c.name for c in parts.LATENT_CATEGORIES if c.swappable}
    assert swappable == {"eyebrows", "eyes", "hair", "hat", "mouth", "nose"}


def test_part_groups_are_disjoint_and_valid():
    seen: set[int] = set()
    for category in parts.LATENT_CATEGORIES:
        assert not seen & category.label_ids, category.name
        assert all(0 < i < parts.NUM_SEMANTIC_LABELS for i in category.label_ids)
        seen |= category.label_ids
    assert not seen & parts.CLOTH_LABEL_IDS


def test_category_index_follows_table():
    for position, category in enumerate(parts.LATENT_CATEGORIES):
        assert parts.category_index(category.name) == position
        assert parts.category(category.name) is category


@pytest.mark.parametrize(
    "lookup, bad",
    [
        (parts.category_index, "beard"),
        (parts.category, "beard"),
        (parts.label_id, "beard"),
        (parts.label_name, 19),
    ],
)
def test_unknown_names_raise_with_the_known_ones(lookup, bad):
    with pytest.raises(KeyError) as info:
        lookup(bad)
    assert str(bad) in str(info.value)


def test_part_mask_selects_the_group_labels():
    labels = np.arange(19, dtype=np.uint8).reshape(1, 19).repeat(2, axis=0)
    for category in parts.LATENT_CATEGORIES:
        if not category.is_part:
            continue
        mask = parts.part_mask(labels, category.name)
        assert mask.dtype == bool and mask.shape == labels.shape
        assert set(np.unique(labels[mask]).tolist()) == set(category.label_ids)
    mouth = parts.part_mask(labels, "mouth")
    assert mouth[0].nonzero()[0].tolist() == [11, 12, 13]


def test_part_mask_refuses_identity():
    with pytest.raises(ValueError, match="identity"):
        parts.part_mask(np.zeros((2, 2), np.uint8), "identity")


def test_labels_mask_for_cloth():
    labels = np.array([[14, 15], [16, 17]])
    np.testing.assert_array_equal(
        parts.labels_mask(labels, parts.CLOTH_LABEL_IDS), [[False, True], [True, False]]
    )
