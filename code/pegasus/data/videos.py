"""The videos of a run: dataset entries expanded, read, selected and numbered.

:class:`VideoTable` turns the ``dataset.train`` or ``dataset.test`` entries
(:class:`pegasus.data.settings.VideoEntry`) into :class:`VideoRecord` s, one per video,
in entry order. ``video = "*"`` expands to every video of the subject (sorted), and
``manifest = <file>`` to every video the manifest lists. Two manifest layouts are read:

* the project's video manifest ``{"videos": [{"root", "subject", "video", "role",
  "category", "db_person"}, ...]}`` (roots relative to the manifest's folder; written by
  the stages that make datasets), and
* the synthetic database's ground-truth manifest (``ground_truth/manifest.json``): each
  entry is a synthetic video of a person wearing a DB person's part.

Frames are selected per entry: the frame range ``[start, end)`` first, then the stride,
then the subject's ``blacklist.json``.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .images import DataError, read_label_map
from .imavatar import (MASK_DIR, PART_MASK_DIR, SEMANTIC_DIR, FrameSelection, Video, list_videos, read_blacklist,
                       read_video, select_frames, subject_dir, video_dir)
from . import parts
from .parts import labels_mask
from .settings import VideoEntry

__all__ = ["VideoRecord", "VideoTable", "entries_from_manifest", "fit_length", "PART_PRESENCE"]

log = logging.getLogger(__name__)

PART_PRESENCE = (16, 0.001, 0.25)
"""Finding a person's parts in label maps: (frames sampled per video, fraction of the image a
part must cover in a frame, fraction of the sampled frames that must show it)."""


def fit_length(values: np.ndarray, length: int) -> np.ndarray:
    """(..., N) → (..., length) float32: zero-padded or truncated along the last axis."""
    values = np.asarray(values, dtype=np.float32)
    out = np.zeros((*values.shape[:-1], length), dtype=np.float32)
    n = min(length, values.shape[-1])
    out[..., :n] = values[..., :n]
    return out


@dataclass(frozen=True, eq=False)
class VideoRecord:
    """One video of a run.

    Attributes:
        id: position in its table.
        key: ``subject/video``, with ``[start:end]`` when the entry gives a frame range
            (unique within a table; names the video in batches, logs and checkpoints).
        subject: the person filmed (for a synthetic video: the target wearing another part).
        role: target, db or synthetic (:data:`pegasus.data.settings.ROLES`).
        category, db_person: the swapped part of a synthetic video (None otherwise).
        parts: latent categories the entry declares for its person (None: found in the
            label maps, see :meth:`VideoTable.person_parts`).
        video: the folder with the selected frames.
    """

    id: int
    key: str
    subject: str
    role: str
    category: str | None
    db_person: str | None
    parts: tuple[str, ...] | None
    video: Video

    @property
    def name(self) -> str:
        """The video folder name."""
        return self.video.name

    def expressions(self, n_expr: int) -> torch.Tensor:
        """(T, n_expr) float32 expressions of the selected frames (zero-padded or truncated)."""
        return torch.from_numpy(fit_length(np.stack([f.flame.expression for f in self.video.frames]), n_expr))

    def shape(self, n_shape: int) -> torch.Tensor:
        """(n_shape,) float32 identity coefficients of the video."""
        return torch.from_numpy(fit_length(self.video.shape_params, n_shape))


def entries_from_manifest(path: str | Path) -> list[VideoEntry]:
    """The video entries a manifest lists (either layout, see the module docstring).

    Raises:
        DataError: the file is missing, not JSON, or in neither layout.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: manifest not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: unreadable manifest ({err})") from err
    base = path.parent
    if isinstance(data, dict) and isinstance(data.get("videos"), list):
        entries = []
        for i, item in enumerate(data["videos"]):
            try:
                fields = {k: item[k] for k in ("subject", "video")}
                fields.update({k: item[k] for k in ("role", "category", "db_person") if item.get(k) is not None})
                fields["root"] = str(base / item.get("root", "."))
            except (KeyError, TypeError):
                raise DataError(f"{path}: videos[{i}] needs subject and video, got {item!r}") from None
            entries.append(VideoEntry(**fields))
        return entries
    if isinstance(data, dict) and isinstance(data.get("entries"), list):  # the synthetic database's ground truth
        try:
            return [VideoEntry(subject=e["person"], video=e["name"], root=str(base.parent / Path(e["path"]).parents[2]),
                               role="synthetic", category=e["category"], db_person=e["db_person"])
                    for e in data["entries"]]
        except (KeyError, TypeError, IndexError) as err:
            raise DataError(f"{path}: malformed ground-truth entry ({err})") from None
    raise DataError(f'{path}: expected {{"videos": [...]}} (a video manifest) or {{"entries": [...]}} (the '
                    "synthetic database's ground-truth manifest)")


