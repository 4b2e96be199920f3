"""Builds the avatar of a config and adapts it to evaluation's ``render_fn`` interface."""
from __future__ import annotations

from typing import Callable

import torch

from ..config import Config
from ..data.dataset import ImavatarDataset
from ..eval.render_sets import normal_to_display
from ..headmodel import head_model_from_config
from .trainer import batch_to_device

__all__ = ["build_avatar", "avatar_render_fn"]


def build_avatar(cfg: Config, train_set: ImavatarDataset, device: torch.device) -> torch.nn.Module:
    """The configured :class:`~pegasus.avatar.model.PointAvatar` for ``train_set``, on ``device``.

    The canonical expression is the mean training expression and the expression prior is
    normalised by the training expressions' variance; per-frame refinement tables are sized
    by the training set.
    """
    from ..avatar.model import PointAvatar

    if device.type == "cpu":  # Softplus(β=100) yields denormals; flushing them speeds MLPs up 2–4×
        torch.set_flush_denormal(True)
    head_model = head_model_from_config(cfg).to(device)
    expressions = train_set.expressions()
    model = PointAvatar.from_config(cfg, head_model, expressions.mean(0).to(device), len(train_set),
                                    expression_variance=expressions.var(0, unbiased=False))
    return model.to(device)


def avatar_render_fn(model: torch.nn.Module, device: torch.device) -> Callable[[dict], dict]:
    """``render_fn(batch)`` for :mod:`pegasus.eval.render_sets`: display channels in [0, 1]."""

    @torch.no_grad()
    def render(batch: dict) -> dict[str, torch.Tensor]:
        model.eval()
        out = model(batch_to_device(batch, device))
        white = 1.0 - out.mask[..., None]
        channels = {
            "rgb": out.rgb,
            "normal": normal_to_display(out.normal, out.mask),
            "albedo": out.albedo + white,
            "shading": out.shading + white,
            "mask": out.mask,
        }
        return {k: v.clamp(0, 1).cpu() for k, v in channels.items()}

    return render
