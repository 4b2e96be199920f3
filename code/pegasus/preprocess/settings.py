"""The ``preprocess`` config section as typed settings (meanings and units in the schema)."""
from __future__ import annotations

from dataclasses import dataclass, fields

from ..config import Config, raise_for_problems
from .crop import CropSettings
from .filtering import FilterSettings
from .matte import MatteSettings
from .parsing import ParsingSettings

__all__ = ["FaceSettings", "LandmarkSettings", "AccessorySettings", "PreprocessSettings"]

_ACCESSORIES = ("eyeglasses", "hat")  # label names SAM can add (pegasus.data.parts)


@dataclass(frozen=True)
class FaceSettings:
    """``preprocess.face``: the MediaPipe face mesh."""

    min_detection_confidence: float
    min_tracking_confidence: float


@dataclass(frozen=True)
class LandmarkSettings:
    """``preprocess.landmarks``: the 68-point detector."""

    backend: str
    dlib_predictor: str | None
    dlib_box: tuple[float, float, float, float]


@dataclass(frozen=True)
class AccessorySettings:
    """``preprocess.accessories``: optional SAM masks of worn accessories."""

    backend: str
    worn: tuple[str, ...]
    sam_checkpoint: str | None
    sam_model_type: str


def _section(cls, section: Config):
    return cls(**{f.name: section[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class PreprocessSettings:
    """Everything the preprocessing chain reads from the config, except tracking
    (:class:`pegasus.preprocess.tracking.TrackingSettings`)."""

    output_root: str
    image_size: int
    frame_stride: int
    max_frames: int | None
    video_suffixes: tuple[str, ...]
    preview: bool
    preview_size: int
    device: str
    face: FaceSettings
    landmarks: LandmarkSettings
    crop: CropSettings
    matte: MatteSettings
    parsing: ParsingSettings
    accessories: AccessorySettings
    filter: FilterSettings

    @classmethod
    def from_config(cls, cfg: Config) -> "PreprocessSettings":
        """Reads ``cfg.preprocess`` (and ``experiment.device`` for the optional backends);
        raises ConfigError naming each bad key."""
        section = cfg.preprocess
        settings = cls(
            output_root=section.output_root, image_size=section.image_size, frame_stride=section.frame_stride,
            max_frames=section.max_frames, video_suffixes=tuple(s.lower() for s in section.video_suffixes),
            preview=section.preview, preview_size=section.preview_size, device=_torch_device(cfg.experiment.device),
            face=_section(FaceSettings, section.face), landmarks=_section(LandmarkSettings, section.landmarks),
            crop=_section(CropSettings, section.crop), matte=_section(MatteSettings, section.matte),
            parsing=_section(ParsingSettings, section.parsing),
            accessories=_section(AccessorySettings, section.accessories),
            filter=_section(FilterSettings, section.filter),
        )
        raise_for_problems(cfg.source, "preprocess", settings.problems())
        return settings

    def problems(self) -> list[str]:
        """What is wrong with the values (empty when they are usable)."""
        positive = {"image_size": self.image_size, "frame_stride": self.frame_stride,
                    "preview_size": self.preview_size, "crop.scale": self.crop.scale,
                    "matte.refine_subsample": self.matte.refine_subsample,
                    "filter.landmark_tolerance": self.filter.landmark_tolerance,
                    "filter.jump_threshold": self.filter.jump_threshold}
        problems = [f"{key}: must be > 0, got {value}" for key, value in positive.items() if not value > 0]
        if self.max_frames is not None and self.max_frames < 1:
            problems.append(f"max_frames: must be ≥ 1 or null, got {self.max_frames}")
        non_negative = {"crop.smoothing_s": self.crop.smoothing_s, "matte.refine_radius": self.matte.refine_radius,
                        "matte.refine_eps": self.matte.refine_eps, "filter.blur_ratio": self.filter.blur_ratio}
        problems += [f"{key}: must be ≥ 0, got {value}" for key, value in non_negative.items() if not value >= 0]
        if not 0 < self.parsing.foreground_threshold < 1:
            problems.append(f"parsing.foreground_threshold: must be in (0, 1), got {self.parsing.foreground_threshold}")
        unknown = sorted(set(self.accessories.worn) - set(_ACCESSORIES))
        if unknown:
            problems.append(f"accessories.worn: {unknown} are not accessories SAM can mask ({list(_ACCESSORIES)})")
        return problems


def _torch_device(device: str) -> str:
    """``experiment.device`` → a torch device string for the optional backends."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
