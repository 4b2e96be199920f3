"""Part-swap synthesis jobs: the target's videos with each DB person's parts (METHOD §6).

One job per (edited target video, category, DB person) writes an IMavatar video folder::

    <synth.root>/<video>/<target>/<target>/<category>_<db>/
        image/ mask/ semantic/      the composite, its foreground mask and updated labels
        mask_object/                the new part's soft mask
        render_image/ render_mask/ render_normal/   the render frames used (normals when the bank has them)
        flame_params.json           the target's parameters of the kept frames
        blacklist.json              {frame: reason} of every dropped frame
        synth.json                  what made it (settings, sources, digest), counts and timings
    <synth.root>/<video>/<target>/<target>/<video>/   the target's own frames with the union of
                                    its part masks as mask_object/ (the "source" step, stage 1)
    <synth.root>/<video>/manifest.json   the video manifest of what was made (docs/data.md)
    <synth.root>/<video>/preview_<category>.png   per DB person: own frame | render | composite
    <synth.root>/<video>/.records/<name>.json   per-job records (complete jobs are skipped)

Folders are staged and renamed when complete (:func:`pegasus.data.imavatar.write_video`); a job
whose record matches its settings and sources is skipped, so the command resumes.
"""
from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..bank.cross_drive import NORMAL_DIR, RENDER_RECORD
from ..config import Config, ConfigError
from ..data import parts
from ..data.dataset import parse_resolution
from ..data.images import DataError, read_label_map, read_mask, read_rgb, resize_label_map, resize_mask, resize_rgb
from ..data.imavatar import (FLAME_PARAMS_FILE, MASK_DIR, PART_MASK_DIR, FlameParams, Video, read_video, video_dir,
                             write_video)
from ..synthdb.build import cross_driven_name, ground_truth_name
from ..utils import write_json
from ..utils.records import digest, file_digest, read_record
from . import quality
from .align import align_render
from .head import pose_heads, shade_skin, skin_shading
from .preview import preview_sheets
from .compose import Composite, FrameLayers, compose_frame, grow
from .settings import SynthCategory, SynthSettings

__all__ = ["MANIFEST_FILE", "RECORD_FILE", "BLACKLIST_FILE", "RECORDS_DIR", "SynthJob", "TargetFrames", "synth_jobs",
           "video_root", "job_render_folder", "load_target", "render_digest", "load_render", "synthesize",
           "write_source", "write_manifest",
           "run_synthesis"]

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
RECORD_FILE = "synth.json"
BLACKLIST_FILE = "blacklist.json"
RECORDS_DIR = ".records"


@dataclass(frozen=True)
class SynthJob:
    """One synthesized video: the target's ``video`` wearing ``db_person``'s ``category``."""

    video: str
    category: SynthCategory
    db_person: str

    @property
    def name(self) -> str:
        """``<category>_<db>``, the synthetic database's ground-truth name."""
        return ground_truth_name(self.category.name, self.db_person)


def db_people(cfg: Config) -> tuple[str, ...]:
    """``synth.db_people``, or the subjects of ``bank.people`` when null."""
    listed = cfg.synth.db_people
    return tuple(listed) if listed is not None else tuple(dict.fromkeys(e.subject for e in cfg.bank.people))


def synth_jobs(cfg: Config, videos: Sequence[str] | None = None, categories: Sequence[str] | None = None
               ) -> list[SynthJob]:
    """Every (video, category, DB person) job of the config, optionally only some videos / categories."""
    settings: SynthSettings = cfg.synth
    known = [c.name for c in settings.categories]
    for name in categories or ():
        if name not in known:
            raise ConfigError(f"synth.categories: category {name!r} is not in synth.categories {known}")
    for name in videos or ():
        if name not in settings.videos:
            raise ConfigError(f"synth.videos: video {name!r} is not in synth.videos {list(settings.videos)}")
    return [SynthJob(video, category, db)
            for video in (videos or settings.videos)
            for category in settings.categories if not categories or category.name in categories
            for db in db_people(cfg)]


def video_root(settings: SynthSettings, video: str) -> Path:
    """``<synth.root>/<video>``: the dataset root of the edits of one target video."""
    return Path(settings.root) / video


