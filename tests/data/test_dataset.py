"""The torch dataset: item contents, cameras, resizing, batching, selection and errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from pegasus.data import imavatar
from pegasus.data.dataset import ImavatarDataset, collate_frames
from pegasus.data.images import DataError
from pegasus.data.imavatar import FlameFrame, FlameParams
from pegasus.geometry.camera import PinholeCameras, project_points

SIZE = 32
SUBJECT = "subj"


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _write_video(root, video: str, n_frames: int, seed: int, *, with_extras: bool) -> dict:
    """Writes a video with a non-trivial camera; returns what was written."""
    rng = np.random.default_rng(seed)
    frames = tuple(
        FlameFrame(
            name=name,
            world_mat=np.hstack([_rotation(0.1 * k), [[0.05 * k], [-0.1], [-4.0]]]),
            expression=rng.normal(size=50),
            pose=rng.normal(0, 0.1, 15),
            flame_keypoints=rng.uniform(-1, 1, (70, 2)),
        )
        for k, name in enumerate(imavatar.numbered_frame_names(n_frames))
    )
    params = FlameParams(np.array([-1.8, 1.7, 0.45, 0.55]), rng.normal(size=100), frames)
    content = {
        "images": rng.integers(0, 256, (n_frames, SIZE, SIZE, 3), dtype=np.uint8),
        "masks": rng.integers(0, 256, (n_frames, SIZE, SIZE), dtype=np.uint8),
    }
    if with_extras:
        content["semantics"] = rng.integers(0, 19, (n_frames, SIZE, SIZE), dtype=np.uint8)
        content["keypoints"] = [rng.uniform(0, SIZE, (68, 2)) for _ in range(n_frames)]
    imavatar.write_video(imavatar.video_dir(root, SUBJECT, video), params, **content)
    return {"params": params, **content}


@pytest.fixture
def subject_root(tmp_path):
    """Two videos: 'train_a' (4 frames, semantic + keypoints) and 'train_b' (3 frames, neither)."""
    written = {
        "train_a": _write_video(tmp_path, "train_a", 4, seed=0, with_extras=True),
        "train_b": _write_video(tmp_path, "train_b", 3, seed=1, with_extras=False),
    }
    return tmp_path, written


def test_item_contents(subject_root):
    root, written = subject_root
    dataset = ImavatarDataset(root, SUBJECT, ["train_a"], load_semantic=True, n_expr=60, n_shape=80)
    assert len(dataset) == 4 and dataset.image_size == (SIZE, SIZE)
    item = dataset[2]
    src = written["train_a"]
    rgb = src["images"][2].astype(np.float32) / 255
    mask = src["masks"][2].astype(np.float32) / 255
    np.testing.assert_allclose(item["rgb"].numpy(), rgb * mask[..., None] + 1 - mask[..., None], atol=1e-6)
    np.testing.assert_array_equal(item["mask"].numpy(), mask)
    assert item["semantic"].dtype == torch.int64
    np.testing.assert_array_equal(item["semantic"].numpy(), src["semantics"][2])
    flame = src["params"].frames[2]
    np.testing.assert_allclose(item["expression"][:50].numpy(), flame.expression, rtol=1e-6)
    assert item["expression"].shape == (60,) and not item["expression"][50:].any()
    np.testing.assert_allclose(item["shape"].numpy(), src["params"].shape_params[:80], rtol=1e-6)
    np.testing.assert_allclose(item["pose"].numpy(), flame.pose, rtol=1e-6)
    np.testing.assert_allclose(item["flame_keypoints"].numpy(), flame.flame_keypoints, rtol=1e-6)
    np.testing.assert_allclose(item["keypoints"].numpy(), src["keypoints"][2], rtol=1e-6)
    assert bool(item["keypoints_valid"])
    assert item["frame_index"].dtype == torch.int64 and int(item["frame_index"]) == 2
    assert (item["frame_name"], item["video"]) == ("3", "train_a")
    assert item["image_path"].endswith("train_a/image/3.png")
    assert "iris" not in item and "bbox" not in item
    assert ImavatarDataset(root, SUBJECT, ["train_a"], n_expr=10)[0]["expression"].shape == (10,)


def _imavatar_projection(intrinsics, world_mat, point, image_size):
    """IMavatar's formula: (x, y, z) = world_mat·p, u = fx_s·x/z + cx, v = fy_s·y/z + cy."""
    h, w = image_size
    x, y, z = world_mat[:, :3] @ point + world_mat[:, 3]
    return np.array(
        [intrinsics[0] * w * x / z + intrinsics[2] * w, intrinsics[1] * h * y / z + intrinsics[3] * h]
    )


