"""The part-control score (METHOD §8.1) on hand-made frames."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pegasus.data import parts
from pegasus.data.images import DataError, write_label_map, write_mask, write_rgb
from pegasus.eval.part_control import GroundTruthEntry, part_regions, read_ground_truth, score_entry

SIZE = 50  # a growth of round(0.02 · 50) = 1 px
HAIR = parts.label_id("hair")


def test_regions_grow_the_union_and_the_removed_part():
    new = np.zeros((SIZE, SIZE), np.float32)
    new[10:20, 10:20] = 1.0
    own = np.zeros((SIZE, SIZE), np.int64)
    own[15:30, 10:20] = HAIR
    regions = part_regions(new, own, "hair")
    inside = np.zeros((SIZE, SIZE), bool)
    inside[9:31, 9:21] = True
    np.testing.assert_array_equal(regions["in"].numpy(), inside)
    np.testing.assert_array_equal(regions["out"].numpy(), ~inside)
    removed = np.zeros((SIZE, SIZE), bool)
    removed[19:31, 9:21] = True  # own rows 20..29 outside the new part, grown by 1
    np.testing.assert_array_equal(regions["removed"].numpy(), removed)


def _folder(root, name, image, part=None, labels=None):
    folder = root / name
    write_rgb(folder / "image" / "1.png", image)
    if part is not None:
        write_mask(folder / "mask_object" / "1.png", part)
    if labels is not None:
        write_label_map(folder / "semantic" / "1.png", labels)
    return folder


def test_scores_inside_outside_and_the_unedited_reference(tmp_path):
    q = 1.0 / 255.0  # values on the PNG grid, so the stored images are exact
    own_image = np.full((SIZE, SIZE, 3), 128 * q, np.float32)
    labels = np.ones((SIZE, SIZE), np.int64)
    labels[10:20, 10:20] = HAIR
    truth = own_image.copy()
    truth[10:20, 10:20] = 64 * q
    part = np.zeros((SIZE, SIZE), np.float32)
    part[10:20, 10:20] = 1.0
    edited = truth.copy()
    edited[10:20, 10:20] = 90 * q  # 26 levels off inside the part
    edited[40, 40] = 154 * q  # one pixel 26 levels off outside
    entry = GroundTruthEntry("p", "hair", "k", "hair_k", ("1",), _folder(tmp_path, "truth", truth, part))
    own = _folder(tmp_path, "own", own_image, labels=labels)
    rows, missing = score_entry(entry, _folder(tmp_path, "edited", edited), own, own, SIZE)
    assert missing == 0 and len(rows) == 1
    row = rows[0]
    inside = 12 * 12  # the part grown by 1 px
    d = (26 * q) ** 2
    assert row["psnr_in"] == pytest.approx(-10 * math.log10(d * 100 / inside), abs=1e-3)
    assert row["psnr_out"] == pytest.approx(-10 * math.log10(d / (SIZE * SIZE - inside)), abs=1e-3)
    assert row["psnr_removed"] is None  # the new part covers the old one
    assert row["ref_psnr_in"] == pytest.approx(-10 * math.log10((64 * q) ** 2 * 100 / inside), abs=1e-3)
    assert row["disentanglement"] is None  # the unedited image is the own frame itself
    # a frame the method did not produce is counted, not scored
    rows, missing = score_entry(entry, tmp_path / "nothing", own, own, SIZE)
    assert rows == [] and missing == 1
    # a missing ground-truth frame is named
    (entry.folder / "image" / "1.png").unlink()
    with pytest.raises(DataError, match="1.png"):
        score_entry(entry, _folder(tmp_path, "edited2", edited), own, own, SIZE)


def test_the_ground_truth_manifest_is_read_per_person(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"entries": [
        {"person": "p", "category": "hair", "db_person": "k", "name": "hair_k", "frames": ["1"]},
        {"person": "q", "category": "hair", "db_person": "k", "name": "hair_k", "frames": ["1"]},
        {"person": "p", "category": "nose", "db_person": "k", "name": "nose_k", "frames": ["1", "5"]}]}))
    assert [e.name for e in read_ground_truth(tmp_path, "p")] == ["hair_k", "nose_k"]
    assert [e.name for e in read_ground_truth(tmp_path, "p", ["nose"])] == ["nose_k"]
    assert read_ground_truth(tmp_path, "p")[0].folder == tmp_path / "p" / "p" / "hair_k"
    (tmp_path / "manifest.json").write_text('{"entries": [{"person": "p"}]}')
    with pytest.raises(DataError, match="malformed"):
        read_ground_truth(tmp_path, "p")
