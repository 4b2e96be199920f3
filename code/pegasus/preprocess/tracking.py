"""FLAME tracking: head-model parameters and cameras fitted to the 2-D landmarks of videos.

The model follows IMavatar's preprocessing (``preprocess/DECA/optimize.py``), which
PointAvatar and PEGASUS reuse: fixed intrinsics ``[-focal, focal, 0.5, 0.5]``, a per-frame
``world_mat = [I | t]`` (only the translation t is fitted), the head rotation in the *neck*
slot (global stays zero), one shape for all frames, per-frame expression, jaw and eye
rotations. The energy is the mean landmark distance in normalised image coordinates
([−1, 1], so the weights do not depend on the resolution) plus

- L2 priors: ``shape_prior·mean(β²) + expression_prior·mean(ψ²) + pose_prior·mean(θ²)``
  over the jaw and eye rotations θ (the head turns freely);
- limits: ``limit_weight·mean(excess²)`` of the jaw opening outside
  ``jaw_opening_range``, the jaw's sideways rotations beyond ``jaw_side_max``, the eye
  rotations beyond ``eye_max`` (radians, per axis-angle component) and, for a head model
  of blendshape activations (``head_model.expression_range``), the expression coefficients
  outside their range (the result is clipped into it); the components of
  ``fixed_expressions`` are held at zero;
- temporal smoothness within each video: ``smooth_*·mean(Δ²/gap)`` of the expression, the
  pose (neck, jaw, eyes) and the translation between consecutive fitted frames ``gap``
  frames apart (Δ²/gap is the energy of the straight line across a gap of missing frames).

Optimisation: Adam, batched over all frames of the videos fitted together, in two stages:
*rigid* (neck rotation and translation of each frame on its own, from a closed-form initial
translation that matches each frame's landmark centroid and spread) then *all* parameters
with the temporal smoothness. An
:class:`InitialParams` per video (e.g. from DECA, :mod:`pegasus.preprocess.optional`)
replaces the zero shape, expression and pose and the closed-form translation as the
starting point, frame by frame where its rows are finite. In each stage
the learning rate decays exponentially from ``lr`` to ``lr·lr_decay`` (IMavatar: constant
1e-2 for 1000 steps, which leaves the fit oscillating at ~0.5 px, docs/tracking.md). The
landmarks come from :class:`LandmarkModel`, the head model restricted to the vertices the
landmark embedding uses (identical landmarks, a fraction of the cost).

Input: per video, (T, L, 2) pixel coordinates (x right, y down, pixel centres at +0.5) in
the square cropped image; L = the head model's landmark count (70: iBUG-68, then the iris
of the eye of landmarks 36–41 and of 42–47). A point with a NaN coordinate is ignored, and so
is every point of a landmark the head model lacks (``HeadModel.landmark_valid`` False, e.g.
the jaw contour with FLAME's 51-point static embedding). A
frame with fewer than :data:`MIN_POINTS` finite points (e.g. all NaN: no face detected) is
*missing*: it is not fitted; its expression, pose and translation are linearly
interpolated in time between the nearest fitted frames (held constant before the first
and after the last), it is flagged in ``TrackedVideo.interpolated`` and its reprojection
error is NaN. The static landmark embedding is used (no dynamic jaw contour), as in
IMavatar.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..config.declare import section_problems
from ..data.imavatar import FlameFrame, FlameParams, frame_stem, keypoint_fields
from ..geometry.camera import cameras_from_imavatar, project_points
from ..headmodel import HeadModel
from ..headmodel.lbs import POSE_DIM, POSE_SLOTS, lbs
from ..headmodel.model import landmarks_from_embedding
from .settings import TrackingSettings

__all__ = ["MIN_POINTS", "TrackingError", "InitialParams", "LandmarkModel", "TrackedVideo",
           "TrackingResult", "project_landmarks", "track_videos"]

log = logging.getLogger(__name__)

_FITTED_JOINTS = ("neck", "jaw", "left_eye", "right_eye")  # pose slots the fit owns; "global" stays zero
_EPS = 1e-12  # inside the square root of the landmark distance (its gradient at zero)
MIN_POINTS = 3  # a frame with fewer finite landmarks is missing


class TrackingError(ValueError):
    """Landmarks or arguments that cannot be tracked; the message names the video and the problem."""


@dataclass(frozen=True, eq=False)
class InitialParams:
    """A starting point of the fit for one video of T frames (all frames, fitted or not).

    A row with a NaN is no estimate: that frame starts from zero expression and pose and the
    closed-form translation. Rows of frames that are not fitted are ignored.

    Attributes:
        expression: (T, E) expression coefficients, E = the head model's n_expr.
        pose: (T, 15) axis-angle radians in the :data:`POSE_SLOTS` layout; the head rotation
            in the neck slot, the global slot zero.
        translation: (T, 3) world_mat translations t, scaled head units; None: closed form.
        shape: (S,) identity coefficients, S = n_shape; None: zeros. Videos sharing a shape
            start from the mean of their given shapes.
    """

    expression: np.ndarray
    pose: np.ndarray
    translation: np.ndarray | None = None
    shape: np.ndarray | None = None


class LandmarkModel(nn.Module):
    """The landmarks of a :class:`HeadModel` without the rest of its mesh.

    LBS runs on the vertices of the landmark faces plus one extra vertex per joint whose
    template and bases are the joint regressor applied to the full model's; the joint
    regressor of the reduced model picks those extra vertices. Joint regression is linear
    in the shaped mesh, so joints and landmarks equal the full model's.
    """

    def __init__(self, head_model: HeadModel):
        super().__init__()
        corners = head_model.faces[head_model.lmk_faces_idx]  # (L, 3) vertex ids
        used, local = torch.unique(corners.flatten(), return_inverse=True)
        regressor = head_model.j_regressor  # (J, V)
        n_joints = regressor.shape[0]
        eye = torch.eye(n_joints, dtype=regressor.dtype, device=regressor.device)

        def with_joints(values: torch.Tensor, joint_values: torch.Tensor) -> torch.Tensor:
            return torch.cat([values[used], joint_values])

        def regressed(basis: torch.Tensor) -> torch.Tensor:
            return torch.einsum("jv,vck->jck", regressor, basis)

        posedirs = head_model.posedirs
        self.register_buffer("v_template", with_joints(head_model.v_template, regressor @ head_model.v_template))
        self.register_buffer("shapedirs", with_joints(head_model.shapedirs, regressed(head_model.shapedirs)))
        self.register_buffer("exprdirs", with_joints(head_model.exprdirs, regressed(head_model.exprdirs)))
        self.register_buffer("posedirs", with_joints(posedirs, posedirs.new_zeros(n_joints, *posedirs.shape[1:])))
        self.register_buffer("lbs_weights", with_joints(head_model.lbs_weights, eye))
        self.register_buffer("j_regressor", torch.cat([regressor.new_zeros(n_joints, used.numel()), eye], 1))
        self.register_buffer("parents", head_model.parents.clone())
        self.register_buffer("corners", local.reshape(-1, 3))
        self.register_buffer("bary", head_model.lmk_bary_coords.clone())
        self.n_shape, self.n_expr = head_model.n_shape, head_model.n_expr
        self.expression_range = head_model.expression_range
        self.expression_names = tuple(str(n) for n in head_model.extras.get("expr_names", ()))

    @property
    def n_landmarks(self) -> int:
        return self.corners.shape[0]

    def forward(self, shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """(1 or B, n_shape), (B, n_expr), (B, 15) → (B, L, 3) landmarks, scaled head units."""
        shape = shape.expand(pose.shape[0], -1)
        out = lbs(shape, expression, pose, self.v_template, self.shapedirs, self.exprdirs, self.posedirs,
                  self.j_regressor, self.parents, self.lbs_weights)
        every = torch.arange(self.n_landmarks, device=self.corners.device)
        return landmarks_from_embedding(out.vertices, self.corners, every, self.bary)


def project_landmarks(points: torch.Tensor, translation: torch.Tensor, intrinsics: torch.Tensor,
                      image_size: int) -> torch.Tensor:
    """Projects (B, L, 3) world points with IMavatar cameras ``[I | t]`` → (B, L, 2) pixels.

    Args:
        translation: (B, 3) the world_mat translations t, scaled head units.
        intrinsics: (4,) IMavatar intrinsics (``[-focal, focal, 0.5, 0.5]`` here).
        image_size: side of the square image, pixels.
    """
    rotation = torch.eye(3, dtype=points.dtype, device=points.device).expand(points.shape[0], 3, 3)
    world_mat = torch.cat([rotation, translation[..., None]], 2)
    uv, _ = project_points(cameras_from_imavatar(intrinsics, world_mat, (image_size, image_size)), points)
    return uv


@dataclass(frozen=True, eq=False)
class TrackedVideo:
    """The fit of one video (T frames).

    Attributes:
        params: flame_params.json content (frames named by the given frame names).
        reprojection_error: (T,) float64 mean pixel distance between the fitted and the
            given landmarks over the frame's finite points; NaN for interpolated frames.
        interpolated: (T,) bool, frames without landmarks whose parameters were interpolated.
        landmarks: (T, L, 2) float64 fitted landmarks projected to pixels.
        losses: final energy terms of the fit this video took part in (weighted).
    """

    params: FlameParams
    reprojection_error: np.ndarray
    interpolated: np.ndarray
    landmarks: np.ndarray
    losses: dict[str, float]

    def summary(self) -> dict:
        """Frame counts, the names of interpolated frames and reprojection-error statistics (px)."""
        error = self.reprojection_error[~self.interpolated]
        return {
            "frames": len(self.interpolated),
            "fitted": int((~self.interpolated).sum()),
            "interpolated": [f.name for f, flag in zip(self.params.frames, self.interpolated) if flag],
            "reprojection_error_px": {"mean": float(error.mean()), "median": float(np.median(error)),
                                      "max": float(error.max())},
            "losses": self.losses,
        }


@dataclass(frozen=True, eq=False)
class TrackingResult:
    """The fits of the videos passed to :func:`track_videos`, in order.

    Attributes:
        videos: one per input video.
        seconds: wall time of the whole call.
    """

    videos: tuple[TrackedVideo, ...]
    seconds: float

    def summary(self) -> dict:
        """JSON-ready: per-video summaries, overall mean reprojection error (px), time."""
        errors = np.concatenate([v.reprojection_error[~v.interpolated] for v in self.videos])
        return {"videos": [v.summary() for v in self.videos], "reprojection_error_px": float(errors.mean()),
                "seconds": self.seconds}


def _finite_points(points: np.ndarray) -> np.ndarray:
    """(T, L, 2) → (T,) number of points with both coordinates finite."""
    return np.isfinite(points).all(-1).sum(-1)


def _check_inputs(landmarks: Sequence[np.ndarray], image_size: int, landmark_valid: np.ndarray,
                  frame_names: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """Validated float64 copies of the landmark arrays (errors name the video), NaN at the
    landmarks the head model lacks (``landmark_valid`` (L,) bool False)."""
    n_landmarks = len(landmark_valid)
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise TrackingError(f"image_size must be a positive number of pixels, got {image_size!r}")
    if len(landmarks) == 0:
        raise TrackingError("no videos given")
    if len(frame_names) != len(landmarks):
        raise TrackingError(f"{len(landmarks)} landmark arrays but {len(frame_names)} frame-name lists")
    checked = []
    for i, (points, names) in enumerate(zip(landmarks, frame_names)):
        try:
            points = np.array(points, dtype=np.float64)
        except (TypeError, ValueError):
            raise TrackingError(f"video {i}: landmarks are not a numeric (T, {n_landmarks}, 2) array") from None
        if points.ndim != 3 or points.shape[1:] != (n_landmarks, 2) or len(points) == 0:
            raise TrackingError(f"video {i}: landmarks must be (T, {n_landmarks}, 2) pixels with T ≥ 1, "
                                f"got {points.shape}")
        if len(names) != len(points):
            raise TrackingError(f"video {i}: {len(points)} landmark frames but {len(names)} frame names")
        if np.isinf(points).any():
            raise TrackingError(f"video {i}: landmarks contain infinite values; use NaN for a missing point")
        points[:, ~landmark_valid] = np.nan
        if not (_finite_points(points) >= MIN_POINTS).any():
            raise TrackingError(f"video {i}: no frame has at least {MIN_POINTS} finite landmarks (all NaN?); "
                                "nothing to track")
        stems = [frame_stem(name) for name in names]
        if len(set(stems)) < len(stems):
            repeated = sorted({n for n in stems if stems.count(n) > 1})
            raise TrackingError(f"video {i}: frame names repeat: {repeated[:5]}")
        checked.append(points)
    return checked


def _check_initial(initial: Sequence[InitialParams | None] | None, landmarks: Sequence[np.ndarray], n_shape: int,
                   n_expr: int) -> list[InitialParams | None]:
    """Validated float64 copies of the initialisations, one per video (errors name the video)."""
    if initial is None:
        return [None] * len(landmarks)
    if len(initial) != len(landmarks):
        raise TrackingError(f"{len(landmarks)} landmark arrays but {len(initial)} initialisations")
    checked: list[InitialParams | None] = []
    for i, (init, points) in enumerate(zip(initial, landmarks)):
        if init is None:
            checked.append(None)
            continue
        count = len(points)
        expected = {"expression": ((count, n_expr), "(T, n_expr)"), "pose": ((count, POSE_DIM), "(T, 15)"),
                    "translation": ((count, 3), "(T, 3)"), "shape": ((n_shape,), "(n_shape,)")}
        arrays = {}
        for name, (shape, layout) in expected.items():
            value = getattr(init, name)
            if value is None and name in ("translation", "shape"):
                arrays[name] = None
                continue
            got = "nothing" if value is None else "a non-numeric value"
            try:
                value = None if value is None else np.array(value, dtype=np.float64)
            except (TypeError, ValueError):
                value = None
            if value is None or value.shape != shape:
                got = got if value is None else value.shape
                raise TrackingError(f"video {i}: initial {name} must be a numeric {layout} = {shape} array "
                                    f"(T frames, head model sizes), got {got}")
            if np.isinf(value).any():
                raise TrackingError(f"video {i}: initial {name} has infinite values; use a NaN row for a frame "
                                    "without an estimate")
            arrays[name] = value
        if arrays["shape"] is not None and not np.isfinite(arrays["shape"]).all():
            raise TrackingError(f"video {i}: initial shape has NaN values")
        pose = arrays["pose"]
        turned = np.isfinite(pose).all(1) & (pose[:, POSE_SLOTS["global"]] != 0).any(1)
        if turned.any():
            raise TrackingError(f"video {i}: initial pose has a non-zero global rotation at frames "
                                f"{np.flatnonzero(turned)[:5].tolist()}; tracking keeps the global slot at zero and "
                                "the head rotation in the neck slot")
        checked.append(InitialParams(**arrays))
    return checked


def _start(default: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
    """(N, D) ``rows`` where a row is finite, ``default`` (N, D) elsewhere."""
    given = default.new_tensor(np.isfinite(rows).all(1)).bool()[:, None]
    return torch.where(given, default.new_tensor(np.nan_to_num(rows)), default)


class _Fit:
    """One optimisation: the fitted frames of videos sharing one shape, their parameters and energy."""

    def __init__(self, model: LandmarkModel, landmarks: Sequence[np.ndarray], image_size: int,
                 settings: TrackingSettings, initial: Sequence[InitialParams | None]):
        self.model, self.size, self.settings = model, image_size, settings
        buffer = model.v_template
        self.intrinsics = buffer.new_tensor([-settings.focal, settings.focal, 0.5, 0.5])
        self.frames = [np.nonzero(_finite_points(points) >= MIN_POINTS)[0] for points in landmarks]
        targets = np.concatenate([points[frames] for points, frames in zip(landmarks, self.frames)])
        valid = np.isfinite(targets).all(-1)
        self.targets = buffer.new_tensor(np.where(valid[..., None], targets, 0.0))  # (N, L, 2) pixels
        self.weights = buffer.new_tensor(valid)  # (N, L)
        starts = np.cumsum([0] + [len(f) for f in self.frames])
        pairs = [(starts[k] + j, frames[j + 1] - frames[j]) for k, frames in enumerate(self.frames)
                 for j in range(len(frames) - 1)]
        self.pair_first = torch.as_tensor([p for p, _ in pairs], dtype=torch.long, device=buffer.device)
        self.pair_gap = buffer.new_tensor([g for _, g in pairs])
        count = len(targets)

        def rows(name: str, width: int) -> np.ndarray:
            """(N, width) initial values of the fitted frames, NaN where none is given."""
            parts = [np.full((len(f), width), np.nan) if i is None or getattr(i, name) is None
                     else getattr(i, name)[f] for i, f in zip(initial, self.frames)]
            return np.concatenate(parts)

        shapes = [i.shape for i in initial if i is not None and i.shape is not None]
        pose = _start(buffer.new_zeros(count, POSE_DIM), rows("pose", POSE_DIM))
        self.params = {
            "shape": buffer.new_tensor(np.mean(shapes, 0))[None] if shapes else buffer.new_zeros(1, model.n_shape),
            "expression": _start(buffer.new_zeros(count, model.n_expr), rows("expression", model.n_expr)),
            **{name: pose[:, POSE_SLOTS[name]].clone() for name in _FITTED_JOINTS},
            "translation": _start(self._initial_translation(), rows("translation", 3)),
        }
        for value in self.params.values():
            value.requires_grad_(True)
        self.expression_free = buffer.new_ones(model.n_expr)  # 0 for the components held at zero
        for name in settings.fixed_expressions:
            if name not in model.expression_names:
                raise TrackingError(f"preprocess.tracking.fixed_expressions: {name!r} is not an expression component "
                                    f"of the head model ({list(model.expression_names) or 'it names none'})")
            self.expression_free[model.expression_names.index(name)] = 0.0

    def expression(self) -> torch.Tensor:
        """(N, E) fitted expressions, the fixed components at zero."""
        return self.params["expression"] * self.expression_free
    @torch.no_grad()
    def _initial_translation(self) -> torch.Tensor:
        """(N, 3) translations putting the mean head's landmarks at each frame's landmark
        centroid, at the depth that matches their spread (weak perspective)."""
        buffer = self.model.v_template
        rest = self.model(buffer.new_zeros(1, self.model.n_shape), buffer.new_zeros(1, self.model.n_expr),
                          buffer.new_zeros(1, 15))[0]  # (L, 3)
        w = self.weights[..., None]
        count = w.sum(1)
        model_mean = (w * rest).sum(1) / count  # (N, 3)
        image_mean = (w * self.targets).sum(1) / count  # (N, 2)
        model_spread = ((w * (rest[None, :, :2] - model_mean[:, None, :2]) ** 2).sum((1, 2)) / count[:, 0]).sqrt()
        image_spread = ((w * (self.targets - image_mean[:, None]) ** 2).sum((1, 2)) / count[:, 0]).sqrt()
        focal = self.settings.focal * self.size
        depth = focal * model_spread / image_spread.clamp_min(1.0)
        offset = (image_mean - self.size / 2) * (depth / focal)[:, None]
        # IMavatar camera [I | t] looking down −z, depth d = −(z + tz):
        # u − cx = f·(x + tx)/d, v − cy = −f·(y + ty)/d
        return torch.stack([offset[:, 0] - model_mean[:, 0], -offset[:, 1] - model_mean[:, 1],
                            -depth - model_mean[:, 2]], 1)

    def pose(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """(N, 15) pose in the :data:`POSE_SLOTS` layout, global rotation zero."""
        neck = params["neck"]
        return torch.cat([params.get(name, torch.zeros_like(neck)) for name in POSE_SLOTS], 1)

    def project(self, shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor,
                translation: torch.Tensor) -> torch.Tensor:
        """(1, S), (B, E), (B, 15), (B, 3) → (B, L, 2) landmarks in pixels."""
        points = self.model(shape, expression, pose)
        return project_landmarks(points, translation, self.intrinsics, self.size)

    def energy(self, smooth: bool = True) -> dict[str, torch.Tensor]:
        """The weighted energy terms (see the module docstring); without the temporal
        smoothness terms when ``smooth`` is False."""
        s, p = self.settings, self.params
        expression = self.expression()
        uv = self.project(p["shape"], expression, self.pose(p), p["translation"])
        squared = ((uv - self.targets) ** 2).sum(-1) * (2.0 / self.size) ** 2
        terms = {"landmark": ((squared + _EPS).sqrt() * self.weights).sum() / self.weights.sum()}
        jaw, eyes = p["jaw"], torch.cat([p["left_eye"], p["right_eye"]], 1)
        terms["shape_prior"] = s.shape_prior * p["shape"].square().mean()
        terms["expression_prior"] = s.expression_prior * expression.square().mean()
        terms["pose_prior"] = s.pose_prior * torch.cat([jaw, eyes], 1).square().mean()
        low, high = s.jaw_opening_range
        opening = jaw[:, 0]
        excess = [(low - opening).clamp_min(0), (opening - high).clamp_min(0),
                  (jaw[:, 1:].abs() - s.jaw_side_max).clamp_min(0).flatten(), (eyes.abs() - s.eye_max).clamp_min(0).flatten()]
        if self.model.expression_range is not None:  # blendshape activations: outside their range is a limit
            below, above = self.model.expression_range
            excess += [(below - expression).clamp_min(0).flatten(), (expression - above).clamp_min(0).flatten()]
        excess = torch.cat(excess)
        terms["limits"] = s.limit_weight * excess.square().mean()
        if smooth and len(self.pair_first):
            pose = torch.cat([p[name] for name in _FITTED_JOINTS], 1)
            for name, value, weight in (("smooth_expression", expression, s.smooth_expression),
                                        ("smooth_pose", pose, s.smooth_pose),
                                        ("smooth_translation", p["translation"], s.smooth_translation)):
                step = value[self.pair_first + 1] - value[self.pair_first]
                terms[name] = weight * (step.square() / self.pair_gap[:, None]).mean()
        return terms

    def run(self) -> dict[str, float]:
        """Rigid stage (neck, translation), then all parameters; returns the final terms."""
        stages = ((("neck", "translation"), self.settings.rigid_iterations, False),
                  (tuple(self.params), self.settings.iterations, True))
        for names, iterations, smooth in stages:
            if iterations:
                self._optimise([self.params[n] for n in names], iterations, smooth)
        with torch.no_grad():
            return {name: float(value) for name, value in self.energy().items()}

    def _optimise(self, tensors: list[torch.Tensor], iterations: int, smooth: bool) -> None:
        """Adam steps with the learning rate decaying exponentially to ``lr·lr_decay``."""
        optimizer = torch.optim.Adam(tensors, lr=self.settings.lr)
        schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, self.settings.lr_decay ** (1.0 / iterations))
        for _ in range(iterations):
            optimizer.zero_grad()
            sum(self.energy(smooth).values()).backward()
            optimizer.step()
            schedule.step()


def _interpolate(values: np.ndarray, frames: np.ndarray, count: int) -> np.ndarray:
    """(N, D) values at the fitted ``frames`` → (count, D), linear in time, held at the ends."""
    every = np.arange(count)
    return np.stack([np.interp(every, frames, column) for column in values.T], 1)


def _video_results(fit: _Fit, landmarks: Sequence[np.ndarray], frame_names: Sequence[Sequence[str]],
                   losses: dict[str, float]) -> list[TrackedVideo]:
    """Per-video parameters (missing frames interpolated), projections and errors."""
    with torch.no_grad():
        expression = fit.expression()
        if fit.model.expression_range is not None:
            expression = expression.clamp(*fit.model.expression_range)
        fitted = {"expression": expression, "pose": fit.pose(fit.params), "translation": fit.params["translation"]}
        fitted = {name: value.double().cpu().numpy() for name, value in fitted.items()}
    shape = fit.params["shape"].detach()
    intrinsics = np.array([-fit.settings.focal, fit.settings.focal, 0.5, 0.5])
    results, start = [], 0
    for points, frames, names in zip(landmarks, fit.frames, frame_names):
        count, stop = len(points), start + len(frames)
        filled = {name: _interpolate(value[start:stop], frames, count) for name, value in fitted.items()}
        start = stop
        with torch.no_grad():
            uv = fit.project(shape, *(shape.new_tensor(filled[n]) for n in ("expression", "pose", "translation")))
        uv = uv.double().cpu().numpy()
        interpolated = np.ones(count, dtype=bool)
        interpolated[frames] = False
        distance = np.linalg.norm(uv - points, axis=-1)  # NaN at missing points
        error = np.full(count, np.nan)
        error[frames] = np.nanmean(distance[frames], 1)
        world_mats = np.concatenate([np.broadcast_to(np.eye(3), (count, 3, 3)), filled["translation"][..., None]], 2)
        flame_frames = tuple(
            FlameFrame(frame_stem(name), world_mats[k], filled["expression"][k], filled["pose"][k],
                       *keypoint_fields(uv[k], (fit.size, fit.size)))
            for k, name in enumerate(names))
        params = FlameParams(intrinsics, shape[0].double().cpu().numpy(), flame_frames)
        results.append(TrackedVideo(params, error, interpolated, uv, losses))
    return results


def track_videos(landmarks: Sequence[np.ndarray], image_size: int, head_model: HeadModel,
                 settings: TrackingSettings, frame_names: Sequence[Sequence[str]],
                 initial: Sequence[InitialParams | None] | None = None) -> TrackingResult:
    """Fits the head model and cameras to the landmarks of one person's videos.

    Args:
        landmarks: per video, (T_i, L, 2) pixel coordinates in the square image (NaN:
            missing; see the module docstring), L = the head model's landmark count (70).
        image_size: side of the square images, pixels.
        head_model: the configured head model; the fit runs on its device in its dtype.
        settings: iteration counts, weights, focal length.
        frame_names: per video, the T_i frame names (stems like ``"12"``; ``"12.png"`` is
            accepted) written into ``flame_params.json``.
        initial: per video, an :class:`InitialParams` (T_i rows) to start the fit from, or
            None (zero shape, expression and pose, closed-form translation); None: none at all.

    Returns:
        One :class:`TrackedVideo` per input video. With ``settings.shared_shape`` the videos
        are fitted together and share one shape; otherwise each is fitted on its own.

    Raises:
        TrackingError: wrong shapes, lengths or sizes (of the landmarks or of an
            initialisation), infinite values, repeated frame names, a video without any frame
            to fit, a non-zero initial global rotation, unusable settings.
    """
    begin = time.perf_counter()
    problems = section_problems(settings)
    if problems:
        raise TrackingError("tracking settings: " + "; ".join(problems))
    model = LandmarkModel(head_model)
    landmarks = _check_inputs(landmarks, image_size, head_model.landmark_valid.cpu().numpy(), frame_names)
    initial = _check_initial(initial, landmarks, model.n_shape, model.n_expr)
    groups = [list(range(len(landmarks)))] if settings.shared_shape else [[i] for i in range(len(landmarks))]
    videos: list[TrackedVideo | None] = [None] * len(landmarks)
    for group in groups:
        fit = _Fit(model, [landmarks[i] for i in group], int(image_size), settings, [initial[i] for i in group])
        losses = fit.run()
        log.info("tracked %d video(s), %d fitted frames: %s", len(group), len(fit.targets),
                 ", ".join(f"{k} {v:.3g}" for k, v in losses.items()))
        fitted = _video_results(fit, [landmarks[i] for i in group], [frame_names[i] for i in group], losses)
        for i, video in zip(group, fitted):
            videos[i] = video
    return TrackingResult(tuple(videos), time.perf_counter() - begin)
