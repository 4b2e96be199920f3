from pathlib import Path

import pytest
import torch

from pegasus.avatar.deformer import DeformerBases
from pegasus.avatar.model import AvatarOutput, PointAvatar
from pegasus.config import load_config

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

BASE_CONF = Path(__file__).resolve().parents[2] / "confs" / "base.conf"
TINY = [
    "model.points.init_count=200", "model.points.max_points=800", "model.points.upsample_freq=1", "model.points.settle_epochs=0",
    "model.points.init_radius=0.12", "model.geometry.hidden_layers=2", "model.geometry.width=32",
    "model.geometry.num_freqs=4", "model.deformer.hidden_layers=2", "model.deformer.width=32",
    "model.shading.hidden=[16]", "model.lr.points=1e-3", "model.lr.geometry=1e-3", "model.lr.deformer=1e-3",
    "model.lr.shading=1e-3",
]


def tiny_config(*overrides):
    return load_config(BASE_CONF, TINY + list(overrides))


def build(head_model, batch, *overrides, num_frames=2):
    cfg = tiny_config(*overrides)
    torch.manual_seed(0)
    variance = batch["expression"].var(0) if len(batch["expression"]) > 1 else None
    model = PointAvatar.from_config(cfg, head_model, batch["expression"].mean(0), num_frames, variance)
    return cfg, model


def test_forward_follows_the_contract(make):
    hm = make.head_model()
    batch = make.batch(hm, 2, 24)
    cfg, model = build(hm, batch, "model.geometry.segmentation=true")
    out = model(batch, epoch=0)
    assert isinstance(out, AvatarOutput)
    assert out.rgb.shape == (2, 24, 24, 3) and out.mask.shape == (2, 24, 24)
    for image in (out.normal, out.albedo, out.shading):
        assert image.shape == (2, 24, 24, 3)
    assert out.segmentation.shape == (2, 24, 24)
    assert out.visible.shape == (2, 200) and out.visible.dtype == torch.bool and out.visible.any()
    assert (out.rgb[out.mask == 0] == 1).all()  # white background
    assert (out.normal[out.mask == 0] == 0).all()
    covered = out.mask > 0.99
    norms = out.normal[covered].norm(dim=-1)  # blends of unit normals
    assert (norms <= 1 + 1e-5).all() and norms.mean() > 0.5
    terms = model.losses(batch, out, epoch=0)
    assert {"rgb", "mask", "sdf", "eikonal", "skinning_prior", "pose_prior", "expression_prior", "total"} <= set(terms)
    assert "vgg" not in terms  # no weights configured
    torch.testing.assert_close(terms["total"], sum(v for k, v in terms.items() if k != "total"))
    terms["total"].backward()
    assert model.points.points.grad is not None and model.deformer.mlp.hidden[0].weight.grad is not None
    assert [g["name"] for g in model.parameter_groups(cfg)] == ["points", "geometry", "deformer", "shading"]
    assert all(g["lr"] == 1e-3 for g in model.parameter_groups(cfg))


def test_a_few_steps_reduce_the_loss(make):
    hm = make.head_model()
    batch = make.batch(hm, 2, 32)
    cfg, model = build(hm, batch)
    optimizer = torch.optim.Adam(model.parameter_groups(cfg))
    totals = []
    for step in range(12):
        out = model(batch, epoch=0)
        terms = model.losses(batch, out, epoch=0)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
        totals.append(float(terms["rgb"].detach() + terms["mask"].detach()))
    assert totals[-1] < 0.8 * totals[0]


def test_state_dict_round_trip_across_a_size_change(make):
    hm = make.head_model()
    batch = make.batch(hm, 1, 16)
    cfg, model = build(hm, batch)
    optimizer = torch.optim.Adam(model.parameter_groups(cfg))
    model.points.end_epoch(0, None, optimizer)  # upsample: 200 → 400 points
    assert model.points.num_points == 400
    model.eval()
    with torch.no_grad():
        expected = model(batch).rgb
    state = model.state_dict()
    assert not any(k.startswith("head_model") for k in state)
    _, fresh = build(hm, batch)
    fresh.load_state_dict(state)
    fresh.eval()
    assert fresh.points.num_points == 400 and fresh.points.radius == pytest.approx(model.points.radius)
    with torch.no_grad():
        torch.testing.assert_close(fresh(batch).rgb, expected)


