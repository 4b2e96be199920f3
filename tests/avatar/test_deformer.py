import pytest
import torch

from pegasus.avatar.deformer import (
    DeformerBases,
    FlameDeformer,
    batched_matmul,
    deform_normals,
    deform_points,
    deform_points_with_jacobian,
    flame_state,
    jacobian_by_forward_ad,
)

# torch.func's forward-mode AD triggers torch's own torch.jit.script deprecation warning.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


def flame_bases(head_model, index=None) -> DeformerBases:
    """The head model's own bases at its vertices (offset 0, ghost weight 0), as (1, V, ...)."""
    index = torch.arange(head_model.n_vertices) if index is None else index
    w = head_model.lbs_weights[index]
    return DeformerBases(
        offset=torch.zeros(1, len(index), 3, dtype=w.dtype),
        expr_basis=head_model.exprdirs[index][None],
        pose_basis=head_model.posedirs[index][None],
        weights=torch.cat([torch.zeros_like(w[:, :1]), w], dim=1)[None],
    )


@pytest.mark.parametrize("shape_cancel", [False, True])
def test_points_with_flame_bases_follow_the_mesh(make, shape_cancel):
    hm = make.head_model()
    g = torch.Generator().manual_seed(1)
    shape, expression, pose = make.flame_params(hm, 3, g, scale=1.5)
    shape = torch.randn(3, hm.n_shape, generator=g)  # a different identity per frame
    psi_can = torch.randn(hm.n_expr, generator=g)
    jaw = hm.canonical_pose(0.4)[None]
    if shape_cancel:
        canonical = flame_state(hm, None, psi_can[None], jaw)
        identity = torch.einsum("vcs,bs->bvc", hm.shapedirs, shape)  # S(v*)·β with v* = the vertex itself
    else:
        canonical = flame_state(hm, shape, psi_can[None].expand(3, -1), jaw.expand(3, -1))
        identity = None
    frame = flame_state(hm, shape, expression, pose, translation=torch.randn(3, 3, generator=g) * 0.1)
    points = canonical.vertices[:1]  # points placed on the canonical mesh (item 0; all equal under shape cancel)
    if not shape_cancel:  # per-frame canonical mesh: deform each frame's own canonical points
        deformed = torch.cat([deform_points(canonical.vertices[b:b + 1], flame_bases(hm),
                                            _select(frame, b), _select(canonical, b)) for b in range(3)])
    else:
        deformed = deform_points(points, flame_bases(hm), frame, canonical, identity)
    assert deformed.shape == (3, hm.n_vertices, 3)
    torch.testing.assert_close(deformed, frame.vertices, atol=1e-4, rtol=0)


def _select(state, b):
    return type(state)(*(None if t is None else t[b:b + 1] for t in (
        state.transforms, state.expression, state.pose_feature, state.vertices, state.translation)))


def test_fresh_deformer_is_zero_with_uniform_weights_and_moves_rigidly(make):
    hm = make.head_model()
    deformer = FlameDeformer(hm.n_expr, hidden_layers=2, width=16)
    x = torch.randn(1, 50, 3)
    bases = deformer(x)
    assert torch.equal(bases.offset, torch.zeros_like(bases.offset))
    assert bases.expr_basis.shape == (1, 50, 3, hm.n_expr) and not bases.expr_basis.any()
    assert bases.pose_basis.shape == (1, 50, 3, 36) and not bases.pose_basis.any()
    torch.testing.assert_close(bases.weights, torch.full((1, 50, 6), 1 / 6))
    # rest pose everywhere: identity
    zero = flame_state(hm, None, torch.zeros(1, hm.n_expr), torch.zeros(1, 15))
    torch.testing.assert_close(deform_points(x, bases, zero, zero), x, atol=1e-6, rtol=0)
    # uniform weights: x_d = T̄ · T̄_can⁻¹ · x with T̄ the mean of the six bone transforms
    g = torch.Generator().manual_seed(0)
    _, expression, pose = make.flame_params(hm, 2, g)
    frame = flame_state(hm, None, expression, pose)
    canonical = flame_state(hm, None, torch.zeros(1, hm.n_expr), hm.canonical_pose(0.4)[None])
    mean_frame, mean_can = frame.transforms.mean(1), canonical.transforms.mean(1)
    expected = (mean_frame @ torch.linalg.inv(mean_can))[:, None, :3, :3] @ x[..., None]
    expected = expected[..., 0] + (mean_frame @ torch.linalg.inv(mean_can))[:, None, :3, 3]
    torch.testing.assert_close(deform_points(x, bases, frame, canonical), expected, atol=1e-5, rtol=1e-5)


def _random_deformer_setup(make, latent_dim=0, per_frame_canonical=False, points_per_frame=False):
    """A random deformer and head-model states; returns (map, analytic) where ``map(x)``
    deforms (P, N, 3) points and ``analytic(x)`` returns (deformed, Jacobian)."""
    hm = make.head_model().double()
    deformer = FlameDeformer(hm.n_expr, hidden_layers=2, width=32, latent_dim=latent_dim).double()
    with torch.no_grad():
        deformer.mlp.out.weight.normal_(0, 0.05)
        deformer.mlp.out.bias.normal_(0, 0.05)
    g = torch.Generator().manual_seed(3)
    shape, expression, pose = make.flame_params(hm, 2, g)
    frame = flame_state(hm, shape.double(), expression.double(), pose.double(),
                        translation=torch.randn(2, 3, generator=g, dtype=torch.float64) * 0.1)
    canonical_shape = shape.double() if per_frame_canonical else None
    batch = 2 if per_frame_canonical else 1
    canonical = flame_state(hm, canonical_shape, torch.zeros(batch, hm.n_expr, dtype=torch.float64),
                            hm.canonical_pose(0.4)[None].expand(batch, -1))
    latent = (torch.randn(2 if points_per_frame else 1, latent_dim, generator=g, dtype=torch.float64)
              if latent_dim else None)

    def deform(x):
        return deform_points(x, deformer(x, latent), frame, canonical)

    def analytic(x):
        bases, tangents = deformer.with_tangents(x, latent)
        return deform_points_with_jacobian(x, bases, tangents, frame, canonical)

    return deform, analytic


