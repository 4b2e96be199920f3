"""Tests of the point renderer (pegasus.render.points) against hand-computed scenes and its
brute-force twin (pegasus.render.reference), forward and backward."""
from __future__ import annotations

import math

import pytest
import torch

from pegasus.geometry.camera import PinholeCameras
from pegasus.render import (
    accumulate_point_weights,
    accumulate_point_weights_reference,
    alpha_composite,
    alpha_composite_reference,
    rasterize_points,
    rasterize_points_reference,
    render_points,
    render_points_reference,
)
from pegasus.render.testing import (
    FAST_VS_REFERENCE,
    FAST_VS_REFERENCE_GRAD,
    assert_close_except_fraction,
    make_head_scene,
)

# ----------------------------------------------------------------------------- builders

F64 = torch.float64
FOCAL = 100.0
SIZE = 32  # 32×32 image: 2/32 = 1/16 NDC per pixel
NDC_PER_PIXEL = 2.0 / SIZE


def camera_space_cameras(height: int = SIZE, width: int = SIZE, batch: int = 1, dtype=F64):
    """R = I, t = 0, f = 100 px, principal point at the image centre."""
    K = torch.tensor([[FOCAL, 0.0, width / 2], [0.0, FOCAL, height / 2], [0.0, 0.0, 1.0]], dtype=dtype)
    return PinholeCameras(
        K.expand(batch, 3, 3).clone(), torch.eye(3, dtype=dtype).expand(batch, 3, 3).clone(),
        torch.zeros(batch, 3, dtype=dtype), (height, width),
    )


def point_at_pixel(u: float, v: float, depth: float) -> list[float]:
    """Camera-space point projecting to pixel coordinates (u, v) at ``depth``."""
    return [(u - SIZE / 2) * depth / FOCAL, (v - SIZE / 2) * depth / FOCAL, depth]


def random_scene(batch=2, num_points=60, size=(20, 24), channels=3, seed=0, dtype=F64):
    """Random points in front of B cameras, random features and per-point radii."""
    generator = torch.Generator().manual_seed(seed)
    height, width = size
    cameras = camera_space_cameras(height, width, batch, dtype)
    depth = 1.0 + 2.0 * torch.rand(batch, num_points, generator=generator, dtype=dtype)
    u = -3.0 + (width + 6.0) * torch.rand(batch, num_points, generator=generator, dtype=dtype)
    v = -3.0 + (height + 6.0) * torch.rand(batch, num_points, generator=generator, dtype=dtype)
    points = torch.stack([(u - width / 2) * depth / FOCAL, (v - height / 2) * depth / FOCAL, depth], -1)
    features = torch.rand(batch, num_points, channels, generator=generator, dtype=dtype)
    radius = 0.05 + 0.25 * torch.rand(batch, num_points, generator=generator, dtype=dtype)
    return points, features, cameras, radius


def assert_renderings_match(fast, slow, tolerance=FAST_VS_REFERENCE):
    assert torch.equal(fast.fragments.idx, slow.fragments.idx)
    for name in ("zbuf", "dists", "alphas"):
        fast_values, slow_values = getattr(fast.fragments, name), getattr(slow.fragments, name)
        assert_close_except_fraction(fast_values, slow_values, tolerance, name=name)
    for name in ("features", "alpha", "weights", "point_weights"):
        assert_close_except_fraction(getattr(fast, name), getattr(slow, name), tolerance, name=name)
    assert torch.equal(fast.visible, slow.visible)


# ----------------------------------------------------------------------------- hand-computed scenes