def _selection(entry: VideoEntry, video: Video) -> FrameSelection:
    if entry.frames is None:
        return FrameSelection(stride=entry.stride)
    start, end = entry.frames
    count = len(video.frames)
    if start >= count:
        raise DataError(f"{video.path}: frames [{start}, {end}) start past the video's {count} frames")
    if end > count:
        log.warning("%s: frames [%d, %d) end past the video's %d frames; using [%d, %d)", video.path, start, end,
                    count, start, count)
    return FrameSelection(indices=tuple(range(start, min(end, count), entry.stride)))


class VideoTable(Sequence[VideoRecord]):
    """The videos of one split, numbered in entry order.

    Args:
        entries: the split's entries (``cfg.dataset.train`` or ``cfg.dataset.test``).
        default_root: root of entries that name none (``cfg.dataset.root``).
        require_semantic: every video must have ``semantic/`` label maps.
        use_blacklist: drop frames listed in the subjects' ``blacklist.json``.

    Raises:
        DataError: a missing folder or file, a video listed twice, frames out of range,
            a synthetic video without ``mask_object/``; the message names the path.
    """

    def __init__(self, entries: Sequence[VideoEntry], default_root: str | Path, *, require_semantic: bool = False,
                 use_blacklist: bool = True):
        expanded: list[VideoEntry] = []
        for entry in entries:
            if entry.manifest is not None:
                expanded += [replace(e, stride=entry.stride) for e in entries_from_manifest(entry.manifest)]
            elif entry.video == "*":
                root = entry.root or default_root
                names = list_videos(root, entry.subject)
                if not names:
                    raise DataError(f"{subject_dir(root, entry.subject)}: no videos (video = \"*\")")
                expanded += [replace(entry, video=name) for name in names]
            else:
                expanded.append(entry)
        records: list[VideoRecord] = []
        blacklists: dict[Path, dict] = {}
        for entry in expanded:
            root = Path(entry.root or default_root)
            folder = video_dir(root, entry.subject, entry.video)
            if not folder.is_dir():
                known = list_videos(root, entry.subject)
                raise DataError(f"{folder}: video folder not found; videos of {entry.subject!r}: {known}")
            video = read_video(folder)
            if not video.has_masks:
                raise DataError(f"{folder / MASK_DIR}: mask folder not found; every frame needs a soft mask")
            if require_semantic and not video.has_semantic:
                raise DataError(f"{folder / SEMANTIC_DIR}: semantic folder not found; run face parsing or set "
                                "dataset.load_semantic = false")
            if entry.role == "synthetic" and not video.has_part_masks:
                raise DataError(f"{folder / PART_MASK_DIR}: a synthetic video needs the mask of its swapped part")
            subject_path = subject_dir(root, entry.subject)
            if use_blacklist and subject_path not in blacklists:
                blacklists[subject_path] = read_blacklist(subject_path)
            excluded = blacklists.get(subject_path, {}).get(entry.video, ())
            video = select_frames(video, _selection(entry, video), excluded)
            key = f"{entry.subject}/{entry.video}" + ("" if entry.frames is None else
                                                       f"[{entry.frames[0]}:{entry.frames[1]}]")
            if any(r.key == key for r in records):
                raise DataError(f"{folder}: listed twice in one split ({key})")
            records.append(VideoRecord(len(records), key, entry.subject, entry.role, entry.category,
                                       entry.db_person, entry.parts, video))
        if not records:
            raise DataError("the split has no videos")
        self.records: tuple[VideoRecord, ...] = tuple(records)
        sizes = {r.video.image_size for r in records}
        self.image_size: tuple[int, int] | None = sizes.pop() if len(sizes) == 1 else None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index):
        return self.records[index]

    @property
    def subjects(self) -> tuple[str, ...]:
        """The people filmed, in order of first appearance."""
        return tuple(dict.fromkeys(r.subject for r in self.records))

    @property
    def frame_count(self) -> int:
        return sum(len(r.video.frames) for r in self.records)

    def person_parts(self, person: str) -> frozenset[str]:
        """Latent categories a person has: declared by an entry, else found in the label maps
        of their own (non-synthetic) videos, else all categories."""
        own = [r for r in self.records if r.subject == person and r.role != "synthetic"]
        declared = {p for r in own if r.parts is not None for p in r.parts}
        if declared:
            return frozenset(declared | {c.name for c in parts.LATENT_CATEGORIES if not c.is_part})
        with_labels = [r for r in own if r.video.has_semantic]
        if not with_labels:
            return frozenset(c.name for c in parts.LATENT_CATEGORIES)
        return frozenset(c.name for c in parts.LATENT_CATEGORIES
                         if not c.is_part or any(_shows_part(r.video, c.label_ids) for r in with_labels))


def _shows_part(video: Video, label_ids) -> bool:
    """Whether a part covers enough of enough sampled frames (:data:`PART_PRESENCE`)."""
    samples, min_area, min_frames = PART_PRESENCE
    frames = video.frames
    picked = [frames[i] for i in np.linspace(0, len(frames) - 1, min(samples, len(frames))).round().astype(int)]
    shown = [labels_mask(read_label_map(f.semantic_path), label_ids).mean() >= min_area for f in picked]
    return float(np.mean(shown)) >= min_frames
