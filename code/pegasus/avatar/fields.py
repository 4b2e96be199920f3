"""Neural fields of the avatar: canonical geometry/albedo/segmentation and shading.

* :class:`GeometryField` (IDR-style): positional encoding of the canonical point (plus an
  optional latent code) → weight-normalised Softplus(β=100) MLP with a skip connection at
  the middle layer → signed distance, albedo and optionally PEGASUS's part logit χ and
  logits over the semantic classes of :mod:`pegasus.data.parts`. The
  geometric initialisation makes the SDF ≈ ``|x| − init_radius`` (a sphere) and the albedo
  ≈ 0.5 grey, independent of the latent code.
* :class:`ShadingField`: unit normal (plus optional latent) → small MLP → shading in (0, 1);
  the avatar's colour is ``clamp(2 · shading · albedo, 0, 1)`` (:func:`shade`).

Shapes use ``...`` for any leading batch axes; coordinates are canonical, in scaled head units.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .encoding import PositionalEncoding

__all__ = [
    "SOFTPLUS_BETA",
    "ALBEDO_SCALE",
    "WeightNormLinear",
    "GeometryOutput",
    "GeometryField",
    "ShadingField",
    "shade",
    "latent_linear",
]

SOFTPLUS_BETA = 100.0
"""Softplus sharpness of the geometry and deformer MLPs (IDR / PointAvatar)."""
ALBEDO_SCALE = 10.0
"""albedo = sigmoid(ALBEDO_SCALE · feature) (PointAvatar)."""


def latent_linear(layer: nn.Module, x: torch.Tensor, latent: torch.Tensor | None) -> torch.Tensor:
    """``layer(cat([x, z]))`` for a latent ``z`` shared by all N points of a leading item, without
    concatenating it to every point: ``W_x·x + (W_z·z + b)``, the latent's part computed once
    per item (the latent is 369-D against a 3-D point or a 39-D encoding: concatenating it
    doubled the cost of a training step).

    Args:
        layer: a linear layer (``.weight`` (out, d + Z), ``.bias``) over ``[x ‖ z]``.
        x: (..., N, d) per-point inputs.
        latent: None (then ``layer(x)``), (Z,) shared by every point, or (..., Z) one per
            leading item of ``x``.
    """
    if latent is None or latent.shape[-1] == 0:
        return layer(x)
    weight, d = layer.weight, x.shape[-1]
    per_item = latent.to(x.dtype) @ weight[:, d:].t() + layer.bias
    if latent.ndim > 1:
        per_item = per_item[..., None, :]
    return x @ weight[:, :d].t() + per_item


class WeightNormLinear(nn.Module):
    """Linear layer with weight normalisation: ``W = g · V / ‖V‖`` (row norms).

    Written out instead of ``torch.nn.utils.parametrizations.weight_norm`` so that it is a
    plain composition of tensor ops (forward-mode AD and ``torch.func`` see nothing special)
    and its state dict keys are simply ``weight_v``, ``weight_g``, ``bias``.

    :meth:`reset_from` sets V and g from a given weight, so ``W`` starts exactly there.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight_v = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_g = nn.Parameter(torch.empty(out_features, 1))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.reset_from(nn.Linear(in_features, out_features).weight.detach())

    @torch.no_grad()
    def reset_from(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        self.weight_v.copy_(weight)
        self.weight_g.copy_(weight.norm(dim=1, keepdim=True))
        if bias is not None:
            self.bias.copy_(bias)

    @property
    def weight(self) -> torch.Tensor:
        return self.weight_g * self.weight_v / self.weight_v.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


def _linear(in_features: int, out_features: int, weight_norm: bool) -> nn.Module:
    return WeightNormLinear(in_features, out_features) if weight_norm else nn.Linear(in_features, out_features)


@torch.no_grad()
def _init_layer(layer: nn.Module, weight: torch.Tensor, bias: torch.Tensor) -> None:
    if isinstance(layer, WeightNormLinear):
        layer.reset_from(weight, bias)
    else:
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)


def _unit_sphere(count: int) -> torch.Tensor:
    """(count, 3) evenly spread unit vectors (golden-angle spiral)."""
    i = torch.arange(count, dtype=torch.float64) + 0.5
    y = 1.0 - 2.0 * i / count
    ring = (1.0 - y * y).clamp_min(0.0).sqrt()
    theta = math.pi * (3.0 - math.sqrt(5.0)) * i
    return torch.stack([ring * torch.cos(theta), y, ring * torch.sin(theta)], dim=-1).float()


