"""Declaration of the ``generative`` config section: PEGASUS's two-stage generative avatar
(METHOD §5; values in confs/base.conf and confs/pegasus.conf)."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.declare import Section, setting
from ..data.settings import VideoEntry

__all__ = ["StageOneSettings", "ControlSettings", "GenerativeSettings"]


@dataclass(frozen=True)
class StageOneSettings(Section):
    """``generative.stage1``: the target's own avatar, trained first on its real video(s)."""

    train: tuple[VideoEntry, ...] = setting("the target's real training video entries (stage 2 trains on "
                                            "dataset.train: the synthetic collection and the target's video)")
    epochs: int = setting("epochs of stage 1 (PEGASUS 11)", ge=1)
    lr_milestones: tuple[int, ...] = setting("stage-1 epochs at which every learning rate is multiplied by "
                                             "train.lr_gamma", ge=1, ordered=True)


@dataclass(frozen=True)
class ControlSettings(Section):
    """``generative.control``: what ``pegasus test`` renders of a generative run (the part control)."""

    frames: int = setting("test frames in each category grid (columns)", ge=1)
    interpolation_steps: int = setting("codes along each interpolation strip, end points included", ge=2)
    samples: int = setting("codes sampled per category for the sample sheet", ge=1)
    seed: int = setting("seed of the sampled codes", ge=0)
    identity_lock: bool = setting("points outside the edited categories (part logit χ < 0.5 and semantic class not "
                                  "theirs, in the edited and the unedited pass) keep the unedited code, so the rest "
                                  "of the face cannot move")
    video_frames: int = setting("driving frames (novel motion, test.driving_flame_params) in each category's mp4", ge=0)
    yaw_frames: int = setting("frames of the yaw turn (±test.yaw_max_deg) appended to each category's mp4", ge=0)
    mix: tuple[str, ...] = setting("categories edited together in the several-categories sheet (each takes one of "
                                   "its DB codes); [] = none")


@dataclass(frozen=True)
class GenerativeSettings(Section):
    """``generative``: stage 1 (the target's real video) then stage 2 (the synthetic collection)."""

    enabled: bool = setting("pegasus train runs stage 1 into <run>/stage1/ and then stage 2 into <run>/, starting "
                            "from stage 1's weights; pegasus test then also renders the part control and scores it")
    target: str = setting("the target subject: the person of stage 1 and of every synthetic video")
    own_normals: bool = setting("render the target's own normals with the stage-1 avatar after stage 1: the normal "
                                "loss's target outside the swapped part (inside it: the DB render's normals)")
    stage1: StageOneSettings
    control: ControlSettings

    def problems(self) -> list[str]:
        problems = [f"stage1.train: entry {i} is of {e.subject!r}, not the target {self.target!r}"
                    for i, e in enumerate(self.stage1.train) if e.manifest is None and e.subject != self.target]
        if self.enabled and not self.stage1.train:
            problems.append("stage1.train: the target's real video is needed")
        return problems