def job_render_folder(settings: SynthSettings, job: SynthJob) -> Path:
    """The bank render of the job's DB person driven by the edited video."""
    return video_dir(settings.renders, job.db_person, cross_driven_name(settings.target, job.video))


# ------------------------------------------------------------------------------------------ inputs


@dataclass
class TargetFrames:
    """The target's frames of one video at the synthesis resolution: ``names`` (N,), ``rgb``
    (N, H, W, 3), ``mask`` (N, H, W), ``labels`` (N, H, W) int64, ``params`` (the frames'
    parameters), ``digest`` of the source; made on first use: the head model's raster of the
    target ``head_cover`` (N, H, W), ``head_normals`` (N, H, W, 3), per-frame skin ``shading``
    ((4, 3) or None, :func:`skin_shading`), and in ``cache`` the landmarks and normals of the
    head model posed as these frames with each identity (:meth:`posed`)."""

    video: Video
    names: list[str]
    rgb: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    params: FlameParams
    digest: str
    head_cover: np.ndarray | None = None
    head_normals: np.ndarray | None = None
    shading: list[np.ndarray | None] | None = None
    cache: dict = field(default_factory=dict)

    def posed(self, what: str, shape: np.ndarray, make):
        """A per-identity result (landmarks or normals of the head model with ``shape``),
        computed once by ``make()`` and kept: the categories of one DB person share it."""
        key = (what, shape.tobytes())
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


def load_target(dataset_root: str | Path, subject: str, video: str, resolution, stride: int) -> TargetFrames:
    """Reads every ``stride``-th frame of the target's video at ``resolution`` (an int or (H, W));
    it needs masks and label maps."""
    folder = video_dir(dataset_root, subject, video)
    source = read_video(folder)
    if not source.has_masks or not source.has_semantic:
        missing = MASK_DIR if not source.has_masks else "semantic"
        raise DataError(f"{folder / missing}: the synthesis needs the target's masks and label maps")
    frames = source.frames[::stride]
    size = parse_resolution(resolution)
    rgb = np.stack([resize_rgb(read_rgb(f.image_path), size) for f in frames])
    mask = np.stack([resize_mask(read_mask(f.mask_path), size) for f in frames])
    labels = np.stack([resize_label_map(read_label_map(f.semantic_path), size) for f in frames]).astype(np.int64)
    params = FlameParams(source.intrinsics, source.shape_params, tuple(f.flame for f in frames))
    return TargetFrames(source, [f.name for f in frames], rgb, mask, labels, params,
                        file_digest(folder / FLAME_PARAMS_FILE))


@dataclass(frozen=True)
class RenderFrames:
    """A DB person's render of the edited video at the synthesis resolution, by frame name:
    ``rgb``, ``mask``, ``labels``, ``normal`` (None when the bank wrote no normals); ``shape``
    the DB person's identity (S,)."""

    folder: Path
    shape: np.ndarray
    rgb: dict[str, np.ndarray]
    mask: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    normal: dict[str, np.ndarray] | None


def render_digest(folder: Path) -> str:
    """Digest of what made a render folder (its ``render.json``, else its parameters), read
    without its images so that a complete job is skipped without loading them.

    Raises:
        DataError: the folder has neither file.
    """
    for name in (RENDER_RECORD, FLAME_PARAMS_FILE):
        if (folder / name).is_file():
            return file_digest(folder / name)
    raise DataError(f"{folder}: no render here ({RENDER_RECORD} and {FLAME_PARAMS_FILE} missing); build the bank's "
                    "cross-driven renders first (bash run/db_avatar.sh)")


def load_render(folder: Path, names: Sequence[str], resolution) -> RenderFrames:
    """Reads the frames of ``names`` that the render folder has (image, mask, semantic, normal).

    Raises:
        DataError: naming the folder or file, for a missing folder, parameters, label maps or
            an unreadable image.
    """
    video = read_video(folder)
    if not video.has_masks or not video.has_semantic:
        missing = MASK_DIR if not video.has_masks else "semantic"
        raise DataError(f"{folder / missing}: a render needs masks and label maps (train the bank with "
                        "model.semantic = true)")
    wanted = set(names)
    frames = [f for f in video.frames if f.name in wanted]
    size = parse_resolution(resolution)
    normal_dir = folder / NORMAL_DIR
    return RenderFrames(
        folder, video.shape_params,
        {f.name: resize_rgb(read_rgb(f.image_path), size) for f in frames},
        {f.name: resize_mask(read_mask(f.mask_path), size) for f in frames},
        {f.name: resize_label_map(read_label_map(f.semantic_path), size).astype(np.int64) for f in frames},
        {f.name: resize_rgb(read_rgb(normal_dir / f"{f.name}.png"), size) for f in frames}
        if normal_dir.is_dir() else None)


