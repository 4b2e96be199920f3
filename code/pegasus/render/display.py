"""Display conventions of rendered channels (what a picture of a render shows)."""
from __future__ import annotations

import torch

__all__ = ["normal_to_display"]


def normal_to_display(normal: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Camera-space unit normals (..., 3) in [−1, 1] → colours ``(n + 1) / 2`` in [0, 1],
    composited on white with ``mask`` (..., H, W) when given."""
    colours = ((normal + 1) / 2).clamp(0, 1)
    if mask is not None:
        m = mask[..., None]
        colours = colours * m + (1 - m)
    return colours
