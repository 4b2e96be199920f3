"""Cross-driven renders: a DB avatar with another person's per-frame motion and camera.

Each DB person k of a trained bank run is rendered with every driver video's expression,
pose and camera (the target's videos) and k's own identity shape (``with_identity``), so
k's parts land where the target's are (METHOD §1 step 2). One render folder per (k, driver
video) is an IMavatar video folder under ``<bank.root>/renders/`` (docs/bank.md)::

    renders/<k>/<k>/<driver>_<video>/
        flame_params.json   k's shape, the driver's cameras, expressions and poses
        image/<frame>.png   rgb composited on white
        mask/<frame>.png    alpha (coverage)
        semantic/<frame>.png  label ids (argmax of the semantic head; 0 where alpha < 0.5)
        normal/<frame>.png  camera-space normals as colours, on white
        holes/<frame>.png   holes inside the render's own envelope (metrics.interior_hole_mask)
        render.json         what made it: run, checkpoint, driver, frames (complete when present)
        metrics.json/.csv   scores against the cross-driven ground truth, when there is one

Frames are written in chunks of ``bank.render_batch`` into a hidden ``.<name>.partial``
sibling; an interrupted render continues there with the frames still missing, and the folder
takes its final name only when complete.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..avatar.model import PointAvatar
from ..data import parts
from ..data.batch import FrameBatch
from ..data.images import write_label_map, write_mask, write_rgb
from ..data.imavatar import (FLAME_PARAMS_FILE, IMAGE_DIR, MASK_DIR, SEMANTIC_DIR, FlameParams, video_dir,
                             write_flame_params)
from ..data.settings import VideoEntry
from ..data.videos import VideoTable, fit_length
from ..eval.metrics import interior_hole_mask
from ..eval.render_sets import Animation
from ..geometry.camera import cameras_from_imavatar
from ..render.display import normal_to_display
from ..synthdb.build import cross_driven_name
from ..utils import write_json
from ..utils.records import read_record

__all__ = ["RENDERS_DIR", "RENDER_RECORD", "NORMAL_DIR", "HOLES_DIR", "render_folder", "driver_params",
           "CrossDriveJob", "cross_driven_batches", "render_complete",
           "render_cross_driven"]

log = logging.getLogger(__name__)

RENDERS_DIR = "renders"
RENDER_RECORD = "render.json"
NORMAL_DIR = "normal"
HOLES_DIR = "holes"


def render_folder(bank_root: str | Path, person: str, driver: VideoEntry) -> Path:
    """``<bank_root>/renders/<person>/<person>/<driver>_<video>``."""
    return video_dir(Path(bank_root) / RENDERS_DIR, person, cross_driven_name(driver.subject, driver.video))


def driver_params(driver: VideoEntry, default_root: str | Path, stride: int = 1) -> FlameParams:
    """The driver video's parameters (its frame range and stride, then every ``stride``-th frame)."""
    video = VideoTable([driver], default_root)[0].video
    return FlameParams(video.intrinsics, video.shape_params, tuple(f.flame for f in video.frames[::stride]))


@dataclass(frozen=True)
class CrossDriveJob:
    """One render folder: ``person`` (trained by the run) driven by ``params`` (already carrying
    the person's shape, :func:`pegasus.data.imavatar.with_identity`) into ``folder``; ``record`` says what made it."""

    identity: FrameBatch  # a frame of the person's own video, indexed by the run (subject, latent rows)
    params: FlameParams
    folder: Path
    record: dict


