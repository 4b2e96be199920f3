"""The DB avatar bank: jobs and shards, training skipped when finished, cross-driven renders
(the DB person's shape with the driver's motion and camera), resumable renders, scores."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pegasus.bank.cross_drive import (RENDER_RECORD, CrossDriveJob, cross_driven_batches, driver_params,
                                      render_cross_driven, render_folder)
from pegasus.bank.jobs import bank_jobs, job_config, parse_shard, shard_of
from pegasus.bank.run import build_bank
from pegasus.config import ConfigError, load_config
from pegasus.data.imavatar import read_flame_params, read_video, video_dir, with_identity
from pegasus.geometry.camera import cameras_from_imavatar
from pegasus.render.mesh import rasterize_mesh
from pegasus.synthdb.build import CROSS_DRIVEN_DIR

CONFS = Path(__file__).resolve().parents[2] / "confs"
ONE_PERSON = ["bank.people=[{subject = db_00, video = train, role = db}]", "model.semantic=true", "bank.render_batch=2"]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8, 11])
def test_shards_split_the_jobs_disjointly_and_completely(count):
    jobs = bank_jobs(load_config(CONFS / "embedded.conf"))
    assert [job.name for job in jobs] == [f"db_{k:02d}_train" for k in range(8)]
    shards = [shard_of(jobs, i, count) for i in range(count)]
    names = [job.name for shard in shards for job in shard]
    assert sorted(names) == sorted(job.name for job in jobs) and len(names) == len(set(names))


def test_shard_and_mode_errors():
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)
    with pytest.raises(ConfigError, match="shape_cancel"):
        bank_jobs(load_config(CONFS / "embedded.conf", ["bank.mode=shared"]))
    shared = load_config(CONFS / "embedded.conf", ["bank.mode=shared", "model.shape_cancel=true",
                                                   "model.latent.code_dim=8"])
    jobs = bank_jobs(shared)
    assert len(jobs) == 1 and len(jobs[0].people) == 8
    with pytest.raises(ConfigError, match="listed twice"):
        load_config(CONFS / "embedded.conf", ["bank.people=[{subject = a, video = v}, {subject = a, video = v}]"])
    two_videos = "bank.people=[{subject = a, video = v}, {subject = a, video = w}]"
    with pytest.raises(ConfigError, match="several videos"):
        load_config(CONFS / "embedded.conf", [two_videos])
    load_config(CONFS / "embedded.conf", [two_videos, "bank.mode=shared"])  # one model: fine


def test_job_config_trains_on_the_job_and_tests_on_its_held_out_video(tmp_path):
    cfg = load_config(CONFS / "embedded.conf", [f"bank.root={tmp_path}"])
    job = bank_jobs(cfg)[2]
    job_cfg = job_config(cfg, job)
    assert [(e.subject, e.video, e.role) for e in job_cfg.dataset.train] == [("db_02", "train", "db")]
    assert [(e.subject, e.video) for e in job_cfg.dataset.test] == [("db_02", "test")]
    assert Path(job_cfg.experiment.output_root) == tmp_path / "avatars" and job_cfg.experiment.name == "db_02_train"
    assert job_cfg.model == cfg.model and job_cfg.train == cfg.train


@pytest.fixture(scope="module")
def bank_config(tiny_db_overrides, tiny_sizes, tmp_path_factory):
    """config(*extra): the tiny database's bank of db_00 (per-video), tiny avatars, its own root."""
    root = tmp_path_factory.mktemp("bank")

    def make(*extra: str):
        return load_config(CONFS / "embedded.conf", [*tiny_db_overrides, *tiny_sizes["model"], *ONE_PERSON,
                                                     f"bank.root={root / 'bank'}",
                                                     f"experiment.output_root={root / 'runs'}", *extra])
    return make


@pytest.fixture(scope="module")
def built_bank(bank_config):
    cfg = bank_config()
    return cfg, build_bank(cfg)