@dataclass
class GeometryOutput:
    """Per-point output of :class:`GeometryField` (leading axes ``...`` as the input).

    Attributes:
        sdf: (...,) signed distance (scaled head units; used for normals and regularisers).
        albedo: (..., 3) in (0, 1).
        part: (...,) logit χ of "belongs to the video's part", or None when disabled.
        semantic: (..., K) logits over the semantic classes, or None when disabled.
    """

    sdf: torch.Tensor
    albedo: torch.Tensor
    part: torch.Tensor | None
    semantic: torch.Tensor | None


class GeometryField(nn.Module):
    """IDR-style SDF + albedo (+ part logit, + semantic logits) MLP over canonical points.

    Args:
        hidden_layers: number of hidden layers (PointAvatar: 8 of width 256 + the output
            layer, PEGASUS: width 512).
        width: hidden width.
        num_freqs: positional-encoding frequencies of the point (6).
        latent_dim: size of an optional latent code concatenated to the encoded point
            (0 = none). Its input weights start at zero, so the initial field ignores it.
        part_logit: also output PEGASUS's part logit χ.
        semantic_classes: also output logits over this many semantic classes (0 = none).
        init_radius: radius of the sphere of the geometric initialisation (0.6).
        weight_norm: weight-normalised linear layers (IDR).

    The skip connection re-injects the (encoded) input into hidden layer
    ``hidden_layers // 2``, whose input is ``cat(h, input) / √2`` (width + input size).

    Geometric initialisation (IDR / SAL): hidden weights N(0, 2/width), the encoding and
    latent inputs muted, the SDF row N(√π/√width, 10⁻⁴) with bias −init_radius; then the SDF
    row is rescaled so that the mean SDF on the unit sphere is exactly 1 − init_radius.
    """

    def __init__(
        self,
        hidden_layers: int = 8,
        width: int = 256,
        num_freqs: int = 6,
        latent_dim: int = 0,
        part_logit: bool = False,
        semantic_classes: int = 0,
        init_radius: float = 0.6,
        weight_norm: bool = True,
    ):
        super().__init__()
        if hidden_layers < 2 or width < 1:
            raise ValueError(f"GeometryField: need ≥ 2 hidden layers and width ≥ 1, got {hidden_layers}, {width}")
        self.encoding = PositionalEncoding(3, num_freqs)
        self.latent_dim, self.has_part, self.semantic_classes = latent_dim, part_logit, semantic_classes
        self.in_dim = self.encoding.out_dim + latent_dim
        self.skip_layer = hidden_layers // 2
        self.out_dim = 1 + 3 + int(part_logit) + semantic_classes
        dims = [self.in_dim] + [width] * hidden_layers + [self.out_dim]
        layers = []
        for i in range(len(dims) - 1):
            in_features = dims[i] + (self.in_dim if i == self.skip_layer else 0)
            layers.append(_linear(in_features, dims[i + 1], weight_norm))
        self.layers = nn.ModuleList(layers)
        self._geometric_init(init_radius)

    @torch.no_grad()
    def _geometric_init(self, radius: float) -> None:
        """SDF ≈ |x| − radius at start; all non-coordinate inputs (encoding, latent) muted."""
        coords = 3  # the raw point comes first in the encoding
        for i, layer in enumerate(self.layers):
            out_features, in_features = layer.out_features, layer.in_features
            if i == len(self.layers) - 1:
                weight = torch.randn(out_features, in_features) * 1e-4
                weight[0] = math.sqrt(math.pi) / math.sqrt(in_features) + 1e-4 * torch.randn(in_features)
                bias = torch.zeros(out_features)
                bias[0] = -radius
            else:
                weight = torch.randn(out_features, in_features) * math.sqrt(2.0) / math.sqrt(out_features)
                bias = torch.zeros(out_features)
                if i == 0:
                    weight[:, coords:] = 0.0
                elif i == self.skip_layer:
                    weight[:, -(self.in_dim - coords):] = 0.0
            _init_layer(layer, weight, bias)
        # The init is exact only in expectation over wide layers; rescale the SDF row so that
        # the mean SDF on the unit sphere is 1 − radius, i.e. the zero level set sits at
        # ``radius`` on average whatever the width and depth.
        probe = _unit_sphere(256)
        latent = torch.zeros(self.latent_dim) if self.latent_dim else None
        scale = (self(probe, latent).sdf + radius).mean()
        last = self.layers[-1]
        if isinstance(last, WeightNormLinear):
            last.weight_g[0] /= scale
        else:
            last.weight[0] /= scale

    def forward(self, x: torch.Tensor, latent: torch.Tensor | None = None) -> GeometryOutput:
        """x (..., 3) canonical points; latent None, (Z,) shared or (..., Z) per leading item
        (see :func:`latent_linear`)."""
        if x.shape[-1] != 3:
            raise ValueError(f"GeometryField: expected points (..., 3), got {tuple(x.shape)}")
        if (latent is None) != (self.latent_dim == 0) or (latent is not None and latent.shape[-1] != self.latent_dim):
            got = None if latent is None else tuple(latent.shape)
            raise ValueError(f"GeometryField: latent_dim is {self.latent_dim}, got latent {got}")
        encoded = self.encoding(x)  # the input is [encoded ‖ latent]; the latent joins linearly (latent_linear)
        h = encoded
        for i, layer in enumerate(self.layers):
            if i == 0:
                h = latent_linear(layer, encoded, latent)
            elif i == self.skip_layer:  # input [h ‖ encoded ‖ latent] / √2
                h = latent_linear(layer, torch.cat([h, encoded], dim=-1) / math.sqrt(2.0),
                                  None if latent is None else latent / math.sqrt(2.0))
            else:
                h = layer(h)
            if i < len(self.layers) - 1:
                h = F.softplus(h, beta=SOFTPLUS_BETA)
        albedo = torch.sigmoid(ALBEDO_SCALE * h[..., 1:4])
        part = h[..., 4] if self.has_part else None
        semantic = h[..., 4 + int(self.has_part):] if self.semantic_classes else None
        return GeometryOutput(h[..., 0], albedo, part, semantic)

    def with_gradient(
        self, x: torch.Tensor, latent: torch.Tensor | None = None, create_graph: bool | None = None
    ) -> tuple[GeometryOutput, torch.Tensor]:
        """The field and ∇_x SDF (..., 3) (not normalised).

        Args:
            create_graph: keep the gradient differentiable (default: ``self.training``), as
                needed when it feeds normals or the eikonal loss during training.

        Works under ``torch.no_grad()`` too (the gradient is then detached, and so is the
        field's output). With gradients on, the outputs stay differentiable whatever
        ``create_graph`` says.
        """
        outer_grad = torch.is_grad_enabled()
        create_graph = (self.training if create_graph is None else create_graph) and outer_grad
        with torch.enable_grad():
            if not (outer_grad and x.requires_grad):  # views made under no_grad are not in a graph
                x = x.detach().requires_grad_(True)
            out = self(x, latent)
            # keep the outputs' graph whenever gradients are on: they may feed an outer backward
            # (e.g. test-time refinement in eval mode) even when the gradient itself needs none
            (gradient,) = torch.autograd.grad(
                out.sdf, x, torch.ones_like(out.sdf), create_graph=create_graph, retain_graph=outer_grad)
        if not create_graph:
            gradient = gradient.detach()
            if not outer_grad:
                out = GeometryOutput(*(None if t is None else t.detach()
                                       for t in (out.sdf, out.albedo, out.part, out.semantic)))
        return out, gradient


