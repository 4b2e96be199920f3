"""Declarations of the ``model`` and ``loss`` config sections (values in confs/base.conf).

METHOD §4/§5 give the originals' values; docs/avatar.md says why the CPU defaults differ.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config.declare import Section, setting

__all__ = [
    "PointSettings", "GeometrySettings", "DeformerSettings", "CanonicalOffsetSettings", "ShadingSettings",
    "RefineSettings", "LatentSettings", "LearningRates", "ModelSettings", "LossSettings",
]


@dataclass(frozen=True)
class PointSettings(Section):
    """``model.points``: the canonical cloud and its prune/upsample schedule."""

    init_count: int = setting("initial number of canonical points (400)", ge=1)
    init_sphere_radius: float = setting("radius of the initial sphere of points, scaled head units", gt=0)
    init_radius: float = setting("initial splat radius, NDC units (0.169 for 400 points)", gt=0)
    radius_factor: float = setting("radius multiplier at each upsampling (0.75)", gt=0, le=1)
    min_radius: float = setting("radius floor, NDC units (PointAvatar 0.005 at 512²; ~1 px)", gt=0)
    prune_min_radius: float = setting("invisible points are pruned only while radius ≥ this, NDC", ge=0)
    prune_at_min_radius: bool = setting("keep pruning once the radius has reached min_radius (false: the points of "
                                        "the last upsamplings are kept, for views the training video never shows)")
    prune_from_epoch: int = setting("first epoch (0-based) after which invisible points are pruned", ge=0)
    upsample_freq: int = setting("duplicate the points after every n-th epoch (PointAvatar 5, PEGASUS 2)", ge=1)
    settle_epochs: int = setting("no upsampling in the last n epochs: the last duplicated points get n epochs "
                                 "to settle", ge=0)
    max_points: int = setting("cap on the number of points (PointAvatar 409600, PEGASUS 174000)", ge=1)
    mesh_fill: bool = setting("at every upsampling, first seed points on the reference head-model surface where "
                              "the cloud is sparse (not in PointAvatar: sides of the head at novel views)")
    mesh_fill_spacing: float = setting("a surface sample becomes a point when its nearest point is farther than "
                                       "this × the cloud's median nearest-neighbour distance", gt=0)

    def problems(self) -> list[str]:
        if self.init_count > self.max_points:
            return [f"init_count: {self.init_count} is above max_points {self.max_points}"]
        return []


@dataclass(frozen=True)
class GeometrySettings(Section):
    """``model.geometry``: the SDF / albedo / semantic MLP over canonical points."""

    hidden_layers: int = setting("hidden layers of the SDF/albedo MLP (PointAvatar 8 + output)", ge=2)
    width: int = setting("width of the SDF/albedo MLP (PointAvatar 256, PEGASUS 512)", ge=1)
    num_freqs: int = setting("positional-encoding frequencies of the canonical point (6)", ge=0)
    init_radius: float = setting("sphere radius of the geometric initialisation (0.6)", gt=0)


@dataclass(frozen=True)
class DeformerSettings(Section):
    """``model.deformer``: the FLAME-guided deformer MLP."""

    hidden_layers: int = setting("hidden layers of the deformer MLP (4)", ge=1)
    width: int = setting("width of the deformer MLP (128)", ge=1)
    skinning_temperature: float = setting("skinning weights = softmax(temperature · logits) (20)", gt=0)


@dataclass(frozen=True)
class CanonicalOffsetSettings(Section):
    """``model.canonical_offset``: PEGASUS's latent-conditioned canonical offset."""

    enabled: bool = setting("x_c = x + Δ_cc(x, z) before the deformer")
    hidden_layers: int = setting("hidden layers of the canonical-offset MLP", ge=1)
    width: int = setting("width of the canonical-offset MLP", ge=1)


@dataclass(frozen=True)
class ShadingSettings(Section):
    """``model.shading``: normal [+ latent] → shading."""

    hidden: tuple[int, ...] = setting("hidden widths of the shading MLP (PointAvatar [64, 64], PEGASUS "
                                      "[512, 512])", ge=1)


@dataclass(frozen=True)
class RefineSettings(Section):
    """``model.refine``: per-frame corrections of expression, pose and translation."""

    enabled: bool = setting("learn per-frame corrections, one row per (video, frame) of the training set")
    start_epoch: int = setting("epoch (0-based) from which the per-frame corrections are used", ge=0)


@dataclass(frozen=True)
class LatentSettings(Section):
    """``model.latent``: per-category latent codes (METHOD §5; categories from pegasus.data.parts)."""

    code_dim: int = setting("size of each category's code (PEGASUS 32); 0 = no latent code (one person). The "
                            "latent is [one-hot ‖ code] per category: categories · (categories + code_dim)", ge=0)
    start_epoch: int = setting("epoch (0-based) from which the codes are optimised (PEGASUS 10)", ge=0)
    init_std: float = setting("codes start as N(0, init_std²). The networks' latent inputs start muted, so codes "
                              "near zero are told apart slowly when each batch holds one video", gt=0)


