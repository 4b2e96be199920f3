"""Novel views and novel expressions of a person: ground truth an avatar never trained on.

Both sets hold the person's mean training pose (the mean head rotation, jaw and gaze of the
training video), its expression and its camera without shake, so that they change one thing
at a time:

* ``views``: the head turned by yaw and pitch offsets ± each of ``synth_db.novel_angles_deg``
  around the mean rotation (yaw about the head's up axis, pitch about its left-right axis),
  after a first frame at the mean itself;
* ``expressions``: ``synth_db.novel_expressions`` frames of expressions outside the training
  range: two components at ± ``novel_expression_scale`` × ``expression_amplitude`` each (the
  training videos stay within 1×), eyes alternately shut, the jaw alternately opened to
  ``novel_expression_scale`` × ``max_jaw_opening``.

Each frame's description (set, yaw and pitch offsets in degrees, the components moved) is
listed in the folder's ``views.json`` (:data:`pegasus.data.imavatar.VIEWS_FILE`).
"""
from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np

from ..headmodel.lbs import POSE_SLOTS, mean_pose, turn_head
from .motion import VideoMotion
from .settings import SynthDbSettings

__all__ = ["NOVEL_DIR", "NOVEL_SETS", "novel_motion"]

NOVEL_DIR = "novel"
"""Folder of the novel sets under the database root: ``novel/<person>/<person>/<set>/``."""
NOVEL_SETS = ("views", "expressions")


def novel_motion(settings: SynthDbSettings, person: str, train: VideoMotion, which: str,
                 expr_names) -> tuple[VideoMotion, list[dict]]:
    """The motion of one novel set of a person and the description of each frame.

    Args:
        train: the person's training motion (the reference pose and expression).
        which: ``views`` or ``expressions``.
        expr_names: the head model's expression component names (blinks by name).
    """
    if which not in NOVEL_SETS:
        raise ValueError(f"novel set must be one of {NOVEL_SETS}, got {which!r}")
    base_pose = mean_pose(train.pose)
    base_expression = train.expression.mean(0)
    if which == "views":
        offsets = [(0.0, 0.0)] + [(sign * a, 0.0) for a in settings.novel_angles_deg for sign in (-1, 1)] \
            + [(0.0, sign * a) for a in settings.novel_angles_deg for sign in (-1, 1)]
        pose = turn_head(base_pose, *np.array(offsets).T)
        expression = np.repeat(base_expression[None], len(offsets), 0)
        frames = [{"set": which, "yaw_deg": yaw, "pitch_deg": pitch} for yaw, pitch in offsets]
    else:
        count = settings.novel_expressions
        rng = np.random.default_rng([settings.seed, zlib.crc32(person.encode()), zlib.crc32(b"novel expressions")])
        names = [str(n) for n in expr_names][:train.expression.shape[1]]
        blinks = [i for i, n in enumerate(names) if n in settings.blink_components]
        others = [i for i in range(len(names)) if i not in blinks]
        amplitude = settings.novel_expression_scale * settings.expression_amplitude
        pose = np.repeat(base_pose[None], count, 0)
        expression = np.repeat(base_expression[None], count, 0)
        frames = []
        for k in range(count):
            moved = rng.choice(others, size=min(2, len(others)), replace=False)
            expression[k, moved] = amplitude * rng.choice([-1.0, 1.0], size=len(moved))
            expression[k, blinks] = float(k % 2)
            if k % 2:
                pose[k, POSE_SLOTS["jaw"].start] = settings.novel_expression_scale * settings.max_jaw_opening
            frames.append({"set": which, "yaw_deg": 0.0, "pitch_deg": 0.0,
                           "components": [names[i] for i in moved], "eyes_closed": bool(k % 2)})
    motion = replace(train, expression=expression, pose=pose, camera_offset=np.zeros((len(frames), 3)))
    return motion, frames
