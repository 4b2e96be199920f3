"""Test-time part control of a generative avatar (METHOD §5).

A composed face is the target's own codes (C, D), one per latent category, with some blocks
replaced: by a DB person's learned code (a swap), by a blend of two codes (interpolation) or
by a draw from the per-dimension mean and spread of a category's learned codes (sampling).
:class:`CodeBook` holds the learned codes of a run, :func:`composed_codes` edits the target's,
and :class:`ControlRenderer` renders any codes, optionally with the identity lock: points
that belong to the edited categories in neither the edited nor the unedited pass (part
logit χ and semantic class, :func:`part_points`) keep the unedited pass's values, so the
rest of the face cannot move (:func:`mix_point_passes`).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch

from ..avatar.latent import parse_synthetic_owner
from ..avatar.networks import PointPass
from ..data import parts
from ..data.batch import FrameBatch

__all__ = ["CodeBook", "composed_codes", "interpolated_codes", "sample_codes", "part_points", "mix_point_passes",
           "ControlRenderer"]


@dataclass(frozen=True)
class CodeBook:
    """The learned codes of a generative run, as seen from its target.

    Attributes:
        categories: latent categories in code order.
        own: (C, D) the target's assembled codes (the shared absent code where it lacks a part).
        db: {category: {DB person: (D,) code}} of every synthetic video trained.
    """

    categories: tuple[str, ...]
    own: torch.Tensor
    db: Mapping[str, Mapping[str, torch.Tensor]]

    @classmethod
    def of_model(cls, model, target: str) -> "CodeBook":
        """The codes of a :class:`~pegasus.avatar.model.PointAvatar` with latent codes.

        Raises:
            KeyError: the run has no codes of ``target``.
        """
        table = model.index.latent
        if table is None:
            raise ValueError("the run has no latent codes (model.latent.code_dim = 0): nothing to compose")
        codes = model.latent_codes.codes.detach()
        own = codes[list(table.rows_for(target, "target"))]
        db: dict[str, dict[str, torch.Tensor]] = {}
        for owner, category in table.owners:
            parsed = parse_synthetic_owner(owner)
            if parsed is not None and parsed[1] == target:
                db.setdefault(category, {})[parsed[0]] = codes[table.row(owner, category)]
        return cls(table.categories, own, {c: dict(sorted(v.items())) for c, v in db.items()})

    def index(self, category: str) -> int:
        if category not in self.categories:
            raise KeyError(f"unknown latent category {category!r}; the run has {list(self.categories)}")
        return self.categories.index(category)

    def learned(self, category: str) -> torch.Tensor:
        """(K, D) every learned code of a category: the target's own and the DB people's."""
        return torch.stack([self.own[self.index(category)], *self.db.get(category, {}).values()])


def composed_codes(book: CodeBook, edits: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """(C, D) the target's codes with ``edits`` {category: (D,) code} in their blocks."""
    codes = book.own.clone()
    for category, code in edits.items():
        codes[book.index(category)] = code.to(codes)
    return codes


def interpolated_codes(start: torch.Tensor, end: torch.Tensor, steps: int) -> torch.Tensor:
    """(steps, D) codes from ``start`` to ``end`` (both included), linearly."""
    t = torch.linspace(0.0, 1.0, steps, dtype=start.dtype, device=start.device)[:, None]
    return (1.0 - t) * start + t * end


def sample_codes(learned: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """(count, D) draws from N(mean, std²) per dimension of (K, D) learned codes (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    mean = learned.mean(0)
    std = learned.std(0, unbiased=False) if len(learned) > 1 else torch.zeros_like(mean)
    noise = torch.randn(count, learned.shape[1], generator=generator, dtype=learned.dtype)
    return mean.cpu() + std.cpu() * noise


def part_points(state: PointPass, categories: Iterable[str]) -> torch.Tensor:
    """(N,) bool: points of a pass that belong to the edited ``categories`` in any of its P
    latents: the part logit says so (sigmoid(χ) ≥ 0.5, METHOD §5: trained on each video's
    swapped part) or the semantic head's argmax class is one of theirs. Either head alone
    when the model has only one."""
    geometry = state.geometry
    if geometry.semantic is None and geometry.part is None:
        raise ValueError("the identity lock needs a part logit (model.part_logit) or a semantic head (model.semantic)")
    picked = torch.zeros(geometry.sdf.shape, dtype=torch.bool, device=geometry.sdf.device)
    if geometry.part is not None:
        picked |= geometry.part >= 0.0
    if geometry.semantic is not None:
        classes = sorted({k for c in categories for k in parts.category_classes(c)})
        picked |= torch.isin(geometry.semantic.argmax(-1), torch.tensor(classes, device=geometry.semantic.device))
    return picked.any(0)


def mix_point_passes(unedited: PointPass, edited: PointPass, take_edited: torch.Tensor) -> PointPass:
    """A pass whose points take ``edited``'s values where ``take_edited`` (N,) is True and
    ``unedited``'s elsewhere (every per-point tensor: positions, bases, colours, normals)."""
    n = take_edited.shape[0]

    def pick(a, b):  # per-point tensors have the point axis second: (P or B, N, ...)
        if a is None:
            return None
        if dataclasses.is_dataclass(a):
            return dataclasses.replace(a, **{f.name: pick(getattr(a, f.name), getattr(b, f.name))
                                             for f in dataclasses.fields(a)})
        a, b = torch.broadcast_tensors(a, b)
        return torch.where(take_edited.view(1, n, *([1] * (a.ndim - 2))), b, a)

    per_point = {f.name: pick(getattr(unedited, f.name), getattr(edited, f.name))
                 for f in dataclasses.fields(unedited) if f.name != "latent"}
    return dataclasses.replace(edited, **per_point)


class ControlRenderer:
    """Renders a generative avatar with composed codes.

    Args:
        model: a :class:`~pegasus.avatar.model.PointAvatar` with latent codes (eval mode).
        book: its :class:`CodeBook`.
        identity_lock: keep the unedited values of points outside the edited categories.
    """

    def __init__(self, model, book: CodeBook, identity_lock: bool):
        self.model, self.book, self.identity_lock = model, book, identity_lock
        self.device = model.points.points.device
        self._unedited: tuple[FrameBatch, PointPass] | None = None  # the last batch's unedited pass

    def latent(self, codes: torch.Tensor) -> torch.Tensor:
        """(C, D) codes → (1, Z) latent."""
        return self.model.latent_codes.assemble(codes.to(self.device)[None])

    @torch.no_grad()
    def render(self, batch: FrameBatch, codes: torch.Tensor, edited: Sequence[str] = ()):
        """The :class:`~pegasus.avatar.channels.AvatarOutput` of ``batch`` with (C, D) ``codes``;
        ``edited`` names the categories that differ from the target's own codes (the lock's)."""
        given, batch = batch, batch.to(self.device)
        latent = self.latent(codes)
        if not (self.identity_lock and edited):
            return self.model(batch, latent=latent)
        state = self.model.point_pass(batch, latent)
        if self._unedited is None or self._unedited[0] is not given:  # many edits of one batch share it
            self._unedited = (given, self.model.point_pass(batch, self.latent(self.book.own)))
        own = self._unedited[1]
        take = part_points(state, edited) | part_points(own, edited)
        return self.model.render_pass(batch, mix_point_passes(own, state, take))