@dataclass(frozen=True)
class LearningRates(Section):
    """``model.lr``: Adam learning rate of each parameter group."""

    points: float = setting("canonical point positions", ge=0)
    geometry: float = setting("SDF/albedo/semantic MLP", ge=0)
    deformer: float = setting("deformer (and canonical-offset) MLP", ge=0)
    shading: float = setting("shading MLP", ge=0)
    refine: float = setting("per-frame corrections", ge=0)
    latent: float = setting("latent codes (PEGASUS 5e-4)", ge=0)


@dataclass(frozen=True)
class ModelSettings(Section):
    """``model``: the point avatar (pegasus.avatar)."""

    shape_cancel: bool = setting("generic canonical space: canonical head model at zero shape, each point adds "
                                 "the identity displacement S(v*)·β of its nearest head-model vertex")
    points_per_pixel: int = setting("K, points composited per pixel (10)", ge=1)
    normal_jacobian_grad: bool = setting("back-propagate through the deformation Jacobian of the normals (false: "
                                         "normals use a detached Jacobian, a faster approximation)")
    part_logit: bool = setting("per-point part logit χ (PEGASUS), trained with BCE against each video's "
                               "mask_object/")
    semantic: bool = setting("per-point logits over the semantic classes of pegasus.data.parts, trained with "
                             "cross-entropy against semantic/ (rendered label maps and part masks)")
    points: PointSettings
    geometry: GeometrySettings
    deformer: DeformerSettings
    canonical_offset: CanonicalOffsetSettings
    shading: ShadingSettings
    refine: RefineSettings
    latent: LatentSettings
    lr: LearningRates

    def problems(self) -> list[str]:
        if self.canonical_offset.enabled and self.latent.code_dim == 0:
            return ["canonical_offset.enabled: the canonical offset is conditioned on the latent code; set "
                    "model.latent.code_dim > 0"]
        return []


@dataclass(frozen=True)
class LossSettings(Section):
    """``loss``: weights of the avatar's loss terms (METHOD §4/§5 defaults)."""

    rgb: float = setting("L1 colour loss over all pixels (1)", ge=0)
    mask: float = setting("L1 mask loss (1)", ge=0)
    vgg: float = setting("VGG16 perceptual loss (0.1; used only with loss.vgg_weights)", ge=0)
    vgg_weights: str | None = setting("torchvision-layout VGG16 state dict file (e.g. vgg16-397923af.pth); null = "
                                      "no perceptual loss", path="file")
    sdf: float = setting("mean(SDF²) at the points (1)", ge=0)
    eikonal: float = setting("eikonal loss at the points and jittered points (0.1)", ge=0)
    eikonal_jitter: float = setting("half-width of the uniform jitter of the eikonal points, head units", ge=0)
    flame_prior: float = setting("λ of the head-model priors on skinning/pose/expression bases (10)", ge=0)
    flame_prior_halve_epochs: tuple[int, ...] = setting("epochs (0-based) at which λ is halved (10, 20, 30, 40)",
                                                        ge=0, ordered=True)
    skinning_prior: float = setting("inner weight of MSE(w, w_FLAME(v*)) (0.1)", ge=0)
    pose_prior: float = setting("inner weight of MSE(10P, 10P_FLAME(v*)) (10)", ge=0)
    expression_prior: float = setting("inner weight of mean((10E − 10E_FLAME)² / (scale · var ψ)) (10)", ge=0)
    expression_variance_scale: float = setting("the scale in the expression prior's divisor (50)", gt=0)
    expression_variance_floor: float = setting("lower bound of var ψ per component (unused components)", gt=0)
    surface_inside: float = setting("L1 hinge on points deeper than loss.surface_inside_margin inside the head "
                                    "model's reference canonical surface: mean(relu(−s − margin)), s = (x_o − v*)·n(v*); "
                                    "0 = off. Gives depth where the video has none (a near-frontal clip)", ge=0)
    surface_inside_margin: float = setting("depth inside the head-model surface that costs nothing, head units", ge=0)
    surface_outside: float = setting("L1 hinge on points farther than loss.surface_outside_margin outside that "
                                     "surface: mean(relu(s − margin)); 0 = off. Keeps a near-frontal clip's points "
                                     "from stacking in layers in front of the face", ge=0)
    surface_outside_margin: float = setting("height above the head-model surface that costs nothing (hair, glasses), "
                                            "head units", ge=0)
    part: float = setting("BCE of the rendered part probability against mask_object/ (PEGASUS 0.1)", ge=0)
    semantic: float = setting("cross-entropy of the rendered semantic classes against semantic/", ge=0)
    latent: float = setting("mean(z²) regulariser of the latent codes in use (PEGASUS 0.01)", ge=0)
    normal: float = setting("L1 of the rendered normals against the batch's normal targets (PEGASUS 0.1: the DB "
                            "render's inside the swapped part, the target's own stage-1 normals outside it)", ge=0)