SETUPS = {"shared": {}, "latent": {"latent_dim": 4}, "per_frame_canonical": {"per_frame_canonical": True},
          "latent_per_frame": {"latent_dim": 4, "points_per_frame": True}}


@pytest.mark.parametrize("setup", SETUPS)
def test_jacobian_matches_forward_mode_ad_and_finite_differences(make, setup):
    deform, analytic = _random_deformer_setup(make, **SETUPS[setup])
    p = 2 if SETUPS[setup].get("points_per_frame") else 1
    x = torch.randn(p, 40, 3, dtype=torch.float64) * 0.5
    y, jac = analytic(x)
    torch.testing.assert_close(y, deform(x))
    assert jac.shape == (2, 40, 3, 3)
    # softplus is linear above β·z = 20 (derivative 1, sigmoid's 1 − 2e-9): ~1e-8 relative
    torch.testing.assert_close(jac, jacobian_by_forward_ad(deform, x)[1], atol=1e-9, rtol=1e-7)
    eps = 1e-6
    columns = [(deform(x + eps * e) - deform(x - eps * e)) / (2 * eps) for e in torch.eye(3, dtype=x.dtype)]
    torch.testing.assert_close(jac, torch.stack(columns, dim=-1), atol=1e-7, rtol=1e-6)


def test_mlp_tangents_match_forward_mode_ad():
    from pegasus.avatar.deformer import SoftplusMLP
    torch.manual_seed(0)
    for hidden_layers in (0, 2):
        mlp = SoftplusMLP(5, 7, hidden_layers=hidden_layers, width=16).double()
        x = torch.randn(2, 9, 5, dtype=torch.float64)
        out, tangents = mlp.with_tangents(x)
        torch.testing.assert_close(out, mlp(x))
        for k in range(3):
            direction = torch.zeros_like(x)
            direction[..., k] = 1.0
            _, expected = torch.func.jvp(mlp, (x,), (direction,))
            torch.testing.assert_close(tangents[k].expand_as(expected), expected, atol=1e-9, rtol=1e-7)


def test_deformed_normals_match_finite_differences(make):
    """The deformed normal is orthogonal to the deformed tangent plane (finite differences)."""
    deform, analytic = _random_deformer_setup(make)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 30, 3, generator=g, dtype=torch.float64) * 0.5
    n_c = torch.nn.functional.normalize(torch.randn(1, 30, 3, generator=g, dtype=torch.float64), dim=-1)
    _, jac = analytic(x)
    n_d = deform_normals(n_c * 3.0, jac)  # scale of n_c does not matter
    torch.testing.assert_close(n_d.norm(dim=-1), torch.ones(2, 30, dtype=torch.float64))
    # two tangents of the canonical plane, pushed through the map by finite differences
    helper = torch.where(n_c[..., :1].abs() < 0.9, torch.tensor([1.0, 0, 0], dtype=x.dtype),
                         torch.tensor([0, 1.0, 0], dtype=x.dtype))
    t1 = torch.nn.functional.normalize(torch.cross(n_c, helper, dim=-1), dim=-1)
    t2 = torch.cross(n_c, t1, dim=-1)
    eps = 1e-6
    for t in (t1, t2):
        pushed = (deform(x + eps * t) - deform(x - eps * t)) / (2 * eps)
        assert (n_d * pushed).sum(-1).abs().max() < 1e-7
    # and it points to the same side as n_c pushed forward: n_d · (J n_c) > 0
    assert ((n_d * (jac @ n_c[..., None])[..., 0]).sum(-1) > 0).all()


def test_jacobian_is_differentiable_like_autograd(make):
    deform, analytic = _random_deformer_setup(make, latent_dim=4)
    x = (torch.randn(1, 10, 3, dtype=torch.float64) * 0.5).requires_grad_(True)
    _, jac = analytic(x)
    (grad_fwd,) = torch.autograd.grad(jac.pow(2).sum(), x)

    y = deform(x)
    total = 0
    for b in range(2):
        rows = [torch.autograd.grad(y[b, :, i].sum(), x, create_graph=True)[0] for i in range(3)]
        total = total + torch.stack(rows, dim=-2).pow(2).sum()
    (grad_rev,) = torch.autograd.grad(total, x)
    torch.testing.assert_close(grad_fwd, grad_rev, atol=1e-8, rtol=1e-6)


def test_batched_matmul_layouts():
    g = torch.Generator().manual_seed(0)
    for p, b in ((1, 3), (3, 1), (3, 3), (1, 1)):
        lhs, rhs = torch.randn(p, 5, 4, generator=g), torch.randn(b, 4, 2, generator=g)
        torch.testing.assert_close(batched_matmul(lhs, rhs), lhs @ rhs)
    with pytest.raises(ValueError, match="do not broadcast"):
        batched_matmul(torch.randn(2, 5, 4), torch.randn(3, 4, 2))
