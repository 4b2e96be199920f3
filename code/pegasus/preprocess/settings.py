"""Declaration of the ``preprocess`` config section and its sub-sections (values in confs/base.conf)."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.declare import Section, setting

__all__ = ["FaceSettings", "LandmarkSettings", "CropSettings", "MatteSettings", "ParsingSettings",
           "AccessorySettings", "FilterSettings", "TrackingSettings", "PreprocessSettings", "torch_device"]

_ACCESSORIES = ("eyeglasses", "hat")  # label names SAM can add (pegasus.data.parts)


@dataclass(frozen=True)
class FaceSettings(Section):
    """``preprocess.face``: the MediaPipe face mesh."""

    min_detection_confidence: float = setting("MediaPipe face-detector score needed to start tracking a face",
                                              ge=0, le=1)
    min_tracking_confidence: float = setting("MediaPipe face-mesh score below which the detector runs again",
                                             ge=0, le=1)


@dataclass(frozen=True)
class LandmarkSettings(Section):
    """``preprocess.landmarks``: the 68-point detector."""

    backend: str = setting("68-point landmarks: dlib (offline default) or face_alignment (FAN; the "
                           "face-alignment package and its downloaded weights)", choices=("dlib", "face_alignment"))
    dlib_predictor: str | None = setting("dlib shape_predictor_68_face_landmarks.dat; null = the "
                                         "face-recognition-models package's copy or /usr/share/dlib", path="file")
    dlib_box: tuple[float, float, float, float] = setting(
        "dlib's face box [left, top, right, bottom] in units of the face-mesh box width from its top-left corner "
        "(fitted to dlib's own detector boxes)")


@dataclass(frozen=True)
class CropSettings(Section):
    """``preprocess.crop``: the square crop around the face."""

    mode: str = setting("fixed: one square box per video (matches the one camera per video); follow: a box per "
                        "frame, smoothed in time", choices=("fixed", "follow"))
    scale: float = setting("crop side / face size (the larger side of the face-mesh box)", gt=0)
    vertical_offset: float = setting("crop centre below the face-box centre, in face sizes (negative: up, more "
                                     "hair and less neck)")
    smoothing_s: float = setting("follow mode: std of the Gaussian smoothing the box over time, seconds", ge=0)


@dataclass(frozen=True)
class MatteSettings(Section):
    """``preprocess.matte``: the soft foreground matte."""

    backend: str = setting("mediapipe (selfie segmentation + refinement, offline) or modnet (a MODNet ONNX file, "
                           "matte.modnet_weights)", choices=("mediapipe", "modnet"))
    model_selection: int = setting("MediaPipe selfie model: 0 general (256²), 1 landscape (144×256)", choices=(0, 1))
    refine_radius: int = setting("guided-filter radius of the edge refinement, pixels of the crop; 0 = the "
                                 "network's soft mask as is", ge=0)
    refine_eps: float = setting("guided-filter regularisation, intensity² in [0, 1] (larger: smoother edges that "
                                "follow the image less)", ge=0)
    refine_subsample: int = setting("the guided filter's coefficients are computed this many times coarser (fast "
                                    "guided filter; 1 = exact)", ge=1)
    keep_largest: bool = setting("keep only the largest connected foreground region")
    modnet_weights: str | None = setting("MODNet ONNX file (docs/preprocess.md says where to get it)", path="file")


@dataclass(frozen=True)
class ParsingSettings(Section):
    """``preprocess.parsing``: the face-parsing label maps."""

    backend: str = setting("mesh (face-mesh polygons + matte + skin colour, offline; no glasses, ears, earrings, "
                           "necklace, hat) or bisenet (a BiSeNet ONNX file)", choices=("mesh", "bisenet"))
    foreground_threshold: float = setting("matte value (0-1) from which a pixel is labelled, else background",
                                          gt=0, lt=1)
    hair_line: float = setting("outside the face oval, hair (or skin) only above this line, a fraction of the chin "
                               "→ forehead distance above the chin; below it neck or cloth")
    skin_distance: float = setting("skin-like colour: largest Mahalanobis distance (YCrCb) from the colours of the "
                                   "frame's cheeks", gt=0)
    skin_min_luma: float = setting("skin-like colour: smallest luma as a fraction of the cheeks' mean (darker "
                                   "pixels are hair or cloth)", ge=0)
    bisenet_weights: str | None = setting("BiSeNet face-parsing ONNX file (19 CelebAMask-HQ classes)", path="file")


@dataclass(frozen=True)
class AccessorySettings(Section):
    """``preprocess.accessories``: optional SAM masks of worn accessories."""

    backend: str = setting("none, or sam: SAM masks of the worn accessories painted into the label maps",
                           choices=("none", "sam"))
    worn: tuple[str, ...] = setting("accessories the subject wears (sam backend)", choices=_ACCESSORIES)
    sam_checkpoint: str | None = setting("SAM checkpoint file, e.g. sam_vit_b_01ec64.pth", path="file")
    sam_model_type: str = setting("SAM architecture of the checkpoint", choices=("vit_h", "vit_l", "vit_b"))


@dataclass(frozen=True)
class FilterSettings(Section):
    """``preprocess.filter``: which frames are dropped."""

    landmark_tolerance: float = setting("landmark failure: median landmark-to-mesh distance at the anchor points "
                                        "above this many face sizes", gt=0)
    blur_ratio: float = setting("blur: variance of the Laplacian of the face below this fraction of the video's "
                                "median (0 = never)", ge=0)
    jump_threshold: float = setting("jump: landmarks further than this many face sizes (mean over points) from "
                                    "every constant-velocity prediction from the neighbouring frames", gt=0)


@dataclass(frozen=True)
class TrackingSettings(Section):
    """``preprocess.tracking``: the FLAME fit to the landmarks (pegasus.preprocess.tracking, docs/tracking.md)."""

    focal: float = setting("focal length in units of the image side; intrinsics [-focal, focal, 0.5, 0.5] "
                           "(IMavatar: 1500 px at 512² = 2.9296875)", gt=0)
    shared_shape: bool = setting("one shape for all videos tracked together (one person); false: each video is "
                                 "fitted on its own with its own shape")
    lr: float = setting("Adam learning rate at the start of each stage (IMavatar 1e-2)", gt=0)
    lr_decay: float = setting("the learning rate decays exponentially to lr·lr_decay over each stage (1 = "
                              "constant)", gt=0, le=1)
    rigid_iterations: int = setting("Adam steps of stage 1: neck rotation and camera translation", ge=0)
    iterations: int = setting("Adam steps of stage 2: shape, expression, neck, jaw, eyes, translation", ge=0)
    shape_prior: float = setting("weight of mean(shape²), relative to the mean landmark distance in normalised "
                                 "image coordinates [-1, 1] (IMavatar 1e-2)", ge=0)
    expression_prior: float = setting("weight of mean(expression²) (IMavatar 1e-2)", ge=0)
    pose_prior: float = setting("weight of mean(θ²) of the jaw and eye rotations, radians", ge=0)
    limit_weight: float = setting("weight of mean(excess²) of the jaw and eye rotations outside their limits, "
                                  "radians", ge=0)
    jaw_opening_range: tuple[float, float] = setting("[min, max] jaw opening (rotation about x), radians",
                                                     ordered=True)
    jaw_side_max: float = setting("largest |jaw rotation| about y and z, radians", ge=0)
    eye_max: float = setting("largest |eye rotation| per axis-angle component, radians", gt=0)
    smooth_expression: float = setting("weight of mean(Δexpression²/gap) between consecutive fitted frames of a "
                                       "video, gap in frames (IMavatar 0.1)", ge=0)
    smooth_pose: float = setting("weight of mean(Δpose²/gap) of neck, jaw and eyes, radians (IMavatar 10)", ge=0)
    smooth_translation: float = setting("weight of mean(Δt²/gap) of the camera translation, scaled head units "
                                        "(IMavatar 10)", ge=0)
    fixed_expressions: tuple[str, ...] = setting(
        "expression components held at zero in the fit, by the head model's component names (e.g. [jawOpen] for "
        "ICT-FaceKit, whose jaw joint opens the mouth too); [] = none")
    init_backend: str = setting("starting point of the fit: none (zero shape, expression, pose; closed-form "
                                "translation) or deca (DECA's codes; needs FLAME as the head model, "
                                "docs/preprocess.md)", choices=("none", "deca"))
    deca_model: str | None = setting("DECA's deca_model.tar, run here with the decalib package when deca_codes is "
                                     "null (docs/preprocess.md says where to get both)", path="file")
    deca_codes: str | None = setting("precomputed DECA codes: an .npz per video with per-frame shape, exp, pose, "
                                     "cam (and tform); {video} in the path is the video name. null = run DECA "
                                     "(deca_model)")

    def problems(self) -> list[str]:
        if self.rigid_iterations + self.iterations < 1:
            return ["rigid_iterations, iterations: at least one iteration is needed"]
        return []


@dataclass(frozen=True)
class PreprocessSettings(Section):
    """``preprocess``: raw videos → IMavatar-layout datasets (pegasus.preprocess, docs/preprocess.md)."""

    output_root: str = setting("datasets folder the subject is written to: <output_root>/<subject>/<subject>/"
                               "<video>/, work files in <output_root>/<subject>/preprocess/")
    image_size: int = setting("side of the square cropped frames, pixels (512 in the originals)", ge=16)
    frame_stride: int = setting("keep every n-th source frame", ge=1)
    max_frames: int | None = setting("keep at most this many frames per video (after the stride); null = all",
                                     ge=1)
    start_s: float | None = setting("first second of each clip that is read (null = its start)", ge=0)
    end_s: float | None = setting("the clip is read up to this second (null = its end)", gt=0)
    video_suffixes: tuple[str, ...] = setting("file suffixes taken as videos (lower case, with the dot)")
    preview: bool = setting("write preview.mp4 / preview.png per video (landmarks, matte, labels)")
    preview_size: int = setting("side of each preview tile, pixels", ge=16)
    face: FaceSettings
    landmarks: LandmarkSettings
    crop: CropSettings
    matte: MatteSettings
    parsing: ParsingSettings
    accessories: AccessorySettings
    filter: FilterSettings
    tracking: TrackingSettings

    def problems(self) -> list[str]:
        problems = []
        if self.start_s is not None and self.end_s is not None and self.end_s <= self.start_s:
            problems.append(f"end_s: must be after start_s ({self.start_s}), got {self.end_s}")
        if any(s != s.lower() or not s.startswith(".") for s in self.video_suffixes):
            problems.append(f"video_suffixes: lower-case suffixes with the dot, got {list(self.video_suffixes)}")
        return problems


def torch_device(device: str) -> str:
    """``experiment.device`` → a torch device string for the optional backends."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