def test_the_bank_trains_renders_and_scores(built_bank):
    cfg, report = built_bank
    assert report.trained == ["db_00_train"] and len(report.rendered) == 2
    run = Path(cfg.bank.root) / "avatars" / "db_00_train"
    assert (run / "checkpoints" / f"epoch_{cfg.train.epochs:04d}.pt").is_file() and (run / "bank_job.json").is_file()
    for driver in cfg.bank.drivers:
        folder = render_folder(cfg.bank.root, "db_00", driver)
        assert folder == Path(cfg.bank.root) / "renders" / "db_00" / "db_00" / f"target_{driver.video}"
        video = read_video(folder)  # an IMavatar video folder, with label maps
        assert video.has_masks and video.has_semantic
        frames = read_video(video_dir(cfg.synth_db.root, "target", driver.video), require_images=False).frames
        assert [f.name for f in video.frames] == [f.name for f in frames]
        for sub in ("normal", "holes"):
            assert len(list((folder / sub).glob("*.png"))) == len(frames)
        assert json.loads((folder / RENDER_RECORD).read_text())["driver"] == f"target/{driver.video}"
    scored = render_folder(cfg.bank.root, "db_00", cfg.bank.drivers[1])  # the test video has ground truth
    metrics = json.loads((scored / "metrics.json").read_text())
    assert metrics["count"] == 1 and 5 < metrics["mean"]["psnr"] < 60
    assert {"ssim", "holes", "psnr_hair", "psnr_eyes"} <= set(metrics["mean"])
    assert not (render_folder(cfg.bank.root, "db_00", cfg.bank.drivers[0]) / "metrics.json").exists()
    preview = Path(cfg.bank.root) / "preview_target_test.png"
    assert preview.is_file() and preview.stat().st_size > 1000
    summary = json.loads(report.summary.read_text())
    assert summary["jobs"][0]["training"]["train_wall_s"] > 0
    assert [r["complete"] for r in summary["renders"]] == [True, True]
    assert summary["renders"][1]["scores"]["psnr"] == pytest.approx(metrics["mean"]["psnr"])


def test_a_finished_bank_is_skipped(built_bank):
    cfg, _ = built_bank
    image = render_folder(cfg.bank.root, "db_00", cfg.bank.drivers[0]) / "image" / "1.png"
    stamp = image.stat().st_mtime_ns
    again = build_bank(cfg)
    assert again.trained == [] and again.rendered == [] and image.stat().st_mtime_ns == stamp


def test_cross_driving_uses_the_db_shape_with_the_drivers_motion_and_camera(built_bank):
    cfg, _ = built_bank
    driver = cfg.bank.drivers[1]
    folder = render_folder(cfg.bank.root, "db_00", driver)
    stored = read_flame_params(folder / "flame_params.json")
    own = read_video(video_dir(cfg.synth_db.root, "db_00", "train"), require_images=False)
    target = read_video(video_dir(cfg.synth_db.root, "target", driver.video), require_images=False)
    np.testing.assert_array_equal(stored.shape_params, own.shape_params)
    for frame, source in zip(stored.frames, target.frames, strict=True):
        for key in ("world_mat", "expression", "pose"):
            np.testing.assert_array_equal(getattr(frame, key), getattr(source.flame, key))
    # the synthetic database's cross-driven ground truth carries the same parameters
    truth = read_flame_params(video_dir(Path(cfg.synth_db.root) / CROSS_DRIVEN_DIR, "db_00", "target_test")
                              / "flame_params.json")
    np.testing.assert_array_equal(truth.shape_params, stored.shape_params)
    np.testing.assert_array_equal(truth.frames[0].world_mat, stored.frames[0].world_mat)
    # the batches pose the head model with the DB person's shape and the driver's motion and camera
    model, own_set = _trained(cfg)
    job = CrossDriveJob(own_set[0], stored, folder, {})
    hm = model.head_model
    for batch in cross_driven_batches(job, own_set.image_size, batch_size=2):
        index = [[f.name for f in target.frames].index(name) for name in batch.frame_name]
        flame = [target.frames[k].flame for k in index]
        cameras = cameras_from_imavatar(torch.tensor(target.intrinsics).float(),
                                        torch.tensor(np.stack([f.world_mat for f in flame])).float(),
                                        own_set.image_size)
        expression = torch.tensor(np.stack([f.expression for f in flame])).float()
        pose = torch.tensor(np.stack([f.pose for f in flame])).float()

        def silhouette(shape):
            shape = torch.tensor(shape).float()[None].expand(len(flame), -1)
            return rasterize_mesh(hm(shape, expression, pose).vertices, hm.faces, cameras).covered.float()

        coverage = model.head_model_coverage(batch)
        torch.testing.assert_close(coverage, silhouette(own.shape_params))
        assert float((coverage - silhouette(target.shape_params)).abs().sum()) > 0


