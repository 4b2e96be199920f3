"""PEGASUS's latent code: one block per latent category (METHOD §5).

The categories and their order come from :data:`pegasus.data.parts.LATENT_CATEGORIES`
(read when a table is built, so adding a category is a change of that table only). A frame's
latent ``z`` is the concatenation over the C categories of ``[one-hot of the category (C) ‖
code (D)]``, so ``|z| = C · (C + D)`` (369 for PEGASUS's 9 categories and 32-D codes).

Codes live in one table (:class:`LatentCodes`): row 0 is the shared "absent" code, then one
row per (owner, category), where an owner is a person (their own codes, learned from their
own videos) or a synthetic video (its one code, in its category). :func:`assemble_rows`
is the rule that says which row each block of a video's latent takes; :class:`LatentTable`
numbers the rows of a run and applies the rule to its videos.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ..data import parts

__all__ = ["ABSENT_ROW", "latent_size", "synthetic_owner", "parse_synthetic_owner", "assemble_rows", "LatentTable",
           "LatentCodes"]

ABSENT_ROW = 0
"""Row of the shared "absent" code."""


def latent_size(n_categories: int, code_dim: int) -> int:
    """|z| = C · (C + D): per category a one-hot of the category and a code."""
    return n_categories * (n_categories + code_dim)


def synthetic_owner(db_person: str, subject: str) -> str:
    """The owner of a synthetic video's code: the DB person's part as worn by the subject.

    Synthetic videos of one (category, DB person) share it, so a ground-truth video of the
    same swap (a test entry) finds the trained code.
    """
    return f"{db_person}@{subject}"


def parse_synthetic_owner(owner: str) -> tuple[str, str] | None:
    """(DB person, subject) of a :func:`synthetic_owner` name, None for a person's own name."""
    db_person, sep, subject = owner.rpartition("@")
    return (db_person, subject) if sep and db_person and subject else None


def assemble_rows(
    categories: Iterable[str],
    person_categories: Iterable[str],
    row_of: Callable[[str, str], int],
    person: str,
    swap: tuple[str, str] | None = None,
) -> tuple[int, ...]:
    """The code row of each block of a video's latent (METHOD §5).

    Every block starts as the shared absent code; the categories the person has take the
    person's own codes; for a synthetic video ``swap = (category, owner)`` the swapped
    category's block takes that owner's code instead.

    Args:
        categories: the latent categories in code order.
        person_categories: the categories the video's person has (identity included).
        row_of: ``row_of(owner, category)`` → the table row of that code.
        person: the person filmed (the target, for a synthetic video).
        swap: (category, owner) of a synthetic video's part, or None.

    Returns:
        (C,) rows, one per category in code order.
    """
    has = set(person_categories)
    rows = [row_of(person, c) if c in has else ABSENT_ROW for c in categories]
    if swap is not None:
        category, owner = swap
        rows[list(categories).index(category)] = row_of(owner, category)
    return tuple(rows)