def test_single_point_alpha_at_centre_and_offsets():
    radius = 3 * NDC_PER_PIXEL  # 3 px
    points = torch.tensor([[point_at_pixel(16.5, 16.5, 2.0)]], dtype=F64)
    features = torch.tensor([[[1.0, 0.5]]], dtype=F64)
    out = render_points(points, features, camera_space_cameras(), radius, points_per_pixel=4)
    frags = out.fragments
    # centre pixel (16, 16): d = 0 → alpha 1
    assert frags.idx[0, 16, 16].tolist() == [0, -1, -1, -1]
    assert frags.zbuf[0, 16, 16, 0].item() == pytest.approx(2.0)
    assert out.alpha[0, 16, 16].item() == pytest.approx(1.0)
    # one pixel right: d² = (1/16)², r² = (3/16)² → alpha = 1 − 1/9
    assert frags.dists[0, 16, 17, 0].item() == pytest.approx(NDC_PER_PIXEL**2)
    assert frags.alphas[0, 16, 17, 0].item() == pytest.approx(8 / 9)
    # (+1 row, +2 cols): d² = 5 px² → alpha = 1 − 5/9
    assert out.alpha[0, 17, 18].item() == pytest.approx(4 / 9)
    torch.testing.assert_close(out.features[0, 17, 18], torch.tensor([4 / 9, 2 / 9], dtype=F64))
    # exactly on the circle (3 px) and beyond are not covered: d² < r² is strict
    assert frags.idx[0, 16, 19, 0].item() == -1 and out.alpha[0, 16, 19].item() == 0.0
    assert frags.zbuf[0, 16, 19, 0].item() == -1 and frags.dists[0, 16, 19, 0].item() == -1
    # the footprint is the 29 pixel centres strictly inside a 3 px circle
    assert int((frags.idx[..., 0] >= 0).sum()) == sum(
        1 for dy in range(-3, 4) for dx in range(-3, 4) if dx * dx + dy * dy < 9
    )


def test_single_point_background_blends_with_transmittance():
    radius = 3 * NDC_PER_PIXEL
    points = torch.tensor([[point_at_pixel(16.5, 16.5, 2.0)]], dtype=F64)
    features = torch.tensor([[[1.0, 0.0, 0.0]]], dtype=F64)
    background = torch.tensor([0.0, 1.0, 0.5], dtype=F64)
    out = render_points(points, features, camera_space_cameras(), radius, background=background)
    alpha = 8 / 9  # pixel (16, 17)
    expected = alpha * features[0, 0] + (1 - alpha) * background
    torch.testing.assert_close(out.features[0, 16, 17], expected)
    torch.testing.assert_close(out.features[0, 0, 0], background)  # empty pixel
    scalar = render_points(points, features, camera_space_cameras(), radius, background=1.0)
    torch.testing.assert_close(scalar.features[0, 0, 0], torch.ones(3, dtype=F64))


def test_two_overlapping_points_composite_front_to_back_by_depth():
    radius = 3 * NDC_PER_PIXEL
    # Pixel (16, 16) has its centre at (16.5, 16.5). The far point is listed first so that
    # the order must come from depth, not from the index.
    far = point_at_pixel(18.5, 16.5, 3.0)   # 2 px away → alpha 1 − 4/9 = 5/9
    near = point_at_pixel(17.5, 16.5, 2.0)  # 1 px away → alpha 8/9
    points = torch.tensor([[far, near]], dtype=F64)
    features = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]], dtype=F64)
    background = torch.tensor([0.25, 0.75], dtype=F64)
    out = render_points(points, features, camera_space_cameras(), radius, 3, background=background)
    a_near, a_far = 8 / 9, 5 / 9
    assert out.fragments.idx[0, 16, 16].tolist() == [1, 0, -1]
    torch.testing.assert_close(out.fragments.zbuf[0, 16, 16, :2], torch.tensor([2.0, 3.0], dtype=F64))
    w_near, w_far = a_near, a_far * (1 - a_near)
    torch.testing.assert_close(
        out.weights[0, 16, 16], torch.tensor([w_near, w_far, 0.0], dtype=F64)
    )
    transmittance = (1 - a_near) * (1 - a_far)
    assert out.alpha[0, 16, 16].item() == pytest.approx(1 - transmittance)
    expected = w_near * features[0, 1] + w_far * features[0, 0] + transmittance * background
    torch.testing.assert_close(out.features[0, 16, 16], expected)
    # with one slot per pixel the far point is hidden wherever the near one covers
    single = render_points(points, features, camera_space_cameras(), radius, points_per_pixel=1)
    assert single.fragments.idx[0, 16, 16].tolist() == [1]
    assert single.features[0, 16, 16].tolist() == pytest.approx((a_near * features[0, 1]).tolist())


