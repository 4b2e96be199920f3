"""The avatar's canonical point cloud and its coarse-to-fine schedule (PointAvatar §4).

:class:`PointCloudState` owns the learnable canonical points (N, 3) and the splat radius
(NDC units, see :mod:`pegasus.render`). At the end of every epoch the trainer calls
:meth:`PointCloudState.end_epoch` with the points that were visible during the epoch;
the state then

1. prunes the invisible points (from ``prune_from_epoch`` on, while the radius is at least
   ``prune_min_radius`` and, unless ``prune_at_min_radius``, above its floor ``min_radius``), and
2. every ``upsample_freq`` epochs, up to ``last_upsample_epoch``, first (with
   ``mesh_fill``) seeds points on the reference head-model surface where the cloud is sparse
   (:meth:`PointCloudState.fill_from_surface`), then duplicates every point with a uniform
   jitter of ±r/2 per axis (filling up to ``max_points`` when doubling would exceed it) and
   shrinks the radius by ``radius_factor`` (not below ``min_radius``).

Duplication keeps the cloud's density where training put it: a near-frontal clip sees the
cheeks and the sides of the head at grazing angles, covers them with few points, and every
doubling keeps them few, so a turned head shows holes there. Seeding from the head model's
surface spreads the points by area instead.

The optimizer is edited in place, as gsplat's strategies do: the new point tensor replaces
the old one inside its existing param group and Adam's per-row moments are gathered with
the same row index (kept rows for a prune, parents for duplicated rows), so the optimizer
object, its param groups and any LR scheduler attached to it stay valid. Random jitter
comes from a generator seeded with (seed, epoch), so every DDP rank changes its cloud
identically.
"""
from __future__ import annotations

import logging
import math

import torch
from torch import nn

from ..geometry.surface import sample_mesh_surface
from .knn import nearest_neighbours
from .settings import PointSettings

log = logging.getLogger(__name__)

__all__ = [
    "PointCloudState",
    "fibonacci_sphere",
    "gather_parameter_rows",
    "epoch_generator",
]


def fibonacci_sphere(count: int, radius: float) -> torch.Tensor:
    """(count, 3) points spread evenly on a sphere (golden-angle spiral, deterministic)."""
    i = torch.arange(count, dtype=torch.float64) + 0.5
    y = 1.0 - 2.0 * i / count
    ring = (1.0 - y * y).clamp_min(0.0).sqrt()
    theta = math.pi * (3.0 - math.sqrt(5.0)) * i
    points = torch.stack([ring * torch.cos(theta), y, ring * torch.sin(theta)], dim=-1)
    return (radius * points).float()


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A CPU generator seeded from (seed, epoch, stream), identical on every rank; streams
    keep independent draws of one epoch (jitter, surface seeds) apart."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(epoch) + int(stream) * 7_919_000_033)
                                         % (2**63))


@torch.no_grad()
def gather_parameter_rows(
    param: nn.Parameter,
    index: torch.Tensor,
    optimizer: torch.optim.Optimizer | None = None,
    delta: torch.Tensor | None = None,
) -> nn.Parameter:
    """A new parameter ``param[index] (+ delta)``, swapped into ``optimizer`` in place.

    Args:
        param: (N, ...) parameter.
        index: (M,) int64 rows of ``param`` to keep or duplicate, in the new order.
        optimizer: None, or an optimizer holding ``param`` in one of its groups; the new
            parameter takes its place in that group and every per-row state tensor
            (Adam's ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``) is gathered with
            ``index``; scalar state (``step``) is kept.
        delta: optional (M, ...) added to the gathered rows (e.g. jitter of duplicates).

    Returns:
        the new :class:`torch.nn.Parameter` (the caller stores it on its module).
    """
    data = param.detach().index_select(0, index)
    if delta is not None:
        data = data + delta.to(data)
    new_param = nn.Parameter(data, requires_grad=param.requires_grad)
    if optimizer is None:
        return new_param
    for group in optimizer.param_groups:
        for position, existing in enumerate(group["params"]):
            if existing is not param:
                continue
            group["params"][position] = new_param
            state = optimizer.state.pop(param, None)
            if state is not None:
                optimizer.state[new_param] = {
                    key: value.index_select(0, index.to(value.device))
                    if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == param.shape[0]
                    else value
                    for key, value in state.items()
                }
            return new_param
    raise ValueError("gather_parameter_rows: the optimizer does not hold this parameter; build the "
                     "optimizer from PointAvatar.parameter_groups() after loading a checkpoint")


