"""Settings of the synthetic database, read once from the config's ``synth_db`` section.

The dataclass mirrors the schema keys (see ``code/pegasus/config/schema.py`` for their
meaning and units) and checks the values the schema cannot: ranges, distinct names, known
categories. Errors name the config key.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..config import Config, raise_for_problems
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


@dataclass(frozen=True)
class SynthDbSettings:
    """The ``synth_db`` config section (types and meanings as in the schema)."""

    root: str
    seed: int
    target: str
    new_person: str
    db_prefix: str
    n_db: int
    train_video: str
    test_video: str
    train_frames: int
    test_frames: int
    fps: float
    image_size: int
    supersample: int
    texture_size: int
    batch_size: int
    workers: int
    camera_distance: float
    focal: float
    camera_height: float
    camera_jitter: float
    max_yaw_deg: float
    max_pitch_deg: float
    max_roll_deg: float
    head_motion_hz: tuple[float, float]
    expression_hz: tuple[float, float]
    jaw_hz: tuple[float, float]
    max_jaw_opening: float
    expression_amplitude: float
    blink_components: tuple[str, ...]
    blink_interval_s: tuple[float, float]
    gaze_amplitude: float
    ambient: float
    diffuse: float
    light_azimuth_deg: float
    light_elevation_deg: tuple[float, float]
    identity_std: float
    db_accessory_fraction: float
    gt_categories: tuple[str, ...]
    gt_frame_stride: int
    contact_tile: int
    previews: bool

    @classmethod
    def from_config(cls, cfg: Config) -> "SynthDbSettings":
        """Reads ``cfg.synth_db`` and checks it; raises ConfigError naming the key."""
        section = cfg.synth_db
        values = {field.name: section[field.name] for field in fields(cls)}
        for name, value in values.items():  # numbers in lists are floats (ints are accepted)
            if isinstance(value, tuple):
                values[name] = tuple(float(v) if isinstance(v, int) else v for v in value)
        settings = cls(**values)
        raise_for_problems(cfg.source, "synth_db", settings._problems())
        return settings

    def _problems(self) -> list[str]:
        problems = []
        for name in ("n_db", "train_frames", "test_frames", "image_size", "supersample", "texture_size",
                     "batch_size", "workers", "gt_frame_stride", "contact_tile"):
            if getattr(self, name) < 1:
                problems.append(f"{name}: must be ≥ 1, got {getattr(self, name)}")
        for name in ("fps", "focal", "camera_distance"):
            if getattr(self, name) <= 0:
                problems.append(f"{name}: must be > 0, got {getattr(self, name)}")
        for name in ("head_motion_hz", "expression_hz", "jaw_hz", "blink_interval_s", "light_elevation_deg"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                problems.append(f"{name}: expected [min, max] with 0 ≤ min ≤ max, got {[low, high]}")
        if not 0.0 <= self.db_accessory_fraction <= 1.0:
            problems.append(f"db_accessory_fraction: must be in [0, 1], got {self.db_accessory_fraction}")
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
        data = {k: v for k, v in asdict(self).items() if k not in _RUN_ONLY | _GROUND_TRUTH_ONLY}
        data["version"] = SYNTH_DB_VERSION
        return data

    def ground_truth_fingerprint(self) -> dict:
        """The settings that change a person's ground-truth tree."""
        data = {k: v for k, v in asdict(self).items() if k not in _RUN_ONLY}
        data["version"] = SYNTH_DB_VERSION
        return data