class ShadingField(nn.Module):
    """Shading MLP: unit normal (..., 3) [+ latent] → ReLU MLP → sigmoid shading (..., 3).

    Args:
        hidden: widths of the hidden layers (PointAvatar 64, 64; PEGASUS 512, 512).
        latent_dim: size of an optional latent code (0 = none).
    """

    def __init__(self, hidden: tuple[int, ...] = (64, 64), latent_dim: int = 0):
        super().__init__()
        self.latent_dim = latent_dim
        dims = [3 + latent_dim, *hidden, 3]
        layers: list[nn.Module] = []
        for i in range(len(dims) - 1):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < len(dims) - 2:
                layers.append(nn.ReLU())
        self.mlp = nn.Sequential(*layers)

    def forward(self, normal: torch.Tensor, latent: torch.Tensor | None = None) -> torch.Tensor:
        if (latent is None) != (self.latent_dim == 0):
            raise ValueError(f"ShadingField: latent_dim is {self.latent_dim}, got latent "
                             f"{None if latent is None else tuple(latent.shape)}")
        return torch.sigmoid(self.mlp[1:](latent_linear(self.mlp[0], normal, latent)))


def shade(albedo: torch.Tensor, shading: torch.Tensor) -> torch.Tensor:
    """PointAvatar's colour: ``clamp(2 · shading · albedo, 0, 1)`` (shading 0.5 = albedo)."""
    return (2.0 * shading * albedo).clamp(0.0, 1.0)
