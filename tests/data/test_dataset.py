"""The torch dataset: item contents, cameras, resizing, batching, selection and errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from pegasus.data import imavatar
from pegasus.data.batch import FrameBatch, collate_frames
from pegasus.data.dataset import VideoDataset, subject_indices
from pegasus.data.images import DataError
from pegasus.data.settings import VideoEntry
from pegasus.data.videos import VideoTable
from pegasus.geometry.camera import PinholeCameras, project_points

SIZE = 32  # the size write_test_video writes
SUBJECT = "subj"


def dataset(root, videos, *, stride: int = 1, frames=None, load_semantic: bool = False, use_blacklist: bool = True,
            **kwargs) -> VideoDataset:
    """The dataset of some videos of the test subject, read on its own."""
    entries = [VideoEntry(subject=SUBJECT, video=v, stride=stride, frames=frames) for v in videos]
    table = VideoTable(entries, root, require_semantic=load_semantic, use_blacklist=use_blacklist)
    return VideoDataset(table, subject_indices(table), load_semantic=load_semantic, **kwargs)


@pytest.fixture
def subject_root(tmp_path, write_test_video):
    """Two videos: 'train_a' (4 frames, semantic + keypoints) and 'train_b' (3 frames, neither)."""
    written = {
        "train_a": write_test_video(tmp_path, SUBJECT, "train_a", 4, seed=0, with_extras=True),
        "train_b": write_test_video(tmp_path, SUBJECT, "train_b", 3, seed=1, with_extras=False),
    }
    return tmp_path, written


def test_item_contents(subject_root):
    root, written = subject_root
    data = dataset(root, ["train_a"], load_semantic=True, n_expr=60, n_shape=80)
    assert len(data) == 4 and data.image_size == (SIZE, SIZE)
    item = data[2]
    assert isinstance(item, FrameBatch) and len(item) == 1
    src = written["train_a"]
    rgb = src["images"][2].astype(np.float32) / 255
    mask = src["masks"][2].astype(np.float32) / 255
    np.testing.assert_allclose(item.rgb[0].numpy(), rgb * mask[..., None] + 1 - mask[..., None], atol=1e-6)
    np.testing.assert_array_equal(item.mask[0].numpy(), mask)
    assert item.semantic.dtype == torch.int64
    np.testing.assert_array_equal(item.semantic[0].numpy(), src["semantics"][2])
    flame = src["params"].frames[2]
    np.testing.assert_allclose(item.expression[0, :50].numpy(), flame.expression, rtol=1e-6)
    assert item.expression.shape == (1, 60) and not item.expression[0, 50:].any()
    np.testing.assert_allclose(item.shape[0].numpy(), src["params"].shape_params[:80], rtol=1e-6)
    np.testing.assert_allclose(item.pose[0].numpy(), flame.pose, rtol=1e-6)
    np.testing.assert_allclose(item.keypoints[0].numpy(), src["keypoints"][2], rtol=1e-6)
    assert bool(item.keypoints_valid)
    assert item.frame_index.dtype == torch.int64 and int(item.frame_index) == 2
    assert (item.frame_name, item.video) == (("3",), (f"{SUBJECT}/train_a",))
    assert int(item.video_id) == 0 and int(item.subject_id) == 0 and int(item.refine_row) == -1
    assert item.iris is None and item.part_mask is None and item.latent_rows is None
    assert dataset(root, ["train_a"], n_expr=10)[0].expression.shape == (1, 10)


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
    data = dataset(root, ["train_a"], resolution=resolution)
    point = np.array([0.3, -0.2, 0.4])
    for index in (0, 3):
        cameras = data[index].cameras
        assert isinstance(cameras, PinholeCameras) and len(cameras) == 1
        assert cameras.image_size == data.image_size
        uv, depth = project_points(cameras, torch.tensor(point, dtype=torch.float32)[None, None])
        params = written["train_a"]["params"]
        expected = _imavatar_projection(params.intrinsics, params.frames[index].world_mat, point, data.image_size)
        np.testing.assert_allclose(uv[0, 0].numpy(), expected, rtol=1e-5)
        assert float(depth) > 0, "the head in front of the camera has positive OpenCV depth"


def test_resize_scales_images_and_keypoints(subject_root):
    root, written = subject_root
    item = dataset(root, ["train_a"], resolution=16, load_semantic=True)[1]
    assert item.rgb.shape == (1, 16, 16, 3) and item.mask.shape == (1, 16, 16) and item.semantic.shape == (1, 16, 16)
    assert float(item.rgb.min()) >= 0.0 and float(item.rgb.max()) <= 1.0
    np.testing.assert_allclose(item.keypoints[0].numpy(), written["train_a"]["keypoints"][1] / 2, rtol=1e-6)
    block_mean = written["train_a"]["masks"][1].reshape(16, 2, 16, 2).mean(axis=(1, 3)) / 255
    np.testing.assert_allclose(item.mask[0].numpy(), block_mean, atol=1e-5)


def test_several_videos_batch_with_one_camera_object(subject_root):
    root, _ = subject_root
    data = dataset(root, ["train_a", "train_b"])
    assert len(data) == 7
    assert [r.name for r in data.table] == ["train_a", "train_b"]
    first, last = list(DataLoader(data, batch_size=4, collate_fn=collate_frames))
    assert isinstance(first.cameras, PinholeCameras) and len(first.cameras) == 4
    assert first.rgb.shape == (4, SIZE, SIZE, 3) and last.rgb.shape == (3, SIZE, SIZE, 3)
    assert first.video == (f"{SUBJECT}/train_a",) * 4 and last.frame_name == ("1", "2", "3")
    assert first.video_id.tolist() == [0] * 4 and last.video_id.tolist() == [1] * 3
    assert first.keypoints_valid.tolist() == [True] * 4
    assert last.keypoints_valid.tolist() == [False] * 3 and not last.keypoints.any()
    torch.testing.assert_close(first.cameras.K[1], data[1].cameras.K[0])
    two = first.select([3, 0])
    assert two.frame_name == ("4", "1") and torch.equal(two.rgb[1], first.rgb[0])


def test_collate_refuses_mixed_items(subject_root):
    root, _ = subject_root
    with_semantic = dataset(root, ["train_a"], load_semantic=True)[0]
    without = dataset(root, ["train_b"])[0]
    with pytest.raises(ValueError, match="different fields"):
        collate_frames([with_semantic, without])


def test_frame_range_stride_and_blacklist(subject_root, caplog):
    root, _ = subject_root
    assert [int(item.frame_index) for item in dataset(root, ["train_a"], stride=2)] == [0, 2]
    assert [item.frame_name[0] for item in dataset(root, ["train_a"], frames=(1, 4), stride=2)] == ["2", "4"]
    with caplog.at_level(logging.WARNING):
        clipped = dataset(root, ["train_b"], frames=(1, 9))
    assert len(clipped) == 2 and "end past the video's 3 frames" in caplog.text
    with pytest.raises(DataError, match=r"frames \[5, 9\) start past the video's 3 frames"):
        dataset(root, ["train_b"], frames=(5, 9))
    imavatar.write_blacklist(imavatar.subject_dir(root, SUBJECT), {"train_a": ["2.png", "4.png"]})
    filtered = dataset(root, ["train_a", "train_b"])
    assert [(item.video[0].split("/")[1], item.frame_name[0]) for item in filtered] == [
        ("train_a", "1"), ("train_a", "3"), ("train_b", "1"), ("train_b", "2"), ("train_b", "3")]
    assert len(dataset(root, ["train_a"], use_blacklist=False)) == 4


def test_unknown_video_lists_the_available_ones(subject_root):
    root, _ = subject_root
    with pytest.raises(DataError, match=r"test_c: video folder not found; videos of 'subj': \['train_a', 'train_b'\]"):
        dataset(root, ["test_c"])


def test_missing_semantic_or_masks_are_named(subject_root):
    root, _ = subject_root
    with pytest.raises(DataError, match=r"train_b/semantic: semantic folder not found"):
        dataset(root, ["train_a", "train_b"], load_semantic=True)
    mask_dir = imavatar.video_dir(root, SUBJECT, "train_b") / "mask"
    for path in mask_dir.iterdir():
        path.unlink()
    mask_dir.rmdir()
    with pytest.raises(DataError, match=r"train_b/mask: mask folder not found"):
        dataset(root, ["train_b"])


def test_unreadable_frame_fails_at_its_item_naming_the_file(subject_root):
    root, _ = subject_root
    data = dataset(root, ["train_b"])
    broken = imavatar.video_dir(root, SUBJECT, "train_b") / "mask" / "2.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    data[0]
    with pytest.raises(DataError, match="cannot decode") as info:
        data[1]
    assert str(broken) in str(info.value)


def test_frame_of_another_size_is_named(subject_root):
    root, written = subject_root
    video = imavatar.video_dir(root, SUBJECT, "train_b")
    imavatar.write_video(video, written["train_b"]["params"], written["train_b"]["images"][:, :16],
                         written["train_b"]["masks"][:, :16], overwrite=True)
    with pytest.raises(DataError, match="videos differ in image size"):
        dataset(root, ["train_a", "train_b"])
    assert dataset(root, ["train_a", "train_b"], resolution=SIZE)[5].rgb.shape == (1, SIZE, SIZE, 3)


def test_bad_arguments(subject_root):
    root, _ = subject_root
    with pytest.raises(DataError, match="listed twice"):
        dataset(root, ["train_a", "train_a"])
    with pytest.raises(ValueError, match="resolution"):
        dataset(root, ["train_a"], resolution=(0, 4))
    with pytest.raises(ValueError, match="n_expr"):
        dataset(root, ["train_a"], n_expr=0)
    table = VideoTable([VideoEntry(subject=SUBJECT, video="train_a")], root)
    with pytest.raises(ValueError, match="VideoIndices"):
        VideoDataset(table, [])
