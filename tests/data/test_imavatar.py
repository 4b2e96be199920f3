"""The IMavatar folder contract and image I/O: round trips, tolerance, selection and errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pegasus.data import images, imavatar
from pegasus.data.images import DataError
from pegasus.data.imavatar import FlameFrame, FlameParams, FrameSelection

SIZE = 32


def _flame_params(n_frames: int, rng: np.random.Generator, n_expr: int = 50) -> FlameParams:
    frames = tuple(
        FlameFrame(
            name=name,
            world_mat=np.hstack([np.eye(3), [[0.0], [0.0], [-4.0]]]) + rng.normal(0, 0.01, (3, 4)),
            expression=rng.normal(size=n_expr),
            pose=rng.normal(0, 0.1, 15),
            bbox=rng.uniform(-1, 1, 4),
            flame_keypoints=rng.uniform(-1, 1, (70, 2)),
        )
        for name in imavatar.numbered_frame_names(n_frames)
    )
    return FlameParams(np.array([-1500 / 512, 1500 / 512, 0.5, 0.5]), rng.normal(size=100), frames)


def _frame_content(n_frames: int, rng: np.random.Generator) -> dict:
    return {
        "images": rng.integers(0, 256, (n_frames, SIZE, SIZE, 3), dtype=np.uint8),
        "masks": rng.integers(0, 256, (n_frames, SIZE, SIZE), dtype=np.uint8),
        "semantics": rng.integers(0, 19, (n_frames, SIZE, SIZE), dtype=np.uint8),
        "keypoints": [rng.uniform(0, SIZE, (68, 2)) for _ in range(n_frames)],
        "iris": [rng.uniform(0, SIZE, (2, 2)) for _ in range(n_frames)],
    }


@pytest.fixture
def tiny_video(tmp_path):
    """A writer-made 5-frame video at <tmp>/subj/subj/video_a; returns (path, params, content)."""
    rng = np.random.default_rng(1)
    params, content = _flame_params(5, rng), _frame_content(5, rng)
    content["iris"][3] = None
    path = imavatar.video_dir(tmp_path, "subj", "video_a")
    imavatar.write_video(path, params, **content)
    return path, params, content


# ---------------------------------------------------------------------------------------
# Round trip


def test_write_then_read_round_trips_exactly(tiny_video):
    path, params, content = tiny_video
    video = imavatar.read_video(path)
    assert video.name == "video_a" and video.image_size == (SIZE, SIZE)
    assert [f.name for f in video.frames] == ["1", "2", "3", "4", "5"]
    np.testing.assert_array_equal(video.intrinsics, params.intrinsics)
    np.testing.assert_array_equal(video.shape_params, params.shape_params)
    for i, frame in enumerate(video.frames):
        written = params.frames[i]
        assert frame.index == i
        for field in ("world_mat", "expression", "pose", "bbox", "flame_keypoints"):
            np.testing.assert_array_equal(getattr(frame.flame, field), getattr(written, field))
        assert frame.image_path == path / "image" / f"{i + 1}.png"
        np.testing.assert_array_equal(
            images.read_rgb(frame.image_path), content["images"][i] / np.float32(255)
        )
        np.testing.assert_array_equal(
            images.read_mask(frame.mask_path), content["masks"][i] / np.float32(255)
        )
        np.testing.assert_array_equal(images.read_label_map(frame.semantic_path), content["semantics"][i])
        np.testing.assert_array_equal(frame.keypoints, content["keypoints"][i])
    assert video.frames[3].iris is None
    np.testing.assert_array_equal(video.frames[0].iris, content["iris"][0])


def test_written_json_formats(tiny_video):
    path, params, content = tiny_video
    flame = json.loads((path / "flame_params.json").read_text())
    assert set(flame) == {"intrinsics", "shape_params", "frames"}
    assert flame["frames"][0]["file_path"] == "./image/1"
    assert np.shape(flame["frames"][0]["world_mat"]) == (3, 4)
    keypoints = json.loads((path / "keypoint.json").read_text())
    assert list(keypoints) == ["1.png", "2.png", "3.png", "4.png", "5.png"]
    assert np.shape(keypoints["2.png"]) == (68, 2)
    assert json.loads((path / "iris.json").read_text())["4.png"] is None


def test_flame_params_survive_a_second_write(tiny_video, tmp_path):
    path, params, _ = tiny_video
    again = tmp_path / "again.json"
    imavatar.write_flame_params(again, imavatar.read_video(path).flame_params())
    assert again.read_bytes() == (path / "flame_params.json").read_bytes()


def test_write_video_is_atomic_and_refuses_to_clobber(tiny_video):
    path, params, content = tiny_video
    with pytest.raises(FileExistsError, match="overwrite"):
        imavatar.write_video(path, params, content["images"], content["masks"])
    bad_masks = list(content["masks"][:-1])
    with pytest.raises(ValueError, match="masks has 4 entries for 5 frames"):
        imavatar.write_video(path, params, content["images"], bad_masks, overwrite=True)
    assert (path / "semantic").is_dir(), "a failed write must leave the old folder intact"
    imavatar.write_video(
        path,
        params,
        content["images"],
        content["masks"],
        overwrite=True,
        extra_folders={"mask_object": content["masks"]},
    )
    assert not (path / "semantic").exists() and not (path / "keypoint.json").exists()
    np.testing.assert_array_equal(
        images.read_mask(path / "mask_object" / "3.png"), content["masks"][2] / np.float32(255)
    )
    assert sorted(p.name for p in path.parent.iterdir()) == ["video_a"], "no temporary folders left"


def test_write_refuses_non_finite_params(tmp_path):
    params = _flame_params(1, np.random.default_rng(0))
    params.frames[0].pose[2] = np.nan
    with pytest.raises(DataError, match="non-finite"):
        imavatar.write_flame_params(tmp_path / "flame_params.json", params)
    assert not (tmp_path / "flame_params.json").exists()


# ---------------------------------------------------------------------------------------
# Folders as the originals wrote them


def _pointavatar_style_video(path: Path, rng: np.random.Generator) -> list[np.ndarray]:
    """Three frames: JPEG and PNG images, RGB masks, extra keys, 100 expressions, no landmarks."""
    for folder in ("image", "mask"):
        (path / folder).mkdir(parents=True)
    masks = []
    for k in (1, 2, 3):
        image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        cv2.imwrite(str(path / "image" / (f"{k}.jpg" if k == 2 else f"{k}.png")), image)
        gray = rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
        cv2.imwrite(str(path / "mask" / f"{k}.png"), np.repeat(gray[..., None], 3, axis=2))
        masks.append(gray)
    world_mat = np.hstack([np.eye(3), [[0], [0], [-4]]])
    frames = [
        {
            "file_path": f"./image/{k}",
            "world_mat": (np.vstack([world_mat, [0, 0, 0, 1]]) if k == 3 else world_mat).tolist(),
            "transform_matrix": np.eye(4).tolist(),
            "expression": rng.normal(size=100).tolist(),
            "pose": rng.normal(size=15).tolist(),
            "bbox": [-0.5, -0.5, 0.5, 0.5],
            "flame_keypoints": rng.uniform(-1, 1, (70, 2)).tolist(),
        }
        for k in (1, 2, 3)
    ]
    flame = {"frames": frames, "intrinsics": [-2.9, 2.9, 0.5, 0.5], "shape_params": [0.1] * 100, "extra": 1}
    (path / "flame_params.json").write_text(json.dumps(flame))
    return masks


def test_pointavatar_style_folder_loads_unchanged(tmp_path):
    path = imavatar.video_dir(tmp_path, "subj", "MVI_1810")
    masks = _pointavatar_style_video(path, np.random.default_rng(2))
    video = imavatar.read_video(path)
    assert [f.image_path.name for f in video.frames] == ["1.png", "2.jpg", "3.png"]
    assert video.has_masks and not video.has_semantic
    assert all(f.keypoints is None and f.iris is None for f in video.frames)
    assert video.frames[0].flame.expression.shape == (100,)
    np.testing.assert_array_equal(video.frames[2].flame.world_mat, np.hstack([np.eye(3), [[0], [0], [-4]]]))
    for frame, gray in zip(video.frames, masks, strict=True):
        np.testing.assert_array_equal(images.read_mask(frame.mask_path), gray / np.float32(255))
    assert imavatar.list_videos(tmp_path, "subj") == ["MVI_1810"]


def test_read_video_without_images(tmp_path):
    path = tmp_path / "driving"
    path.mkdir()
    imavatar.write_flame_params(path / "flame_params.json", _flame_params(4, np.random.default_rng(0)))
    video = imavatar.read_video(path, require_images=False)
    assert len(video.frames) == 4 and video.image_size is None and video.frames[0].image_path is None


def test_landmark_reader_tolerates_the_originals_forms(tmp_path, caplog):
    names = ["1", "2", "3", "4"]
    iris = {"1.png": [10, 11, 20, 21], "2.png": None, "3.png": [5.0, 6.0], "4": [[1, 2], [3, 4]]}
    (tmp_path / "iris.json").write_text(json.dumps(iris))
    with caplog.at_level(logging.WARNING):
        read = imavatar.read_landmarks(tmp_path / "iris.json", names, 2)
    np.testing.assert_array_equal(read["1"], [[10, 11], [20, 21]])
    assert read["2"] is None and read["3"] is None
    np.testing.assert_array_equal(read["4"], [[1, 2], [3, 4]])
    assert "iris.json" in caplog.text and "'3'" in caplog.text
    (tmp_path / "kp.json").write_text(json.dumps([[[1, 2]] * 68, None]))
    read = imavatar.read_landmarks(tmp_path / "kp.json", ["1", "2"], 68)
    assert read["1"].shape == (68, 2) and read["2"] is None


@pytest.mark.parametrize(
    "name, stem",
    [("./image/12", "12"), ("12.png", "12"), ("12.JPG", "12"), ("12", "12"), ("image/frame.01", "frame.01")],
)
def test_frame_stem(name, stem):
    assert imavatar.frame_stem(name) == stem


# ---------------------------------------------------------------------------------------
# Bad inputs: one DataError naming the file


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _set_frame(key, value):
    def edit(data):
        data["frames"][1][key] = value

    return edit


@pytest.mark.parametrize(
    "corrupt, culprit, problem",
    [
        (lambda p: (p / "image" / "3.png").unlink(), "image", r"no file for 1 frame\(s\).*\['3'\]"),
        (
            lambda p: cv2.imwrite(str(p / "mask" / "6.png"), np.zeros((4, 4), np.uint8)),
            "mask",
            "5 frames; files without a frame: \\['6'\\]",
        ),
        (
            lambda p: (p / "flame_params.json").write_text('{"frames": ['),
            "flame_params.json",
            "malformed JSON",
        ),
        (lambda p: (p / "flame_params.json").unlink(), "flame_params.json", "file not found"),
        (
            lambda p: _edit_json(p / "flame_params.json", _set_frame("expression", [0.0, float("nan")])),
            "flame_params.json",
            r"frames\[1\] \(./image/2\).expression contains non-finite",
        ),
        (
            lambda p: _edit_json(p / "flame_params.json", _set_frame("pose", [0.0] * 14)),
            "flame_params.json",
            r"pose has shape \(14,\), expected \(15\)",
        ),
        (
            lambda p: _edit_json(p / "flame_params.json", _set_frame("world_mat", [[1, 0, 0]])),
            "flame_params.json",
            "world_mat",
        ),
        (
            lambda p: _edit_json(p / "flame_params.json", _set_frame("file_path", "./image/1")),
            "flame_params.json",
            r"repeat file_path stems \['1'\]",
        ),
        (
            lambda p: _edit_json(p / "flame_params.json", lambda d: d.pop("intrinsics")),
            "flame_params.json",
            "missing key 'intrinsics'",
        ),
        (
            lambda p: _edit_json(
                p / "flame_params.json", lambda d: d["frames"][4].update(expression=[1.0] * 10)
            ),
            "flame_params.json",
            "frames disagree on expression",
        ),
        (lambda p: (p / "keypoint.json").write_text('{"1.png": [[1, "x"]]}'), "keypoint.json", "'1'"),
        (lambda p: (p / "image" / "1.png").write_bytes(b"not a png"), "1.png", "cannot read image header"),
    ],
    ids=[
        "missing-image",
        "extra-mask",
        "malformed-json",
        "missing-json",
        "non-finite",
        "pose-length",
        "world-mat",
        "duplicate-frame",
        "missing-key",
        "expression-lengths",
        "keypoint-values",
        "corrupt-header",
    ],
)
def test_bad_video_raises_one_error_naming_the_file(tiny_video, corrupt, culprit, problem):
    path = tiny_video[0]
    corrupt(path)
    with pytest.raises(DataError, match=problem) as info:
        imavatar.read_video(path)
    assert str(path) in str(info.value) and culprit in str(info.value)


def test_unreadable_image_names_the_file(tmp_path):
    broken = tmp_path / "7.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    for reader in (images.read_rgb, images.read_mask, images.read_label_map):
        with pytest.raises(DataError, match="cannot decode") as info:
            reader(broken)
        assert str(broken) in str(info.value)
    with pytest.raises(DataError, match="not found"):
        images.read_rgb(tmp_path / "missing.png")


def test_label_id_out_of_range_names_the_file(tmp_path):
    labels = np.zeros((4, 4), np.uint8)
    labels[1, 2] = 19
    labels[0, 0] = 250
    cv2.imwrite(str(tmp_path / "3.png"), labels)
    with pytest.raises(DataError, match=r"label ids \[19, 250\] out of range") as info:
        images.read_label_map(tmp_path / "3.png")
    assert str(tmp_path / "3.png") in str(info.value)


def test_palette_label_map_reads_indices(tmp_path):
    labels = np.array([[0, 5], [17, 18]], np.uint8)
    image = Image.fromarray(labels, mode="P")
    image.putpalette([(c * 37) % 256 for c in range(768)])
    image.save(tmp_path / "1.png")
    np.testing.assert_array_equal(images.read_label_map(tmp_path / "1.png"), labels)


def test_colour_coded_label_map_is_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "1.png"), np.dstack([np.zeros((2, 2)), np.ones((2, 2)), np.zeros((2, 2))]))
    with pytest.raises(DataError, match="colour-coded"):
        images.read_label_map(tmp_path / "1.png")


# ---------------------------------------------------------------------------------------
# Images: value range, channel order, compositing


def test_channel_order_and_range(tmp_path):
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    rgb[0, 0] = (0, 0, 51)
    images.write_rgb(tmp_path / "red.png", rgb)
    read = images.read_rgb(tmp_path / "red.png")
    assert read.dtype == np.float32 and read.shape == (2, 3, 3)
    np.testing.assert_array_equal(read[1, 1], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(read[0, 0], [0.0, 0.0, 0.2], atol=1e-7)
    bgr = cv2.imread(str(tmp_path / "red.png"))
    assert tuple(bgr[1, 1]) == (0, 0, 255), "files hold standard RGB PNGs"


def test_float_images_are_rounded_to_8_bit(tmp_path):
    images.write_mask(tmp_path / "m.png", np.array([[0.0, 0.5, 1.0, 1.7]]))
    np.testing.assert_array_equal(
        cv2.imread(str(tmp_path / "m.png"), cv2.IMREAD_UNCHANGED), [[0, 128, 255, 255]]
    )


def test_mask_from_colour_matte_uses_luma(tmp_path):
    bgr = np.zeros((1, 1, 3), np.uint8)
    bgr[0, 0] = (0, 0, 200)  # red 200
    cv2.imwrite(str(tmp_path / "m.png"), bgr)
    assert images.read_mask(tmp_path / "m.png")[0, 0] == pytest.approx(round(0.299 * 200) / 255)


def test_composite_on_white_by_hand():
    rgb = np.array([[[0.2, 0.4, 0.6], [1.0, 0.0, 0.5]]], np.float32)
    mask = np.array([[0.25, 1.0]], np.float32)
    expected = [[[0.2 * 0.25 + 0.75, 0.4 * 0.25 + 0.75, 0.6 * 0.25 + 0.75], [1.0, 0.0, 0.5]]]
    np.testing.assert_allclose(images.composite_on_white(rgb, mask), expected, rtol=1e-6)
    np.testing.assert_array_equal(
        images.composite_on_white(rgb, np.zeros((1, 2), np.float32)), np.ones((1, 2, 3))
    )


def test_resizing_keeps_ids_and_range():
    labels = np.kron(np.array([[3, 17], [0, 18]], np.uint8), np.ones((4, 4), np.uint8))
    assert set(np.unique(images.resize_label_map(labels, (3, 5))).tolist()) <= {0, 3, 17, 18}
    mask = images.resize_mask(np.ones((8, 8), np.float32), (20, 20))
    assert mask.shape == (20, 20) and mask.max() <= 1.0
    assert images.resize_rgb(np.zeros((8, 8, 3), np.float32), (4, 2)).shape == (4, 2, 3)


def test_writes_replace_files_and_leave_no_temporary_file(tmp_path):
    images.write_mask(tmp_path / "a" / "x.png", np.zeros((2, 2)))
    images.write_mask(tmp_path / "a" / "x.png", np.ones((2, 2)))
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.png"]
    np.testing.assert_array_equal(images.read_mask(tmp_path / "a" / "x.png"), np.ones((2, 2)))
    with pytest.raises(ValueError, match="label maps must be PNG"):
        images.write_label_map(tmp_path / "a" / "y.jpg", np.zeros((2, 2), np.uint8))
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.png"]


# ---------------------------------------------------------------------------------------
# Frame selection, blacklist, splits


def _names(video) -> list[str]:
    return [f.name for f in video.frames]


@pytest.fixture
def ten_frames(tmp_path):
    path = tmp_path / "video"
    path.mkdir()
    imavatar.write_flame_params(
        path / "flame_params.json", _flame_params(10, np.random.default_rng(0), n_expr=4)
    )
    return imavatar.read_video(path, require_images=False)


def test_select_by_stride_count_and_indices(ten_frames):
    assert _names(imavatar.select_frames(ten_frames)) == [str(k) for k in range(1, 11)]
    assert _names(imavatar.select_frames(ten_frames, FrameSelection(stride=3))) == ["1", "4", "7", "10"]
    assert _names(imavatar.select_frames(ten_frames, FrameSelection(count=4))) == ["1", "4", "7", "10"]
    assert _names(imavatar.select_frames(ten_frames, FrameSelection(count=1))) == ["1"]
    assert _names(imavatar.select_frames(ten_frames, FrameSelection(indices=[9, 0, 4]))) == ["10", "1", "5"]
    selected = imavatar.select_frames(ten_frames, FrameSelection(indices=[9, 0]))
    assert [f.index for f in selected.frames] == [9, 0]


def test_count_above_frame_count_gives_all_frames_with_a_warning(ten_frames, caplog):
    with caplog.at_level(logging.WARNING):
        selected = imavatar.select_frames(ten_frames, FrameSelection(count=25))
    assert len(selected.frames) == 10
    assert "25 frames requested but only 10 available" in caplog.text


def test_blacklist_is_applied_before_stride_and_count(ten_frames):
    excluded = {"2.png", "3"}
    assert _names(imavatar.select_frames(ten_frames, FrameSelection(count=3), excluded)) == ["1", "7", "10"]
    assert _names(imavatar.select_frames(ten_frames, FrameSelection(stride=4), excluded)) == ["1", "7"]
    assert _names(imavatar.select_frames(ten_frames, FrameSelection(indices=[0, 1, 2, 3]), excluded)) == [
        "1",
        "4",
    ]


def test_selection_errors(ten_frames):
    with pytest.raises(DataError, match=r"indices \[10\] out of range"):
        imavatar.select_frames(ten_frames, FrameSelection(indices=[1, 10]))
    with pytest.raises(DataError, match="no frames left"):
        imavatar.select_frames(ten_frames, FrameSelection(indices=[1]), ["2"])
    with pytest.raises(ValueError, match="at most one"):
        FrameSelection(stride=2, count=3)
    with pytest.raises(ValueError, match="stride"):
        FrameSelection(stride=0)
    with pytest.raises(ValueError, match="indices"):
        FrameSelection(indices=[1.5])


def test_blacklist_round_trip_and_errors(tmp_path):
    assert imavatar.read_blacklist(tmp_path) == {}
    imavatar.write_blacklist(tmp_path, {"hair_db1": {"10", "9.png"}, "video_a": []})
    assert json.loads((tmp_path / "blacklist.json").read_text()) == {
        "hair_db1": ["9.png", "10.png"],
        "video_a": [],
    }
    assert imavatar.read_blacklist(tmp_path) == {"hair_db1": {"9", "10"}, "video_a": frozenset()}
    (tmp_path / "blacklist.json").write_text('{"video_a": "1.png"}')
    with pytest.raises(DataError, match="blacklist.json"):
        imavatar.read_blacklist(tmp_path)




def test_layout_paths(tmp_path):
    assert imavatar.video_dir(tmp_path, "anna", "v1") == tmp_path / "anna" / "anna" / "v1"
    with pytest.raises(DataError, match="subject folder not found"):
        imavatar.list_videos(tmp_path, "anna")
