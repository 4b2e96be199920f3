"""PointAvatar: a deformable point-cloud head avatar of one or many people (METHOD §4, §5).

One ``forward`` renders every frame of a :class:`~pegasus.data.batch.FrameBatch`:

1. each frame's latent ``z`` from its latent rows (:mod:`.latent`; none for one person);
2. the head-model state of each frame and its person's canonical state (:mod:`.frames`),
   with the frame's learned correction when per-frame refinement is on;
3. the per-point pass (:meth:`AvatarNetworks.point_pass`): canonical geometry, albedo,
   part / semantic logits, deformation into every frame, deformed normals and shading;
4. :func:`pegasus.render.points.render_points` composites the channels of
   :class:`ChannelLayout` (rgb, normal, albedo, shading, part, semantic).

The model holds the pieces and the trained run's per-subject tables; losses are computed by
:func:`pegasus.avatar.losses.avatar_loss_terms`, exports by :mod:`.export`. The interface
follows ``docs/design/avatar_contract.md``.
"""
from __future__ import annotations

import dataclasses
import logging

import torch
from torch import nn

from ..data import parts
from ..data.batch import FrameBatch
from ..headmodel.model import HeadModel
from ..render.mesh import rasterize_mesh
from ..render.points import render_points
from . import losses as L
from .channels import AvatarOutput, ChannelLayout
from .fields import shade
from .frames import FrameRefinement, head_model_states
from .index import RunIndex
from .latent import LatentCodes, latent_size
from .networks import AvatarNetworks, PointPass
from .points import PointCloudState
from .settings import LossSettings, ModelSettings

log = logging.getLogger(__name__)

__all__ = ["PointAvatar"]


