"""Video tables: entries expanded (every video, manifests), numbered, and people's parts found."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pegasus.data.images import DataError
from pegasus.data.parts import LATENT_CATEGORIES, label_id
from pegasus.data.settings import VideoEntry
from pegasus.data.videos import VideoTable, entries_from_manifest


def _labels(*names: str, frames: int = 3) -> np.ndarray:
    """(frames, 32, 32) label maps: skin everywhere, one 8-pixel row band per named label."""
    maps = np.full((frames, 32, 32), label_id("skin"), np.uint8)
    for k, name in enumerate(names):
        maps[:, 8 * k:8 * k + 8] = label_id(name)
    return maps


@pytest.fixture
def people(tmp_path, write_test_video):
    """anna: two videos (hair, brows); ben: one video (hat); a synthetic video of anna with ben's hat;
    cara: one video without label maps."""
    write_test_video(tmp_path, "anna", "v1", 3, labels=_labels("hair", "l_brow"))
    write_test_video(tmp_path, "anna", "v2", 3, seed=1, labels=_labels("hair", "l_brow"))
    write_test_video(tmp_path, "ben", "v1", 3, seed=2, labels=_labels("hat"))
    write_test_video(tmp_path, "anna", "hat_ben", 3, seed=3, labels=_labels("hair", "hat"),
                     part_masks=np.zeros((3, 32, 32), np.float32))
    write_test_video(tmp_path, "cara", "v1", 3, seed=4)
    return tmp_path


def test_entries_expand_and_are_numbered_in_order(people):
    table = VideoTable([VideoEntry(subject="anna", video="*"), VideoEntry(subject="ben", video="v1", role="db")],
                       people)
    assert [r.key for r in table] == ["anna/hat_ben", "anna/v1", "anna/v2", "ben/v1"]
    assert [r.id for r in table] == [0, 1, 2, 3]
    assert table.subjects == ("anna", "ben") and table.frame_count == 12
    ranged = VideoTable([VideoEntry(subject="anna", video="v1", frames=(1, 3))], people)
    assert ranged[0].key == "anna/v1[1:3]" and len(ranged[0].video.frames) == 2


def test_a_person_s_parts_come_from_their_own_label_maps(people):
    table = VideoTable([VideoEntry(subject="anna", video="v1"),
                        VideoEntry(subject="anna", video="hat_ben", role="synthetic", category="hat",
                                   db_person="ben"),
                        VideoEntry(subject="ben", video="v1", role="db")], people)
    assert table.person_parts("anna") == {"identity", "hair", "eyebrows"}  # the synthetic hat is not anna's
    assert table.person_parts("ben") == {"identity", "hat"}
    declared = VideoTable([VideoEntry(subject="ben", video="v1", parts=("hair",))], people)
    assert declared.person_parts("ben") == {"identity", "hair"}
    unlabelled = VideoTable([VideoEntry(subject="cara", video="v1")], people)
    assert unlabelled.person_parts("cara") == {c.name for c in LATENT_CATEGORIES}  # no label maps: every one


def test_synthetic_videos_need_their_part_masks(people):
    with pytest.raises(DataError, match=r"anna/v1/mask_object: a synthetic video needs the mask"):
        VideoTable([VideoEntry(subject="anna", video="v1", role="synthetic", category="hat", db_person="ben")],
                   people)


def test_manifests_of_both_layouts(people, tmp_path):
    manifest = people / "videos.json"
    manifest.write_text(json.dumps({"videos": [
        {"subject": "anna", "video": "hat_ben", "role": "synthetic", "category": "hat", "db_person": "ben"},
        {"subject": "ben", "video": "v1", "role": "db"}]}))
    table = VideoTable([VideoEntry(manifest=str(manifest), stride=2)], "/nowhere")
    assert [(r.key, r.role, r.category, r.db_person) for r in table] == [
        ("anna/hat_ben", "synthetic", "hat", "ben"), ("ben/v1", "db", None, None)]
    assert [len(r.video.frames) for r in table] == [2, 2]  # the manifest entry's stride applies
    ground_truth = tmp_path / "db" / "ground_truth"
    ground_truth.mkdir(parents=True)
    (ground_truth / "manifest.json").write_text(json.dumps({"entries": [
        {"person": "target", "name": "hair_db_00", "category": "hair", "db_person": "db_00",
         "path": "ground_truth/target/target/hair_db_00"}]}))
    entry, = entries_from_manifest(ground_truth / "manifest.json")
    assert (entry.subject, entry.video, entry.role, entry.category, entry.db_person) == (
        "target", "hair_db_00", "synthetic", "hair", "db_00")
    assert entry.root == str(ground_truth)
    (people / "bad.json").write_text("[]")
    with pytest.raises(DataError, match="bad.json: expected"):
        entries_from_manifest(people / "bad.json")