@pytest.mark.parametrize("resolution", [None, (48, 40)])
def test_cameras_project_like_the_imavatar_formula(subject_root, resolution):
    root, written = subject_root
    dataset = ImavatarDataset(root, SUBJECT, ["train_a"], resolution=resolution)
    point = np.array([0.3, -0.2, 0.4])
    for index in (0, 3):
        cameras = dataset[index]["cameras"]
        assert isinstance(cameras, PinholeCameras) and len(cameras) == 1
        assert cameras.image_size == dataset.image_size
        uv, depth = project_points(cameras, torch.tensor(point, dtype=torch.float32)[None, None])
        params = written["train_a"]["params"]
        expected = _imavatar_projection(
            params.intrinsics, params.frames[index].world_mat, point, dataset.image_size
        )
        np.testing.assert_allclose(uv[0, 0].numpy(), expected, rtol=1e-5)
        assert float(depth) > 0, "the head in front of the camera has positive OpenCV depth"


def test_resize_scales_images_and_keypoints(subject_root):
    root, written = subject_root
    dataset = ImavatarDataset(root, SUBJECT, ["train_a"], resolution=16, load_semantic=True)
    item = dataset[1]
    assert (
        item["rgb"].shape == (16, 16, 3)
        and item["mask"].shape == (16, 16)
        and item["semantic"].shape == (16, 16)
    )
    assert float(item["rgb"].min()) >= 0.0 and float(item["rgb"].max()) <= 1.0
    np.testing.assert_allclose(item["keypoints"].numpy(), written["train_a"]["keypoints"][1] / 2, rtol=1e-6)
    block_mean = written["train_a"]["masks"][1].reshape(16, 2, 16, 2).mean(axis=(1, 3)) / 255
    np.testing.assert_allclose(item["mask"].numpy(), block_mean, atol=1e-5)


def test_several_videos_batch_with_one_camera_object(subject_root):
    root, _ = subject_root
    dataset = ImavatarDataset(root, SUBJECT, ["train_a", "train_b"])
    assert len(dataset) == 7
    assert [v.name for v in dataset.videos] == ["train_a", "train_b"]
    batches = list(DataLoader(dataset, batch_size=4, collate_fn=collate_frames))
    first, last = batches
    assert isinstance(first["cameras"], PinholeCameras) and len(first["cameras"]) == 4
    assert first["rgb"].shape == (4, SIZE, SIZE, 3) and last["rgb"].shape == (3, SIZE, SIZE, 3)
    assert first["video"] == ["train_a"] * 4 and last["frame_name"] == ["1", "2", "3"]
    assert first["keypoints_valid"].tolist() == [True] * 4
    assert last["keypoints_valid"].tolist() == [False] * 3 and not last["keypoints"].any()
    torch.testing.assert_close(first["cameras"].K[1], dataset[1]["cameras"].K[0])


def test_collate_refuses_mixed_items(subject_root):
    root, _ = subject_root
    with_semantic = ImavatarDataset(root, SUBJECT, ["train_a"], load_semantic=True)[0]
    without = ImavatarDataset(root, SUBJECT, ["train_b"])[0]
    with pytest.raises(ValueError, match="different keys"):
        collate_frames([with_semantic, without])


