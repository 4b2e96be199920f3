"""Per-video motion: ranges, smoothness, blinks, determinism."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pegasus.headmodel.lbs import POSE_SLOTS
from pegasus.headmodel.standin import EXPRESSION_COMPONENTS
from pegasus.synthdb.motion import sample_motion, smooth_signal


@pytest.fixture(scope="module")
def settings(tiny_config_factory, tmp_path_factory):
    return tiny_config_factory(tmp_path_factory.mktemp("motion")).synth_db


def test_smooth_signal_spans_minus_one_to_one():
    signal = smooth_signal(np.random.default_rng(0), 200, 25.0, (0.1, 0.5))
    assert signal.min() == pytest.approx(-1.0) and signal.max() == pytest.approx(1.0)
    assert np.abs(np.diff(signal)).max() < 0.2
    assert np.array_equal(smooth_signal(np.random.default_rng(0), 1, 25.0, (0.1, 0.5)), [0.0])


def test_head_rotation_covers_the_configured_range_smoothly(settings):
    motion = sample_motion(settings, "target", "train", 150, EXPRESSION_COMPONENTS, 50)
    yaw, pitch, roll = Rotation.from_rotvec(motion.pose[:, POSE_SLOTS["neck"]]).as_euler("YXZ", degrees=True).T
    assert np.abs(yaw).max() == pytest.approx(settings.max_yaw_deg, abs=1e-6)
    assert yaw.min() == pytest.approx(-settings.max_yaw_deg, abs=1e-6)
    assert np.abs(pitch).max() == pytest.approx(settings.max_pitch_deg, abs=1e-6)
    assert np.abs(roll).max() == pytest.approx(settings.max_roll_deg, abs=1e-6)
    assert np.abs(np.diff(yaw)).max() < 5.0  # degrees per frame at 25 fps
    assert np.all(motion.pose[:, POSE_SLOTS["global"]] == 0)
    jaw = motion.pose[:, POSE_SLOTS["jaw"].start]
    assert jaw.min() == 0.0 and jaw.max() == pytest.approx(settings.max_jaw_opening)


def test_expressions_blinks_and_padding(settings):
    motion = sample_motion(settings, "target", "train", 150, EXPRESSION_COMPONENTS, 50)
    assert motion.expression.shape == (150, 50) and motion.pose.shape == (150, 15)
    assert np.all(motion.expression[:, len(EXPRESSION_COMPONENTS):] == 0)
    blink = [EXPRESSION_COMPONENTS.index(n) for n in settings.blink_components]
    closure = motion.expression[:, blink]
    assert np.array_equal(closure[:, 0], closure[:, 1])
    assert closure.max() == pytest.approx(1.0) and closure.min() == 0.0
    assert (closure[:, 0] > 0.5).mean() < 0.2  # eyes are mostly open
    smile = motion.expression[:, EXPRESSION_COMPONENTS.index("smile")]
    assert 0.3 < np.abs(smile).max() <= settings.expression_amplitude + 1e-9
    assert np.linalg.norm(motion.light_direction) == pytest.approx(1.0) and motion.light_direction[2] < 0


def test_motion_is_deterministic_and_differs_between_videos(settings):
    first = sample_motion(settings, "target", "train", 40, EXPRESSION_COMPONENTS, 50)
    again = sample_motion(settings, "target", "train", 40, EXPRESSION_COMPONENTS, 50)
    test = sample_motion(settings, "target", "test", 40, EXPRESSION_COMPONENTS, 50)
    other = sample_motion(settings, "db_00", "train", 40, EXPRESSION_COMPONENTS, 50)
    assert np.array_equal(first.pose, again.pose) and np.array_equal(first.expression, again.expression)
    assert not np.allclose(first.pose, test.pose)
    # one capture session per person: their videos share the light, other people differ
    assert np.array_equal(first.light_direction, test.light_direction)
    assert not np.allclose(first.light_direction, other.light_direction)


def test_unknown_blink_component_is_an_error(settings):
    with pytest.raises(ValueError, match="synth_db.blink_components"):
        sample_motion(settings, "target", "train", 10, ("smile",), 50)
