"""The normal loss's targets of stage 2 (METHOD §5).

Inside a synthetic video's swapped part the avatar should show the DB avatar's normals (the
bank's render, ``render_normal/`` of the synthetic video); outside it, the target's own
normals. The original never produced the latter; here the stage-1 avatar renders them once
after stage 1 (:func:`render_own_normals`, one ``.npz`` of every frame of the target's real
training video(s)). :class:`NormalTargets` composes the two per frame for the dataset.

Own normals are trusted only where the stage-1 render covers the pixel, the new part does not,
and the stage-1 render's semantic class is outside the swapped category (where the target's
own hair was, a bald or re-haired frame shows something else).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ..data import parts
from ..data.batch import collate_frames
from ..data.images import DataError, read_mask, read_rgb, resize_label_map, resize_mask, resize_rgb
from ..utils.atomic import atomic_path
from ..utils.progress import progress

__all__ = ["OWN_NORMALS_FILE", "RENDER_NORMAL_DIR", "RENDER_MASK_DIR", "render_own_normals", "NormalTargets"]

log = logging.getLogger(__name__)

OWN_NORMALS_FILE = "own_normals.npz"
"""Written into the stage-1 run folder: ``names`` (T,), ``normal`` (T, H, W, 3) float16 camera
space, ``mask`` (T, H, W) float16 coverage, ``classes`` (T, H, W) uint8 semantic class index
(255 without a semantic head)."""
RENDER_NORMAL_DIR = "render_normal"
RENDER_MASK_DIR = "render_mask"
NO_CLASS = 255


@torch.no_grad()
def render_own_normals(model, dataset, path: str | Path, batch_size: int = 8) -> Path:
    """Renders the stage-1 avatar's camera-space normals, coverage and semantic classes of every
    frame of ``dataset`` (the target's real training video(s)) into ``path`` (atomic).

    Raises:
        DataError: two frames share a name (their normals could not be told apart).
    """
    names = dataset.frame_names()
    if len(set(names)) != len(names):
        raise DataError("own normals: the stage-1 training frames repeat frame names (several videos with the same "
                        "frame names); give generative.stage1.train one video")
    device = model.points.points.device
    model.eval()
    normal, mask, classes = [], [], []
    for start in progress(range(0, len(dataset), batch_size), desc="own normals", leave=False):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        out = model(collate_frames(items).to(device))
        normal.append(out.normal.half().cpu())
        mask.append(out.mask.half().cpu())
        classes.append(out.semantic.argmax(-1).to(torch.uint8).cpu() if out.semantic is not None
                       else torch.full(out.mask.shape, NO_CLASS, dtype=torch.uint8))
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, names=np.array(names), normal=torch.cat(normal).numpy(),
                                mask=torch.cat(mask).numpy(), classes=torch.cat(classes).numpy())
    log.info("own normals of %d frames: %s", len(names), path)
    return path


class NormalTargets:
    """``targets(record, frame, image_size)`` → (H, W, 3) normals and (H, W) 0/1 weights of a frame.

    Args:
        own_normals: the ``.npz`` of :func:`render_own_normals`.
    """

    def __init__(self, own_normals: str | Path):
        self.path = Path(own_normals)
        if not self.path.is_file():
            raise DataError(f"{self.path}: the stage-1 own normals are missing (render them after stage 1, or set "
                            "loss.normal = 0)")
        with np.load(self.path) as data:
            self.names = {str(n): i for i, n in enumerate(data["names"])}
            self.normal, self.mask, self.classes = data["normal"], data["mask"], data["classes"]

    def _own(self, name: str, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if name not in self.names:
            raise DataError(f"{self.path}: no own normals of frame {name!r} (a stage-2 frame that is not a frame of "
                            "the target's stage-1 video)")
        i = self.names[name]
        normal = resize_rgb(self.normal[i].astype(np.float32), size)
        mask = resize_mask(self.mask[i].astype(np.float32), size)
        return normal, mask, resize_label_map(self.classes[i], size)

    def __call__(self, record, frame, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        normal, mask, classes = self._own(frame.name, size)
        own = mask >= 0.5
        if record.role != "synthetic":
            return normal, own.astype(np.float32)
        part = resize_mask(read_mask(frame.part_mask_path), size) >= 0.5
        folder = record.video.path
        render_file = folder / RENDER_NORMAL_DIR / f"{frame.name}.png"
        if not render_file.is_file():
            raise DataError(f"{render_file}: missing: a synthetic video needs the DB render's normals for the normal "
                            "loss (re-run the synthesis with bank renders that have normals, or set loss.normal = 0)")
        render_normal = resize_rgb(read_rgb(render_file), size) * 2.0 - 1.0
        render_mask = resize_mask(read_mask(folder / RENDER_MASK_DIR / f"{frame.name}.png"), size) >= 0.5
        inside = part & render_mask
        own &= ~part & ~np.isin(classes, parts.category_classes(record.category))
        out = np.where(inside[..., None], render_normal, normal).astype(np.float32)
        return out, (inside | own).astype(np.float32)
