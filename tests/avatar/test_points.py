import dataclasses

import pytest
import torch

from pegasus.avatar.points import PointCloudState, fibonacci_sphere, gather_parameter_rows


@pytest.fixture
def schedule(settings):
    """``schedule(**fields)``: (model.points of base.conf with fields replaced, last upsample epoch, seed);
    without surface seeding unless ``mesh_fill=True`` is given (its tests pass the surface)."""
    def make(seed: int = 0, last_upsample_epoch: int | None = None, **fields):
        fields.setdefault("mesh_fill", False)
        return dataclasses.replace(settings("model").points, **fields), last_upsample_epoch, seed
    return make


def _trained_state(schedule, lr: float = 0.1):
    """A cloud with an Adam optimizer, a MultiStepLR scheduler and one step of moments."""
    cloud = PointCloudState(*schedule)
    other = torch.nn.Parameter(torch.randn(4))
    optimizer = torch.optim.Adam([{"name": "points", "params": [cloud.points], "lr": lr},
                                  {"name": "other", "params": [other], "lr": lr}])
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 4], gamma=0.5)
    # a distinct gradient per row, so every row has distinct moments
    (cloud.points * torch.arange(cloud.num_points, dtype=torch.float32)[:, None]).sum().backward()
    other.grad = torch.ones(4)
    optimizer.step()
    return cloud, optimizer, scheduler


def test_initial_cloud_is_on_the_sphere(schedule):
    cloud = PointCloudState(*schedule(init_count=400, init_sphere_radius=0.5, init_radius=0.169))
    assert cloud.points.shape == (400, 3)
    torch.testing.assert_close(cloud.points.norm(dim=-1), torch.full((400,), 0.5))
    assert cloud.radius == pytest.approx(0.169)
    assert fibonacci_sphere(10, 1.0).mean(0).abs().max() < 0.1  # spread evenly


def test_prune_keeps_rows_and_their_adam_state(schedule):
    cloud, optimizer, _ = _trained_state(schedule(init_count=8, max_points=64))
    old_points = cloud.points.detach().clone()
    old_state = {k: v.clone() for k, v in optimizer.state[cloud.points].items()}
    keep = torch.tensor([True, False, True, True, False, False, True, True])
    assert cloud.prune(keep, optimizer) == 3
    assert cloud.num_points == 5
    assert optimizer.param_groups[0]["params"][0] is cloud.points
    state = optimizer.state[cloud.points]
    torch.testing.assert_close(cloud.points.detach(), old_points[keep])
    torch.testing.assert_close(state["exp_avg"], old_state["exp_avg"][keep])
    torch.testing.assert_close(state["exp_avg_sq"], old_state["exp_avg_sq"][keep])
    assert float(state["step"]) == float(old_state["step"])
    assert len(optimizer.state) == 2  # the old tensor's state is gone


def test_upsample_duplicates_with_jitter_and_state(schedule):
    schedule = schedule(init_count=8, max_points=64, init_radius=0.2, seed=3)
    cloud, optimizer, _ = _trained_state(schedule)
    old_points = cloud.points.detach().clone()
    old_avg = optimizer.state[cloud.points]["exp_avg"].clone()
    assert cloud.upsample(epoch=4, optimizer=optimizer) == 8
    assert cloud.num_points == 16
    new = cloud.points.detach()
    torch.testing.assert_close(new[:8], old_points)
    jitter = new[8:] - old_points
    assert jitter.abs().max() <= 0.1 + 1e-6 and jitter.abs().max() > 0.01  # uniform in ±r/2
    torch.testing.assert_close(optimizer.state[cloud.points]["exp_avg"], torch.cat([old_avg, old_avg]))
    # deterministic for (seed, epoch), different for another epoch
    again, _, _ = _trained_state(schedule)
    again.upsample(epoch=4)
    torch.testing.assert_close(again.points.detach(), new)
    other, _, _ = _trained_state(schedule)
    other.upsample(epoch=5)
    assert not torch.allclose(other.points.detach(), new)


def test_upsample_fills_up_to_the_cap(schedule):
    cloud, optimizer, _ = _trained_state(schedule(init_count=10, max_points=15, seed=1))
    old = cloud.points.detach().clone()
    old_avg = optimizer.state[cloud.points]["exp_avg"].clone()
    assert cloud.upsample(epoch=0, optimizer=optimizer) == 5
    assert cloud.num_points == 15
    torch.testing.assert_close(cloud.points.detach()[:10], old)
    # each duplicate carries the moments of a distinct parent (rows have distinct moments)
    avg = optimizer.state[cloud.points]["exp_avg"]
    parents = [int((old_avg == avg[10 + i]).all(1).nonzero()[0]) for i in range(5)]
    assert len(set(parents)) == 5
    assert (cloud.points.detach()[10:] - old[parents]).abs().max() <= cloud.radius / 2
    assert cloud.upsample(epoch=1, optimizer=optimizer) == 0  # at the cap