class PointCloudState(nn.Module):
    """Canonical points (N, 3) ``nn.Parameter`` + splat radius + the prune/upsample schedule.

    ``radius`` (a float, NDC units) is stored in a buffer so it travels with the state
    dict; loading a state dict of another size resizes ``points`` first.

    Args:
        schedule: the ``model.points`` section.
        last_upsample_epoch: no upsampling after this epoch (None: no limit), so that the
            last duplicated points get epochs to settle (an upsampling one epoch before the
            end leaves jittered, barely trained copies in the result).
        seed: base seed of the jitter.
    """

    def __init__(self, schedule: PointSettings, last_upsample_epoch: int | None = None, seed: int = 0):
        super().__init__()
        self.schedule, self.last_upsample_epoch, self.seed = schedule, last_upsample_epoch, seed
        self.points = nn.Parameter(fibonacci_sphere(schedule.init_count, schedule.init_sphere_radius))
        self.register_buffer("radius_buffer", torch.tensor(float(schedule.init_radius)))

    @property
    def radius(self) -> float:
        """Splat radius in NDC units."""
        return float(self.radius_buffer)

    @radius.setter
    def radius(self, value: float) -> None:
        self.radius_buffer.fill_(float(value))

    @property
    def num_points(self) -> int:
        return self.points.shape[0]

    def _replace(self, index: torch.Tensor, optimizer, delta: torch.Tensor | None = None) -> None:
        self.points = gather_parameter_rows(self.points, index.to(self.points.device), optimizer, delta)

    @torch.no_grad()
    def prune(self, keep: torch.Tensor, optimizer: torch.optim.Optimizer | None = None) -> int:
        """Keeps the points where ``keep`` (N,) bool is True; returns how many were removed."""
        if keep.shape != (self.num_points,) or keep.dtype != torch.bool:
            raise ValueError(f"prune: keep must be a ({self.num_points},) bool tensor, got "
                             f"{tuple(keep.shape)} {keep.dtype}")
        removed = int((~keep).sum())
        if removed:
            self._replace(keep.nonzero().squeeze(1), optimizer)
        return removed

    @torch.no_grad()
    def fill_from_surface(self, vertices: torch.Tensor, faces: torch.Tensor, epoch: int,
                          optimizer: torch.optim.Optimizer | None = None) -> int:
        """Seeds points on a mesh where the cloud is sparse; returns how many were added.

        N samples uniform by area on the mesh (N = the current number of points, so a sample
        stands for as much surface as an average point) become points when their nearest
        point is farther than ``mesh_fill_spacing`` × the cloud's median nearest-neighbour
        distance, up to ``max_points``. Each seed takes its nearest point's optimizer state.

        Args:
            vertices: (V, 3) the reference canonical mesh, in the points' space.
            faces: (F, 3) its triangles.
        """
        count = self.num_points
        room = self.schedule.max_points - count
        if room <= 0 or count < 2:
            return 0
        cloud = self.points.detach()
        samples = sample_mesh_surface(vertices.detach().to(cloud), faces, count,
                                      epoch_generator(self.seed, epoch, stream=1)).to(cloud)
        # one search over the cloud: each point's second neighbour (the first is itself) gives the
        # spacing, each sample's first its distance to the cloud
        distance, nearest = nearest_neighbours(torch.cat([cloud, samples]), cloud, k=2)
        spacing = distance[:count, 1].median()
        sparse = (distance[count:, 0] > self.schedule.mesh_fill_spacing * spacing).nonzero().squeeze(1)[:room]
        if sparse.numel() == 0:
            return 0
        parents = nearest[count:][sparse, 0]
        index = torch.cat([torch.arange(count, device=cloud.device), parents])
        delta = torch.cat([torch.zeros(count, 3, device=cloud.device), samples[sparse] - cloud[parents]])
        self._replace(index, optimizer, delta)
        return int(sparse.numel())

    @torch.no_grad()
    def upsample(self, epoch: int, optimizer: torch.optim.Optimizer | None = None) -> int:
        """Duplicates points with ±r/2 uniform jitter up to 2N (or the cap); returns how many
        were added. The radius is not changed here (see :meth:`end_epoch`)."""
        count = self.num_points
        added = min(count, self.schedule.max_points - count)
        if added <= 0:
            return 0
        generator = epoch_generator(self.seed, epoch)
        parents = torch.arange(count) if added == count else torch.randperm(count, generator=generator)[:added]
        parents = parents.sort().values
        jitter = (torch.rand(added, 3, generator=generator) - 0.5) * self.radius  # ±r/2
        index = torch.cat([torch.arange(count), parents])
        delta = torch.cat([torch.zeros(count, 3), jitter])
        self._replace(index, optimizer, delta)
        return added

    def end_epoch(
        self, epoch: int, visible: torch.Tensor | None, optimizer: torch.optim.Optimizer | None = None,
        surface: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> bool:
        """Applies the schedule after epoch ``epoch`` (0-based).

        Args:
            epoch: the epoch that just ended.
            visible: (N,) bool, points visible in any frame of the epoch (OR over batches and
                ranks), or None to skip pruning.
            optimizer: the live optimizer (edited in place), or None.
            surface: (vertices (V, 3), faces (F, 3)) of the reference canonical mesh, seeded
                at every upsampling when ``mesh_fill`` is on (required then).

        Returns:
            True when the number of points changed (the trainer then rebuilds its DDP
            wrapper; the optimizer needs nothing).
        """
        s = self.schedule
        changed = False
        above_floor = self.radius > s.min_radius * (1 + 1e-6)  # the radius is stored in float32
        prunes = self.radius >= s.prune_min_radius and (s.prune_at_min_radius or above_floor)
        if visible is not None and epoch >= s.prune_from_epoch and prunes:
            visible = visible.to(self.points.device)
            if not bool(visible.any()):
                log.warning("epoch %d: no point was visible; pruning skipped (check cameras and data)", epoch)
            else:
                removed = self.prune(visible, optimizer)
                if removed:
                    log.info("epoch %d: pruned %d invisible points → %d", epoch, removed, self.num_points)
                    changed = True
        if (epoch + 1) % s.upsample_freq == 0 and (self.last_upsample_epoch is None
                                                   or epoch <= self.last_upsample_epoch):
            seeded = 0
            if s.mesh_fill:
                if surface is None:
                    raise ValueError("model.points.mesh_fill needs the reference mesh (end_epoch(surface=...))")
                seeded = self.fill_from_surface(*surface, epoch, optimizer)
                if seeded:
                    log.info("epoch %d: seeded %d points on the head-model surface", epoch, seeded)
            added = seeded + self.upsample(epoch, optimizer)
            if added:
                self.radius = max(self.radius * s.radius_factor, s.min_radius)
                log.info("epoch %d: upsampled +%d → %d points, radius %.4f", epoch, added, self.num_points,
                         self.radius)
                changed = True
        return changed

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        stored = state_dict.get(prefix + "points")
        if isinstance(stored, torch.Tensor) and stored.shape != self.points.shape:
            self.points = nn.Parameter(torch.empty_like(stored, device=self.points.device),
                                       requires_grad=self.points.requires_grad)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
