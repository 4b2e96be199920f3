"""Synthesis jobs end to end on the tiny synthetic database, its cross-driven ground truth
standing in for the bank's renders (the same folder layout)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pegasus.config import load_config
from pegasus.data.images import DataError, read_label_map, read_mask
from pegasus.data.imavatar import video_dir
from pegasus.data.settings import VideoEntry
from pegasus.data.videos import VideoTable
from pegasus.eval.part_control import read_ground_truth, score_part_control
from pegasus.synth.run import BLACKLIST_FILE, run_synthesis, video_root

CONFS = Path(__file__).resolve().parents[2] / "confs"


@pytest.fixture
def synth_config(tiny_db_overrides, tmp_path):
    db = next(o.split("=", 1)[1] for o in tiny_db_overrides if o.startswith("synth_db.root="))

    def make(*extra: str, renders: str | None = None):
        return load_config(CONFS / "embedded.conf", [
            *tiny_db_overrides, "dataset.resolution=32", f"synth.root={tmp_path / 'synth'}",
            f"synth.renders={renders or db + '/cross_driven'}", "synth.videos=[test]", "synth.db_people=[db_00]",
            *extra])
    return make


def test_synthesis_writes_loadable_videos_with_their_dropped_frames(synth_config):
    cfg = synth_config()
    records = {r["name"]: r for r in run_synthesis(cfg)}
    hair = records["hair_db_00"]  # db_00 wears long hair; its render has frame 1 of the 3 test frames
    assert hair["kept"] == 1 and hair["reasons"] == {"no_render": 2}
    folder = video_dir(video_root(cfg.synth, "test"), "target", "hair_db_00")
    reasons = json.loads((folder / BLACKLIST_FILE).read_text())
    assert sorted(reasons) == ["2", "3"] and all("render has no such frame" in r for r in reasons.values())
    labels, mask = read_label_map(folder / "semantic" / "1.png"), read_mask(folder / "mask" / "1.png")
    assert ((labels > 0) == (mask >= 0.5)).all()
    assert read_mask(folder / "mask_object" / "1.png").max() > 0.5
    # every video of the manifest loads as training data: the source and each synthetic video
    manifest = video_root(cfg.synth, "test") / "manifest.json"
    table = VideoTable([VideoEntry(manifest=str(manifest))], cfg.dataset.root)
    roles = {r.key.split("/")[1]: r.role for r in table.records}
    assert roles["test"] == "target" and roles["hair_db_00"] == "synthetic"
    made = {name for name, r in records.items() if r["kept"]}
    assert {k for k, role in roles.items() if role == "synthetic"} == made
    empty = {e["name"]: e["reasons"] for e in json.loads(manifest.read_text())["empty"]}
    assert set(empty) == set(records) - made
    # db_00 wears no glasses: its frame is dropped for that reason, and the job made no video
    assert empty["eyeglasses_db_00"] == {"no_new_part": 1, "no_render": 2}
    assert not video_dir(video_root(cfg.synth, "test"), "target", "eyeglasses_db_00").exists()


def test_complete_jobs_are_skipped_and_changed_settings_rerun(synth_config):
    run_synthesis(synth_config())
    again = run_synthesis(synth_config())
    assert all(r["skipped"] for r in again)
    changed = run_synthesis(synth_config("synth.feather=0.0"), categories=["hair"])
    assert not any(r["skipped"] for r in changed)


def test_a_corrupt_render_is_named_and_nothing_is_half_written(synth_config, tmp_path):
    cfg = synth_config()
    renders = tmp_path / "renders"
    shutil.copytree(cfg.synth.renders, renders)
    broken = video_dir(renders, "db_00", "target_test") / "image" / "1.png"
    broken.write_bytes(b"not a png")
    bad = synth_config(renders=str(renders))
    with pytest.raises(DataError, match="1.png"):
        run_synthesis(bad, categories=["hair"], steps=("parts",))
    assert not video_dir(video_root(bad.synth, "test"), "target", "hair_db_00").exists()
    shutil.copy(video_dir(cfg.synth.renders, "db_00", "target_test") / "image" / "1.png", broken)
    shutil.rmtree(broken.parents[1] / "semantic")
    with pytest.raises(DataError, match="semantic"):
        run_synthesis(bad, categories=["hair"], steps=("parts",))


def test_the_part_score_of_the_synthesis_and_of_the_ground_truth_itself(synth_config):
    cfg = synth_config()
    run_synthesis(cfg, categories=["hair"])
    entries = read_ground_truth(cfg.synth.ground_truth, "target")
    own = video_dir(cfg.dataset.root, "target", "test")
    report = score_part_control(entries, video_root(cfg.synth, "test"), own, own, 32)
    hair = report["summary"]["hair"]
    assert hair["frames"] == 1 and hair["psnr_in"] is not None and hair["disentanglement"] is None
    assert report["entries"]["hair_db_00"] == {"scored": 1, "dropped": 0}
    # the ground truth scored as the edit: identical inside and outside the part
    perfect = score_part_control(entries, cfg.synth.ground_truth, own, own, 32, out=video_root(cfg.synth, "gt"))
    assert perfect["summary"]["hair"]["psnr_in"] > 100 and perfect["summary"]["hair"]["psnr_out"] > 100
    assert perfect["summary"]["hair"]["ssim"] == pytest.approx(1.0)
    assert np.isfinite(perfect["summary"]["hair"]["ref_psnr_in"])