def test_equal_depth_ties_keep_lower_index_first():
    points = torch.tensor([[point_at_pixel(16.0, 16.0, 2.0), point_at_pixel(17.0, 17.0, 2.0)]]).double()
    frags = rasterize_points(points, camera_space_cameras(), 3 * NDC_PER_PIXEL, points_per_pixel=2)
    both = (frags.idx >= 0).all(-1)
    assert both.any()
    assert (frags.idx[both] == torch.tensor([0, 1])).all()


def test_visibility_rule_front_most_or_weight_above_half():
    # A: a wide faint disc (16 px) in front; B's whole 3 px footprint lies in A's outer ring,
    # so B is never front-most, yet at its centre B's weight is 1 − α_A = 144/256 > 0.5.
    a = point_at_pixel(16.5 + 12.0, 16.5, 1.0)
    b = point_at_pixel(16.5, 16.5, 3.0)
    # C: a tiny disc right behind B's opaque centre: never front-most, weight 0.
    c = point_at_pixel(16.5, 16.5, 4.0)
    points = torch.tensor([[a, b, c]], dtype=F64)
    radii = torch.tensor([[16, 3, 0.5]], dtype=F64) * NDC_PER_PIXEL
    features = torch.ones(1, 3, 1, dtype=F64)
    out = render_points(points, features, camera_space_cameras(), radii)
    assert set(out.front_idx.unique().tolist()) == {-1, 0}
    assert out.weights[0, 16, 16, 1].item() == pytest.approx(144 / 256)
    assert out.visible[0].tolist() == [True, True, False]
    assert out.weights[out.fragments.idx == 2].max() < 0.5
    # the same rule evaluated from the dense outputs
    _, visible = accumulate_point_weights(out.fragments.idx, out.weights, 3)
    assert torch.equal(visible, out.visible)


def test_point_weights_sum_compositing_weights_per_point():
    points, features, cameras, radius = random_scene(batch=2, num_points=40)
    out = render_points(points, features, cameras, radius)
    for b in range(2):
        for n in range(40):
            expected = out.weights[b][out.fragments.idx[b] == n].sum()
            assert out.point_weights[b, n].item() == pytest.approx(expected.item(), abs=1e-12)
            front = bool((out.front_idx[b] == n).any())
            strong = bool((out.weights[b][out.fragments.idx[b] == n] > 0.5).any())
            assert out.visible[b, n].item() == (front or strong)


# ----------------------------------------------------------------------------- ignored points


def test_points_behind_camera_or_near_plane_or_off_screen_are_ignored():
    radius = 3 * NDC_PER_PIXEL
    visible = point_at_pixel(16.5, 16.5, 2.0)
    behind = [0.0, 0.0, -2.0]
    too_near = [0.0, 0.0, 5e-4]  # depth below the default znear = 1e-3
    off_screen = point_at_pixel(-20.0, 16.0, 2.0)
    points = torch.tensor([[behind, too_near, off_screen, visible]], dtype=F64)
    frags = rasterize_points(points, camera_space_cameras(), radius)
    assert set(frags.idx.unique().tolist()) == {-1, 3}
    znear = rasterize_points(points, camera_space_cameras(), radius, znear=2.5)
    assert (znear.idx == -1).all()


def test_partly_off_screen_disc_covers_the_pixels_inside():
    radius = 3 * NDC_PER_PIXEL
    points = torch.tensor([[point_at_pixel(-1.5, 10.5, 2.0)]], dtype=F64)  # 2 px left of the image
    frags = rasterize_points(points, camera_space_cameras(), radius)
    covered = (frags.idx[0, ..., 0] == 0).nonzero().tolist()
    # column 0 (centre 0.5) is 2 px from the point, column 1 is 3 px (not < 3): rows 8–12
    assert sorted(covered) == [[8, 0], [9, 0], [10, 0], [11, 0], [12, 0]]  # d² = 8, 5, 4, 5, 8 px²


