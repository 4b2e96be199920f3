"""Render sets: files written, videos decodable, metric files, driving and yaw batches."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import imageio
import numpy as np
import pytest
import torch

from pegasus.config import ConfigError, load_config
from pegasus.data import imavatar
from pegasus.data.dataset import VideoDataset
from pegasus.data.imavatar import FlameFrame, FlameParams
from pegasus.data.images import read_rgb
from pegasus.eval import render_sets as R
from pegasus.headmodel.lbs import POSE_SLOTS
from pegasus.render.display import normal_to_display

SIZE = 32
SUBJECT = "subj"
N_FRAMES = 5
REPO = Path(__file__).resolve().parents[2]


def _params(n: int, seed: int, n_expr: int = 50) -> FlameParams:
    rng = np.random.default_rng(seed)
    frames = tuple(
        FlameFrame(
            name=name,
            world_mat=np.hstack([np.eye(3), [[0.02 * k], [-0.1], [-4.0]]]),
            expression=rng.normal(size=n_expr),
            pose=rng.normal(0, 0.1, 15),
        )
        for k, name in enumerate(imavatar.numbered_frame_names(n))
    )
    return FlameParams(np.array([-2.0, 2.0, 0.5, 0.5]), rng.normal(size=100), frames)


@pytest.fixture
def dataset(tmp_path) -> VideoDataset:
    """One 5-frame 32×32 test video with binary masks (so GT is exactly 8-bit) and cloth labels."""
    rng = np.random.default_rng(0)
    masks = np.zeros((N_FRAMES, SIZE, SIZE), np.uint8)
    masks[:, 4:30, 6:26] = 255
    semantics = np.where(masks > 0, 1, 0).astype(np.uint8)
    semantics[:, 24:30, 6:26] = 16  # cloth
    imavatar.write_video(
        imavatar.video_dir(tmp_path / "data", SUBJECT, "test"), _params(N_FRAMES, 0),
        images=rng.integers(0, 256, (N_FRAMES, SIZE, SIZE, 3), dtype=np.uint8), masks=masks,
        semantics=semantics,
    )
    return VideoDataset.of_subject(tmp_path / "data", SUBJECT, ["test"], load_semantic=True)


def _fake_render(perturb=None):
    """render_fn returning the batch's GT (or ``perturb(batch, rgb)``), or a pose-coded image."""

    def render_fn(batch):
        b = len(batch)
        h, w = batch.cameras.image_size
        if batch.rgb is not None:
            rgb = batch.rgb.clone()
            mask = batch.mask
        else:  # driving / yaw: grey level from the neck yaw, so frames differ; the left quarter
            level = (0.5 + batch.pose[:, 4]).clamp(0, 1)  # of a whole-image head model left uncovered
            rgb = level[:, None, None, None].expand(b, h, w, 3).clone()
            mask = torch.ones(b, h, w)
            mask[..., : w // 4] = 0
        if perturb is not None:
            rgb = perturb(batch, rgb)
        normal = torch.zeros(b, h, w, 3)
        normal[..., 2] = -1
        return {"rgb": rgb, "normal": normal_to_display(normal, mask), "albedo": rgb * 0.8,
                "shading": torch.full((b, h, w, 3), 0.7), "mask": mask, "head_mask": torch.ones(b, h, w)}

    return render_fn


def _count_frames(path: Path) -> int:
    reader = imageio.v2.get_reader(path, "ffmpeg")
    try:
        return sum(1 for _ in reader)
    finally:
        reader.close()


def test_render_dataset_writes_frames_videos_grid_and_metrics(dataset, tmp_path):
    out = tmp_path / "out"
    rows = R.render_dataset(_fake_render(), dataset, out, R.CHANNELS, batch_size=2,
                            scoring=R.Scoring(erode_dilate=False), grid_rows=3, progress=False)
    assert [r["frame"] for r in rows] == [f"{SUBJECT}/test/{k}" for k in range(1, N_FRAMES + 1)]
    for c in R.CHANNELS:
        assert sorted(p.name for p in (out / c / SUBJECT / "test").iterdir()) == sorted(f"{k}.png" for k in range(1, 6))
        assert _count_frames(out / f"{c}.mp4") == N_FRAMES
    assert _count_frames(out / "comparison.mp4") == N_FRAMES
    np.testing.assert_array_equal(read_rgb(out / "rgb" / SUBJECT / "test" / "3.png"), dataset[2].rgb[0].numpy())
    grid = read_rgb(out / "grid.png")  # 3 rows × (GT + 5 channels), 32 px tiles, 4 px padding
    assert grid.shape == (3 * 36 + 4, 6 * 36 + 4, 3)
    assert all(r["psnr"] == pytest.approx(160.0) and r["mae"] == 0 and r["lpips"] is None for r in rows)
    assert all(r["holes"] == 0 for r in rows)  # the render's mask is the ground truth's
    assert not list(out.rglob(".*"))  # no temporary files left


def test_metric_files_agree_and_perturbation_lowers_scores(dataset, tmp_path):
    def noisy(batch, rgb):
        return (rgb + 0.05 * torch.randn_like(rgb)).clamp(0, 1)

    out = tmp_path / "out"
    rows = R.render_dataset(_fake_render(noisy), dataset, out, ("rgb", "mask"), progress=False,
                            scoring=R.Scoring(erode_dilate=False), settings={"note": "x"})
    report = json.loads((out / "metrics.json").read_text())
    assert report["count"] == N_FRAMES and report["frames"] == rows
    assert report["settings"]["note"] == "x" and report["settings"]["scoring"]["erode_dilate"] is False
    assert report["mean"]["psnr"] == pytest.approx(np.mean([r["psnr"] for r in rows]))
    assert 20 < report["mean"]["psnr"] < 40 and report["mean"]["ssim"] < 1 and report["mean"]["lpips"] is None
    with open(out / "metrics.csv", newline="") as file:
        table = list(csv.DictReader(file))
    assert [t["frame"] for t in table] == [r["frame"] for r in rows]
    for t, r in zip(table, rows):
        for m in ("mae", "psnr", "ssim"):
            assert float(t[m]) == r[m]  # repr round-trips exactly
        assert t["lpips"] == ""
    assert not (out / "normal.mp4").exists()


def test_no_cloth_and_erode_dilate_options(dataset, tmp_path):
    def wrong_cloth_and_holes(batch, rgb):
        rgb = rgb.clone()
        rgb[:, 24:30, 6:26] = 0.0  # wrong colour on the cloth only
        return rgb

    rows = R.render_dataset(_fake_render(wrong_cloth_and_holes), dataset, tmp_path / "a", ("rgb",),
                            scoring=R.Scoring(erode_dilate=False, no_cloth=True), progress=False)
    for r in rows:
        assert r["psnr_no_cloth"] == pytest.approx(160.0) and r["mae_no_cloth"] == 0
        assert r["psnr"] < 30
    header = (tmp_path / "a" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header == ["index", "frame", "mae", "psnr", "ssim", "lpips",
                      "mae_no_cloth", "psnr_no_cloth", "ssim_no_cloth", "lpips_no_cloth", "holes"]

    def holes(batch, rgb):
        rgb = torch.full_like(rgb, 1.0)
        rgb[:, 4:30, 6:26] = 0.3  # a flat head
        rgb[:, 10:24:4, 10:22:4] = 1.0  # isolated splat holes
        return rgb

    def scored(erode):
        return R.render_dataset(_fake_render(holes), dataset, tmp_path / f"e{erode}", ("rgb",), progress=False,
                                scoring=R.Scoring(erode_dilate=erode))

    psnr_raw = np.mean([r["psnr"] for r in scored(False)])
    psnr_open = np.mean([r["psnr"] for r in scored(True)])
    assert psnr_open > psnr_raw


def test_no_cloth_needs_semantic(tmp_path, dataset):
    plain = VideoDataset.of_subject(tmp_path / "data", SUBJECT, ["test"])
    with pytest.raises(ValueError, match="load_semantic=True"):
        R.render_dataset(_fake_render(), plain, tmp_path / "x", ("rgb",), progress=False,
                         scoring=R.Scoring(no_cloth=True))


def test_render_fn_errors_and_atomic_outputs(dataset, tmp_path):
    with pytest.raises(KeyError, match="albedo"):
        R.render_dataset(lambda b: {"rgb": b.rgb}, dataset, tmp_path / "m", ("rgb", "albedo"), progress=False)
    with pytest.raises(ValueError, match="'rgb' has shape"):
        R.render_dataset(lambda b: {"rgb": b.rgb[:, :, :, :2]}, dataset, tmp_path / "s", ("rgb",), progress=False)
    calls = []

    def failing(batch):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return {"rgb": batch.rgb}

    with pytest.raises(RuntimeError, match="boom"):
        R.render_dataset(failing, dataset, tmp_path / "f", ("rgb",), progress=False)
    assert not (tmp_path / "f" / "rgb.mp4").exists() and not (tmp_path / "f" / "metrics.json").exists()
    assert not list((tmp_path / "f").glob(".*"))


def test_driving_batches_carry_driving_motion_and_target_camera(dataset, tmp_path):
    driving = _params(7, seed=5, n_expr=30)
    imavatar.write_flame_params(tmp_path / "driving" / "flame_params.json", driving)
    animation = R.driving_batches(dataset, tmp_path / "driving", stride=2, camera_frame=1, batch_size=3)
    assert len(animation) == 4 and animation.frame_names == ("1", "3", "5", "7")
    target = dataset[1]
    batches = list(animation)
    assert [len(b) for b in batches] == [3, 1]
    expression = torch.cat([b.expression for b in batches])
    pose = torch.cat([b.pose for b in batches])
    assert expression.shape == (4, 50) and not expression[:, 30:].any()
    for k, frame in enumerate(driving.frames[::2]):
        np.testing.assert_allclose(expression[k, :30].numpy(), frame.expression, rtol=1e-6)
        np.testing.assert_allclose(pose[k].numpy(), frame.pose, rtol=1e-6)
    for b in batches:
        for field in ("K", "R", "t"):
            torch.testing.assert_close(getattr(b.cameras, field), getattr(target.cameras, field).expand_as(
                getattr(b.cameras, field)))
        torch.testing.assert_close(b.shape, target.shape.expand_as(b.shape))
        assert (b.refine_row == -1).all() and (b.subject_id == target.subject_id).all()
    # a flame_params.json path works too, and rendering writes files named by driving stems
    animation = R.driving_batches(dataset, tmp_path / "driving" / "flame_params.json")
    R.render_batches(_fake_render(), animation, tmp_path / "drv", ("rgb", "normal"), n_frames=len(animation),
                     progress=False)
    assert sorted(p.stem for p in (tmp_path / "drv" / "rgb").iterdir()) == sorted(f.name for f in driving.frames)
    assert _count_frames(tmp_path / "drv" / "rgb.mp4") == 7
    assert not (tmp_path / "drv" / "comparison.mp4").exists()
    report = json.loads((tmp_path / "drv" / "metrics.json").read_text())  # no ground truth: the render's own holes
    assert report["count"] == 7 and list(report["mean"]) == ["interior_holes", "head_holes"]


def test_yaw_turn_goes_around_the_mean_pose_and_expression(dataset):
    from scipy.spatial.transform import Rotation

    from pegasus.headmodel.lbs import HEAD_EULER, mean_pose

    expressions, poses = dataset.motion()
    animation = R.yaw_turn_batches(dataset, max_yaw_deg=40.0, n_frames=9, batch_size=4)
    pose = torch.cat([b.pose for b in animation]).double()
    euler = Rotation.from_rotvec(pose[:, POSE_SLOTS["neck"]].numpy()).as_euler(HEAD_EULER)
    mean = Rotation.from_rotvec(mean_pose(poses.numpy())[POSE_SLOTS["neck"]]).as_euler(HEAD_EULER)
    np.testing.assert_allclose(euler[:, 0] - mean[0], np.radians(np.linspace(-40, 40, 9)), atol=1e-6)
    np.testing.assert_allclose(euler[:, 1:], np.repeat(mean[None, 1:], 9, 0), atol=1e-6)  # pitch, roll kept
    np.testing.assert_allclose(pose[:, POSE_SLOTS["jaw"]], poses[:, POSE_SLOTS["jaw"]].double().mean(0).expand(9, 3),
                               atol=1e-6)
    assert not pose[:, POSE_SLOTS["global"]].any()
    torch.testing.assert_close(torch.cat([b.expression for b in animation]), expressions.mean(0).expand(9, -1))
    assert animation.frame_names[0] == "0001"
    posed = R.yaw_turn_batches(dataset, n_frames=3, expression_frame=2)
    source = dataset[2]
    batch = next(iter(posed))
    torch.testing.assert_close(batch.expression[0], source.expression[0])
    torch.testing.assert_close(batch.pose[0, POSE_SLOTS["jaw"]], source.pose[0, POSE_SLOTS["jaw"]])
    assert not batch.pose[:, POSE_SLOTS["global"]].any()


def test_run_test_sets_from_the_config(dataset, tmp_path):
    imavatar.write_flame_params(tmp_path / "drv.json", _params(3, seed=9))
    cfg = load_config(REPO / "confs" / "base.conf", [
        "test.frame_stride=2", "test.yaw_frames=4", "test.grid_rows=2", "test.channels=[rgb, mask]",
        f"test.driving_flame_params={tmp_path / 'drv.json'}",
    ])
    settings = cfg.test
    results = R.run_test_sets(_fake_render(), settings, tmp_path / "eval", test_dataset=dataset, progress=False)
    assert set(results) == {"test", "driving", "yaw"}
    assert [r["frame"] for r in results["test"]] == [f"{SUBJECT}/test/{k}" for k in (1, 3, 5)]
    report = json.loads((tmp_path / "eval" / "test" / "metrics.json").read_text())
    assert report["settings"]["test"]["frame_stride"] == 2
    assert ("psnr_no_cloth" in results["test"][0]) == settings.no_cloth
    assert _count_frames(tmp_path / "eval" / "yaw" / "rgb.mp4") == 4
    assert _count_frames(tmp_path / "eval" / "driving" / "mask.mp4") == 2  # stride 2 of 3 frames
    assert (tmp_path / "eval" / "yaw" / "grid.png").is_file()
    assert [r["yaw_deg"] for r in results["yaw"]] == pytest.approx([-30, -10, 10, 30])  # with their own holes
    assert list(json.loads((tmp_path / "eval" / "yaw" / "metrics.json").read_text())["mean"]) == [
        "interior_holes", "head_holes"]  # yaw_deg is described, not averaged
    w = dataset[0].cameras.image_size[1]
    for row in results["yaw"] + results["driving"]:  # the uncovered quarter is open to the background:
        assert row["interior_holes"] == 0.0  # no hole of the render itself, but a quarter of the head model
        assert row["head_holes"] == pytest.approx((w // 4) / w)
    with pytest.raises(ConfigError, match=r"test.sets=\[test, video\]: item 1 \('video'\): must be one of"):
        load_config(REPO / "confs" / "base.conf", ["test.sets=[test, video]"])


def test_write_mp4_pads_odd_sizes_and_refuses_empty_videos(tmp_path):
    from pegasus.utils.media import Mp4Writer, write_mp4

    frames = [np.full((15, 21, 3), k / 4) for k in range(4)]
    path = write_mp4(tmp_path / "odd.mp4", frames, fps=10)
    reader = imageio.v2.get_reader(path, "ffmpeg")
    decoded = [f for f in reader]
    reader.close()
    assert len(decoded) == 4 and decoded[0].shape == (16, 22, 3)
    with pytest.raises(ValueError, match="no frames"):
        write_mp4(tmp_path / "empty.mp4", [], fps=10)
    with pytest.raises(ValueError, match="frame of size"):
        with Mp4Writer(tmp_path / "mixed.mp4", fps=10) as video:
            video.write(frames[0])
            video.write(np.zeros((8, 8, 3)))
    assert not (tmp_path / "empty.mp4").exists() and not (tmp_path / "mixed.mp4").exists()
    assert not list(tmp_path.glob(".*"))
