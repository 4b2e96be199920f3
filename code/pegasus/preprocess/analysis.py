"""Per-frame analysis of a cropped frame: 68 landmarks + irises, sharpness, matte, label map.

:class:`FrameAnalyser` builds the configured backends once (dlib or face_alignment
landmarks, MediaPipe or MODNet matte, mesh or BiSeNet parsing, optional SAM accessories)
and runs them on each (S, S, 3) crop, timing every step.
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .face import IRIS_MESH_INDICES, DlibLandmarks, anchor_disagreement, mesh_box
from .filtering import sharpness
from .matte import SelfieSegmenter, refine_matte
from .optional import BisenetParsing, FaceAlignmentLandmarks, ModnetMatting, SamAccessories
from .parsing import parse_face
from .settings import PreprocessSettings

__all__ = ["FrameAnalysis", "FrameAnalyser", "STEPS"]

STEPS = ("landmarks", "matte", "parsing", "accessories")
"""The timed steps of :meth:`FrameAnalyser.__call__`, in order."""


@dataclass(frozen=True)
class FrameAnalysis:
    """Everything measured on one crop (S = crop side).

    Attributes:
        landmarks: (68, 2) float64 iBUG-68 pixels, NaN when there is no face or the
            detector failed.
        iris: (2, 2) float64 iris centres, pixels (NaN without a face).
        disagreement: landmark-vs-mesh anchor distance, pixels (NaN without landmarks).
        sharpness: variance of the Laplacian of the face box (NaN without a face).
        matte: (S, S) uint8 soft foreground 0–255.
        labels: (S, S) uint8 CelebAMask-HQ ids (all background without a face).
    """

    landmarks: np.ndarray
    iris: np.ndarray
    disagreement: float
    sharpness: float
    matte: np.ndarray
    labels: np.ndarray


class FrameAnalyser:
    """The configured per-frame backends; ``seconds`` accumulates the time of each step."""

    def __init__(self, settings: PreprocessSettings, device: str = "cpu"):
        """``device``: torch device of the optional network backends (face_alignment, SAM)."""
        self.settings = settings
        if settings.landmarks.backend == "face_alignment":
            self._landmarks = FaceAlignmentLandmarks(device)
        else:
            self._landmarks = DlibLandmarks(settings.landmarks.dlib_predictor, settings.landmarks.dlib_box)
        if settings.matte.backend == "modnet":
            self._matte = ModnetMatting(settings.matte.modnet_weights)
        else:
            segmenter = SelfieSegmenter(settings.matte.model_selection)
            self._matte = lambda rgb: refine_matte(rgb, segmenter(rgb), settings.matte)
        self._parser = BisenetParsing(settings.parsing.bisenet_weights) if settings.parsing.backend == "bisenet" \
            else None
        accessories = settings.accessories
        self._accessories = SamAccessories(accessories.sam_checkpoint, accessories.sam_model_type, accessories.worn,
                                           device) if accessories.backend == "sam" else None
        self.seconds: dict[str, float] = defaultdict(float)

    def _timed(self, step: str, begin: float) -> float:
        now = time.perf_counter()
        self.seconds[step] += now - begin
        return now

    def __call__(self, rgb: np.ndarray, mesh: np.ndarray | None) -> FrameAnalysis:
        """Analyses one (S, S, 3) uint8 RGB crop given its (478, 2) mesh in crop pixels (None: no face)."""
        begin = time.perf_counter()
        if mesh is None:
            landmarks, iris = np.full((68, 2), np.nan), np.full((2, 2), np.nan)
            disagreement = sharp = float("nan")
        else:
            landmarks, iris = self._landmarks(rgb, mesh), mesh[list(IRIS_MESH_INDICES)]
            disagreement = float(anchor_disagreement(landmarks, mesh))
            sharp = sharpness(rgb, mesh_box(mesh))
        begin = self._timed("landmarks", begin)
        matte = self._matte(rgb)
        begin = self._timed("matte", begin)
        if mesh is None:
            labels = np.zeros(matte.shape, np.uint8)
        elif self._parser is not None:
            foreground = matte >= self.settings.parsing.foreground_threshold
            labels = np.where(foreground, self._parser(rgb), 0).astype(np.uint8)
        else:
            labels = parse_face(rgb, matte, mesh, self.settings.parsing)
        begin = self._timed("parsing", begin)
        if self._accessories is not None and mesh is not None:
            labels = self._accessories(rgb, mesh, matte, labels)
        self._timed("accessories", begin)
        matte8 = np.clip(np.rint(matte * 255.0), 0, 255).astype(np.uint8)
        return FrameAnalysis(landmarks, iris, disagreement, sharp, matte8, labels)