def test_empty_clouds_render_the_background():
    cameras = camera_space_cameras(batch=2)
    background = torch.tensor([0.2, 0.4, 0.6], dtype=F64, requires_grad=True)
    for points, features, lengths in [
        (torch.zeros(2, 0, 3, dtype=F64), torch.zeros(2, 0, 3, dtype=F64), None),
        (torch.rand(2, 5, 3).double(), torch.rand(2, 5, 3).double(), torch.tensor([0, 0])),
    ]:
        points.requires_grad_(True)
        out = render_points(points, features, cameras, 0.1, background=background, lengths=lengths)
        assert torch.equal(out.features, background.detach().expand(2, SIZE, SIZE, 3))
        assert (out.alpha == 0).all() and (out.fragments.idx == -1).all()
        assert out.point_weights.shape == points.shape[:2] and not out.visible.any()
        out.features.sum().backward()
        assert points.grad is not None and (points.grad == 0).all()
        assert background.grad[0].item() == pytest.approx(2 * SIZE * SIZE)
        background.grad = None


# ----------------------------------------------------------------------------- input checks


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("argument", ["points", "features", "radius", "background"])
def test_non_finite_inputs_raise_naming_the_argument(argument, bad):
    points, features, cameras, radius = random_scene(batch=1, num_points=4)
    background = torch.zeros(3, dtype=F64)
    arguments = {"points": points, "features": features, "radius": radius, "background": background}
    arguments[argument].view(-1)[1] = bad
    with pytest.raises(ValueError, match=f"^{argument} contains NaN or Inf"):
        render_points(points, features, cameras, radius, background=background)


def test_non_finite_scalar_radius_raises():
    points, features, cameras, _ = random_scene(batch=1, num_points=4)
    with pytest.raises(ValueError, match="radius contains NaN or Inf"):
        render_points(points, features, cameras, math.nan)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(points=a["points"][0]), "points must be a \\(B, N, 3\\)"),
        (lambda a: a.update(points=a["points"].long()), "points must be floating point"),
        (lambda a: a.update(cameras=a["cameras"][0]), "cameras must be PinholeCameras with B=2"),
        (lambda a: a.update(features=a["features"][:, :3]), "features must be \\(2, 6, C\\)"),
        (lambda a: a.update(radius=0.0), "radius must be > 0"),
        (lambda a: a.update(radius=-torch.ones(2, 6, dtype=F64)), "radius must be > 0"),
        (lambda a: a.update(radius=torch.ones(6)), "radius must be a scalar or a \\(2, 6\\) tensor"),
        (lambda a: a.update(points_per_pixel=0), "points_per_pixel must be an int >= 1"),
        (lambda a: a.update(lengths=torch.tensor([7, 1])), "lengths must lie in \\[0, N=6\\]"),
        (lambda a: a.update(lengths=torch.tensor([1.0, 2.0])), "lengths must be a \\(2,\\) integer"),
        (lambda a: a.update(background=torch.zeros(2)), "background must be a float or a \\(3,\\)"),
        (lambda a: a.update(znear=-1.0), "znear must be a finite float >= 0"),
        (lambda a: a.update(chunk_pairs=0), "chunk_pairs must be an int >= 1"),
    ],
)
def test_invalid_arguments_raise(change, message):
    points, features, cameras, radius = random_scene(batch=2, num_points=6)
    arguments = dict(points=points, features=features, cameras=cameras, radius=radius)
    change(arguments)
    with pytest.raises(ValueError, match=message):
        render_points(**arguments)


def test_composite_functions_check_their_grids():
    idx = torch.full((1, 2, 2, 3), -1)
    idx[0, 0, 0, 0] = 4
    features = torch.rand(1, 4, 3)
    with pytest.raises(ValueError, match="idx values must lie in \\[-1, N=4\\)"):
        alpha_composite(idx, torch.ones(1, 2, 2, 3), features)
    with pytest.raises(ValueError, match="alphas must have the shape of idx"):
        alpha_composite(idx.clamp(max=0), torch.ones(1, 2, 2), features)
    with pytest.raises(ValueError, match="idx must be a \\(B, H, W, K\\) integer tensor"):
        accumulate_point_weights(idx.float(), torch.ones(1, 2, 2, 3), 4)
    with pytest.raises(ValueError, match="weights must have the shape of idx"):
        accumulate_point_weights(idx.clamp(max=0), torch.ones(1, 2, 2, 2), 4)