def _label_ids(names: Sequence[str]) -> np.ndarray:
    return np.array([parts.label_id(n) for n in names], np.int64)


def head_landmarks(head_model, target: TargetFrames, shape: np.ndarray, batch: int = 64) -> np.ndarray:
    """(N, 70, 2) pixel landmarks of the head model with identity ``shape`` posed as the target's frames."""
    frames, size = list(target.params.frames), target.rgb.shape[1:3]
    return np.concatenate([pose_heads(head_model, target.params.intrinsics, shape, frames[k:k + batch], size,
                                      raster=False).landmarks for k in range(0, len(frames), batch)])


def head_normals(head_model, target: TargetFrames, shape: np.ndarray, batch: int = 16
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W) coverage and (N, H, W, 3) camera-space normals of the head model with identity
    ``shape`` posed as the target's frames."""
    frames, size = list(target.params.frames), target.rgb.shape[1:3]
    posed = [pose_heads(head_model, target.params.intrinsics, shape, frames[k:k + batch], size)
             for k in range(0, len(frames), batch)]
    return np.concatenate([p.cover for p in posed]), np.concatenate([p.normals for p in posed])


def _target_heads(target: TargetFrames, head_model, skin: np.ndarray) -> None:
    """Fills the target's head raster and per-frame skin shading (once per video)."""
    if target.shading is None:
        target.head_cover, target.head_normals = head_normals(head_model, target, target.params.shape_params)
        target.shading = [skin_shading(target.rgb[i], target.labels[i], target.head_cover[i], target.head_normals[i],
                                       skin) for i in range(len(target.names))]


# ------------------------------------------------------------------------------------------ one job


def _job_digest(settings: SynthSettings, job: SynthJob, target: TargetFrames, render_key: str) -> str:
    keys = {k: v for k, v in settings.to_dict().items() if k not in ("categories", "ground_truth", "score_video",
                                                                       "db_people", "videos")}
    data = {"settings": keys, "category": job.category.to_dict(), "target": target.digest, "render": render_key}
    return digest(data)


def _record_path(settings: SynthSettings, job: SynthJob) -> Path:
    return video_root(settings, job.video) / RECORDS_DIR / f"{job.name}.json"


def _complete(settings: SynthSettings, job: SynthJob, job_digest: str) -> dict | None:
    """The job's record when it is complete for ``job_digest`` (its folder present when it kept frames)."""
    record = read_record(_record_path(settings, job))
    if record is None or record.get("digest") != job_digest:
        return None
    folder = video_dir(video_root(settings, job.video), settings.target, job.name)
    if record["kept"] and read_record(folder / RECORD_FILE) != record:
        return None
    return record


