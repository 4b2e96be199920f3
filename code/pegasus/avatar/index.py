"""Who and what a trained avatar knows: its subjects, latent codes and per-frame rows.

A :class:`RunIndex` is made from the training split once and stored in every checkpoint, so
that any later split (the test videos, another stage's videos) is indexed the same way
without reading the training data again: :meth:`RunIndex.video_indices` gives each video of
a table the trained subject id, latent rows and per-frame refinement rows of its frames.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..data.dataset import VideoIndices
from ..data.images import DataError
from ..data.videos import VideoTable
from .latent import LatentTable

__all__ = ["RunIndex"]


@dataclass(frozen=True)
class RunIndex:
    """The trained run's tables.

    Attributes:
        subjects: people of the training split, in order (row of each per-subject table).
        refine_keys: (video key, frame index) of each per-frame refinement row (empty: none).
        latent: the latent code table, or None (no latent code).
    """

    subjects: tuple[str, ...]
    refine_keys: tuple[tuple[str, int], ...] = ()
    latent: LatentTable | None = None

    @classmethod
    def from_table(cls, table: VideoTable, *, refine: bool, latent: bool) -> "RunIndex":
        """The index of a training split: a refinement row per (video, frame) when ``refine``,
        a latent table (persons' codes, one per synthetic swap) when ``latent``."""
        keys = tuple((r.key, f.index) for r in table for f in r.video.frames) if refine else ()
        codes = LatentTable.from_videos(table.records, table.person_parts) if latent else None
        return cls(table.subjects, keys, codes)

    def video_indices(self, table: VideoTable) -> list[VideoIndices]:
        """Run-level indices of every video of ``table`` (any split).

        Raises:
            DataError: a video's person (or swap) was not in the training split.
        """
        rows_of: dict[str, dict[int, int]] = {}
        for row, (key, frame) in enumerate(self.refine_keys):
            rows_of.setdefault(key, {})[frame] = row
        out = []
        for r in table:
            if r.subject not in self.subjects:
                raise DataError(f"{r.video.path}: {r.subject!r} was not trained (the run knows {list(self.subjects)})")
            try:
                latent = None if self.latent is None else self.latent.rows_for(r.subject, r.role, r.category,
                                                                               r.db_person)
            except KeyError as err:
                raise DataError(f"{r.video.path}: {err.args[0]}") from None
            out.append(VideoIndices(self.subjects.index(r.subject), latent, rows_of.get(r.key, {})))
        return out

    def to_json(self) -> dict:
        return {"subjects": list(self.subjects), "refine_keys": [list(k) for k in self.refine_keys],
                "latent": None if self.latent is None else self.latent.to_json()}

    @classmethod
    def from_json(cls, data: Mapping) -> "RunIndex":
        latent = data.get("latent")
        return cls(tuple(data["subjects"]), tuple((k, int(f)) for k, f in data["refine_keys"]),
                   None if latent is None else LatentTable.from_json(latent))