class PointAvatar(nn.Module):
    """The avatar (see the module docstring and the contract).

    Args:
        head_model: the FLAME-format head model (not saved in the state dict; moved along
            with ``.to()``).
        settings: the ``model`` section. loss_settings: the ``loss`` section.
        index: the trained run's subjects, refinement rows and latent table.
        canonical_expression: (S, E) each subject's canonical (mean training) expression.
        expression_variance: (E,) variance of the training expressions (expression prior).
        reference_shape, reference_expression: (S_id,) and (E,) the run's reference canonical
            mesh, where each point's nearest head-model vertex v* is looked up: zero shape in
            the generic canonical space (else the mean training shape) and the mean training
            expression, jaw opened as in every canonical state.
        canonical_jaw_opening: jaw opening of the canonical state, radians.
        last_upsample_epoch: no upsampling after this epoch (``train.epochs − 1 − settle_epochs``).
        seed: seed of the point cloud's jitter (``experiment.seed``).
    """

    def __init__(self, head_model: HeadModel, settings: ModelSettings, loss_settings: LossSettings,
                 index: RunIndex, canonical_expression: torch.Tensor, expression_variance: torch.Tensor,
                 reference_shape: torch.Tensor, reference_expression: torch.Tensor, canonical_jaw_opening: float,
                 last_upsample_epoch: int | None = None, seed: int = 0):
        super().__init__()
        self.settings, self.loss_settings, self.index = settings, loss_settings, index
        self.canonical_jaw_opening = canonical_jaw_opening
        n_expr = head_model.n_expr
        object.__setattr__(self, "head_model", head_model)  # not a submodule: never saved
        expected = {"canonical_expression": (len(index.subjects), n_expr), "expression_variance": (n_expr,),
                    "reference_shape": (head_model.n_shape,), "reference_expression": (n_expr,)}
        for name, value in (("canonical_expression", canonical_expression),
                            ("expression_variance", expression_variance), ("reference_shape", reference_shape),
                            ("reference_expression", reference_expression)):
            value = torch.as_tensor(value, dtype=torch.float32)
            if tuple(value.shape) != expected[name]:
                raise ValueError(f"{name} must be {expected[name]}, got {tuple(value.shape)}")
            self.register_buffer(name, value.clone())

        if (index.latent is None) != (settings.latent.code_dim == 0):
            raise ValueError("the run index has a latent table exactly when model.latent.code_dim > 0")
        self.latent_codes = None
        latent_dim = 0
        if index.latent is not None:
            categories = len(index.latent.categories)
            self.latent_codes = LatentCodes(index.latent.num_rows, categories, settings.latent.code_dim,
                                            settings.latent.init_std)
            latent_dim = latent_size(categories, settings.latent.code_dim)
        self.semantic_classes = len(parts.SEMANTIC_CLASSES) if settings.semantic else 0
        self.register_buffer("class_of_label", torch.from_numpy(parts.class_of_label()), persistent=False)
        self.layout = ChannelLayout(settings.part_logit, self.semantic_classes)
        self.points = PointCloudState(settings.points, last_upsample_epoch, seed)
        self.networks = AvatarNetworks(settings, n_expr, latent_dim, self.semantic_classes)
        self.refinement = None
        if settings.refine.enabled:
            if not index.refine_keys:
                raise ValueError("model.refine.enabled needs a run index with refinement rows")
            self.refinement = FrameRefinement(len(index.refine_keys), n_expr)

        self._vgg = None
        if loss_settings.vgg > 0 and loss_settings.vgg_weights:
            object.__setattr__(self, "_vgg", L.load_vgg16(loss_settings.vgg_weights))
        elif loss_settings.vgg > 0:
            log.info("perceptual loss off: loss.vgg_weights is null (VGG16 weights cannot be downloaded; "
                     "point it at a torchvision vgg16 state dict to enable it)")

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self.head_model._apply(fn)
        if self._vgg is not None:
            self._vgg._apply(fn)
        return self

    def parameter_groups(self) -> list[dict]:
        """Named Adam groups: points, geometry, deformer (+ canonical offset), shading, refine,
        latent, with the learning rates of ``model.lr``.

        The ``points`` group holds the one point tensor that :meth:`PointCloudState.end_epoch`
        swaps in place.
        """
        lr, nets = self.settings.lr, self.networks
        deformer = list(nets.deformer.parameters())
        if nets.canonical_offset is not None:
            deformer += list(nets.canonical_offset.parameters())
        groups = [
            {"name": "points", "params": [self.points.points], "lr": lr.points},
            {"name": "geometry", "params": list(nets.geometry.parameters()), "lr": lr.geometry},
            {"name": "deformer", "params": deformer, "lr": lr.deformer},
            {"name": "shading", "params": list(nets.shading.parameters()), "lr": lr.shading},
        ]
        if self.refinement is not None:
            groups.append({"name": "refine", "params": list(self.refinement.parameters()), "lr": lr.refine})
        if self.latent_codes is not None:
            groups.append({"name": "latent", "params": list(self.latent_codes.parameters()), "lr": lr.latent})
        return groups

    # ------------------------------------------------------------------ passes

    def latent_of(self, batch: FrameBatch) -> torch.Tensor | None:
        """(B, Z) latents assembled from the batch's latent rows, or None (no latent code)."""
        if self.latent_codes is None:
            return None
        if batch.latent_rows is None:
            raise ValueError("model.latent.code_dim > 0: the batch needs latent rows (RunIndex.video_indices)")
        return self.latent_codes(batch.latent_rows.to(self.points.points.device))

    def point_pass(self, batch: FrameBatch, latent: torch.Tensor | None = None, epoch: int | None = None,
                   corrections: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> PointPass:
        """The per-point pass of a batch.

        Args:
            latent: None (from the batch's rows) or an explicit (Z,) / (B, Z) latent; B equal
                rows count as one (the networks then run once for the batch).
            epoch: current epoch (0-based); per-frame refinement applies from
                ``model.refine.start_epoch`` on, in training mode only.
            corrections: explicit (B, E), (B, 15), (B, 3) corrections of expression, pose and
                translation (test-time refinement), used instead of the training frames' rows.
        """
        if corrections is None and self.refinement is not None and self.training and epoch is not None \
                and epoch >= self.settings.refine.start_epoch:
            corrections = self.refinement(batch.refine_row.to(self.canonical_expression.device))
        frame, canonical = head_model_states(self.head_model, batch, self.canonical_expression,
                                             self.canonical_jaw_opening, self.settings.shape_cancel, corrections)
        latent = self._checked_latent(batch, latent)
        if latent is not None and latent.shape[0] > 1 and bool((latent == latent[:1]).all()):
            latent = latent[:1]  # one code for every frame (one video per batch): one network pass
        return self.networks.point_pass(self.points.points, latent, self.head_model, frame, canonical,
                                        batch.shape.to(self.canonical_expression), self.reference_vertices())

    def reference_vertices(self) -> torch.Tensor:
        """(V, 3) the run's reference canonical mesh (see the class docstring)."""
        hm = self.head_model
        pose = hm.canonical_pose(self.canonical_jaw_opening)[None]
        return hm(shape=self.reference_shape[None], expression=self.reference_expression[None], pose=pose).vertices[0]

    @torch.no_grad()
    def end_epoch(self, epoch: int, visible: torch.Tensor | None,
                  optimizer: torch.optim.Optimizer | None = None) -> bool:
        """The point cloud's prune/upsample schedule after ``epoch`` (:meth:`PointCloudState.end_epoch`),
        seeding from the reference canonical mesh when ``model.points.mesh_fill`` is on."""
        surface = (self.reference_vertices(), self.head_model.faces) if self.settings.points.mesh_fill else None
        return self.points.end_epoch(epoch, visible, optimizer, surface)

    def _checked_latent(self, batch: FrameBatch, latent: torch.Tensor | None) -> torch.Tensor | None:
        if latent is None:
            return self.latent_of(batch)
        if self.latent_codes is None:
            raise ValueError("a latent was given but the model has no latent code (model.latent.code_dim = 0)")
        latent = latent.to(self.points.points)
        latent = latent[None] if latent.ndim == 1 else latent
        z = self.latent_codes.latent_dim
        if latent.shape[-1] != z or latent.shape[0] not in (1, len(batch)):
            raise ValueError(f"latent must be ({z},) or ({len(batch)}, {z}), got {tuple(latent.shape)}")
        return latent

    def forward(self, batch: FrameBatch, epoch: int | None = None, latent: torch.Tensor | None = None,
                corrections: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> AvatarOutput:
        """Renders every frame of ``batch`` (see :meth:`point_pass` for the arguments)."""
        state = self.point_pass(batch, latent, epoch, corrections)
        output = self.render_pass(batch, state)
        if self.training and self.loss_settings.eikonal > 0:
            output = dataclasses.replace(output, eikonal_gradient=self._eikonal_gradients(state))
        return output

    def render_pass(self, batch: FrameBatch, state: PointPass) -> AvatarOutput:
        """Composites a per-point pass (:meth:`point_pass`, or a mix of passes such as the
        identity lock's) into the images of ``batch``'s cameras."""
        points_device = self.points.points
        cameras = batch.cameras.to(device=points_device.device, dtype=points_device.dtype)
        count = state.deformed.shape[0]
        albedo = state.geometry.albedo.expand(count, -1, -1)
        features = {"rgb": shade(albedo, state.shading), "normal": state.normals @ cameras.R.transpose(1, 2),
                    "albedo": albedo, "shading": state.shading}
        if state.geometry.part is not None:
            features["part"] = torch.sigmoid(state.geometry.part).expand(count, -1)[..., None]
        if state.geometry.semantic is not None:
            features["semantic"] = torch.softmax(state.geometry.semantic, dim=-1).expand(count, -1, -1)
        packed = self.layout.pack(features)
        rendering = render_points(state.deformed, packed, cameras, self.points.radius,
                                  self.settings.points_per_pixel, background=self.layout.background(packed))
        image = self.layout.unpack(rendering.features)
        return AvatarOutput(rgb=image["rgb"], mask=rendering.alpha, normal=image["normal"], albedo=image["albedo"],
                            shading=image["shading"], part=image.get("part"), semantic=image.get("semantic"),
                            visible=rendering.visible, points=state, point_weights=rendering.point_weights,
                            eikonal_gradient=None)

    @torch.no_grad()
    def head_model_coverage(self, batch: FrameBatch) -> torch.Tensor:
        """(B, H, W) float 0/1: where the head model's mesh, posed as each frame, covers the
        image: a silhouette the avatar should cover at any view (views without ground truth)."""
        frame, _ = head_model_states(self.head_model, batch, self.canonical_expression, self.canonical_jaw_opening,
                                     self.settings.shape_cancel)
        cameras = batch.cameras.to(device=frame.vertices.device, dtype=frame.vertices.dtype)
        return rasterize_mesh(frame.vertices, self.head_model.faces, cameras).covered.float()

    def _eikonal_gradients(self, state: PointPass) -> torch.Tensor:
        """∇SDF at the points and at uniformly jittered copies (±loss.eikonal_jitter)."""
        jitter = (torch.rand_like(state.canonical) * 2.0 - 1.0) * self.loss_settings.eikonal_jitter
        _, jittered = self.networks.geometry.with_gradient(state.canonical.detach() + jitter, state.latent,
                                                           create_graph=True)
        return torch.cat([state.sdf_gradient, jittered], dim=1)

    # ------------------------------------------------------------------ losses

    @torch.no_grad()
    def flame_targets(self, flame_index: torch.Tensor) -> dict[str, torch.Tensor]:
        """The head model's bases at each point's nearest vertex v* (ghost bone weight 0):
        ``weights`` (P, N, 6), ``pose_basis`` (P, N, 3, 36), ``expr_basis`` (P, N, 3, E)."""
        hm = self.head_model
        weights = hm.lbs_weights[flame_index]
        return {"weights": torch.cat([torch.zeros_like(weights[..., :1]), weights], dim=-1),
                "pose_basis": hm.posedirs[flame_index], "expr_basis": hm.exprdirs[flame_index]}

    def losses(self, batch: FrameBatch, output: AvatarOutput, epoch: int) -> dict[str, torch.Tensor]:
        """Every weighted loss term and their sum ``total`` (:func:`avatar_loss_terms`), plus
        ``latent`` (loss.latent · mean(z²) of the codes in use) from ``model.latent.start_epoch``."""
        terms = L.avatar_loss_terms(self.loss_settings, batch, output, epoch, self.expression_variance,
                                    self.flame_targets(output.points.flame_index), self.class_of_label, self._vgg)
        if self.latent_codes_trained(epoch) and self.loss_settings.latent > 0:
            reg = self.loss_settings.latent * self.latent_codes.regulariser(batch.latent_rows.to(terms["total"].device))
            terms["latent"] = reg
            terms["total"] = terms["total"] + reg
        return terms

    def latent_codes_trained(self, epoch: int) -> bool:
        """Whether the latent codes are optimised in ``epoch`` (from ``model.latent.start_epoch``)."""
        return self.latent_codes is not None and epoch >= self.settings.latent.start_epoch