def _compose_job(settings: SynthSettings, job: SynthJob, target: TargetFrames, render: RenderFrames, head_model
                 ) -> tuple[list[str], list[Composite], list[list[np.ndarray]], dict[str, str], float]:
    """Composes every frame; returns the kept frames, their composites, the (aligned) render
    layers they used (rgb, mask, labels[, normal]), the dropped frames' reasons and the
    composing time in seconds."""
    category, size = job.category, target.rgb.shape[1]
    skin = _label_ids(settings.skin_labels)
    shaded = category.method == "bald" or category.colour == "reshade"
    if shaded:
        _target_heads(target, head_model, skin)
    db_normals = (target.posed("normals", render.shape, lambda: head_normals(head_model, target, render.shape)[1])
                  if category.colour == "reshade" else None)
    grow_px = round((settings.grow if category.grow is None else category.grow) * size)
    aligned = bool(category.anchors)
    if aligned:
        own_landmarks, render_landmarks = (
            target.posed("landmarks", shape, lambda s=shape: head_landmarks(head_model, target, s))
            for shape in (target.params.shape_params, render.shape))
    start = time.perf_counter()
    kept, composites, used, references, dropped = [], [], [], [], {}
    for i, name in enumerate(target.names):
        if name not in render.rgb:
            dropped[name] = "no_render"
            continue
        layers = [render.rgb[name], render.mask[name], render.labels[name]]
        if render.normal is not None:
            layers.append(render.normal[name])
        if db_normals is not None:
            layers.append(db_normals[i])
        if aligned:
            layers = align_render(layers, render_landmarks[i], own_landmarks[i], category.anchors)
        old = parts.part_mask(target.labels[i], category.name)
        new = parts.part_mask(layers[2], category.name)
        if category.needs_own_part and quality.part_missing(old, settings.min_part):
            dropped[name] = "no_own_part"
            continue
        if quality.part_missing(new, settings.min_part):
            dropped[name] = "no_new_part"
            continue
        if shaded and target.shading[i] is None:
            dropped[name] = "no_skin_shading"
            continue
        bald = shade_skin(target.head_normals[i], target.shading[i]) if category.method == "bald" else None
        reshaded = shade_skin(layers[-1], target.shading[i]) if db_normals is not None else None
        frame = FrameLayers(target.rgb[i], target.mask[i], target.labels[i], *layers[:3], old, new, bald,
                            target.head_cover[i] if bald is not None else None, reshaded)
        out = compose_frame(frame, category.method, grow_px=grow_px,
                            inpaint_px=max(1, round(settings.inpaint_radius * size)), feather_px=settings.feather,
                            colour=category.colour, own_outline=category.outline == "target",
                            fill_label=parts.label_id(settings.fill_label), skin_labels=skin)
        keep_region = (target.mask[i] >= 0.5) & ~grow(old | new, grow_px)
        if settings.blend_check and quality.blend_failed(out.image, target.rgb[i], layers[0], keep_region):
            dropped[name] = "blend_failed"
            continue
        kept.append(name)
        composites.append(out)
        used.append(layers)
        references.append(int(old.sum()) if category.needs_own_part else int((target.mask[i] >= 0.5).sum()))
    seconds = time.perf_counter() - start
    jumps = quality.area_jumps([int((c.part >= 0.5).sum()) for c in composites], references,
                               settings.max_area_change)
    for name, jump in zip(list(kept), jumps, strict=True):
        if jump:
            dropped[name] = "area_jump"
    keep = [k for k, name in enumerate(kept) if name not in dropped]
    return [kept[k] for k in keep], [composites[k] for k in keep], [used[k] for k in keep], dropped, seconds


def _reasons(settings: SynthSettings, job: SynthJob, dropped: dict[str, str]) -> dict[str, str]:
    return {name: quality.REASONS[key].format(category=job.category.name, limit=settings.max_area_change)
            for name, key in dropped.items()}


def synthesize(cfg: Config, job: SynthJob, target: TargetFrames, head_model=None,
               renders: dict[Path, RenderFrames] | None = None) -> dict:
    """Runs one job (skipped when its record is current) and returns its record. ``renders``
    keeps the render folders read so far (the categories of one DB person share one)."""
    settings: SynthSettings = cfg.synth
    folder = job_render_folder(settings, job)
    digest = _job_digest(settings, job, target, render_digest(folder))
    done = _complete(settings, job, digest)
    if done is not None:
        return {**done, "skipped": True}
    renders = {} if renders is None else renders
    if folder not in renders:
        renders.clear()  # jobs come grouped by DB person: keep one folder in memory
        renders[folder] = load_render(folder, target.names, settings.resolution)
    render = renders[folder]
    kept, composites, used, dropped, seconds = _compose_job(settings, job, target, render, head_model)
    record = {"name": job.name, "video": job.video, "category": job.category.name, "method": job.category.method,
              "db_person": job.db_person, "render": str(folder), "digest": digest, "kept": len(kept),
              "dropped": len(dropped), "frames": len(target.names),
              "ms_per_frame": 1000.0 * seconds / max(1, len(target.names)),
              "reasons": {key: sum(1 for r in dropped.values() if r == key) for key in sorted(set(dropped.values()))}}
    out = video_dir(video_root(settings, job.video), settings.target, job.name)
    if kept:
        index = {name: k for k, name in enumerate(target.names)}
        frames = tuple(target.params.frames[index[name]] for name in kept)
        copies = {"render_image": [u[0] for u in used], "render_mask": [u[1] for u in used]}
        if render.normal is not None:
            copies["render_normal"] = [u[3] for u in used]  # layers: rgb, mask, labels, normal[, head normals]
        write_video(out, FlameParams(target.params.intrinsics, target.params.shape_params, frames),
                    [c.image for c in composites], [c.mask for c in composites],
                    semantics=[c.labels.astype(np.uint8) for c in composites],
                    extra_folders={PART_MASK_DIR: [c.part for c in composites], **copies},
                    extra_files={BLACKLIST_FILE: _reasons(settings, job, dropped), RECORD_FILE: record},
                    overwrite=True)
    elif out.exists():
        shutil.rmtree(out)
    write_json(_record_path(settings, job), record, indent=1)
    return {**record, "skipped": False}


