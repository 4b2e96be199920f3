"""Declarations of the ``picture`` and ``test`` config sections (values in confs/base.conf)."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.declare import Section, setting

__all__ = ["PictureSettings", "TestSettings", "SET_NAMES"]

SET_NAMES: tuple[str, ...] = ("test", "driving", "yaw", "novel")
"""Render sets of ``test.sets``: test frames with ground truth, driving video, yaw turn, novel
views and expressions with ground truth."""


@dataclass(frozen=True)
class PictureSettings(Section):
    """The head-model overview grid (``pegasus picture``)."""

    output: str = setting("PNG file written by `pegasus picture`")
    image_size: int = setting("side of each tile in pixels", ge=16)
    n_random: int = setting("number of random shape/expression/pose samples in the grid", ge=0)
    shape_std: float = setting("std of random identity coefficients", ge=0)
    expr_std: float = setting("std of random expression coefficients", ge=0)
    pose_std: float = setting("std of random neck/jaw rotations, radians", ge=0)
    camera_distance: float = setting("camera distance from the head, scaled head units", gt=0)
    focal: float = setting("focal length in units of the image side", gt=0)


@dataclass(frozen=True)
class TestSettings(Section):
    """Evaluation render sets and metrics (pegasus.eval.render_sets, docs/evaluation.md)."""

    sets: tuple[str, ...] = setting(
        "render sets, any of: test (test frames scored against ground truth), driving (the driving video's "
        "motion on the target), yaw (a head turn), novel (the novel views and expressions of test.novel_root, "
        "scored per view)", choices=SET_NAMES)
    channels: tuple[str, ...] = setting(
        "render channels written as PNGs and mp4s (must include rgb): rgb, normal, albedo, shading, mask, and "
        "with model.semantic labels (colour-coded label map) and part_<category> (a part's mask)")
    frame_stride: int = setting("every n-th frame of the test and driving videos is rendered", ge=1)
    batch_size: int = setting("frames per render call (memory stays bounded by one batch)", ge=1)
    erode_dilate: bool = setting("open the rgb render (3x3 erode, then dilate) before scoring, as PointAvatar's "
                                 "rgb_erode_dilate")
    no_cloth: bool = setting("also report <metric>_no_cloth with cloth labels {15, 16} of the GT semantic map set "
                             "to white in both images (needs semantic maps)")
    lpips_weights: str | None = setting(
        "LPIPS AlexNet weights: a .pth file or a folder of them (torchvision alexnet-owt-7be5be79.pth + lpips "
        "v0.1 alex.pth); null = LPIPS reported as null", path="any")
    yaw_max_deg: float = setting("the yaw set turns the head from -max to +max around its mean rotation in the "
                                 "target's frames, degrees", ge=0, le=90)
    yaw_frames: int = setting("frames of the yaw set", ge=1)
    yaw_expression_frame: int | None = setting(
        "target frame whose expression, jaw and eyes the yaw set uses; null = the mean of the target's frames", ge=0)
    camera_frame: int = setting("target frame (0-based index in the test dataset) whose camera and identity the "
                                "driving and yaw sets use", ge=0)
    driving_flame_params: str | None = setting(
        "driving video: its flame_params.json or folder; null = no driving set")
    novel_root: str | None = setting(
        "folder of novel view sets <root>/<subject>/<subject>/<set>/ with views.json (the synthetic database's "
        "novel/), rendered for the run's subjects that have them; null = no novel set")
    refine_steps: int = setting(
        "test-time refinement: Adam steps fitting each test frame's expression, pose and translation to its "
        "images (the model frozen), reported apart as the set test_refined; 0 = off", ge=0)
    refine_lr: float = setting("learning rate of the test-time refinement", gt=0)
    fps: float = setting("frame rate of the mp4s, frames per second", gt=0)
    grid_rows: int = setting("frames (rows) of each set's grid.png, evenly spaced", ge=1)

    def problems(self) -> list[str]:
        if "rgb" not in self.channels:
            return [f"channels: must include 'rgb', got {list(self.channels)}"]
        return []
