"""Declarations of the ``dataset`` config section and of its video entries (values in confs/).

A run's data is two lists of video entries, ``dataset.train`` and ``dataset.test``. Each
entry names one IMavatar video folder ``<root>/<subject>/<subject>/<video>/`` and its role
in the run; ``video = "*"`` stands for every video of the subject and ``manifest = <file>``
for every video a manifest lists (the synthetic database's ground truth, the synthesis
outputs). :mod:`pegasus.data.videos` expands the entries into a :class:`VideoTable`.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config.declare import Section, setting
from .parts import category_names

__all__ = ["ROLES", "VideoEntry", "DatasetSettings"]

ROLES: tuple[str, ...] = ("target", "db", "synthetic")
"""Roles of a video: the person being personalised, another (DB) person, or a synthetic
video of the target wearing a DB person's part (``category``, ``db_person``)."""


@dataclass(frozen=True)
class VideoEntry(Section):
    """One entry of ``dataset.train`` / ``dataset.test`` (fields left out take these defaults)."""

    subject: str | None = setting("subject (person) folder name; null only with manifest", default=None)
    video: str | None = setting('video folder name, or "*" for every video of the subject', default=None)
    root: str | None = setting("datasets folder holding <subject>/<subject>/<video>/; null = dataset.root",
                               default=None)
    role: str = setting("target (the person personalised), db (another person) or synthetic (the target "
                        "wearing db_person's part of category)", choices=ROLES, default="target")
    category: str | None = setting("synthetic videos: the latent category of the swapped part", default=None)
    db_person: str | None = setting("synthetic videos: the DB person whose part the target wears", default=None)
    frames: tuple[int, int] | None = setting(
        "[start, end): positions in the video's flame_params.json frame list (0-based, end excluded); null = "
        "all frames. Splits one clip into train and test without copying files", ge=0, ordered=True,
        default=None)
    stride: int = setting("use every n-th frame (after the frame range)", ge=1, default=1)
    parts: tuple[str, ...] | None = setting(
        "latent categories the person has (e.g. [identity, hair, eyebrows]); null = found in the label maps "
        "(every category without semantic maps)", default=None)
    manifest: str | None = setting(
        "a manifest JSON whose videos are added instead (subject and video then stay null)", default=None)

    def problems(self) -> list[str]:
        problems = []
        if self.manifest is not None:
            named = [k for k in ("subject", "video", "category", "db_person", "frames", "parts")
                     if getattr(self, k) is not None]
            if named:
                problems.append(f"{', '.join(named)}: not used with manifest (the manifest lists its videos)")
            return problems
        if not self.subject or not self.video:
            problems.append("subject, video: both are needed (or a manifest)")
        if self.role == "synthetic":
            if self.category is None or self.db_person is None:
                problems.append("category, db_person: a synthetic video needs both")
        elif self.category is not None or self.db_person is not None:
            problems.append(f"category, db_person: only synthetic videos have them (role is {self.role})")
        if self.category is not None and self.category not in category_names():
            problems.append(f"category: {self.category!r} is not a latent category {list(category_names())}")
        unknown = [p for p in self.parts or () if p not in category_names()]
        if unknown:
            problems.append(f"parts: {unknown} are not latent categories {list(category_names())}")
        if self.frames is not None and self.frames[0] >= self.frames[1]:
            problems.append(f"frames: need start < end, got {list(self.frames)}")
        return problems


@dataclass(frozen=True)
class DatasetSettings(Section):
    """Which videos a run trains and tests on, and how frames are loaded."""

    root: str = setting("datasets folder of entries that name no root")
    train: tuple[VideoEntry, ...] = setting("training video entries (see VideoEntry, docs/data.md)")
    test: tuple[VideoEntry, ...] = setting("held-out test video entries (other videos, or other frame ranges)")
    resolution: int | tuple[int, int] = setting("image size the frames are resized to: an int (square) or "
                                                "[H, W], pixels", ge=1)
    load_semantic: bool = setting("load semantic label maps (needed by the semantic head and part losses)")

    def problems(self) -> list[str]:
        problems = [] if self.train else ["train: at least one training video is needed"]
        for a in self.train:
            for b in self.test:
                if a.manifest is None and b.manifest is None and _same_video(a, b, self.root) and _overlap(a, b):
                    problems.append(f"train, test: {a.subject}/{a.video} is in both splits with overlapping frames "
                                    "(split by video, or give disjoint frame ranges)")
        return problems


def _same_video(a: VideoEntry, b: VideoEntry, root: str) -> bool:
    """Both entries can name one video folder (a "*" entry names them all)."""
    if ((a.root or root), a.subject) != ((b.root or root), b.subject):
        return False
    return a.video == b.video or "*" in (a.video, b.video)


def _overlap(a: VideoEntry, b: VideoEntry) -> bool:
    if a.frames is None or b.frames is None:
        return True
    return a.frames[0] < b.frames[1] and b.frames[0] < a.frames[1]