def _flame_deformer(hm):
    """A deformer returning the head model's own bases at each point's nearest vertex (piecewise
    constant: zero tangents)."""
    def with_tangents(x, latent=None):
        d = ((x[..., :, None, :] - with_tangents.vertices) ** 2).sum(-1)
        index = d.argmin(-1)
        w = hm.lbs_weights[index]
        bases = DeformerBases(torch.zeros_like(x), hm.exprdirs[index], hm.posedirs[index],
                              torch.cat([torch.zeros_like(w[..., :1]), w], dim=-1))
        return bases, DeformerBases(*(torch.zeros(3, *v.shape, dtype=v.dtype) for v in vars(bases).values()))
    return with_tangents


@pytest.mark.parametrize("shape_cancel", [False, True])
def test_points_on_the_canonical_mesh_follow_the_head_model(make, shape_cancel):
    hm = make.head_model()
    batch = make.batch(hm, 3, 16, seed=4)
    batch["shape"] = batch["shape"][:1].expand(3, -1).contiguous()  # one video: one identity
    cfg, model = build(hm, batch, f"model.shape_cancel={str(shape_cancel).lower()}")
    canonical_shape = None if shape_cancel else batch["shape"][:1]
    canonical = hm(shape=canonical_shape, expression=model.canonical_expression[None],
                   pose=hm.canonical_pose(cfg.head_model.canonical_jaw_opening)[None]).vertices[0]
    with torch.no_grad():
        model.points.points = torch.nn.Parameter(canonical.clone())
    with_tangents = _flame_deformer(hm)
    with_tangents.vertices = canonical
    model.deformer.with_tangents = with_tangents
    model.eval()
    with torch.no_grad():
        out = model(batch)
    expected = hm(shape=batch["shape"], expression=batch["expression"], pose=batch["pose"]).vertices
    torch.testing.assert_close(out.extras["deformed_points"], expected, atol=1e-4, rtol=0)
    assert torch.equal(out.extras["flame_index"][0], torch.arange(hm.n_vertices))
    assert out.extras["flame_weights"][..., 0].abs().max() == 0  # ghost bone has no FLAME weight


def test_latent_conditioning(make):
    hm = make.head_model()
    batch = make.batch(hm, 2, 16)
    _, plain = build(hm, batch)
    _, conditioned = build(hm, batch, "model.latent_dim=4")
    with pytest.raises(ValueError, match="latent code is required"):
        conditioned(batch)
    with pytest.raises(ValueError, match="latent_dim = 0"):
        plain(batch, latent=torch.zeros(4))
    conditioned.eval()
    with torch.no_grad():
        a = conditioned(batch, latent=torch.zeros(4)).rgb
        b = conditioned(batch, latent=torch.ones(4)).rgb
        per_frame = conditioned(batch, latent=torch.stack([torch.zeros(4), torch.ones(4)])).rgb
    assert not torch.allclose(a, b)
    torch.testing.assert_close(per_frame[0], a[0])
    torch.testing.assert_close(per_frame[1], b[1])
    # with the latent inputs' weights at zero the conditioned model is the plain one
    state = conditioned.state_dict()
    for key, value in plain.state_dict().items():
        target = state[key]
        target.zero_()
        target[tuple(slice(0, n) for n in value.shape)] = value
    conditioned.load_state_dict(state)
    plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(conditioned(batch, latent=torch.randn(4)).rgb, plain(batch).rgb)


def test_per_frame_refinement(make):
    hm = make.head_model()
    batch = make.batch(hm, 2, 16)
    cfg, model = build(hm, batch, "model.refine.enabled=true", "model.refine.start_epoch=3", num_frames=5)
    assert [g["name"] for g in model.parameter_groups(cfg)][-1] == "refine"
    with torch.no_grad():
        model.refinement.translation[1] = torch.tensor([0.05, 0.0, 0.0])
    base = model(batch, epoch=2).extras["deformed_points"]
    moved = model(batch, epoch=3).extras["deformed_points"]
    torch.testing.assert_close(moved[0], base[0])
    torch.testing.assert_close(moved[1], base[1] + torch.tensor([0.05, 0.0, 0.0]), atol=1e-5, rtol=0)
    model.eval()
    torch.testing.assert_close(model(batch, epoch=3).extras["deformed_points"], base)  # never at test time
    model.train()
    batch["frame_index"] = torch.tensor([0, 7])
    with pytest.raises(ValueError, match="outside"):
        model(batch, epoch=3)


def test_export_points(make):
    hm = make.head_model()
    batch = make.batch(hm, 2, 16)
    _, model = build(hm, batch)
    for cloud in (model.export_points(None), model.export_points(batch)):
        assert set(cloud) == {"points", "colors", "normals"}
        assert all(v.shape == (200, 3) for v in cloud.values())
        assert (cloud["colors"] >= 0).all() and (cloud["colors"] <= 1).all()
        torch.testing.assert_close(cloud["normals"].norm(dim=-1), torch.ones(200))