def test_frame_selection_and_blacklist(subject_root, caplog):
    root, _ = subject_root
    assert [
        int(ImavatarDataset(root, SUBJECT, ["train_a"], stride=2)[i]["frame_index"]) for i in range(2)
    ] == [0, 2]
    picked = ImavatarDataset(root, SUBJECT, ["train_a"], frame_indices=[3, 1])
    assert [picked[i]["frame_name"] for i in range(len(picked))] == ["4", "2"]
    with caplog.at_level(logging.WARNING):
        counted = ImavatarDataset(root, SUBJECT, ["train_a", "train_b"], frame_count=4)
    assert len(counted) == 7 and "4 frames requested but only 3" in caplog.text
    imavatar.write_blacklist(imavatar.subject_dir(root, SUBJECT), {"train_a": ["2.png", "4.png"]})
    filtered = ImavatarDataset(root, SUBJECT, ["train_a", "train_b"])
    assert [(filtered[i]["video"], filtered[i]["frame_name"]) for i in range(len(filtered))] == [
        ("train_a", "1"),
        ("train_a", "3"),
        ("train_b", "1"),
        ("train_b", "2"),
        ("train_b", "3"),
    ]
    assert len(ImavatarDataset(root, SUBJECT, ["train_a"], use_blacklist=False)) == 4


def test_unknown_video_lists_the_available_ones(subject_root):
    root, _ = subject_root
    with pytest.raises(
        DataError, match=r"test_c: video folder not found; videos of 'subj': \['train_a', 'train_b'\]"
    ):
        ImavatarDataset(root, SUBJECT, ["test_c"])


def test_missing_semantic_or_masks_are_named(subject_root):
    root, _ = subject_root
    with pytest.raises(DataError, match=r"train_b/semantic: semantic folder not found"):
        ImavatarDataset(root, SUBJECT, ["train_a", "train_b"], load_semantic=True)
    mask_dir = imavatar.video_dir(root, SUBJECT, "train_b") / "mask"
    for path in mask_dir.iterdir():
        path.unlink()
    mask_dir.rmdir()
    with pytest.raises(DataError, match=r"train_b/mask: mask folder not found"):
        ImavatarDataset(root, SUBJECT, ["train_b"])


def test_unreadable_frame_fails_at_its_item_naming_the_file(subject_root):
    root, _ = subject_root
    dataset = ImavatarDataset(root, SUBJECT, ["train_b"])
    broken = imavatar.video_dir(root, SUBJECT, "train_b") / "mask" / "2.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    dataset[0]
    with pytest.raises(DataError, match="cannot decode") as info:
        dataset[1]
    assert str(broken) in str(info.value)


def test_frame_of_another_size_is_named(subject_root):
    root, written = subject_root
    video = imavatar.video_dir(root, SUBJECT, "train_b")
    imavatar.write_video(
        video,
        written["train_b"]["params"],
        written["train_b"]["images"][:, :16],
        written["train_b"]["masks"][:, :16],
        overwrite=True,
    )
    with pytest.raises(DataError, match="videos differ in image size"):
        ImavatarDataset(root, SUBJECT, ["train_a", "train_b"])
    assert ImavatarDataset(root, SUBJECT, ["train_a", "train_b"], resolution=SIZE)[5]["rgb"].shape == (
        SIZE,
        SIZE,
        3,
    )


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"videos": "train_a"}, "non-empty list"),
        ({"videos": ["train_a", "train_a"]}, "distinct"),
        ({"videos": ["train_a"], "resolution": (0, 4)}, "resolution"),
        ({"videos": ["train_a"], "stride": 2, "frame_count": 2}, "at most one"),
        ({"videos": ["train_a"], "n_expr": 0}, "n_expr"),
    ],
)
def test_bad_arguments(subject_root, kwargs, problem):
    root, _ = subject_root
    with pytest.raises(ValueError, match=problem):
        ImavatarDataset(root, SUBJECT, **kwargs)
