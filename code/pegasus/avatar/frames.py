"""Head-model states of a batch: each frame's pose of the head model and its canonical state.

The canonical state of a frame is its person's: the person's mean training expression
(``canonical_expression[subject_id]``), the jaw opened by ``head_model.canonical_jaw_opening``,
everything else zero, and the frame's own shape (zero shape in the generic canonical space).
:class:`FrameRefinement` holds learned per-frame corrections, one row per (video, frame) of the
training split (:attr:`FrameBatch.refine_row`); frames without a row are left as tracked.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data.batch import NO_ROW, FrameBatch
from ..headmodel.model import HeadModel
from .deformer import FlameState, flame_state

__all__ = ["FrameRefinement", "head_model_states"]


class FrameRefinement(nn.Module):
    """Per-frame corrections of expression (E), pose (15) and translation (3), zero at start.

    Args:
        num_rows: one row per (video, frame) of the training split.
        n_expr: E.
    """

    def __init__(self, num_rows: int, n_expr: int):
        super().__init__()
        self.num_rows = num_rows
        self.expression = nn.Parameter(torch.zeros(num_rows, n_expr))
        self.pose = nn.Parameter(torch.zeros(num_rows, 15))
        self.translation = nn.Parameter(torch.zeros(num_rows, 3))

    def forward(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B,) rows (:data:`NO_ROW` = no correction) → (B, E), (B, 15), (B, 3) corrections."""
        if bool((rows >= self.num_rows).any()) or bool((rows < NO_ROW).any()):
            raise ValueError(f"per-frame refinement: rows {rows.tolist()} outside [{NO_ROW}, {self.num_rows})")
        has = (rows != NO_ROW)[:, None].to(self.expression.dtype)
        safe = rows.clamp_min(0)
        return self.expression[safe] * has, self.pose[safe] * has, self.translation[safe] * has


def head_model_states(
    head_model: HeadModel,
    batch: FrameBatch,
    canonical_expression: torch.Tensor,
    canonical_jaw_opening: float,
    shape_cancel: bool,
    corrections: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> tuple[FlameState, FlameState]:
    """The frames' and their canonical head-model states.

    Args:
        batch: the frames (expression, pose, shape, subject_id are read).
        canonical_expression: (S, E) per-subject canonical expressions.
        canonical_jaw_opening: radians.
        shape_cancel: canonical state at zero shape (the generic canonical space).
        corrections: (B, E), (B, 15), (B, 3) added to expression, pose and translation (a
            :class:`FrameRefinement`'s rows, or test-time refinement), or None.

    Returns:
        frame state (B frames) and canonical state (Bs = 1 when every frame shares it, else B).
    """
    like = canonical_expression
    expression, pose, shape = (t.to(like) for t in (batch.expression, batch.pose, batch.shape))
    translation = None
    if corrections is not None:
        d_expr, d_pose, translation = corrections
        expression, pose = expression + d_expr, pose + d_pose
    frame = flame_state(head_model, shape, expression, pose, translation)
    subjects = batch.subject_id.to(like.device)
    shared = shape_cancel and bool((subjects == subjects[0]).all())
    count = 1 if shared else len(batch)
    canonical_pose = head_model.canonical_pose(canonical_jaw_opening)[None].expand(count, -1)
    canonical = flame_state(head_model, None if shape_cancel else shape,
                            canonical_expression[subjects[:count]], canonical_pose)
    return frame, canonical
