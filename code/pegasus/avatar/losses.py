"""Loss terms of the avatar (pure functions), their weighted sum, and an optional VGG16
perceptual loss.

Weights and schedules come from the ``loss`` config section; :func:`avatar_loss_terms`
weighs and sums the terms of one batch. Every term function returns an unweighted scalar.

VGG16 ImageNet weights cannot be downloaded here and torchvision is not available, so
:class:`VGG16Features` is a plain-torch copy of the VGG16 convolutional layers that loads a
user-supplied state dict file (torchvision's ``vgg16`` layout: ``features.<i>.weight``;
a file of only the convolutions works too). Without a file the perceptual term is off.
"""
from __future__ import annotations

import logging
import os

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

__all__ = [
    "rgb_l1",
    "mask_l1",
    "sdf_loss",
    "eikonal_loss",
    "skinning_prior",
    "pose_basis_prior",
    "expression_basis_prior",
    "part_bce",
    "semantic_cross_entropy",
    "normal_l1",
    "avatar_loss_terms",
    "prior_weight",
    "VGG16Features",
    "perceptual_loss",
    "load_vgg16",
]


def rgb_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean |pred − target| over all pixels and channels ((B, H, W, 3) each, on white)."""
    return (pred - target).abs().mean()


def mask_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean |pred − target| of (B, H, W) masks."""
    return (pred - target).abs().mean()


def sdf_loss(sdf: torch.Tensor) -> torch.Tensor:
    """mean(SDF²) at the points: they should lie on the zero level set."""
    return (sdf * sdf).mean()


def eikonal_loss(gradients: torch.Tensor) -> torch.Tensor:
    """mean((‖∇SDF‖ − 1)²) over (..., 3) gradients."""
    return ((gradients.norm(dim=-1) - 1.0) ** 2).mean()


def surface_hinge(surface_offset: torch.Tensor, margin: float, side: float) -> torch.Tensor:
    """mean(relu(side · s − margin)) of the points' signed offsets s (P, N) from the head-model
    surface: side −1 costs points deeper than ``margin`` inside it, +1 points farther outside."""
    return torch.relu(side * surface_offset - margin).mean()


def skinning_prior(weights: torch.Tensor, flame_weights: torch.Tensor) -> torch.Tensor:
    """MSE between predicted (…, 6) skinning weights and the head model's (ghost weight 0)."""
    return F.mse_loss(weights, flame_weights.expand_as(weights))


def pose_basis_prior(pose_basis: torch.Tensor, flame_pose_basis: torch.Tensor) -> torch.Tensor:
    """MSE(10·P, 10·P_FLAME) of (…, 3, 36) pose-corrective bases."""
    return F.mse_loss(10.0 * pose_basis, 10.0 * flame_pose_basis.expand_as(pose_basis))


def expression_basis_prior(
    expr_basis: torch.Tensor, flame_expr_basis: torch.Tensor, expression_variance: torch.Tensor,
    variance_scale: float = 50.0,
) -> torch.Tensor:
    """mean((10·E − 10·E_FLAME)² / (variance_scale · var ψ)) of (…, 3, E) bases.

    Components that vary little in the training video are held closer to the head model.
    ``expression_variance`` (E,) is the per-component variance of the training expressions
    (already floored by the caller).
    """
    diff = 10.0 * expr_basis - 10.0 * flame_expr_basis.expand_as(expr_basis)
    return (diff * diff / (variance_scale * expression_variance)).mean()