def test_end_epoch_schedule_radius_and_scheduler_survive(schedule):
    schedule = schedule(init_count=16, init_radius=0.1, radius_factor=0.5, min_radius=0.03, prune_min_radius=0.04,
                        prune_from_epoch=1, upsample_freq=2, max_points=100)
    cloud, optimizer, scheduler = _trained_state(schedule, lr=1.0)
    visible = torch.ones(16, dtype=torch.bool)
    visible[:4] = False
    history = []
    for epoch in range(6):
        if epoch > 0:
            visible = torch.ones(cloud.num_points, dtype=torch.bool)
            visible[0] = False
        changed = cloud.end_epoch(epoch, visible, optimizer)
        scheduler.step()
        history.append((cloud.num_points, round(cloud.radius, 4), changed, optimizer.param_groups[0]["lr"]))
        assert scheduler.optimizer is optimizer
        assert optimizer.param_groups[0]["params"][0] is cloud.points
    # epoch 0: no prune (first epoch), no upsample; 1: prune 1 → 15, upsample → 30, r 0.05;
    # 2: prune 1 → 29; 3: prune 1 → 28, upsample → 56, r 0.03 (floored from 0.025);
    # 4: radius 0.03 < prune_min_radius: no more pruning; 5: upsample to the cap 100, r stays at the floor
    assert history == [
        (16, 0.1, False, 1.0),
        (30, 0.05, True, 0.5),
        (29, 0.05, True, 0.5),
        (56, 0.03, True, 0.25),
        (56, 0.03, False, 0.25),
        (100, 0.03, True, 0.25),
    ]
    # the optimizer still steps the new tensor with the scheduled lr
    cloud.points.grad = torch.ones_like(cloud.points)
    before = cloud.points.detach().clone()
    optimizer.step()
    assert not torch.equal(before, cloud.points.detach())


@pytest.mark.parametrize("prune_at_min_radius", [False, True])
def test_pruning_stops_at_the_radius_floor_unless_asked(schedule, prune_at_min_radius):
    cloud, optimizer, _ = _trained_state(schedule(init_count=16, init_radius=0.1, radius_factor=0.5, min_radius=0.05,
                                                  prune_min_radius=0.0, prune_from_epoch=0, upsample_freq=100,
                                                  prune_at_min_radius=prune_at_min_radius))
    hidden = torch.ones(16, dtype=torch.bool)
    hidden[0] = False
    assert cloud.end_epoch(0, hidden, optimizer) and cloud.num_points == 15  # radius 0.1 above the floor
    cloud.radius = 0.05  # at the floor
    assert cloud.end_epoch(1, hidden[:-1], optimizer) == prune_at_min_radius  # point 0 still hidden
    assert cloud.num_points == (14 if prune_at_min_radius else 15)


def test_no_upsampling_after_the_last_upsample_epoch(schedule):
    cloud = PointCloudState(*schedule(init_count=8, init_radius=0.1, radius_factor=0.5, min_radius=0.01,
                                      prune_from_epoch=100, upsample_freq=2, last_upsample_epoch=3, max_points=1000))
    counts = []
    for epoch in range(8):
        cloud.end_epoch(epoch, None)
        counts.append(cloud.num_points)
    assert counts == [8, 16, 16, 32, 32, 32, 32, 32] and cloud.radius == pytest.approx(0.025)


def test_settle_epochs_from_the_config(tiny_train_config):
    from pegasus.train.build import new_avatar

    model, _ = new_avatar(tiny_train_config("train.epochs=30", "model.points.settle_epochs=3"), torch.device("cpu"))
    assert model.points.last_upsample_epoch == 26  # upsampled after epoch 26, not 29


def test_end_epoch_skips_pruning_everything(caplog, schedule):
    cloud = PointCloudState(*schedule(init_count=8, upsample_freq=100))
    assert not cloud.end_epoch(3, torch.zeros(8, dtype=torch.bool))
    assert cloud.num_points == 8 and "no point was visible" in caplog.text