# ------------------------------------------------------------------------------------------ source, manifest


def write_source(cfg: Config, target: TargetFrames, video: str) -> Path:
    """The target's own frames of ``video`` at the synthesis resolution with the union of its
    synthesized categories' part masks as ``mask_object/`` (stage 1 trains on it)."""
    settings: SynthSettings = cfg.synth
    out = video_dir(video_root(settings, video), settings.target, video)
    record = {"source": str(target.video.path), "digest": target.digest, "resolution": list(target.rgb.shape[1:3]),
              "stride": settings.frame_stride, "categories": [c.name for c in settings.categories]}
    if read_record(out / RECORD_FILE) == record:
        return out
    part_masks = [np.any([parts.part_mask(labels, c.name) for c in settings.categories], axis=0).astype(np.float32)
                  for labels in target.labels]
    write_video(out, target.params, list(target.rgb), list(target.mask),
                semantics=[labels.astype(np.uint8) for labels in target.labels],
                extra_folders={PART_MASK_DIR: part_masks}, extra_files={RECORD_FILE: record}, overwrite=True)
    return out


def write_manifest(cfg: Config, video: str) -> Path:
    """``<synth.root>/<video>/manifest.json``: the source video and every synthesized video of
    ``video`` (from the job records), in the video-manifest layout of docs/data.md."""
    settings: SynthSettings = cfg.synth
    root = video_root(settings, video)
    entries = []
    if (video_dir(root, settings.target, video) / RECORD_FILE).is_file():
        entries.append({"root": ".", "subject": settings.target, "video": video, "role": "target"})
    empty = []
    for job in synth_jobs(cfg, videos=[video]):
        record = read_record(_record_path(settings, job))
        if record is None:
            continue
        if record["kept"]:
            entries.append({"root": ".", "subject": settings.target, "video": job.name, "role": "synthetic",
                            "category": job.category.name, "db_person": job.db_person, "frames": record["kept"]})
        else:
            empty.append({"name": job.name, "reasons": record["reasons"]})
    path = root / MANIFEST_FILE
    write_json(path, {"videos": entries, "empty": empty}, indent=1)
    return path


def run_synthesis(cfg: Config, videos: Sequence[str] | None = None, categories: Sequence[str] | None = None,
                  steps: Sequence[str] = ("source", "parts")) -> list[dict]:
    """Runs the source and part steps for the chosen videos and categories; returns the job records."""
    from ..headmodel.factory import head_model_from_config

    settings: SynthSettings = cfg.synth
    jobs = synth_jobs(cfg, videos, categories)
    head_model = (head_model_from_config(cfg) if "parts" in steps and
                  any(j.category.method == "bald" or j.category.colour == "reshade" or j.category.anchors
                      for j in jobs) else None)
    records = []
    for video in videos or settings.videos:
        target = load_target(cfg.dataset.root, settings.target, video, settings.resolution, settings.frame_stride)
        if "source" in steps:
            log.info("synth: source video %s", write_source(cfg, target, video))
        if "parts" in steps:
            renders: dict[Path, RenderFrames] = {}
            ordered = sorted((j for j in jobs if j.video == video), key=lambda j: j.db_person)
            made = [synthesize(cfg, job, target, head_model, renders)
                    for job in tqdm(ordered, desc=f"synth {video}", unit="video")]
            preview_sheets(video_root(settings, video), settings.target, target.video.path, made)
            records += made
        write_manifest(cfg, video)
    return records
