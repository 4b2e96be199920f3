"""The written database: layout, fields, landmarks, labels, loader round trip, ground truth,
determinism, skipping of complete work."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from pegasus.data import VideoDataset
from pegasus.data.images import read_label_map, read_mask, read_rgb
from pegasus.data.imavatar import read_flame_params, read_video, subject_dir, video_dir
from pegasus.data.parts import NUM_SEMANTIC_LABELS, label_id, part_mask
from pegasus.geometry.camera import cameras_from_imavatar, pixels_to_normalized, project_points
from pegasus.synthdb.build import GROUND_TRUTH_DIR, build_database, ground_truth_name


def _people(report):
    return {p.name: p for p in report.people}


def test_layout_and_every_field(tiny_db, tiny_settings, head_model):
    cfg, report = tiny_db
    root = report.root
    assert [p.name for p in report.people] == ["target", "db_00", "db_01", "new_person"]
    for person in report.people:
        for video, count in ((tiny_settings.train_video, 5), (tiny_settings.test_video, 4)):
            folder = video_dir(root, person.name, video)
            for sub in ("image", "mask", "semantic"):
                names = sorted(p.name for p in (folder / sub).iterdir())
                assert names == sorted(f"{k}.png" for k in range(1, count + 1))
            raw = json.loads((folder / "flame_params.json").read_text())
            assert raw["intrinsics"][0] < 0 < raw["intrinsics"][1]
            assert raw["intrinsics"][2:] == [0.5, 0.5]
            assert len(raw["shape_params"]) == head_model.n_shape
            assert len(raw["frames"]) == count
            for k, frame in enumerate(raw["frames"]):
                assert frame["file_path"] == f"./image/{k + 1}"
                assert np.asarray(frame["world_mat"]).shape == (3, 4)
                assert np.allclose(np.asarray(frame["world_mat"])[:, :3], np.eye(3))
                assert len(frame["expression"]) == head_model.n_expr and len(frame["pose"]) == 15
                assert np.asarray(frame["flame_keypoints"]).shape == (70, 2)
                bbox = np.asarray(frame["bbox"])
                assert bbox.shape == (4,) and np.all(np.abs(bbox) <= 1) and bbox[0] < bbox[2] and bbox[1] < bbox[3]
            keypoints = json.loads((folder / "keypoint.json").read_text())
            iris = json.loads((folder / "iris.json").read_text())
            assert np.asarray(keypoints["1.png"]).shape == (68, 2) and np.asarray(iris["1.png"]).shape == (2, 2)
        record = json.loads((subject_dir(root, person.name) / "synth_db.json").read_text())
        assert set(record["hashes"]) == {tiny_settings.train_video, tiny_settings.test_video}
    people = json.loads((root / "people.json").read_text())
    assert people["target"] == "target" and people["db"] == ["db_00", "db_01"] and len(people["people"]) == 4
    assert (root / "synth_db.conf").is_file()


def test_stored_parameters_reproduce_the_landmarks(tiny_db, tiny_settings, head_model):
    root = tiny_db[1].root
    for person in ("target", "db_01"):
        video = read_video(video_dir(root, person, tiny_settings.test_video))
        size = video.image_size
        for frame in video.frames:
            flame = frame.flame
            out = head_model(torch.tensor(video.shape_params, dtype=torch.float32)[None],
                             torch.tensor(flame.expression, dtype=torch.float32)[None],
                             torch.tensor(flame.pose, dtype=torch.float32)[None])
            cameras = cameras_from_imavatar(torch.tensor(video.intrinsics), torch.tensor(flame.world_mat)[None], size)
            uv = project_points(cameras, out.landmarks.double())[0][0].numpy()
            assert np.abs(uv[:68] - frame.keypoints).max() < 1.0
            assert np.abs(uv[68:] - frame.iris).max() < 1.0
            normalised = pixels_to_normalized(torch.from_numpy(uv), size).numpy()
            assert np.abs(normalised - flame.flame_keypoints).max() < 2.0 / size[0]
            # the rendered mask covers the landmarks of the visible jaw line and the nose tip
            mask = read_mask(frame.mask_path)
            assert mask[int(uv[30, 1]), int(uv[30, 0])] == 1.0


def test_labels_are_valid_and_consistent_with_the_parts(tiny_db, tiny_settings):
    root, people = tiny_db[1].root, _people(tiny_db[1])
    assert not people["db_01"].has_part("hair") and people["db_01"].has_part("eyeglasses")
    assert people["db_00"].has_part("hat")
    for name, person in people.items():
        seen = set()
        for video in (tiny_settings.train_video, tiny_settings.test_video):
            for frame in read_video(video_dir(root, name, video)).frames:
                labels = read_label_map(frame.semantic_path)
                mask = read_mask(frame.mask_path)
                assert labels.max() < NUM_SEMANTIC_LABELS
                assert np.array_equal(labels > 0, mask >= 0.5)
                assert not np.isin(labels, [label_id("earring"), label_id("necklace")]).any()
                seen |= set(np.unique(labels).tolist())
        for category_name, label in (("hair", "hair"), ("hat", "hat"), ("eyeglasses", "eyeglasses")):
            if person.has_part(category_name) and not (category_name == "hair" and person.has_part("hat")):
                assert label_id(label) in seen, (name, category_name)
            if not person.has_part(category_name):
                assert label_id(label) not in seen, (name, category_name)
        for label in ("skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "u_lip", "l_lip", "neck", "cloth"):
            assert label_id(label) in seen, (name, label)


def test_folders_load_with_the_dataset(tiny_db, tiny_settings, head_model):
    root = tiny_db[1].root
    dataset = VideoDataset.of_subject(root, "db_00", [tiny_settings.train_video, tiny_settings.test_video],
                                      load_semantic=True, n_expr=head_model.n_expr, n_shape=head_model.n_shape)
    assert len(dataset) == 9
    item = dataset[0]
    assert item.rgb.shape == (1, 64, 64, 3) and item.semantic.shape == (1, 64, 64)
    assert item.keypoints_valid and item.iris_valid
    frame = dataset.table[0].video.frames[0]
    assert frame.flame.flame_keypoints.shape == (70, 2)
    image = read_rgb(frame.image_path)
    solid = item.mask[0].numpy() == 1.0
    assert np.allclose(item.rgb[0].numpy()[solid], image[solid])
    focal = item.cameras.K[0, 0, 0].item()
    assert focal == pytest.approx(tiny_settings.focal * 64, rel=1e-6)
    assert item.cameras.t[0, 2].item() == pytest.approx(tiny_settings.camera_distance, abs=0.1)


def test_ground_truth_tree_and_manifest(tiny_db, tiny_settings):
    root, people = tiny_db[1].root, _people(tiny_db[1])
    manifest = json.loads((root / GROUND_TRUTH_DIR / "manifest.json").read_text())
    entries = manifest["entries"]
    expected = {(p, ground_truth_name(c, d)) for p in ("target", "new_person") for d in ("db_00", "db_01")
                for c in tiny_settings.gt_categories if people[d].has_part(c)}
    assert {(e["person"], e["name"]) for e in entries} == expected
    assert all(e["name"] == f"{e['category']}_{e['db_person']}" for e in entries)
    for entry in entries:
        folder = root / entry["path"]
        assert entry["frames"] == ["1", "3"] and entry["video"] == tiny_settings.test_video
        video = read_video(folder)
        source = read_flame_params(root / entry["source_video"] / "flame_params.json")
        stored = read_flame_params(folder / "flame_params.json")
        assert [f.name for f in video.frames] == entry["frames"]
        assert np.array_equal(stored.shape_params, source.shape_params)
        for frame in stored.frames:
            original = next(f for f in source.frames if f.name == frame.name)
            assert np.array_equal(frame.pose, original.pose) and np.array_equal(frame.world_mat, original.world_mat)
        for frame in video.frames:
            labels = read_label_map(frame.semantic_path)
            part = read_mask(folder / "mask_object" / f"{frame.name}.png")
            hard = part_mask(labels, entry["category"])
            assert np.all(part[hard] > 0) and hard.sum() <= (part > 0).sum()
    assert not any((root / GROUND_TRUTH_DIR / "target" / "target" / ground_truth_name("hat", d)).exists()
                   for d in ("db_00", "db_01") if not people[d].has_part("hat"))


def _swap_and_own(root, settings, category_name, donor, name):
    folder = video_dir(root / GROUND_TRUTH_DIR, "target", ground_truth_name(category_name, donor))
    own = video_dir(root, "target", settings.test_video)
    swapped, original = read_rgb(folder / "image" / f"{name}.png"), read_rgb(own / "image" / f"{name}.png")
    own_part = part_mask(read_label_map(own / "semantic" / f"{name}.png"), category_name)
    new_part = read_mask(folder / "mask_object" / f"{name}.png") > 0
    return swapped, original, own_part | new_part


def test_ground_truth_changes_the_part_and_nothing_else(tiny_db, tiny_settings):
    root, people = tiny_db[1].root, _people(tiny_db[1])
    for category_name in ("hair", "eyes", "eyebrows", "hat"):
        donor = next(d for d in ("db_00", "db_01") if people[d].has_part(category_name))
        for name in ("1", "3"):
            swapped, original, region = _swap_and_own(root, tiny_settings, category_name, donor, name)
            assert np.abs(swapped - original)[region].mean() > 0.02, (category_name, name)
            edges = ndimage.binary_dilation(region)  # the own part's anti-aliased rim has other labels
            assert np.array_equal(swapped[~edges], original[~edges]), (category_name, name)


def test_ground_truth_of_shape_parts_changes_mostly_the_part(tiny_db, tiny_settings):
    """Nose and lip components of the head model also move the skin around them a little."""
    root = tiny_db[1].root
    for category_name in ("nose", "mouth"):
        for name in ("1", "3"):
            swapped, original, region = _swap_and_own(root, tiny_settings, category_name, "db_00", name)
            change = np.abs(swapped - original).max(-1)
            near = ndimage.binary_dilation(region, iterations=3)
            assert change[region].mean() > 0.01, (category_name, name)
            assert change[~near].mean() < 0.1 * change[region].mean(), (category_name, name)


def test_ground_truth_loads_with_the_dataset(tiny_db):
    root = tiny_db[1].root
    dataset = VideoDataset.of_subject(root / GROUND_TRUTH_DIR, "target", [ground_truth_name("hair", "db_00")])
    assert len(dataset) == 2 and [dataset[k].frame_name[0] for k in range(2)] == ["1", "3"]
    assert dataset[1].frame_index.item() == 1


def test_novel_views_and_expressions_of_the_target_and_the_new_person(tiny_db, tiny_settings, head_model):
    from pegasus.data.imavatar import VIEWS_FILE
    from pegasus.synthdb.novel import NOVEL_DIR

    root = tiny_db[1].root
    manifest = json.loads((root / GROUND_TRUTH_DIR / "manifest.json").read_text())
    assert {(e["person"], e["set"]) for e in manifest["novel"]} == {
        (p, s) for p in ("target", "new_person") for s in ("views", "expressions")}
    views_dir = video_dir(root / NOVEL_DIR, "target", "views")
    described = json.loads((views_dir / VIEWS_FILE).read_text())["frames"]
    angles = tiny_settings.novel_angles_deg
    assert len(described) == 1 + 4 * len(angles)
    assert [(d["yaw_deg"], d["pitch_deg"]) for d in described[:3]] == [(0, 0), (-angles[0], 0), (angles[0], 0)]
    views = read_video(views_dir)
    # a yaw turn moves the nose tip (landmark 30) sideways, monotonically with the angle
    yaws = [(d["yaw_deg"], k) for k, d in enumerate(described) if d["pitch_deg"] == 0]
    nose = [views.frames[k].keypoints[30, 0] for _, k in sorted(yaws)]
    assert all(np.diff(nose) != 0) and (np.all(np.diff(nose) > 0) or np.all(np.diff(nose) < 0))
    train = read_video(video_dir(root, "target", tiny_settings.train_video), require_images=False)
    expressions = read_video(video_dir(root / NOVEL_DIR, "target", "expressions"), require_images=False)
    trained = np.stack([f.flame.expression for f in train.frames])
    novel = np.stack([f.flame.expression for f in expressions.frames])
    assert len(novel) == tiny_settings.novel_expressions
    assert (np.abs(novel).max(0) > np.abs(trained).max(0) + 1e-6).any()  # outside the training range
    assert VideoDataset.of_subject(root / NOVEL_DIR, "target", ["views", "expressions"])[0].rgb.shape == (1, 64, 64, 3)


def test_cross_driven_ground_truth_is_the_db_person_with_the_targets_motion(tiny_db, tiny_settings, head_model):
    from pegasus.synthdb.build import CROSS_DRIVEN_DIR, cross_driven_name
    from pegasus.synthdb.motion import sample_motion
    from pegasus.synthdb.scene import SceneRenderer

    cfg, report = tiny_db
    root, people = report.root, _people(report)
    manifest = json.loads((root / GROUND_TRUTH_DIR / "manifest.json").read_text())["cross_driven"]
    name = cross_driven_name("target", tiny_settings.test_video)
    assert [(e["person"], e["driver"], e["frames"]) for e in manifest] == [
        ("db_00", "target", ["1", "3"]), ("db_01", "target", ["1", "3"])]
    driver = read_video(video_dir(root, "target", tiny_settings.test_video), require_images=False)
    renderer = SceneRenderer(head_model, tiny_settings)
    for entry in manifest:
        person = entry["person"]
        assert entry["path"] == f"{CROSS_DRIVEN_DIR}/{person}/{person}/{name}"
        driven = read_video(root / entry["path"])
        own = read_video(video_dir(root, person, tiny_settings.train_video), require_images=False)
        np.testing.assert_array_equal(driven.shape_params, own.shape_params)  # the DB person's own shape …
        assert not np.allclose(driven.shape_params, driver.shape_params)
        np.testing.assert_array_equal(driven.intrinsics, driver.intrinsics)
        scene = renderer.scene(people[person])
        light = sample_motion(tiny_settings, person, tiny_settings.train_video, 1, renderer.expr_names,
                              head_model.n_expr).light_direction
        for frame, source in zip(driven.frames, driver.frames[::2]):  # … with the target's motion and camera
            assert frame.name == source.name
            for key in ("world_mat", "expression", "pose"):
                np.testing.assert_array_equal(getattr(frame.flame, key), getattr(source.flame, key))
            # the stored parameters reproduce the image
            cameras = cameras_from_imavatar(torch.tensor(driven.intrinsics).float(),
                                            torch.tensor(frame.flame.world_mat)[None].float(), driven.image_size)
            again = renderer.render(scene, frame.flame.expression[None], frame.flame.pose[None], cameras, light, ())
            assert np.abs(np.asarray(again.images[0]) - read_rgb(frame.image_path)).max() <= 1.5 / 255
        record = json.loads((subject_dir(root / CROSS_DRIVEN_DIR, person) / "synth_db.json").read_text())
        assert set(record["hashes"]) == {name}
    # the loader reads it as a video of the DB person
    assert len(VideoDataset.of_subject(root / CROSS_DRIVEN_DIR, "db_00", [name])) == 2


def test_contact_sheet_and_previews(tiny_db, tiny_settings):
    report = tiny_db[1]
    sheet = read_rgb(report.contact_sheet)
    assert sheet.shape[0] > 2 * 64 and sheet.shape[1] > 6 * 64 and sheet.std() > 0.1
    for person in report.people:
        for video in (tiny_settings.train_video, tiny_settings.test_video):
            movie = report.root / "previews" / f"{person.name}_{video}.mp4"
            assert movie.is_file() and movie.stat().st_size > 1000


def _written_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix in (".png", ".json")}


def test_same_seed_gives_identical_files_and_complete_work_is_skipped(tiny_db, tiny_config_factory, tmp_path):
    first_root = tiny_db[1].root
    cfg = tiny_config_factory(tmp_path / "again")
    report = build_database(cfg)
    first, second = _written_files(first_root), _written_files(report.root)
    assert first.keys() == second.keys() and len(first) > 100
    assert [name for name in first if first[name] != second[name]] == []

    image = video_dir(report.root, "target", "train") / "image" / "1.png"
    stamp = image.stat().st_mtime_ns
    rerun = build_database(cfg)
    assert [s.jobs for s in rerun.stages[:4]] == [0, 0, 0, 0] and image.stat().st_mtime_ns == stamp

    grown = build_database(tiny_config_factory(tmp_path / "again", "synth_db.n_db=3"))
    videos, ground_truth, _, driven = grown.stages[:4]
    assert videos.jobs == 2 and videos.skipped == 8  # only db_02's two videos
    assert ground_truth.jobs == 2  # the target and the new person with db_02
    assert driven.jobs == 1 and driven.skipped == 2  # db_02 driven by the target
    assert image.stat().st_mtime_ns == stamp
    manifest = json.loads((report.root / GROUND_TRUTH_DIR / "manifest.json").read_text())
    assert "db_02" in {e["db_person"] for e in manifest["entries"]}


def _recorded_videos(root: Path, person: str) -> set[str]:
    path = subject_dir(root, person) / "synth_db.json"
    return set(json.loads(path.read_text())["hashes"]) if path.exists() else set()


def test_interrupted_build_leaves_no_half_video_and_resumes(tiny_config_factory, tmp_path, monkeypatch):
    from pegasus.cli.main import main
    from pegasus.synthdb import build

    small = ["synth_db.n_db=1", "synth_db.train_frames=3", "synth_db.test_frames=2", "synth_db.gt_categories=[hair]",
             "synth_db.previews=false"]
    root = tmp_path / "db"
    run_video = build._run_video
    calls = []

    def failing_second_video(job):
        calls.append(job)
        if len(calls) == 2:
            raise KeyboardInterrupt("interrupted")
        return run_video(job)

    monkeypatch.setattr(build, "_run_video", failing_second_video)
    with pytest.raises(KeyboardInterrupt):
        build_database(tiny_config_factory(root, *small))
    first, second = calls
    assert _recorded_videos(root, first.person.name) == {first.video}
    assert not video_dir(root, second.person.name, second.video).exists()
    assert second.video not in _recorded_videos(root, second.person.name)

    monkeypatch.setattr(build, "_run_video", run_video)
    conf = tmp_path / "tiny.conf"
    conf.write_text(tiny_config_factory(root, *small).to_hocon())
    assert main(["synth-db", "--conf", str(conf)]) == 0
    assert (video_dir(root, second.person.name, second.video) / "flame_params.json").is_file()
    assert json.loads((root / GROUND_TRUTH_DIR / "manifest.json").read_text())["entries"]


def test_a_head_model_without_regions_is_refused(tiny_db, tiny_config_factory, standin_path, tmp_path):
    from pegasus.config import ConfigError

    flame_like = tmp_path / "flame_like.npz"
    with np.load(standin_path) as arrays:
        np.savez(flame_like, **{k: arrays[k] for k in arrays.files if k not in ("vertex_region", "region_names")})
    with pytest.raises(ConfigError, match="head_model.path: .*flame_like.npz has no \\['vertex_region'"):
        build_database(tiny_config_factory(tmp_path / "db", f"head_model.path={flame_like}"))