def test_state_dict_round_trip_across_a_size_change(schedule):
    big = PointCloudState(*schedule(init_count=8, max_points=64))
    big.upsample(0)
    big.radius = 0.05
    small = PointCloudState(*schedule(init_count=8))
    small.load_state_dict(big.state_dict())
    assert small.num_points == 16 and small.radius == pytest.approx(0.05)
    torch.testing.assert_close(small.points, big.points)
    assert isinstance(small.points, torch.nn.Parameter)


def test_gather_rows_refuses_a_foreign_optimizer():
    param = torch.nn.Parameter(torch.zeros(3, 3))
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))])
    with pytest.raises(ValueError, match="does not hold this parameter"):
        gather_parameter_rows(param, torch.arange(2), optimizer)


def test_schedule_validation(settings):
    from pegasus.config import ConfigError

    with pytest.raises(ConfigError, match=r"command line: model.points.init_count=10: 10 is above max_points 5"):
        settings("model", "model.points.init_count=10", "model.points.max_points=5")


def _plane(size: float = 1.0):
    """A square [0, size]² in the z = 0 plane (two triangles)."""
    vertices = torch.tensor([[0.0, 0.0, 0.0], [size, 0.0, 0.0], [size, size, 0.0], [0.0, size, 0.0]])
    return vertices, torch.tensor([[0, 1, 2], [0, 2, 3]])


def _grid_on_left_half(step: float = 0.05) -> torch.Tensor:
    """A regular grid on x < 0.5 of the unit square (spacing ``step``)."""
    xs = torch.arange(0.0, 0.5, step) + step / 2
    ys = torch.arange(0.0, 1.0, step) + step / 2
    gx, gy = torch.meshgrid(xs, ys, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten(), torch.zeros(gx.numel())], dim=-1)


def test_fill_from_surface_seeds_only_where_the_cloud_is_sparse(schedule):
    cloud, optimizer, _ = _trained_state(schedule(init_count=200, max_points=1000, mesh_fill_spacing=2.0, seed=1))
    with torch.no_grad():
        cloud.points.copy_(_grid_on_left_half())  # 200 points, spacing 0.05, none on the right half
    old_state = optimizer.state[cloud.points]["exp_avg"].clone()
    added = cloud.fill_from_surface(*_plane(), epoch=3, optimizer=optimizer)
    seeds = cloud.points.detach()[200:]
    assert added == seeds.shape[0] and 40 < added < 200  # ~half of 200 samples, minus the band near the grid
    assert torch.all(seeds[:, 0] > 0.5 + 0.05)  # farther than 2 × 0.05 from the grid (x ≤ 0.475)
    assert torch.all(seeds[:, 2] == 0) and torch.all((seeds[:, :2] >= 0) & (seeds[:, :2] <= 1))
    # every seed took the optimizer state of its nearest existing point
    nearest = torch.cdist(seeds, _grid_on_left_half()).argmin(1)
    torch.testing.assert_close(optimizer.state[cloud.points]["exp_avg"][200:], old_state[nearest])
    assert optimizer.param_groups[0]["params"][0] is cloud.points
    # the cap holds, and a dense cloud gets nothing
    capped, _, _ = _trained_state(schedule(init_count=200, max_points=210))
    with torch.no_grad():
        capped.points.copy_(_grid_on_left_half())
    assert capped.fill_from_surface(*_plane(), epoch=3) == 10
    assert cloud.fill_from_surface(*_plane(0.45), epoch=3) == 0


def test_end_epoch_seeds_before_duplicating_when_mesh_fill_is_on(schedule):
    fields = dict(init_count=200, max_points=250, init_radius=0.1, radius_factor=0.5, min_radius=0.01,
                  prune_from_epoch=100, upsample_freq=1)
    off = PointCloudState(*schedule(mesh_fill=False, **fields))
    on = PointCloudState(*schedule(mesh_fill=True, **fields))
    with torch.no_grad():
        off.points.copy_(_grid_on_left_half())
        on.points.copy_(_grid_on_left_half())
    assert off.end_epoch(0, None, surface=_plane()) and on.end_epoch(0, None, surface=_plane())
    assert off.num_points == on.num_points == 250
    assert int((off.points.detach()[:, 0] > 0.55).sum()) == 0  # duplicates stay by their parents
    assert int((on.points.detach()[:, 0] > 0.55).sum()) >= 40  # seeds came first, duplicates filled the rest
    assert on.radius == pytest.approx(0.05)
    with pytest.raises(ValueError, match="mesh_fill needs the reference mesh"):
        PointCloudState(*schedule(mesh_fill=True, **fields)).end_epoch(0, None)
