"""Decoding raw videos (pegasus.preprocess.video): frames, stride, and errors naming the file."""
from __future__ import annotations

import numpy as np
import pytest

from pegasus.data.images import DataError
from pegasus.preprocess.video import probe_video, read_frames, source_fingerprint


@pytest.mark.real_data
def test_probe_reports_the_clips_properties(real_data_dir):
    info = probe_video(real_data_dir / "d18.mp4")
    assert (info.width, info.height, info.fps, info.frame_count) == (480, 480, 30.0, 216)


@pytest.mark.real_data
def test_stride_and_max_frames_select_source_frames(real_clip):
    everything = list(read_frames(real_clip, max_frames=9))
    strided = list(read_frames(real_clip, stride=3, max_frames=3))
    assert [i for i, _ in everything] == list(range(9))
    assert [i for i, _ in strided] == [0, 3, 6]
    for (index, frame), (_, reference) in zip(strided, everything[::3]):
        assert frame.dtype == np.uint8 and frame.shape == (480, 480, 3)
        np.testing.assert_array_equal(frame, reference)


@pytest.mark.real_data
def test_a_time_span_selects_source_frames(real_clip):
    everything = list(read_frames(real_clip, max_frames=12))
    span = list(read_frames(real_clip, stride=2, start=4, end=11))
    assert [i for i, _ in span] == [4, 6, 8, 10]
    for (index, frame) in span:
        np.testing.assert_array_equal(frame, everything[index][1])
    with pytest.raises(DataError, match=r"no decodable frame in frames \[100000, end\)"):
        list(read_frames(real_clip, start=100_000))


def test_frames_are_rgb(synthetic_video):
    _, frame = next(read_frames(synthetic_video.path))
    white = frame[:8, :8].reshape(-1, 3).mean(0)  # the synthetic frames have a white background
    assert white.min() > 230
    skin = frame[frame.shape[0] // 2, frame.shape[1] // 2].astype(int)  # the nose: red > blue
    assert skin[0] > skin[2]


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="missing.mp4: video file not found"):
        probe_video(tmp_path / "missing.mp4")


def test_folder_is_not_a_video(tmp_path):
    with pytest.raises(DataError, match="not a file"):
        list(read_frames(tmp_path))


def test_corrupt_file_is_named(corrupt_video):
    for call in (lambda: probe_video(corrupt_video), lambda: list(read_frames(corrupt_video))):
        with pytest.raises(DataError) as err:
            call()
        assert str(corrupt_video) in str(err.value) and "cannot open" in str(err.value)


def test_empty_file_is_named(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(DataError, match="empty.mp4"):
        probe_video(path)


def test_fingerprint_changes_with_the_file(tmp_path):
    path = tmp_path / "a.mp4"
    path.write_bytes(b"1")
    before = source_fingerprint(path)
    path.write_bytes(b"12")
    assert source_fingerprint(path) != before and before["path"] == str(path.resolve())
