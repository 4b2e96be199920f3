"""PointAvatar: a deformable point-cloud head avatar (METHOD §4), ready for PEGASUS (§5).

One ``forward`` renders every frame of a batch:

1. canonical points x (N, 3) [→ x_c = x + Δ_cc(x, z) when the latent canonical offset is on];
2. the geometry field gives SDF, albedo, optional segmentation logit and the canonical
   normal ``n_c = ∇SDF / ‖∇SDF‖``;
3. the deformer gives per-point bases; each point's nearest canonical head-model vertex v*
   gives the prior targets (and ``S(v*)·β`` in the generic canonical space); the points
   are deformed into every frame with the head model's transforms
   (:func:`pegasus.avatar.deformer.deform_points_with_jacobian`), and the Jacobian of that
   map, carried along in forward mode, gives the deformed normals ``normalise(n_cᵀ J⁻¹)``;
4. the shading field turns deformed normals into shading; colour = clamp(2·shading·albedo);
5. :func:`pegasus.render.points.render_points` composites colour, camera-space normals,
   albedo, shading and segmentation on a white background (normals and segmentation on 0).

The interface follows ``docs/design/avatar_contract.md``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from pegasus.headmodel.model import HeadModel
from pegasus.render.points import render_points

from . import losses as L
from .deformer import (
    CanonicalOffset,
    DeformerBases,
    FlameDeformer,
    FlameState,
    deform_normals,
    deform_points_with_jacobian,
    flame_state,
)
from .fields import GeometryField, ShadingField, shade
from .knn import nearest_vertex
from .points import PointCloudState, PointSchedule

log = logging.getLogger(__name__)

__all__ = ["AvatarSettings", "LossSettings", "AvatarOutput", "FrameRefinement", "PointAvatar"]

# Background of each rendered channel group (rgb/albedo/shading on white like the data).
_BACKGROUND = {"rgb": 1.0, "normal": 0.0, "albedo": 1.0, "shading": 1.0, "segmentation": 0.0}


@dataclass(frozen=True)
class AvatarSettings:
    """Architecture and behaviour (config section ``model``; see confs/base.conf)."""

    latent_dim: int = 0
    shape_cancel: bool = False
    points_per_pixel: int = 10
    geometry_layers: int = 8
    geometry_width: int = 256
    num_freqs: int = 6
    geometry_init_radius: float = 0.6
    segmentation: bool = False
    deformer_layers: int = 4
    deformer_width: int = 128
    skinning_temperature: float = 20.0
    canonical_offset: bool = False
    canonical_offset_layers: int = 4
    canonical_offset_width: int = 128
    shading_hidden: tuple[int, ...] = (64, 64)
    normal_jacobian_grad: bool = True
    refine: bool = False
    refine_start_epoch: int = 10
    canonical_jaw_opening: float = 0.4
    learning_rates: dict = field(default_factory=lambda: {
        "points": 1e-4, "geometry": 1e-4, "deformer": 1e-4, "shading": 1e-4, "refine": 1e-4})

    @classmethod
    def from_config(cls, cfg) -> "AvatarSettings":
        """``model`` section (+ ``head_model.canonical_jaw_opening``) → settings."""
        m = cfg.model
        return cls(
            latent_dim=m.latent_dim, shape_cancel=m.shape_cancel, points_per_pixel=m.points_per_pixel,
            geometry_layers=m.geometry.hidden_layers, geometry_width=m.geometry.width,
            num_freqs=m.geometry.num_freqs, geometry_init_radius=m.geometry.init_radius,
            segmentation=m.geometry.segmentation,
            deformer_layers=m.deformer.hidden_layers, deformer_width=m.deformer.width,
            skinning_temperature=m.deformer.skinning_temperature,
            canonical_offset=m.canonical_offset.enabled,
            canonical_offset_layers=m.canonical_offset.hidden_layers,
            canonical_offset_width=m.canonical_offset.width,
            shading_hidden=tuple(m.shading.hidden), normal_jacobian_grad=m.normal_jacobian_grad,
            refine=m.refine.enabled, refine_start_epoch=m.refine.start_epoch,
            canonical_jaw_opening=cfg.head_model.canonical_jaw_opening,
            learning_rates={k: float(m.lr[k]) for k in ("points", "geometry", "deformer", "shading", "refine")},
        )


@dataclass(frozen=True)
class LossSettings:
    """Loss weights and schedules (config section ``loss``; defaults = METHOD's)."""

    rgb: float = 1.0
    mask: float = 1.0
    vgg: float = 0.1
    vgg_weights: str | None = None
    sdf: float = 1.0
    eikonal: float = 0.1
    eikonal_jitter: float = 0.05
    flame_prior: float = 10.0
    flame_prior_halve_epochs: tuple[int, ...] = (10, 20, 30, 40)
    skinning_prior: float = 0.1
    pose_prior: float = 10.0
    expression_prior: float = 10.0
    expression_variance_scale: float = 50.0
    expression_variance_floor: float = 1e-2
    segmentation: float = 0.1


    @classmethod
    def from_config(cls, cfg) -> "LossSettings":
        """``loss`` section → settings."""
        c = cfg.loss
        return cls(
            rgb=c.rgb, mask=c.mask, vgg=c.vgg, vgg_weights=c.vgg_weights, sdf=c.sdf, eikonal=c.eikonal,
            eikonal_jitter=c.eikonal_jitter, flame_prior=c.flame_prior,
            flame_prior_halve_epochs=tuple(c.flame_prior_halve_epochs), skinning_prior=c.skinning_prior,
            pose_prior=c.pose_prior, expression_prior=c.expression_prior,
            expression_variance_scale=c.expression_variance_scale,
            expression_variance_floor=c.expression_variance_floor, segmentation=c.segmentation,
        )


def _point_schedule_from_config(cfg) -> PointSchedule:
    """``model.points`` (+ ``train.epochs``, ``experiment.seed``) → :class:`PointSchedule`."""
    p = cfg.model.points
    if p.settle_epochs < 0:
        raise ValueError(f"model.points.settle_epochs must be ≥ 0, got {p.settle_epochs}")
    return PointSchedule(
        init_count=p.init_count, init_sphere_radius=p.init_sphere_radius, init_radius=p.init_radius,
        radius_factor=p.radius_factor, min_radius=p.min_radius, prune_min_radius=p.prune_min_radius,
        prune_from_epoch=p.prune_from_epoch, upsample_freq=p.upsample_freq,
        last_upsample_epoch=cfg.train.epochs - 1 - p.settle_epochs, max_points=p.max_points,
        seed=cfg.experiment.seed,
    )


@dataclass
class AvatarOutput:
    """Renders of B frames (H, W = the cameras' image size).

    Attributes:
        rgb: (B, H, W, 3) colour on white. mask: (B, H, W) coverage.
        normal: (B, H, W, 3) composited camera-space (OpenCV axes) unit normals, 0 background.
        albedo, shading: (B, H, W, 3) on white.
        segmentation: (B, H, W) composited part probability sigmoid(χ), or None.
        visible: (B, N) bool, PointAvatar's visibility of each point (for pruning).
        extras: per-point tensors for the losses and for inspection: ``sdf`` (P, N),
            ``sdf_gradient`` (P, N, 3), ``eikonal_gradient`` (P, M, 3) (training only),
            ``weights`` (P, N, 6), ``pose_basis`` (P, N, 3, 36), ``expr_basis`` (P, N, 3, E),
            ``offset`` (P, N, 3),
            their head-model targets ``flame_weights``, ``flame_pose_basis``,
            ``flame_expr_basis``, ``flame_index`` (P, N) int64 (v*), ``deformed_points``
            (B, N, 3), ``deformed_normals`` (B, N, 3) (world), ``point_weights`` (B, N).
    """

    rgb: torch.Tensor
    mask: torch.Tensor
    normal: torch.Tensor
    albedo: torch.Tensor
    shading: torch.Tensor
    segmentation: torch.Tensor | None
    visible: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


class FrameRefinement(nn.Module):
    """Per-frame corrections of expression, pose and translation (zero at start).

    Stored as residuals added to the dataset's values, indexed by ``frame_index``.
    """

    def __init__(self, num_frames: int, n_expr: int):
        super().__init__()
        self.num_frames = num_frames
        self.expression = nn.Parameter(torch.zeros(num_frames, n_expr))
        self.pose = nn.Parameter(torch.zeros(num_frames, 15))
        self.translation = nn.Parameter(torch.zeros(num_frames, 3))

    def forward(self, frame_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if bool((frame_index < 0).any()) or bool((frame_index >= self.num_frames).any()):
            raise ValueError(f"per-frame refinement: frame_index {frame_index.tolist()} outside "
                             f"[0, {self.num_frames}); build the model with num_frames = the number of "
                             "training frames")
        return self.expression[frame_index], self.pose[frame_index], self.translation[frame_index]


@dataclass
class _PointState:
    """Per-point quantities of one forward pass (P = point batch, B = frames)."""

    canonical: torch.Tensor  # (P, N, 3) x_c
    sdf: torch.Tensor  # (P, N)
    sdf_gradient: torch.Tensor  # (P, N, 3)
    albedo: torch.Tensor  # (P, N, 3)
    segmentation: torch.Tensor | None  # (P, N) logits
    bases: DeformerBases  # (P, N, ...)
    flame_index: torch.Tensor  # (P, N)
    deformed: torch.Tensor  # (B, N, 3)
    normals: torch.Tensor  # (B, N, 3) world
    shading: torch.Tensor  # (B, N, 3)
    latent: torch.Tensor | None  # (P, Z)


class PointAvatar(nn.Module):
    """The single-person avatar (see the module docstring and the contract).

    Args:
        head_model: the FLAME-format head model (not saved in the state dict; moved along
            with ``.to()``).
        canonical_expression: (E,) mean training expression (the canonical state).
        num_frames: number of training frames (size of the per-frame refinement tables).
        settings, loss_settings, point_schedule: see the dataclasses.
        expression_variance: (E,) per-component variance of the training expressions, for
            the expression-basis prior (None: ones, with a logged line).
    """

    def __init__(
        self,
        head_model: HeadModel,
        canonical_expression: torch.Tensor,
        num_frames: int,
        settings: AvatarSettings | None = None,
        loss_settings: LossSettings | None = None,
        point_schedule: PointSchedule | None = None,
        expression_variance: torch.Tensor | None = None,
    ):
        super().__init__()
        self.settings = s = settings or AvatarSettings()
        self.loss_settings = loss_settings or LossSettings()
        n_expr = head_model.n_expr
        object.__setattr__(self, "head_model", head_model)  # not a submodule: never saved
        canonical_expression = torch.as_tensor(canonical_expression, dtype=torch.float32).reshape(-1)
        if canonical_expression.shape != (n_expr,):
            raise ValueError(f"canonical_expression must be ({n_expr},), got {tuple(canonical_expression.shape)}")
        self.register_buffer("canonical_expression", canonical_expression.clone())
        if expression_variance is None:
            log.info("expression prior: no expression variance given, using 1 for every component")
            expression_variance = torch.ones(n_expr)
        expression_variance = torch.as_tensor(expression_variance, dtype=torch.float32).reshape(-1)
        if expression_variance.shape != (n_expr,):
            raise ValueError(f"expression_variance must be ({n_expr},), got {tuple(expression_variance.shape)}")
        if not bool(torch.isfinite(expression_variance).all()):
            log.warning("expression prior: non-finite expression variance (fewer than 2 training frames?); "
                        "using 1 for those components")
            expression_variance = torch.nan_to_num(expression_variance, nan=1.0, posinf=1.0, neginf=1.0)
        self.register_buffer("expression_variance", expression_variance.clone())

        self.points = PointCloudState(point_schedule)
        self.geometry = GeometryField(s.geometry_layers, s.geometry_width, s.num_freqs, s.latent_dim,
                                      s.segmentation, s.geometry_init_radius)
        self.deformer = FlameDeformer(n_expr, s.deformer_layers, s.deformer_width, s.latent_dim,
                                      s.skinning_temperature)
        self.canonical_offset = (CanonicalOffset(s.canonical_offset_layers, s.canonical_offset_width, s.latent_dim)
                                 if s.canonical_offset else None)
        self.shading = ShadingField(tuple(s.shading_hidden), s.latent_dim)
        self.refinement = FrameRefinement(num_frames, n_expr) if s.refine else None

        self._vgg = None
        ls = self.loss_settings
        if ls.vgg > 0 and ls.vgg_weights:
            object.__setattr__(self, "_vgg", L.load_vgg16(ls.vgg_weights))
        elif ls.vgg > 0:
            log.info("perceptual loss off: loss.vgg_weights is null (VGG16 weights cannot be downloaded; "
                     "point it at a torchvision vgg16 state dict to enable it)")

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_config(
        cls,
        cfg,
        head_model: HeadModel,
        canonical_expression: torch.Tensor,
        num_frames: int,
        expression_variance: torch.Tensor | None = None,
    ) -> "PointAvatar":
        """Builds the avatar from a validated config (sections ``model``, ``loss``,
        ``head_model.canonical_jaw_opening``, ``experiment.seed``)."""
        return cls(head_model, canonical_expression, num_frames, AvatarSettings.from_config(cfg),
                   LossSettings.from_config(cfg), _point_schedule_from_config(cfg), expression_variance)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self.head_model._apply(fn)
        if self._vgg is not None:
            self._vgg._apply(fn)
        return self

    def parameter_groups(self, cfg=None) -> list[dict]:
        """Named Adam groups: points, geometry, deformer (+ canonical offset), shading, refine.

        Learning rates come from ``cfg.model.lr`` (or the settings the model was built with).
        The ``points`` group holds the one point tensor that :meth:`PointCloudState.end_epoch`
        swaps in place.
        """
        lrs = ({k: float(cfg.model.lr[k]) for k in ("points", "geometry", "deformer", "shading", "refine")}
               if cfg is not None else self.settings.learning_rates)
        deformer = list(self.deformer.parameters())
        if self.canonical_offset is not None:
            deformer += list(self.canonical_offset.parameters())
        groups = [
            {"name": "points", "params": [self.points.points], "lr": lrs["points"]},
            {"name": "geometry", "params": list(self.geometry.parameters()), "lr": lrs["geometry"]},
            {"name": "deformer", "params": deformer, "lr": lrs["deformer"]},
            {"name": "shading", "params": list(self.shading.parameters()), "lr": lrs["shading"]},
        ]
        if self.refinement is not None:
            groups.append({"name": "refine", "params": list(self.refinement.parameters()), "lr": lrs["refine"]})
        return groups

    # ------------------------------------------------------------------ head-model states

    def _frame_states(self, batch: dict, epoch: int | None) -> tuple[FlameState, FlameState, torch.Tensor]:
        """Frame and canonical head-model states, and the frames' shape (B, S)."""
        hm = self.head_model
        like = self.canonical_expression
        expression, pose, shape = (batch[k].to(like) for k in ("expression", "pose", "shape"))
        translation = None
        if (self.refinement is not None and self.training and epoch is not None
                and epoch >= self.settings.refine_start_epoch):
            d_expr, d_pose, translation = self.refinement(batch["frame_index"].to(expression.device))
            expression, pose = expression + d_expr, pose + d_pose
        frame = flame_state(hm, shape, expression, pose, translation)
        canonical_pose = hm.canonical_pose(self.settings.canonical_jaw_opening)[None]
        canonical_shape = None if self.settings.shape_cancel else shape
        batch_size = 1 if canonical_shape is None else shape.shape[0]
        canonical = flame_state(hm, canonical_shape, self.canonical_expression[None].expand(batch_size, -1),
                                canonical_pose.expand(batch_size, -1))
        return frame, canonical, shape

    # ------------------------------------------------------------------ per-point pass

    def _latent(self, latent: torch.Tensor | None, batch_size: int) -> torch.Tensor | None:
        if self.settings.latent_dim == 0:
            if latent is not None:
                raise ValueError("latent given but model.latent_dim = 0")
            return None
        if latent is None:
            raise ValueError(f"model.latent_dim = {self.settings.latent_dim}: a latent code is required")
        latent = latent.to(self.points.points)
        if latent.ndim == 1:
            latent = latent[None]
        if latent.shape[-1] != self.settings.latent_dim or latent.shape[0] not in (1, batch_size):
            raise ValueError(f"latent must be ({self.settings.latent_dim},) or ({batch_size}, "
                             f"{self.settings.latent_dim}), got {tuple(latent.shape)}")
        return latent

    def _point_state(self, batch: dict, latent: torch.Tensor | None, epoch: int | None) -> _PointState:
        frame, canonical, shape = self._frame_states(batch, epoch)
        batch_size = frame.transforms.shape[0]
        latent = self._latent(latent, batch_size)
        p = 1 if latent is None else latent.shape[0]
        x = self.points.points[None].expand(p, -1, -1)
        x_c = self.canonical_offset(x, latent) if self.canonical_offset is not None else x
        geo, sdf_gradient = self.geometry.with_gradient(x_c, latent, create_graph=self.training)
        hm = self.head_model
        canonical_vertices = canonical.vertices[0]
        vertex_identity = (torch.einsum("vcs,bs->bvc", hm.shapedirs, shape)  # (B, V, 3)
                           if self.settings.shape_cancel else None)
        bases, tangents = self.deformer.with_tangents(x_c, latent)
        index = nearest_vertex((x_c + bases.offset).detach(), canonical_vertices)
        identity = None
        if vertex_identity is not None:  # S(v*)·β = (S·β)[v*]
            identity = (vertex_identity[:, index[0]] if p == 1
                        else vertex_identity[torch.arange(p, device=index.device)[:, None], index])
        deformed, jacobian = deform_points_with_jacobian(x_c, bases, tangents, frame, canonical, identity)
        if not self.settings.normal_jacobian_grad:
            jacobian = jacobian.detach()
        normals = deform_normals(sdf_gradient, jacobian)
        shading = self.shading(normals, latent)
        return _PointState(x_c, geo.sdf, sdf_gradient, geo.albedo, geo.segmentation, bases, index,
                           deformed, normals, shading, latent)

    # ------------------------------------------------------------------ forward

    def forward(self, batch: dict, latent: torch.Tensor | None = None, epoch: int | None = None) -> AvatarOutput:
        """Renders every frame of ``batch`` (keys: cameras, expression, pose, shape, and
        frame_index when per-frame refinement is on).

        Args:
            latent: None, (Z,) shared by the batch, or (B, Z) one code per frame.
            epoch: current epoch (0-based); enables per-frame refinement from
                ``model.refine.start_epoch`` on, in training mode only (test videos never
                use the training frames' corrections).
        """
        cameras = batch["cameras"].to(device=self.points.points.device, dtype=self.points.points.dtype)
        state = self._point_state(batch, latent, epoch)
        batch_size = state.deformed.shape[0]
        albedo = state.albedo.expand(batch_size, -1, -1)
        colour = shade(albedo, state.shading)
        normal_cam = state.normals @ cameras.R.transpose(1, 2)
        channels = [colour, normal_cam, albedo, state.shading]
        background = [_BACKGROUND["rgb"]] * 3 + [_BACKGROUND["normal"]] * 3 + [_BACKGROUND["albedo"]] * 3 \
            + [_BACKGROUND["shading"]] * 3
        if state.segmentation is not None:
            channels.append(torch.sigmoid(state.segmentation).expand(batch_size, -1)[..., None])
            background.append(_BACKGROUND["segmentation"])
        features = torch.cat(channels, dim=-1)
        rendering = render_points(state.deformed, features, cameras, self.points.radius,
                                  self.settings.points_per_pixel,
                                  background=torch.tensor(background, dtype=features.dtype))
        image = rendering.features
        extras = {
            "sdf": state.sdf,
            "sdf_gradient": state.sdf_gradient,
            "weights": state.bases.weights,
            "pose_basis": state.bases.pose_basis,
            "expr_basis": state.bases.expr_basis,
            "offset": state.bases.offset,
            "flame_index": state.flame_index,
            "deformed_points": state.deformed,
            "deformed_normals": state.normals,
            "point_weights": rendering.point_weights,
        }
        extras.update(self._prior_targets(state.flame_index))
        if self.training and self.loss_settings.eikonal > 0:
            extras["eikonal_gradient"] = self._eikonal_gradients(state)
        return AvatarOutput(
            rgb=image[..., 0:3], mask=rendering.alpha, normal=image[..., 3:6], albedo=image[..., 6:9],
            shading=image[..., 9:12], segmentation=image[..., 12] if state.segmentation is not None else None,
            visible=rendering.visible, extras=extras,
        )

    @torch.no_grad()
    def _prior_targets(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Head-model bases at each point's nearest vertex v* (ghost weight 0)."""
        hm = self.head_model
        weights = hm.lbs_weights[index]
        return {
            "flame_weights": torch.cat([torch.zeros_like(weights[..., :1]), weights], dim=-1),
            "flame_pose_basis": hm.posedirs[index],
            "flame_expr_basis": hm.exprdirs[index],
        }

    def _eikonal_gradients(self, state: _PointState) -> torch.Tensor:
        """∇SDF at the points and at uniformly jittered copies (±loss.eikonal_jitter)."""
        jitter = (torch.rand_like(state.canonical) * 2.0 - 1.0) * self.loss_settings.eikonal_jitter
        _, jittered = self.geometry.with_gradient(state.canonical.detach() + jitter, state.latent,
                                                  create_graph=True)
        return torch.cat([state.sdf_gradient, jittered], dim=1)

    # ------------------------------------------------------------------ losses

    def losses(self, batch: dict, output: AvatarOutput, epoch: int) -> dict[str, torch.Tensor]:
        """Every weighted loss term and their sum ``total`` (scalars).

        Terms: rgb (L1, all pixels), mask (L1), vgg (when weights are configured), sdf,
        eikonal (training outputs only), skinning_prior / pose_prior / expression_prior
        (λ(epoch) · inner weight · term, λ halved at ``loss.flame_prior_halve_epochs``),
        segmentation (BCE against ``batch["part_mask"]`` when the model has a segmentation
        head and the batch carries that key).
        """
        ls, x = self.loss_settings, output.extras
        device = output.rgb.device
        terms: dict[str, torch.Tensor] = {
            "rgb": ls.rgb * L.rgb_l1(output.rgb, batch["rgb"].to(device)),
            "mask": ls.mask * L.mask_l1(output.mask, batch["mask"].to(device)),
        }
        if self._vgg is not None:
            terms["vgg"] = ls.vgg * L.perceptual_loss(self._vgg, output.rgb, batch["rgb"].to(device))
        if ls.sdf > 0:
            terms["sdf"] = ls.sdf * L.sdf_loss(x["sdf"])
        if ls.eikonal > 0 and "eikonal_gradient" in x:
            terms["eikonal"] = ls.eikonal * L.eikonal_loss(x["eikonal_gradient"])
        lam = L.prior_weight(ls.flame_prior, ls.flame_prior_halve_epochs, epoch)
        if lam > 0:
            terms["skinning_prior"] = lam * ls.skinning_prior * L.skinning_prior(x["weights"], x["flame_weights"])
            terms["pose_prior"] = lam * ls.pose_prior * L.pose_basis_prior(x["pose_basis"], x["flame_pose_basis"])
            variance = self.expression_variance.clamp_min(ls.expression_variance_floor)
            terms["expression_prior"] = lam * ls.expression_prior * L.expression_basis_prior(
                x["expr_basis"], x["flame_expr_basis"], variance, ls.expression_variance_scale)
        if output.segmentation is not None and "part_mask" in batch and ls.segmentation > 0:
            terms["segmentation"] = ls.segmentation * L.segmentation_bce(output.segmentation,
                                                                         batch["part_mask"].to(device))
        terms["total"] = torch.stack(list(terms.values())).sum()
        return terms

    # ------------------------------------------------------------------ export

    @torch.no_grad()
    def export_points(self, batch: dict | None = None, latent: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Points for ``.ply`` export: ``points``, ``colors`` (in [0, 1]), ``normals``, each (N, 3).

        Canonical (x_c, colour shaded with the canonical normal) when ``batch`` is None,
        otherwise posed for the first frame of the batch (world / head-model space).
        """
        latent = self._latent(latent, 1 if batch is None else len(batch["cameras"]))
        if batch is None:
            x = self.points.points[None]
            x_c = self.canonical_offset(x, latent) if self.canonical_offset is not None else x
            geo, gradient = self.geometry.with_gradient(x_c, latent, create_graph=False)
            normals = F.normalize(gradient, dim=-1)
            colors = shade(geo.albedo, self.shading(normals, latent))
            return {"points": x_c[0], "colors": colors[0], "normals": normals[0]}
        state = self._point_state(batch, latent, None)
        colors = shade(state.albedo.expand(state.deformed.shape[0], -1, -1), state.shading)
        return {"points": state.deformed[0], "colors": colors[0], "normals": state.normals[0]}
