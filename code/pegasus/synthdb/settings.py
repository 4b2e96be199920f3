"""Declaration of the ``synth_db`` config section (values in confs/base.conf).

Bounds are declared with each key; :meth:`SynthDbSettings.problems` checks what relates
several keys (distinct names, known categories). Errors name the config key.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..config.declare import Section, setting
from ..data.parts import category

__all__ = ["SynthDbSettings", "SYNTH_DB_VERSION"]

#: Bumped whenever the generator's output changes for unchanged settings, so stored people
#: and ground truth are re-rendered.
SYNTH_DB_VERSION = 2  # 2: one light per person (shared by their videos)

# Left out of the hashes: settings that change how the work is run, not what is written;
# the population size (each person's choices do not depend on it); and, for the videos,
# the ground-truth settings.
_RUN_ONLY = frozenset({"root", "workers", "batch_size", "previews", "contact_tile", "n_db"})
_GROUND_TRUTH_ONLY = frozenset({"gt_categories", "gt_frame_stride"})
_NOVEL_ONLY = frozenset({"novel_angles_deg", "novel_expressions", "novel_expression_scale"})
_DRIVEN_ONLY = frozenset({"driven_frame_stride"})


@dataclass(frozen=True)
class SynthDbSettings(Section):
    """The ``synth_db`` config section: the generated multi-person video database."""

    root: str = setting("output folder: <root>/<person>/<person>/<video>/, ground_truth/, previews/")
    seed: int = setting("population, motion and texture seed (same seed → byte-identical PNGs and JSON)", ge=0)
    target: str = setting("name of the target, the person PEGASUS personalises")
    new_person: str = setting("name of the person of zero-shot transfer")
    db_prefix: str = setting("DB people are named <db_prefix>00, <db_prefix>01, …")
    n_db: int = setting("number of DB people", ge=1)
    train_video: str = setting("folder name of each person's training video")
    test_video: str = setting("folder name of each person's test video (different motion)")
    train_frames: int = setting("frames of each training video", ge=1)
    test_frames: int = setting("frames of each test video", ge=1)
    fps: float = setting("frame rate of the motion and of the preview mp4s, frames per second", gt=0)
    image_size: int = setting("side of the square frames, pixels", ge=16)
    supersample: int = setting("renderer subsamples per pixel side (anti-aliased masks and edges)", ge=1)
    texture_size: int = setting("side of a person's head texture in texels (the atlas is twice as wide)", ge=16)
    batch_size: int = setting("frames per render call", ge=1)
    workers: int = setting("worker processes (1 = render in this process)", ge=1)
    camera_distance: float = setting("camera distance from the head origin along +z, scaled head units", gt=0)
    focal: float = setting("focal length in units of the image side (intrinsics [-focal, focal, 0.5, 0.5])", gt=0)
    camera_height: float = setting("height y of the point the camera centres, scaled head units")
    camera_jitter: float = setting("amplitude of the smooth per-frame camera translation, scaled head units", ge=0)
    max_yaw_deg: float = setting("peak head yaw (turn left/right) of every video, degrees", ge=0, le=90)
    max_pitch_deg: float = setting("peak head pitch (nod), degrees", ge=0, le=90)
    max_roll_deg: float = setting("peak head roll (tilt), degrees", ge=0, le=90)
    head_motion_hz: tuple[float, float] = setting("frequency range [min, max] of the head rotation, Hz", ge=0,
                                                  ordered=True)
    expression_hz: tuple[float, float] = setting("frequency range [min, max] of the expressions, Hz", ge=0,
                                                 ordered=True)
    jaw_hz: tuple[float, float] = setting("frequency range [min, max] of the jaw (talking), Hz", ge=0, ordered=True)
    max_jaw_opening: float = setting("peak jaw opening, radians", ge=0)
    expression_amplitude: float = setting("peak |coefficient| of the expression components (head-model units)",
                                          ge=0)
    blink_components: tuple[str, ...] = setting("expression components driven together as blinks (0 open, "
                                                "1 closed)")
    blink_interval_s: tuple[float, float] = setting("range [min, max] of the time between blinks, seconds", gt=0,
                                                    ordered=True)
    gaze_amplitude: float = setting("peak eyeball rotation of the gaze, radians", ge=0)
    ambient: float = setting("ambient light weight (Lambertian shading)", ge=0)
    diffuse: float = setting("diffuse light weight (Lambertian shading)", ge=0)
    light_azimuth_deg: float = setting("peak |azimuth| of each person's light (shared by their videos) from the "
                                       "camera axis, degrees", ge=0, le=180)
    light_elevation_deg: tuple[float, float] = setting("range [min, max] of each person's light elevation, "
                                                       "degrees", ge=-90, le=90, ordered=True)
    identity_std: float = setting("std of the sampled identity coefficients not owned by a part", ge=0)
    db_accessory_fraction: float = setting("fraction of DB people wearing each worn accessory (hat, eyeglasses); "
                                           "the target and the new person wear none", ge=0, le=1)
    gt_categories: tuple[str, ...] = setting("part categories of the ground truth 'person with DB person k's "
                                             "part'")
    gt_frame_stride: int = setting("every n-th test frame gets ground truth", ge=1)
    driven_frame_stride: int = setting("every n-th frame of the target's test video drives each DB person for the "
                                       "cross-driven ground truth (cross_driven/)", ge=1)
    novel_angles_deg: tuple[float, ...] = setting(
        "novel views of the target and the new person: yaw and pitch offsets ± each angle around their mean "
        "training pose, degrees (e.g. [15, 30, 45]; [] = none)", gt=0, le=90, ordered=True)
    novel_expressions: int = setting("frames of expressions outside the training range, at the mean training pose "
                                     "(0 = none)", ge=0)
    novel_expression_scale: float = setting("the novel expressions' amplitude, times expression_amplitude (training "
                                            "videos stay within 1×)", gt=0)
    contact_tile: int = setting("side of each contact-sheet tile, pixels", ge=16)
    previews: bool = setting("write an mp4 per video to <root>/previews/")

    def problems(self) -> list[str]:
        problems = []
        names = [self.target, self.new_person, self.db_prefix + "00"]
        for key, name in (("target", self.target), ("new_person", self.new_person), ("db_prefix", self.db_prefix)):
            if not name or "/" in name or "\\" in name or name.startswith("."):
                problems.append(f"{key}: {name!r} is not a usable folder name")
        if len(set(names[:2])) < 2 or any(n.startswith(self.db_prefix) for n in names[:2]):
            problems.append(f"target, new_person, db_prefix: names must differ and not start with the DB "
                            f"prefix, got {names[0]!r}, {names[1]!r}, {self.db_prefix!r}")
        if self.train_video == self.test_video or not self.train_video or not self.test_video:
            problems.append(f"train_video, test_video: need two distinct names, got {self.train_video!r}, "
                            f"{self.test_video!r}")
        for name in self.gt_categories:
            try:
                if not category(name).is_part:
                    problems.append(f"gt_categories: {name!r} has no part labels")
            except KeyError as err:
                problems.append(f"gt_categories: {err.args[0]}")
        return problems

    @property
    def db_names(self) -> tuple[str, ...]:
        """Names of the DB people in order."""
        return tuple(f"{self.db_prefix}{k:02d}" for k in range(self.n_db))

    def frame_count(self, video: str) -> int:
        """Frames of the named video (the training or the test video)."""
        counts = {self.train_video: self.train_frames, self.test_video: self.test_frames}
        if video not in counts:
            raise ValueError(f"unknown synthetic video {video!r}; videos are {sorted(counts)}")
        return counts[video]

    def video_fingerprint(self) -> dict:
        """The settings that change a person's written videos (hashed into their record)."""
        return self._fingerprint(_RUN_ONLY | _GROUND_TRUTH_ONLY | _NOVEL_ONLY | _DRIVEN_ONLY)

    def ground_truth_fingerprint(self) -> dict:
        """The settings that change a person's ground-truth tree."""
        return self._fingerprint(_RUN_ONLY | _NOVEL_ONLY | _DRIVEN_ONLY)

    def novel_fingerprint(self) -> dict:
        """The settings that change a person's novel views and expressions."""
        return self._fingerprint(_RUN_ONLY | _GROUND_TRUTH_ONLY | _DRIVEN_ONLY)

    def driven_fingerprint(self) -> dict:
        """The settings that change a DB person's cross-driven ground truth."""
        return self._fingerprint(_RUN_ONLY | _GROUND_TRUTH_ONLY | _NOVEL_ONLY)

    def _fingerprint(self, left_out: frozenset) -> dict:
        data = {k: v for k, v in asdict(self).items() if k not in left_out}
        data["version"] = SYNTH_DB_VERSION
        return data