def _trained(cfg):
    """The bank job's trained model and the DB person's own dataset, indexed by the run."""
    from pegasus.data.dataset import VideoDataset
    from pegasus.data.videos import VideoTable
    from pegasus.train.build import trained_avatar
    from pegasus.train.checkpoint import load_checkpoint
    from pegasus.train.run import finished_checkpoint

    job_cfg = job_config(cfg, bank_jobs(cfg)[0])
    model = trained_avatar(job_cfg, load_checkpoint(finished_checkpoint(job_cfg)), torch.device("cpu"))
    table = VideoTable(cfg.bank.people, cfg.dataset.root)
    return model, VideoDataset(table, model.index.video_indices(table), resolution=cfg.dataset.resolution,
                               n_expr=model.head_model.n_expr, n_shape=model.head_model.n_shape)


def test_an_interrupted_render_continues_with_the_missing_frames(built_bank, tmp_path):
    cfg, _ = built_bank
    model, own = _trained(cfg)
    params = with_identity(driver_params(cfg.bank.drivers[0], cfg.dataset.root), own.table[0].video.shape_params)
    folder = tmp_path / "renders" / "db_00" / "db_00" / "target_train"
    job = CrossDriveJob(own[0], params, folder, {"what": "test"})
    calls = []
    original = model.forward

    def failing(batch, *args, **kwargs):
        calls.append(len(batch))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(batch, *args, **kwargs)

    model.forward = failing
    with pytest.raises(KeyboardInterrupt):
        render_cross_driven(model, torch.device("cpu"), job, own.image_size, batch_size=2)
    assert not folder.exists()  # nothing under the final name …
    partial = folder.parent / ".target_train.partial"
    assert len(list((partial / "image").glob("*.png"))) == 2  # … the first chunk is kept
    model.forward = original
    assert render_cross_driven(model, torch.device("cpu"), job, own.image_size, batch_size=2) == len(params.frames) - 2
    assert read_video(folder).frames and not partial.exists()
    assert render_cross_driven(model, torch.device("cpu"), job, own.image_size, batch_size=2) == 0


def test_the_shared_bank_is_one_model_in_the_generic_space(bank_config):
    cfg = bank_config("bank.mode=shared", "model.shape_cancel=true", "model.latent.code_dim=4",
                      "model.latent.start_epoch=0", "bank.drivers=[{subject = target, video = test}]")
    cfg = cfg.with_overrides([f"bank.root={Path(cfg.bank.root).parent / 'shared_bank'}"])
    report = build_bank(cfg)
    assert report.trained == ["shared"]
    folder = render_folder(cfg.bank.root, "db_00", cfg.bank.drivers[0])
    assert read_video(folder).has_semantic and (folder / "metrics.json").is_file()
    model, own = _trained(cfg)
    assert model.latent_codes is not None and model.settings.shape_cancel
    assert own[0].latent_rows is not None  # the person's own codes drive its renders