def test_padding_beyond_lengths_may_have_any_radius_but_must_be_finite():
    points, features, cameras, radius = random_scene(batch=2, num_points=6)
    radius[1, 3:] = 0.0  # ignored: beyond lengths
    out = render_points(points, features, cameras, radius, lengths=torch.tensor([6, 3]))
    assert not (out.fragments.idx[1] >= 3).any()


# ----------------------------------------------------------------------------- fast vs reference


@pytest.mark.parametrize(
    "batch, num_points, size, k, lengths, per_point_radius",
    [
        (1, 50, (20, 24), 10, None, False),
        (2, 80, (24, 16), 4, [80, 33], True),
        (3, 60, (16, 16), 1, [0, 60, 17], True),
        (2, 5, (12, 20), 10, [5, 2], False),  # fewer points than slots
    ],
)
def test_fast_path_matches_reference_forward_and_backward(
    batch, num_points, size, k, lengths, per_point_radius
):
    points, features, cameras, radius = random_scene(batch, num_points, size, seed=num_points)
    radius = radius if per_point_radius else torch.tensor(0.2, dtype=F64)
    lengths = None if lengths is None else torch.tensor(lengths)
    background = torch.tensor([0.3, 0.6, 0.9], dtype=F64)
    generator = torch.Generator().manual_seed(1)
    image_weights = torch.rand(batch, *size, 3, generator=generator, dtype=F64)
    alpha_weights = torch.rand(batch, *size, generator=generator, dtype=F64)
    point_weights = torch.rand(batch, num_points, generator=generator, dtype=F64)

    grads, renderings = [], []
    for render in (render_points, render_points_reference):
        inputs = [t.clone().requires_grad_(True) for t in (points, features, radius, background)]
        out = render(inputs[0], inputs[1], cameras, inputs[2], k, background=inputs[3], lengths=lengths)
        loss = ((out.features * image_weights).sum() + (out.alpha * alpha_weights).sum()
                + (out.point_weights * point_weights).sum() + (out.fragments.zbuf * 0.1).sum())
        loss.backward()
        renderings.append(out)
        grads.append([t.grad for t in inputs])
    assert_renderings_match(*renderings)
    for name, fast, slow in zip(("points", "features", "radius", "background"), *grads, strict=True):
        assert_close_except_fraction(fast, slow, FAST_VS_REFERENCE_GRAD, name=f"grad {name}")
    assert grads[0][0].abs().sum() > 0 and grads[0][2].abs().sum() > 0


def test_head_scene_matches_reference_in_float32():
    scene = make_head_scene(400, (40, 56), batch=2, channels=4)
    lengths = torch.tensor([400, 250])
    inputs = (scene.points, scene.features, scene.cameras, scene.radius)
    fast = render_points(*inputs, lengths=lengths)
    slow = render_points_reference(*inputs, lengths=lengths)
    assert_renderings_match(fast, slow)
    assert fast.alpha.max() > 0.99 and (fast.fragments.idx[..., -1] >= 0).any()  # some pixels are full


def test_rasterize_and_composite_functions_match_render_points():
    points, features, cameras, radius = random_scene(batch=2, num_points=70)
    out = render_points(points, features, cameras, radius, background=0.5)
    frags = rasterize_points(points, cameras, radius)
    assert torch.equal(frags.idx, out.fragments.idx)
    torch.testing.assert_close(frags.alphas, out.fragments.alphas)
    image, alpha, weights = alpha_composite(frags.idx, frags.alphas, features, background=0.5)
    torch.testing.assert_close(image, out.features)
    torch.testing.assert_close(alpha, out.alpha)
    torch.testing.assert_close(weights, out.weights)
    point_weights, visible = accumulate_point_weights(frags.idx, weights, 70)
    torch.testing.assert_close(point_weights, out.point_weights)
    assert torch.equal(visible, out.visible)
    reference = rasterize_points_reference(points, cameras, radius)
    assert torch.equal(reference.idx, frags.idx)


