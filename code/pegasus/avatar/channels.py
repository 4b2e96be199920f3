"""The channels an avatar renders: which per-point features are composited, their widths and
background values, and how a composited image splits back into named channels.

Colour-like channels (rgb, albedo, shading) sit on white like the data; normals, the part
probability and the semantic class probabilities on 0, except the background class, whose
probability is 1 where no point covers a pixel. Compositing is "over" with weights that sum
to at most 1, so composited class probabilities stay a distribution per pixel.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .networks import PointPass

__all__ = ["Channel", "ChannelLayout", "AvatarOutput"]


@dataclass(frozen=True)
class Channel:
    """A named block of composited features.

    Attributes:
        name: e.g. ``rgb``. width: number of features. background: (width,) values where no
            point covers a pixel.
    """

    name: str
    width: int
    background: tuple[float, ...]


class ChannelLayout:
    """The ordered channels of one avatar.

    Args:
        part: include the ``part`` channel (sigmoid of the part logit).
        semantic_classes: width of the ``semantic`` channel (softmax over the classes; 0 = none).
    """

    def __init__(self, part: bool = False, semantic_classes: int = 0):
        channels = [Channel("rgb", 3, (1.0,) * 3), Channel("normal", 3, (0.0,) * 3),
                    Channel("albedo", 3, (1.0,) * 3), Channel("shading", 3, (1.0,) * 3)]
        if part:
            channels.append(Channel("part", 1, (0.0,)))
        if semantic_classes:
            channels.append(Channel("semantic", semantic_classes, (1.0,) + (0.0,) * (semantic_classes - 1)))
        self.channels = tuple(channels)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)

    def background(self, like: torch.Tensor) -> torch.Tensor:
        """(F,) background of every feature, F = total width."""
        return torch.tensor([v for c in self.channels for v in c.background], dtype=like.dtype, device=like.device)

    def pack(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """{name: (B, N, width)} → (B, N, F) in layout order (every channel must be given)."""
        missing = [c.name for c in self.channels if c.name not in features]
        if missing:
            raise ValueError(f"ChannelLayout.pack: missing channels {missing}")
        return torch.cat([features[c.name] for c in self.channels], dim=-1)

    def unpack(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, H, W, F) composited image → {name: (B, H, W, width)}; the part channel as (B, H, W)."""
        out, start = {}, 0
        for c in self.channels:
            block = image[..., start:start + c.width]
            out[c.name] = block[..., 0] if c.name == "part" else block
            start += c.width
        return out


@dataclass
class AvatarOutput:
    """Renders of B frames (H, W = the cameras' image size) and what the losses need.

    Attributes:
        rgb: (B, H, W, 3) colour on white. mask: (B, H, W) coverage.
        normal: (B, H, W, 3) composited camera-space (OpenCV axes) unit normals, 0 background.
        albedo, shading: (B, H, W, 3) on white.
        part: (B, H, W) composited part probability sigmoid(χ), or None.
        semantic: (B, H, W, K) composited class probabilities (background class where no
            point covers a pixel), or None.
        visible: (B, N) bool, PointAvatar's visibility of each point (for pruning).
        points: the per-point pass (canonical geometry, bases, v*, deformed points and normals).
        point_weights: (B, N) sum of each point's compositing weights over the frame's pixels.
        eikonal_gradient: (P, M, 3) ∇SDF at the points and jittered copies (training), or None.
    """

    rgb: torch.Tensor
    mask: torch.Tensor
    normal: torch.Tensor
    albedo: torch.Tensor
    shading: torch.Tensor
    part: torch.Tensor | None
    semantic: torch.Tensor | None
    visible: torch.Tensor
    points: PointPass
    point_weights: torch.Tensor
    eikonal_gradient: torch.Tensor | None = None