def cross_driven_batches(job: CrossDriveJob, image_size: tuple[int, int], batch_size: int,
                         frames: list[int] | None = None) -> Animation:
    """Batches of the job's frames (positions in ``job.params.frames``, default all): the
    driver's cameras at ``image_size``, expressions and poses, the person's shape, subject and
    latent rows."""
    params, identity = job.params, job.identity
    frames = list(range(len(params.frames))) if frames is None else frames
    world_mats = torch.from_numpy(np.stack([params.frames[k].world_mat for k in frames])).float()
    cameras = cameras_from_imavatar(torch.from_numpy(params.intrinsics).float(), world_mats, image_size)
    n_expr, n_shape = identity.expression.shape[1], identity.shape.shape[1]
    return Animation(
        torch.from_numpy(np.stack([fit_length(params.frames[k].expression, n_expr) for k in frames])),
        torch.from_numpy(np.stack([params.frames[k].pose for k in frames]).astype(np.float32)),
        identity, tuple(params.frames[k].name for k in frames), batch_size, cameras=cameras,
        shape=torch.from_numpy(fit_length(params.shape_params, n_shape)))


def _frame_done(folder: Path, name: str, semantic: bool) -> bool:
    subdirs = (IMAGE_DIR, MASK_DIR, NORMAL_DIR, HOLES_DIR) + ((SEMANTIC_DIR,) if semantic else ())
    return all((folder / sub / f"{name}.png").is_file() for sub in subdirs)


def _write_frames(out, batch: FrameBatch, folder: Path) -> None:
    """Writes each frame's channels of an :class:`AvatarOutput`."""
    mask = out.mask.detach().float().cpu()
    rgb = out.rgb.detach().clamp(0, 1).cpu().numpy()
    normal = normal_to_display(out.normal.detach().cpu(), mask).clamp(0, 1).numpy()
    holes = interior_hole_mask(mask).numpy()
    labels = None
    if out.semantic is not None:
        ids = torch.tensor([c.label for c in parts.SEMANTIC_CLASSES])[out.semantic.detach().argmax(-1).cpu()]
        labels = torch.where(mask >= 0.5, ids, torch.zeros_like(ids)).numpy().astype(np.uint8)
    for k, name in enumerate(batch.frame_name):
        write_rgb(folder / IMAGE_DIR / f"{name}.png", rgb[k])
        write_mask(folder / MASK_DIR / f"{name}.png", mask[k].numpy())
        write_rgb(folder / NORMAL_DIR / f"{name}.png", normal[k])
        write_mask(folder / HOLES_DIR / f"{name}.png", holes[k].astype(np.float32))
        if labels is not None:
            write_label_map(folder / SEMANTIC_DIR / f"{name}.png", labels[k])


def render_complete(folder: Path, record: dict) -> bool:
    """Whether ``folder`` holds a complete render made as ``record`` says."""
    return read_record(Path(folder) / RENDER_RECORD) == record


@torch.no_grad()
def render_cross_driven(model: PointAvatar, device: torch.device, job: CrossDriveJob, image_size: tuple[int, int],
                        batch_size: int) -> int:
    """Renders one cross-driven folder (skipped when its record matches); returns the frames
    rendered now (0 when it was complete)."""
    folder = job.folder
    if render_complete(folder, job.record):
        return 0
    partial = folder.parent / f".{folder.name}.partial"
    if partial.is_dir() and read_record(partial / f".{RENDER_RECORD}") != job.record:
        shutil.rmtree(partial)  # frames of another run or driver
    partial.mkdir(parents=True, exist_ok=True)
    write_json(partial / f".{RENDER_RECORD}", job.record)
    params = job.params
    names = tuple(f.name for f in params.frames)
    semantic = model.semantic_classes > 0
    todo = [k for k, name in enumerate(names) if not _frame_done(partial, name, semantic)]
    if todo:
        model.eval()
        for batch in cross_driven_batches(job, image_size, batch_size, todo):
            _write_frames(model(batch.to(device)), batch, partial)
    write_flame_params(partial / FLAME_PARAMS_FILE, params)
    write_json(partial / RENDER_RECORD, job.record)
    (partial / f".{RENDER_RECORD}").unlink()
    if folder.exists():
        shutil.rmtree(folder)
    partial.rename(folder)
    log.info("cross-driven: %s (%d frames, %d rendered now)", folder, len(names), len(todo))
    return len(todo)