def test_alpha_composite_treats_empty_slots_anywhere_as_transparent():
    generator = torch.Generator().manual_seed(3)
    idx = torch.randint(-1, 5, (2, 6, 7, 4), generator=generator)
    alphas = torch.rand(2, 6, 7, 4, generator=generator, dtype=F64)
    features = torch.rand(2, 5, 3, generator=generator, dtype=F64)
    background = torch.tensor([1.0, 0.0, 0.5], dtype=F64)
    fast = alpha_composite(idx, alphas, features, background)
    slow = alpha_composite_reference(idx, alphas, features, background)
    for got, expected in zip(fast, slow, strict=True):
        torch.testing.assert_close(got, expected)
    fast_acc = accumulate_point_weights(idx, fast[2], 5)
    slow_acc = accumulate_point_weights_reference(idx, slow[2], 5)
    torch.testing.assert_close(fast_acc[0], slow_acc[0])
    assert torch.equal(fast_acc[1], slow_acc[1])


@pytest.mark.parametrize("chunk_pairs", [1, 37, 1000])
def test_chunking_does_not_change_the_output(chunk_pairs):
    points, features, cameras, radius = random_scene(batch=2, num_points=90, seed=5)
    radius = radius * 1.5  # several box sizes, heavy overlap
    whole = render_points(points, features, cameras, radius)
    chunked = render_points(points, features, cameras, radius, chunk_pairs=chunk_pairs)
    assert torch.equal(whole.fragments.idx, chunked.fragments.idx)
    assert torch.equal(whole.features, chunked.features)
    assert torch.equal(whole.point_weights, chunked.point_weights)


def test_gradcheck_positions_features_radius_background():
    torch.manual_seed(0)
    cameras = camera_space_cameras(10, 12, batch=1)
    centres = [(4.3, 3.7, 2.0), (6.1, 5.2, 2.5), (7.9, 4.4, 3.0), (3.2, 6.6, 1.5)]
    camera_space = [[(u - 6) * z / FOCAL, (v - 5) * z / FOCAL, z] for u, v, z in centres]
    points = torch.tensor([camera_space], dtype=F64)
    features = torch.rand(1, 4, 2, dtype=F64)
    radius = torch.tensor([[0.45, 0.52, 0.4, 0.55]], dtype=F64)  # no pixel on a disc edge
    background = torch.tensor([0.2, 0.7], dtype=F64)

    def rendered(points, features, radius, background):
        out = render_points(points, features, cameras, radius, points_per_pixel=3, background=background)
        return out.features, out.alpha, out.point_weights

    inputs = tuple(t.clone().requires_grad_(True) for t in (points, features, radius, background))
    assert torch.autograd.gradcheck(rendered, inputs, eps=1e-6, atol=1e-6)
    scalar = torch.tensor(0.47, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda r: render_points(points, features, cameras, r, points_per_pixel=3).features, (scalar,)
    )


def test_features_may_have_another_dtype_than_points():
    points, features, cameras, radius = random_scene(batch=1, num_points=20)
    mixed = render_points(points, features.float(), cameras, radius, background=0.5).features
    same = render_points(points, features, cameras, radius, background=0.5).features
    assert mixed.dtype == torch.float64
    torch.testing.assert_close(mixed, same, atol=1e-6, rtol=1e-6)


def test_float32_and_float64_agree():
    points, features, cameras, radius = random_scene(batch=2, num_points=50)
    high = render_points(points, features, cameras, radius)
    cameras32 = cameras.to(dtype=torch.float32)
    low = render_points(points.float(), features.float(), cameras32, radius.float())
    assert_close_except_fraction(low.features, high.features.float(), FAST_VS_REFERENCE, group_dims=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    points, features, cameras, radius = random_scene(batch=2, num_points=80, dtype=torch.float32)
    cpu = render_points(points, features, cameras, radius)
    gpu = render_points(points.cuda(), features.cuda(), cameras.to(device="cuda"), radius.cuda())
    assert torch.equal(cpu.fragments.idx, gpu.fragments.idx.cpu())
    torch.testing.assert_close(cpu.features, gpu.features.cpu())