def part_bce(probability: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Binary cross-entropy of a composited part probability (B, H, W) against a soft part mask."""
    p = probability.clamp(eps, 1.0 - eps)
    return F.binary_cross_entropy(p, target.to(p.dtype))


def semantic_cross_entropy(probabilities: torch.Tensor, classes: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean −log p[class] of composited class probabilities (B, H, W, K) against (B, H, W) int64
    class indices (a pixel's probabilities sum to 1: the background class fills the rest)."""
    picked = probabilities.gather(-1, classes[..., None].to(probabilities.device))[..., 0]
    return -(picked.clamp_min(eps)).log().mean()


def normal_l1(normal: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean |normal − target| of (B, H, W, 3) camera-space normals over the pixels of
    (B, H, W) weights (zero when no pixel has weight)."""
    weight = weight.to(normal.dtype)[..., None]
    return (weight * (normal - target.to(normal.dtype)).abs()).sum() / (3.0 * weight.sum()).clamp_min(1.0)


def prior_weight(base: float, halve_epochs, epoch: int) -> float:
    """λ(epoch) = base · 0.5^(number of milestones ≤ epoch) (PointAvatar: 10, halved at 10/20/30/40)."""
    return float(base) * 0.5 ** sum(1 for milestone in halve_epochs if epoch >= milestone)


def avatar_loss_terms(settings, batch, output, epoch: int, expression_variance: torch.Tensor,
                      flame_targets: dict[str, torch.Tensor], class_of_label: torch.Tensor | None = None,
                      vgg: "VGG16Features | None" = None) -> dict[str, torch.Tensor]:
    """Every weighted loss term of a batch and their sum ``total`` (scalars).

    Args:
        settings: the ``loss`` section (:class:`pegasus.avatar.settings.LossSettings`).
        batch: the :class:`pegasus.data.batch.FrameBatch` rendered.
        output: its :class:`pegasus.avatar.channels.AvatarOutput`.
        epoch: current epoch (0-based), for λ of the head-model priors.
        expression_variance: (E,) variance of the training expressions.
        flame_targets: the head model's bases at each point's v* (``weights`` (P, N, 6),
            ``pose_basis`` (P, N, 3, 36), ``expr_basis`` (P, N, 3, E)).
        class_of_label: (L,) int64 semantic class of each label id (semantic head only).
        vgg: the perceptual network, or None.

    Terms: rgb (L1, all pixels), mask (L1), vgg, sdf, eikonal (training outputs only),
    surface_inside / surface_outside (points beyond a margin inside / outside the head-model
    surface),
    skinning_prior / pose_prior / expression_prior (λ(epoch) · inner weight · term), part (BCE
    of the part channel against ``batch.part_mask``), semantic (cross-entropy against
    ``batch.semantic``), normal (L1 against ``batch.normal`` where ``batch.normal_weight``); a
    term is present when its weight is > 0 and its inputs exist.
    """
    ls, points = settings, output.points
    device = output.rgb.device
    target_rgb = batch.rgb.to(device)
    terms: dict[str, torch.Tensor] = {
        "rgb": ls.rgb * rgb_l1(output.rgb, target_rgb),
        "mask": ls.mask * mask_l1(output.mask, batch.mask.to(device)),
    }
    if vgg is not None and ls.vgg > 0:
        terms["vgg"] = ls.vgg * perceptual_loss(vgg, output.rgb, target_rgb)
    if ls.sdf > 0:
        terms["sdf"] = ls.sdf * sdf_loss(points.geometry.sdf)
    if ls.eikonal > 0 and output.eikonal_gradient is not None:
        terms["eikonal"] = ls.eikonal * eikonal_loss(output.eikonal_gradient)
    if ls.surface_inside > 0:
        terms["surface_inside"] = ls.surface_inside * surface_hinge(points.surface_offset, ls.surface_inside_margin, -1)
    if ls.surface_outside > 0:
        terms["surface_outside"] = ls.surface_outside * surface_hinge(points.surface_offset, ls.surface_outside_margin,
                                                                      +1)
    lam = prior_weight(ls.flame_prior, ls.flame_prior_halve_epochs, epoch)
    if lam > 0:
        bases = points.bases
        terms["skinning_prior"] = lam * ls.skinning_prior * skinning_prior(bases.weights, flame_targets["weights"])
        terms["pose_prior"] = lam * ls.pose_prior * pose_basis_prior(bases.pose_basis, flame_targets["pose_basis"])
        variance = expression_variance.clamp_min(ls.expression_variance_floor)
        terms["expression_prior"] = lam * ls.expression_prior * expression_basis_prior(
            bases.expr_basis, flame_targets["expr_basis"], variance, ls.expression_variance_scale)
    if ls.part > 0 and output.part is not None and batch.part_mask is not None:
        terms["part"] = ls.part * part_bce(output.part, batch.part_mask.to(device))
    if ls.semantic > 0 and output.semantic is not None and batch.semantic is not None:
        classes = class_of_label.to(device)[batch.semantic.to(device)]
        terms["semantic"] = ls.semantic * semantic_cross_entropy(output.semantic, classes)
    if ls.normal > 0 and batch.normal is not None:
        terms["normal"] = ls.normal * normal_l1(output.normal, batch.normal.to(device), batch.normal_weight.to(device))
    terms["total"] = torch.stack(list(terms.values())).sum()
    return terms


# --------------------------------------------------------------------------- perceptual

_VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)
"""The VGG16 convolutions up to relu4_3 (``features.0`` … ``features.22`` in torchvision)."""
_VGG16_TAPS = (3, 8, 15, 22)
"""Indices of relu1_2, relu2_2, relu3_3, relu4_3 in ``features``."""
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG16Features(nn.Module):
    """VGG16 ``features`` up to relu4_3, returning the four ReLU block outputs.

    Layer indices match torchvision's ``vgg16().features`` so its state dict loads directly.
    Inputs are (B, 3, H, W) in [0, 1]; ImageNet normalisation is applied inside.
    """

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in _VGG16_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=False)]
                channels = item
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = (images - self.mean) / self.std
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _VGG16_TAPS:
                taps.append(x)
        return taps


def load_vgg16(path: str | os.PathLike) -> VGG16Features:
    """Loads VGG16 convolution weights from a state dict file (torchvision layout).

    Accepts keys ``features.<i>.weight|bias`` (extra keys such as the classifier are
    ignored) or ``<i>.weight|bias``. Loaded with ``weights_only=True``.

    Raises:
        FileNotFoundError / ValueError naming the file and the missing or mis-shaped keys.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: VGG16 weights file not found (set loss.vgg_weights = null to "
                                "train without the perceptual loss)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    model = VGG16Features()
    wanted = model.features.state_dict()
    picked, missing, bad = {}, [], []
    for key, value in wanted.items():
        source = state.get(f"features.{key}", state.get(key))
        if source is None:
            missing.append(f"features.{key}")
        elif tuple(source.shape) != tuple(value.shape):
            bad.append(f"features.{key} {tuple(source.shape)} ≠ {tuple(value.shape)}")
        else:
            picked[key] = source
    if missing or bad:
        raise ValueError(f"{path}: not a VGG16 state dict (missing {missing[:4]}, mis-shaped {bad[:4]})")
    model.features.load_state_dict(picked)
    log.info("perceptual loss: VGG16 weights from %s", path)
    return model


def perceptual_loss(vgg: VGG16Features, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum over relu1_2 … relu4_3 of the mean L1 feature difference; images (B, H, W, 3)."""
    vgg = vgg.to(device=pred.device, dtype=pred.dtype)
    both = torch.cat([pred, target]).permute(0, 3, 1, 2)
    loss = pred.new_zeros(())
    for features in vgg(both):
        f_pred, f_target = features.chunk(2)
        loss = loss + (f_pred - f_target.detach()).abs().mean()
    return loss