@dataclass(frozen=True)
class LatentTable:
    """The rows of a run's code table and the categories each person has.

    Attributes:
        categories: latent categories in code order (from the parts table at build time).
        owners: (owner, category) of rows 1… (row 0 is the absent code).
        person_parts: {person: categories they have}, for the assembly rule.
    """

    categories: tuple[str, ...]
    owners: tuple[tuple[str, str], ...]
    person_parts: Mapping[str, frozenset[str]]

    @classmethod
    def from_videos(cls, records, person_parts: Callable[[str], frozenset[str]]) -> "LatentTable":
        """Rows for the persons and synthetic videos of ``records`` (a training split).

        Args:
            records: :class:`pegasus.data.videos.VideoRecord` s.
            person_parts: categories a person has (e.g. ``VideoTable.person_parts``).
        """
        categories = tuple(c.name for c in parts.LATENT_CATEGORIES)
        people = list(dict.fromkeys(r.subject for r in records))
        has = {p: frozenset(person_parts(p)) for p in people}
        owners = [(p, c) for p in people for c in categories if c in has[p]]
        for r in records:
            if r.role == "synthetic":
                owner = (synthetic_owner(r.db_person, r.subject), r.category)
                if owner not in owners:
                    owners.append(owner)
        return cls(categories, tuple(owners), has)

    @property
    def num_rows(self) -> int:
        return 1 + len(self.owners)

    def row(self, owner: str, category: str) -> int:
        """Table row of an owner's code of a category.

        Raises:
            KeyError: the run has no such code (an untrained person or swap).
        """
        try:
            return 1 + self._row_index[(owner, category)]
        except KeyError:
            raise KeyError(f"no latent code for {owner!r} in category {category!r}; the run has codes for "
                           f"{sorted({o for o, _ in self.owners})}") from None

    @functools.cached_property
    def _row_index(self) -> dict[tuple[str, str], int]:
        return {owner: i for i, owner in enumerate(self.owners)}

    def rows_for(self, subject: str, role: str, category: str | None = None,
                 db_person: str | None = None) -> tuple[int, ...]:
        """The assembled rows of a video (see :func:`assemble_rows`)."""
        if subject not in self.person_parts:
            raise KeyError(f"no latent codes for {subject!r}; the run has {sorted(self.person_parts)}")
        swap = (category, synthetic_owner(db_person, subject)) if role == "synthetic" else None
        return assemble_rows(self.categories, self.person_parts[subject], self.row, subject, swap)

    def to_json(self) -> dict:
        return {"categories": list(self.categories), "owners": [list(o) for o in self.owners],
                "person_parts": {p: sorted(c) for p, c in self.person_parts.items()}}

    @classmethod
    def from_json(cls, data: Mapping) -> "LatentTable":
        return cls(tuple(data["categories"]), tuple((o, c) for o, c in data["owners"]),
                   {p: frozenset(c) for p, c in data["person_parts"].items()})


class LatentCodes(nn.Module):
    """The code table (R, D) and the assembly of latents from rows.

    Args:
        num_rows: R, rows of the table (:attr:`LatentTable.num_rows`).
        num_categories: C.
        code_dim: D.
        init_std: codes start as N(0, init_std²).
    """

    def __init__(self, num_rows: int, num_categories: int, code_dim: int, init_std: float = 0.01):
        super().__init__()
        self.num_categories, self.code_dim = num_categories, code_dim
        self.codes = nn.Parameter(torch.randn(num_rows, code_dim) * init_std)
        self.register_buffer("one_hot", torch.eye(num_categories), persistent=False)

    @property
    def latent_dim(self) -> int:
        return latent_size(self.num_categories, self.code_dim)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """(B, C) int64 rows → (B, C·(C + D)) latents."""
        if rows.ndim != 2 or rows.shape[1] != self.num_categories:
            raise ValueError(f"latent rows must be (B, {self.num_categories}), got {tuple(rows.shape)}")
        return self.assemble(self.codes[rows])

    def assemble(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, C, D) codes, one per category in code order → (B, C·(C + D)) latents (test-time
        control builds codes that are in no row: interpolated, sampled, mixed)."""
        if codes.ndim != 3 or codes.shape[1:] != (self.num_categories, self.code_dim):
            raise ValueError(f"codes must be (B, {self.num_categories}, {self.code_dim}), got {tuple(codes.shape)}")
        one_hot = self.one_hot.to(codes.dtype).expand(codes.shape[0], -1, -1)
        return torch.cat([one_hot, codes], dim=-1).reshape(codes.shape[0], -1)

    def regulariser(self, rows: torch.Tensor) -> torch.Tensor:
        """Mean over the frames of (B, C) rows of mean(code²) of each frame's latent (PEGASUS's
        0.01 · mean(z²) term, unweighted; the constant one-hot parts left out). A mean over
        frames, so batches split across ranks give the same gradient."""
        return self.codes[rows].pow(2).mean()
