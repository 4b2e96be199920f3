"""The preprocessing chain: raw videos of one person → an IMavatar-layout subject folder.

Layout (``<root>`` = ``preprocess.output_root``)::

    <root>/<subject>/<subject>/<video>/     the dataset (pegasus.data.imavatar), written last
    <root>/<subject>/<subject>/blacklist.json   excluded frames per video
    <root>/<subject>/preprocess/            work folder
        summary.json                        frames kept / dropped with reasons, reprojection
                                            errors, stage timings
        tracking.json                       record of the joint FLAME fit of the videos
        <video>/detect.npz                  face mesh on the source frames
                crop.json                   crop boxes (source pixels) of the kept frames
                analysis.npz                landmarks, irises, sharpness, mattes, label maps
                filter.json                 exclusion reasons per frame
                flame_params.json           the fit of this video
                written.json                record of the dataset folder written from them
                preview.mp4, preview.png    landmarks, matte and labels over the frames

Stages, in order: ``detect`` → ``crop`` → ``analyse`` → ``filter`` (per video), ``track``
(all videos together: they share one FLAME shape with ``preprocess.tracking.shared_shape``),
``write`` and ``preview`` (per video). Every stage output records a key: a hash of the
settings it was made with and the keys of its inputs (the source video's path, size and
modification time for ``detect``). A stage whose output exists with the current key is
skipped, so an interrupted or re-configured run redoes only what changed. Every file is
written atomically (:func:`pegasus.utils.atomic_path`); the dataset folder of a video is
written whole by :func:`pegasus.data.imavatar.write_video`, so a reader never sees half a
dataset.
"""
from __future__ import annotations

import json
import logging
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import Config
from ..data.images import DataError
from ..data.imavatar import (FLAME_PARAMS_FILE, FlameParams, numbered_frame_names, read_blacklist,
                             read_flame_params, subject_dir, video_dir, write_blacklist, write_flame_params,
                             write_video)
from ..utils import atomic_path
from ..utils.records import digest, read_record, write_record
from .analysis import STEPS, FrameAnalyser
from .crop import crop_frame, face_boxes_to_crops, source_to_crop
from .face import MESH_POINT_COUNT, FaceMeshTracker, mesh_box
from .filtering import filter_frames
from .preview import caption, preview_frame, write_preview
from .settings import PreprocessSettings, torch_device
from .video import VideoInfo, probe_video, read_frames, source_fingerprint

__all__ = ["WORK_DIR", "STAGES", "VideoSource", "StageRun", "PreprocessReport", "find_videos", "preprocess_subject"]

log = logging.getLogger(__name__)

WORK_DIR = "preprocess"
STAGES = ("detect", "crop", "analyse", "filter", "track", "write", "preview")
SUMMARY_FILE = "summary.json"
TRACKING_FILE = "tracking.json"


@dataclass(frozen=True)
class VideoSource:
    """One raw video and the name of its dataset folder."""

    name: str
    path: Path


@dataclass(frozen=True)
class StageRun:
    """One stage of one video (``video`` None for the subject-wide ``track``).

    Attributes:
        seconds: wall time of the run that made the output (also when skipped now).
        cpu_seconds: process CPU time (all threads) of that run.
        frames: frames the stage processed.
        skipped: the output was already complete.
        steps: seconds of the sub-steps, where the stage has them.
    """

    stage: str
    video: str | None
    seconds: float
    cpu_seconds: float
    frames: int
    skipped: bool
    steps: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PreprocessReport:
    """What :func:`preprocess_subject` did.

    Attributes:
        subject_path: ``<root>/<subject>/<subject>``.
        work_path: ``<root>/<subject>/preprocess``.
        summary: the content of ``summary.json``.
        stages: one entry per stage and video, in run order.
    """

    subject_path: Path
    work_path: Path
    summary: dict
    stages: tuple[StageRun, ...]


# ---------------------------------------------------------------------------------------
# Stage records


def _key(*parts) -> str:
    """A stable hash of the parts (dataclasses become dicts)."""
    return digest(list(parts), length=32)


def _read_json(path: Path, key: str) -> dict | None:
    """The record at ``path`` if it exists and was made with ``key``."""
    record = read_record(path)
    return record if record is not None and record.get("key") == key else None


def _read_npz(path: Path, key: str) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["key"]) != key:
                return None
            return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, KeyError):
        return None


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz that ``np.load`` reads, deflated at level 1 (3× faster than numpy's default, masks
    and label maps come out ~10 % larger)."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


