"""Positional encoding of coordinates (NeRF / IDR style)."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["PositionalEncoding"]


class PositionalEncoding(nn.Module):
    """``x → [x, sin(2⁰x), cos(2⁰x), …, sin(2^{L−1}x), cos(2^{L−1}x)]``.

    Frequencies are powers of two without a factor π (IDR's convention); the input itself
    comes first, so the first ``in_dim`` outputs are the raw coordinates (the geometric
    initialisation of :class:`pegasus.avatar.fields.GeometryField` relies on this).

    Args:
        in_dim: D, size of the last input axis.
        num_freqs: L ≥ 0 (0 = identity).
    """

    def __init__(self, in_dim: int = 3, num_freqs: int = 6):
        super().__init__()
        if in_dim < 1 or num_freqs < 0:
            raise ValueError(f"PositionalEncoding: in_dim ≥ 1 and num_freqs ≥ 0, got {in_dim}, {num_freqs}")
        self.in_dim, self.num_freqs = in_dim, num_freqs
        self.register_buffer("freqs", 2.0 ** torch.arange(num_freqs, dtype=torch.float32), persistent=False)

    @property
    def out_dim(self) -> int:
        """D·(1 + 2L)."""
        return self.in_dim * (1 + 2 * self.num_freqs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) → (..., D·(1 + 2L))."""
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"PositionalEncoding: expected (..., {self.in_dim}), got {tuple(x.shape)}")
        if self.num_freqs == 0:
            return x
        scaled = x[..., None, :] * self.freqs.to(x.dtype)[:, None]  # (..., L, D)
        waves = torch.stack([scaled.sin(), scaled.cos()], dim=-2)  # (..., L, 2, D)
        return torch.cat([x, waves.flatten(-3)], dim=-1)