class _Clock:
    """Wall and process CPU time (all threads) since construction."""

    def __init__(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def read(self) -> dict[str, float]:
        """{"seconds": wall seconds, "cpu_seconds": process CPU seconds}."""
        return {"seconds": time.perf_counter() - self._wall, "cpu_seconds": time.process_time() - self._cpu}


def _nan_to_none(values: np.ndarray) -> list:
    return [None if not np.isfinite(v) else float(v) for v in values]


# ---------------------------------------------------------------------------------------
# Per-video stages


@dataclass
class _Video:
    """One video's source, work folder and stage outputs as they are produced."""

    source: VideoSource
    work: Path
    info: VideoInfo | None = None
    detect: dict | None = None
    crop: dict | None = None
    analysis: dict | None = None
    filter: dict | None = None
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.source.name


class _Runner:
    """Runs the stages of one subject, recording each in ``runs``."""

    def __init__(self, cfg: Config, settings: PreprocessSettings, subject: str):
        self.cfg, self.settings, self.subject = cfg, settings, subject
        self.subject_root = Path(settings.output_root) / subject
        self.work_root = self.subject_root / WORK_DIR
        self.runs: list[StageRun] = []

    def _record(self, stage: str, video: str | None, record: dict, skipped: bool) -> None:
        self.runs.append(StageRun(stage, video, float(record["seconds"]), float(record["cpu_seconds"]),
                                  int(record["frames"]), skipped, dict(record.get("steps", {}))))
        action = "skipped (complete)" if skipped else f"{float(record['seconds']):.1f} s"
        log.info("%s %s: %s, %d frames", stage, video or self.subject, action, int(record["frames"]))

    def _source_frames(self, video: _Video):
        """Yields ``(source index, (H, W, 3) uint8 RGB)`` of the kept frames of a video."""
        s, fps = self.settings, video.info.fps
        start = 0 if s.start_s is None else int(round(s.start_s * fps))
        end = None if s.end_s is None else int(round(s.end_s * fps))
        return read_frames(video.source.path, s.frame_stride, s.max_frames, start, end)

    # --- detect: face mesh on the source frames ----------------------------------------------
    def detect(self, video: _Video) -> None:
        s = self.settings
        key = _key("detect", source_fingerprint(video.source.path), s.frame_stride, s.max_frames, s.start_s, s.end_s,
                   s.face)
        path = video.work / "detect.npz"
        record = _read_npz(path, key)
        skipped = record is not None
        if record is None:
            clock = _Clock()
            indices, meshes = [], []
            with FaceMeshTracker(s.face.min_detection_confidence, s.face.min_tracking_confidence) as tracker:
                for index, frame in self._source_frames(video):
                    mesh = tracker(frame)
                    indices.append(index)
                    meshes.append(np.full((MESH_POINT_COUNT, 2), np.nan) if mesh is None else mesh)
            meshes = np.stack(meshes)
            if not np.isfinite(meshes).all((1, 2)).any():
                raise DataError(f"{video.source.path}: no face found in any of the {len(indices)} decoded frames; "
                                "nothing was written. Is a face visible (frontal, not too small)?")
            record = {"key": np.array(key), "frame_index": np.array(indices), "mesh": meshes,
                      **{k: np.array(v) for k, v in clock.read().items()}, "frames": np.array(len(indices))}
            _write_npz(path, record)
        self._record("detect", video.name, record, skipped)
        video.detect, video.keys["detect"] = record, key

    # --- crop: one square box per kept frame ---------------------------------------------------
    def crop(self, video: _Video) -> None:
        s = self.settings
        key = _key("crop", video.keys["detect"], s.crop, s.image_size)
        path = video.work / "crop.json"
        record = _read_json(path, key)
        skipped = record is not None
        if record is None:
            clock = _Clock()
            info = video.info
            boxes = face_boxes_to_crops(mesh_box(video.detect["mesh"]), (info.width, info.height),
                                        info.fps / s.frame_stride, s.crop)
            record = {"key": key, "source": str(video.source.path), "source_size": [info.width, info.height],
                      "fps": info.fps / s.frame_stride, "image_size": s.image_size, "mode": s.crop.mode,
                      "frame_index": video.detect["frame_index"].tolist(), "boxes": boxes.tolist(),
                      **clock.read(), "frames": len(boxes)}
            write_record(path, record)
        self._record("crop", video.name, record, skipped)
        video.crop, video.keys["crop"] = record, key

    def _crops(self, video: _Video):
        """Yields ``(k, (S, S, 3) uint8 crop)`` for the kept frames, checked against the crop record."""
        boxes, expected = np.asarray(video.crop["boxes"]), video.crop["frame_index"]
        count = 0
        for k, (index, frame) in enumerate(self._source_frames(video)):
            if k >= len(boxes) or index != expected[k]:
                raise DataError(f"{video.source.path}: decodes differently from when it was cropped (frame {index}); "
                                f"delete {video.work} and run again")
            count += 1
            yield k, crop_frame(frame, boxes[k], self.settings.image_size)
        if count != len(boxes):
            raise DataError(f"{video.source.path}: {count} frames decoded, {len(boxes)} expected; "
                            f"delete {video.work} and run again")

    # --- analyse: landmarks, sharpness, matte, labels on each crop -----------------------------
    def analyse(self, video: _Video) -> None:
        s = self.settings
        key = _key("analyse", video.keys["crop"], s.landmarks, s.matte, s.parsing, s.accessories)
        path = video.work / "analysis.npz"
        record = _read_npz(path, key)
        skipped = record is not None
        if record is None:
            clock = _Clock()
            analyser = FrameAnalyser(s, torch_device(self.cfg.experiment.device))
            meshes = source_to_crop(video.detect["mesh"], np.asarray(video.crop["boxes"]), s.image_size)
            count, size = len(meshes), s.image_size
            outputs = {"landmarks": np.empty((count, 68, 2)), "iris": np.empty((count, 2, 2)),
                       "disagreement": np.empty(count), "sharpness": np.empty(count),
                       "matte": np.empty((count, size, size), np.uint8),
                       "labels": np.empty((count, size, size), np.uint8)}
            for k, rgb in self._crops(video):
                result = analyser(rgb, meshes[k] if np.isfinite(meshes[k]).all() else None)
                for name, values in outputs.items():
                    values[k] = getattr(result, name)
            record = {"key": np.array(key), "mesh": meshes, **outputs,
                      **{k: np.array(v) for k, v in clock.read().items()}, "frames": np.array(count),
                      "steps": np.array(json.dumps({step: analyser.seconds[step] for step in STEPS}))}
            _write_npz(path, record)
        self._record("analyse", video.name, {**record, "steps": json.loads(str(record["steps"]))}, skipped)
        video.analysis, video.keys["analyse"] = record, key

    # --- filter: exclusion reasons -------------------------------------------------------------
    def filter(self, video: _Video) -> None:
        s = self.settings
        key = _key("filter", video.keys["analyse"], s.filter)
        path = video.work / "filter.json"
        record = _read_json(path, key)
        skipped = record is not None
        if record is None:
            clock = _Clock()
            analysis = video.analysis
            boxes = mesh_box(analysis["mesh"])
            face_size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
            reasons = filter_frames(np.isfinite(analysis["mesh"]).all((1, 2)), analysis["landmarks"],
                                    analysis["disagreement"], face_size, analysis["sharpness"], s.filter)
            names = numbered_frame_names(len(reasons))
            record = {"key": key, "reasons": dict(zip(names, reasons)),
                      "sharpness": _nan_to_none(analysis["sharpness"]),
                      **clock.read(), "frames": len(names)}
            write_record(path, record)
        self._record("filter", video.name, record, skipped)
        video.filter, video.keys["filter"] = record, key

    # --- write: the dataset folder ------------------------------------------------------------
    def write(self, video: _Video, tracked: FlameParams) -> None:
        s = self.settings
        key = _key("write", video.keys["analyse"], video.keys["track"])
        record_path = video.work / "written.json"
        target = video_dir(s.output_root, self.subject, video.name)
        record = _read_json(record_path, key)
        if record is not None and (target / FLAME_PARAMS_FILE).is_file():
            self._record("write", video.name, record, skipped=True)
            return
        clock = _Clock()
        analysis = video.analysis
        images = [rgb for _, rgb in self._crops(video)]
        landmarks = [None if not np.isfinite(p).all() else p for p in analysis["landmarks"]]
        iris = [None if not np.isfinite(p).all() else p for p in analysis["iris"]]
        write_video(target, tracked, images, list(analysis["matte"]), semantics=list(analysis["labels"]),
                    keypoints=landmarks, iris=iris, overwrite=record_path.is_file())
        record = {"key": key, "path": str(target), **clock.read(), "frames": len(images)}
        write_record(record_path, record)
        self._record("write", video.name, record, skipped=False)

    def check_target(self, video: _Video) -> None:
        """Refuses to touch a dataset folder this chain did not write (before any work is done)."""
        target = video_dir(self.settings.output_root, self.subject, video.name)
        if target.exists() and not (video.work / "written.json").is_file():
            raise DataError(f"{target}: already exists and was not written by `pegasus preprocess`; remove it or "
                            "choose another preprocess.output_root")

    # --- preview --------------------------------------------------------------------------------
    def preview(self, video: _Video, fitted: np.ndarray) -> None:
        s = self.settings
        key = _key("preview", video.keys["analyse"], video.keys["filter"], video.keys["track"], s.preview_size)
        record_path = video.work / "preview.json"
        mp4, grid = video.work / "preview.mp4", video.work / "preview.png"
        record = _read_json(record_path, key)
        if record is not None and mp4.is_file() and grid.is_file():
            self._record("preview", video.name, record, skipped=True)
            return
        clock = _Clock()
        analysis, reasons = video.analysis, list(video.filter["reasons"].values())
        names = list(video.filter["reasons"])
        frames = (preview_frame(rgb, analysis["matte"][k], analysis["labels"][k], analysis["landmarks"][k],
                                analysis["iris"][k], fitted[k], caption(names[k], reasons[k]), s.preview_size)
                  for k, rgb in self._crops(video))
        write_preview(frames, len(names), video.crop["fps"], mp4, grid)
        record = {"key": key, **clock.read(), "frames": len(names)}
        write_record(record_path, record)
        self._record("preview", video.name, record, skipped=False)

    # --- track: FLAME fit of all videos --------------------------------------------------------
    def track(self, videos: Sequence[_Video]) -> dict[str, dict]:
        """Fits the head model to every video's kept landmarks; returns {video: tracking record}
        with ``params`` (FlameParams), ``fitted`` (T, 70, 2) pixels and the error summary."""
        from ..headmodel import head_model_from_config
        from .optional import DecaInitialiser, InitSettings, deca_to_initial
        from .tracking import TrackingError, track_videos

        cfg, s = self.cfg, self.settings
        tracking = cfg.preprocess.tracking
        init = InitSettings.from_tracking(tracking)
        head = {"head_model": cfg.head_model.to_dict(), "standin": cfg.standin.to_dict()}
        key = _key("track", [(v.name, v.keys["filter"]) for v in videos], tracking, init.key([v.name for v in videos]),
                   head, s.image_size)
        path = self.work_root / TRACKING_FILE
        record = _read_json(path, key)
        if record is not None and all((v.work / FLAME_PARAMS_FILE).is_file() for v in videos):
            self._record("track", None, record, skipped=True)
        else:
            landmarks = []
            for video in videos:
                points = np.concatenate([video.analysis["landmarks"], video.analysis["iris"]], 1)
                excluded = np.array([bool(r) for r in video.filter["reasons"].values()])
                points[excluded] = np.nan
                landmarks.append(points)
            names = [list(v.filter["reasons"]) for v in videos]
            clock = _Clock()
            head_model, initial = head_model_from_config(cfg), None
            if init.init_backend == "deca":
                initialiser = DecaInitialiser(init, cfg.head_model.path, [v.name for v in videos],
                                               torch_device(cfg.experiment.device))
                initial = [deca_to_initial(initialiser.codes(v.name, self._crops(v), points[:, :68], s.image_size),
                                           head_model, s.image_size, tracking.focal, cfg.head_model.scale)
                           for v, points in zip(videos, landmarks)]
            try:
                result = track_videos(landmarks, s.image_size, head_model, tracking, names, initial)
            except TrackingError as err:
                raise DataError(f"{self.subject}: FLAME tracking failed: {err}") from err
            per_video = {}
            for video, fit in zip(videos, result.videos):
                write_flame_params(video.work / FLAME_PARAMS_FILE, fit.params)
                per_video[video.name] = {**fit.summary(), "fitted_landmarks": fit.landmarks.tolist(),
                                         "reprojection_error_px_per_frame": _nan_to_none(fit.reprojection_error)}
            record = {"key": key, "videos": per_video, "summary": result.summary(), **clock.read(),
                      "frames": int(sum(len(p) for p in landmarks))}
            write_record(path, record)
            self._record("track", None, record, skipped=False)
        for video in videos:
            video.keys["track"] = key
        return {v.name: {**record["videos"][v.name], "params": read_flame_params(v.work / FLAME_PARAMS_FILE),
                         "fitted": np.asarray(record["videos"][v.name]["fitted_landmarks"])} for v in videos}

    # --- blacklist and summary -----------------------------------------------------------------
    def update_blacklist(self, videos: Sequence[_Video]) -> None:
        """Sets the subject's ``blacklist.json`` entries of these videos (others are kept)."""
        folder = subject_dir(self.settings.output_root, self.subject)
        blacklist = {video: set(names) for video, names in read_blacklist(folder).items()}
        for video in videos:
            excluded = {name for name, reasons in video.filter["reasons"].items() if reasons}
            if excluded:
                blacklist[video.name] = excluded
            else:
                blacklist.pop(video.name, None)
        write_blacklist(folder, blacklist)

    def summary(self, videos: Sequence[_Video], tracked: dict[str, dict]) -> dict:
        summary = {"subject": self.subject, "dataset": str(subject_dir(self.settings.output_root, self.subject)),
                   "image_size": self.settings.image_size, "videos": {}}
        for video in videos:
            reasons = video.filter["reasons"]
            dropped: dict[str, list[str]] = {}
            for name, frame_reasons in reasons.items():
                for reason in frame_reasons:
                    dropped.setdefault(reason, []).append(name)
            fit = tracked[video.name]
            summary["videos"][video.name] = {
                "source": str(video.source.path), "frames": len(reasons),
                "kept": sum(1 for r in reasons.values() if not r),
                "dropped": sum(1 for r in reasons.values() if r), "dropped_by_reason": dropped,
                "crop": {"mode": video.crop["mode"], "source_size": video.crop["source_size"],
                         "first_box": video.crop["boxes"][0]},
                "reprojection_error_px": fit["reprojection_error_px"],
                "reprojection_error_px_per_frame": fit["reprojection_error_px_per_frame"],
                "ms_per_frame": {run.stage: 1000.0 * run.seconds / max(run.frames, 1) for run in self.runs
                                 if run.video == video.name},
            }
        track_run = next(run for run in self.runs if run.stage == "track")
        summary["tracking_ms_per_frame"] = 1000.0 * track_run.seconds / max(track_run.frames, 1)
        return summary


# ---------------------------------------------------------------------------------------
# Entry points


def find_videos(folder: str | Path, suffixes: Sequence[str]) -> list[VideoSource]:
    """The videos directly in ``folder`` with one of ``suffixes`` (case-insensitive), named by
    their file stems, sorted.

    Raises:
        DataError: the folder is missing, holds no video, or two videos share a stem.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: video folder not found")
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not paths:
        raise DataError(f"{folder}: no video files ({', '.join(suffixes)}; preprocess.video_suffixes)")
    stems = [p.stem for p in paths]
    repeated = sorted({s for s in stems if stems.count(s) > 1})
    if repeated:
        raise DataError(f"{folder}: several videos share the names {repeated}; rename them (the file stem names "
                        "the video folder)")
    return [VideoSource(p.stem, p) for p in paths]


def _check_sources(sources: Sequence[VideoSource], suffixes: Sequence[str]) -> None:
    for source in sources:
        if source.path.suffix.lower() not in suffixes:
            raise DataError(f"{source.path}: unsupported video type {source.path.suffix or '(no suffix)'!r}; "
                            f"expected one of {', '.join(suffixes)} (preprocess.video_suffixes)")
        if not source.name or source.name.startswith(".") or "/" in source.name:
            raise DataError(f"{source.path}: {source.name!r} cannot name a video folder")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise DataError(f"video names repeat: {names}; each video needs its own folder name")


def preprocess_subject(cfg: Config, subject: str, sources: Sequence[VideoSource]) -> PreprocessReport:
    """Turns the raw videos of one person into ``<root>/<subject>/<subject>/<video>/`` folders.

    Args:
        cfg: the config (``preprocess``, ``preprocess.tracking``, ``head_model``).
        subject: the subject (person) name.
        sources: the videos, each becoming one video folder.

    Raises:
        DataError: a missing, corrupt or unsupported video, a video without a face, a
            dataset folder not made by this chain; nothing half-written is left behind.
    """
    settings = cfg.preprocess
    if not sources:
        raise DataError(f"{subject}: no videos given")
    _check_sources(sources, settings.video_suffixes)
    runner = _Runner(cfg, settings, subject)
    videos = [_Video(source, runner.work_root / source.name) for source in sources]
    for video in videos:
        runner.check_target(video)
        video.info = probe_video(video.source.path)
    for video in videos:
        runner.detect(video)
        runner.crop(video)
        runner.analyse(video)
        runner.filter(video)
    tracked = runner.track(videos)
    for video in videos:
        runner.write(video, tracked[video.name]["params"])
    runner.update_blacklist(videos)
    if settings.preview:
        for video in videos:
            runner.preview(video, tracked[video.name]["fitted"])
    summary = runner.summary(videos, tracked)
    write_record(runner.work_root / SUMMARY_FILE, summary)
    log.info("dataset: %s (%d videos); summary %s", subject_dir(settings.output_root, subject), len(videos),
             runner.work_root / SUMMARY_FILE)
    return PreprocessReport(subject_dir(settings.output_root, subject), runner.work_root, summary, tuple(runner.runs))
