from pathlib import Path

import pytest
import torch

from pegasus.avatar.channels import AvatarOutput
from pegasus.avatar.deformer import DeformerBases
from pegasus.avatar.export import canonical_points, posed_points
from pegasus.avatar.index import RunIndex
from pegasus.avatar.latent import LatentTable
from pegasus.avatar.model import PointAvatar
from pegasus.config import load_config
from pegasus.data import parts

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

BASE_CONF = Path(__file__).resolve().parents[2] / "confs" / "base.conf"
TINY = [
    "model.points.init_count=200", "model.points.max_points=800", "model.points.upsample_freq=1",
    "model.points.settle_epochs=0", "model.points.init_radius=0.12", "model.geometry.hidden_layers=2",
    "model.geometry.width=32", "model.geometry.num_freqs=4", "model.deformer.hidden_layers=2",
    "model.deformer.width=32", "model.shading.hidden=[16]", "model.lr.points=1e-3", "model.lr.geometry=1e-3",
    "model.lr.deformer=1e-3", "model.lr.shading=1e-3",
]


def tiny_config(*overrides):
    return load_config(BASE_CONF, TINY + list(overrides))


def one_person_codes() -> LatentTable:
    """A latent table for one person ("person") who has every category."""
    categories = tuple(c.name for c in parts.LATENT_CATEGORIES)
    return LatentTable(categories, tuple(("person", c) for c in categories), {"person": frozenset(categories)})


def build(head_model, batch, *overrides, index=None):
    cfg = tiny_config(*overrides)
    torch.manual_seed(0)
    index = index or RunIndex(("person",), latent=one_person_codes() if cfg.model.latent.code_dim else None)
    expression = batch.expression
    shape = torch.zeros(head_model.n_shape) if cfg.model.shape_cancel else batch.shape.mean(0)
    model = PointAvatar(head_model, cfg.model, cfg.loss, index, expression.mean(0)[None].expand(len(index.subjects), -1),
                        expression.var(0, unbiased=False), shape, expression.mean(0),
                        cfg.head_model.canonical_jaw_opening)
    return cfg, model


def test_forward_follows_the_contract(make):
    hm = make.head_model()
    batch = make.batch(hm, 2, 24)
    cfg, model = build(hm, batch, "model.part_logit=true", "model.semantic=true")
    out = model(batch, epoch=0)
    assert isinstance(out, AvatarOutput)
    assert out.rgb.shape == (2, 24, 24, 3) and out.mask.shape == (2, 24, 24)
    for image in (out.normal, out.albedo, out.shading):
        assert image.shape == (2, 24, 24, 3)
    assert out.part.shape == (2, 24, 24)
    classes = len(parts.SEMANTIC_CLASSES)
    assert out.semantic.shape == (2, 24, 24, classes)
    torch.testing.assert_close(out.semantic.sum(-1), torch.ones(2, 24, 24))  # a distribution per pixel
    assert (out.semantic[out.mask == 0][:, 0] == 1).all()  # background class where nothing covers
    assert out.visible.shape == (2, 200) and out.visible.dtype == torch.bool and out.visible.any()
    assert (out.rgb[out.mask == 0] == 1).all()  # white background
    assert (out.normal[out.mask == 0] == 0).all()
    covered = out.mask > 0.99
    norms = out.normal[covered].norm(dim=-1)  # blends of unit normals
    assert (norms <= 1 + 1e-5).all() and norms.mean() > 0.5
    terms = model.losses(batch, out, epoch=0)
    assert {"rgb", "mask", "sdf", "eikonal", "skinning_prior", "pose_prior", "expression_prior", "semantic",
            "total"} <= set(terms)
    assert "vgg" not in terms and "part" not in terms  # no weights configured; no part masks in the batch
    torch.testing.assert_close(terms["total"], sum(v for k, v in terms.items() if k != "total"))
    terms["total"].backward()
    assert model.points.points.grad is not None and model.networks.deformer.mlp.hidden[0].weight.grad is not None
    assert [g["name"] for g in model.parameter_groups()] == ["points", "geometry", "deformer", "shading"]
    assert all(g["lr"] == 1e-3 for g in model.parameter_groups())


def test_part_logit_is_trained_against_the_part_mask(make):
    hm = make.head_model()
    batch = make.batch(hm, 2, 16)
    batch = batch.replace(part_mask=(batch.semantic == 17).float())
    _, model = build(hm, batch, "model.part_logit=true")
    terms = model.losses(batch, model(batch, epoch=0), epoch=0)
    assert terms["part"] > 0
    terms["part"].backward()
    assert model.networks.geometry.layers[-1].weight_v.grad.abs().sum() > 0


def test_a_few_steps_reduce_the_loss(make):
    hm = make.head_model()
    batch = make.batch(hm, 2, 32)
    _, model = build(hm, batch)
    optimizer = torch.optim.Adam(model.parameter_groups())
    totals = []
    for _ in range(12):
        out = model(batch, epoch=0)
        terms = model.losses(batch, out, epoch=0)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
        totals.append(float(terms["rgb"].detach() + terms["mask"].detach()))
    assert totals[-1] < 0.8 * totals[0]


def test_semantic_head_learns_a_generated_label_map(make):
    """Three labelled regions of the test head (hair, skin, lips), rendered as label maps: the
    semantic head reproduces them on the frames it trained on."""
    hm = make.head_model()
    batch = make.batch(hm, 2, 24)
    _, model = build(hm, batch, "model.semantic=true", "loss.semantic=1.0", "model.lr.geometry=1e-2",
                     "model.lr.points=3e-3", "loss.flame_prior=0")
    optimizer = torch.optim.Adam(model.parameter_groups())
    class_of = torch.from_numpy(parts.class_of_label())

    def accuracy() -> float:
        with torch.no_grad():
            out = model(batch, epoch=0)
        covered = (batch.mask > 0.9) & (out.mask > 0.9)
        return float((out.semantic.argmax(-1) == class_of[batch.semantic])[covered].float().mean())

    before = accuracy()
    for _ in range(60):
        terms = model.losses(batch, model(batch, epoch=0), epoch=0)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
    after = accuracy()
    # measured: 0.00 → 0.96 (three classes over the covered pixels; the untrained head predicts skin nowhere)
    assert before < 0.6 and after > 0.85, (before, after)


def test_state_dict_round_trip_across_a_size_change(make):
    hm = make.head_model()
    batch = make.batch(hm, 1, 16)
    _, model = build(hm, batch)
    optimizer = torch.optim.Adam(model.parameter_groups())
    assert model.end_epoch(0, None, optimizer)  # seed and upsample: 200 → ≥ 400 points
    count = model.points.num_points
    assert count >= 400
    model.eval()
    with torch.no_grad():
        expected = model(batch).rgb
    state = model.state_dict()
    assert not any(k.startswith("head_model") for k in state)
    _, fresh = build(hm, batch)
    fresh.load_state_dict(state)
    fresh.eval()
    assert fresh.points.num_points == count and fresh.points.radius == pytest.approx(model.points.radius)
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
    batch = batch.replace(shape=batch.shape[:1].expand(3, -1).contiguous())  # one video: one identity
    cfg, model = build(hm, batch, f"model.shape_cancel={str(shape_cancel).lower()}")
    canonical_shape = None if shape_cancel else batch.shape[:1]
    canonical = hm(shape=canonical_shape, expression=model.canonical_expression,
                   pose=hm.canonical_pose(cfg.head_model.canonical_jaw_opening)[None]).vertices[0]
    with torch.no_grad():
        model.points.points = torch.nn.Parameter(canonical.clone())
    with_tangents = _flame_deformer(hm)
    with_tangents.vertices = canonical
    model.networks.deformer.with_tangents = with_tangents
    model.eval()
    with torch.no_grad():
        out = model(batch)
    expected = hm(shape=batch.shape, expression=batch.expression, pose=batch.pose).vertices
    torch.testing.assert_close(out.points.deformed, expected, atol=1e-4, rtol=0)
    assert torch.equal(out.points.flame_index[0], torch.arange(hm.n_vertices))
    assert out.points.surface_offset.abs().max() < 1e-5  # on the reference surface
    assert model.flame_targets(out.points.flame_index)["weights"][..., 0].abs().max() == 0  # ghost bone


def test_surface_terms_measure_the_offset_along_the_head_model_normal(make):
    from pegasus.render.mesh import vertex_normals

    hm = make.head_model()
    batch = make.batch(hm, 2, 16, seed=3)
    cfg, model = build(hm, batch, "loss.surface_inside=2", "loss.surface_inside_margin=0.001",
                       "loss.surface_outside=3", "loss.surface_outside_margin=0.001")
    reference = model.reference_vertices()
    normals = vertex_normals(reference, hm.faces)
    on_faces = normals.norm(dim=-1) > 0.5
    depth = torch.where(torch.arange(hm.n_vertices) % 2 == 0, 0.004, -0.004)  # every other vertex sunk
    with torch.no_grad():
        model.points.points = torch.nn.Parameter((reference + depth[:, None] * normals)[on_faces])
    deformer = _flame_deformer(hm)  # no canonical offset
    deformer.vertices = reference
    model.networks.deformer.with_tangents = deformer
    out = model(batch, epoch=0)
    own = out.points.flame_index[0] == torch.arange(hm.n_vertices)[on_faces]
    assert own.float().mean() > 0.9  # the moved points still find their own vertex …
    torch.testing.assert_close(out.points.surface_offset[0][own], depth[on_faces][own], atol=1e-5, rtol=0)  # … at ±d
    terms = model.losses(batch, out, epoch=0)
    s = out.points.surface_offset
    torch.testing.assert_close(terms["surface_inside"], 2 * torch.relu(-s - 0.001).mean())
    torch.testing.assert_close(terms["surface_outside"], 3 * torch.relu(s - 0.001).mean())
    assert float(terms["surface_inside"].detach()) == pytest.approx(2 * 0.003 / 2, rel=0.1)
    terms["surface_outside"].backward()  # pushes the raised points towards the surface
    grad = model.points.points.grad[own & (depth[on_faces] > 0)]
    assert ((grad * normals[on_faces][own & (depth[on_faces] > 0)]).sum(-1) > 0).all()


def test_head_model_coverage_is_the_posed_mesh_silhouette(make):
    from pegasus.render.mesh import rasterize_mesh

    hm = make.head_model()
    batch = make.batch(hm, 2, 24, seed=6)
    _, model = build(hm, batch)
    coverage = model.head_model_coverage(batch)
    posed = hm(shape=batch.shape, expression=batch.expression, pose=batch.pose).vertices
    expected = rasterize_mesh(posed, hm.faces, batch.cameras).covered.float()
    assert coverage.shape == (2, 24, 24) and 0 < float(coverage.mean()) < 1
    torch.testing.assert_close(coverage, expected)


def test_latent_conditioning(make):
    hm = make.head_model()
    batch = make.batch(hm, 2, 16)
    _, plain = build(hm, batch)
    _, conditioned = build(hm, batch, "model.latent.code_dim=4")
    z = conditioned.latent_codes.latent_dim
    assert z == len(parts.LATENT_CATEGORIES) * (len(parts.LATENT_CATEGORIES) + 4)
    with pytest.raises(ValueError, match="latent rows"):
        conditioned(batch)
    with pytest.raises(ValueError, match="no latent code"):
        plain(batch, latent=torch.zeros(z))
    rows = torch.tensor(conditioned.index.latent.rows_for("person", "target")).expand(2, -1)
    batch = batch.replace(latent_rows=rows)
    conditioned.eval()
    with torch.no_grad():
        from_rows = conditioned(batch).rgb
        a = conditioned(batch, latent=torch.zeros(z)).rgb
        b = conditioned(batch, latent=torch.ones(z)).rgb
        per_frame = conditioned(batch, latent=torch.stack([torch.zeros(z), torch.ones(z)])).rgb
        torch.testing.assert_close(from_rows, conditioned(batch, latent=conditioned.latent_of(batch)).rgb)
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
        torch.testing.assert_close(conditioned(batch, latent=torch.randn(z)).rgb, plain(batch).rgb)


def test_frames_sharing_a_latent_run_the_networks_once(make):
    hm = make.head_model()
    batch = make.batch(hm, 3, 16, seed=2)
    _, model = build(hm, batch, "model.latent.code_dim=4")
    z = model.latent_codes.latent_dim
    model.eval()
    same = torch.randn(z).expand(3, -1)
    with torch.no_grad():
        state = model.point_pass(batch, latent=same)
        assert state.latent.shape == (1, z) and state.canonical.shape[0] == 1  # one pass for the batch
        together = model(batch, latent=same).rgb
        for k in range(3):  # the same images as frame by frame
            torch.testing.assert_close(together[k], model(batch.select([k]), latent=same[:1]).rgb[0])
        mixed = same.clone()
        mixed[1] += 1.0
        assert model.point_pass(batch, latent=mixed).latent.shape == (3, z)


def test_per_frame_refinement_uses_the_frames_rows(make):
    hm = make.head_model()
    batch = make.batch(hm, 2, 16)
    index = RunIndex(("person",), refine_keys=tuple(("person/video", f) for f in range(5)))
    _, model = build(hm, batch, "model.refine.enabled=true", "model.refine.start_epoch=3", index=index)
    assert [g["name"] for g in model.parameter_groups()][-1] == "refine"
    with torch.no_grad():
        model.refinement.translation[4] = torch.tensor([0.05, 0.0, 0.0])
    batch = batch.replace(refine_row=torch.tensor([1, 4]))
    base = model(batch, epoch=2).points.deformed
    moved = model(batch, epoch=3).points.deformed
    torch.testing.assert_close(moved[0], base[0])
    torch.testing.assert_close(moved[1], base[1] + torch.tensor([0.05, 0.0, 0.0]), atol=1e-5, rtol=0)
    without = model(batch.replace(refine_row=torch.tensor([1, -1])), epoch=3).points.deformed
    torch.testing.assert_close(without[1], base[1])  # a frame without a row is left as tracked
    model.eval()
    torch.testing.assert_close(model(batch, epoch=3).points.deformed, base)  # never at test time
    model.train()
    with pytest.raises(ValueError, match="outside"):
        model(batch.replace(refine_row=torch.tensor([0, 7])), epoch=3)


def test_export_points(make):
    hm = make.head_model()
    batch = make.batch(hm, 2, 16)
    _, model = build(hm, batch)
    for cloud in (canonical_points(model), posed_points(model, batch)):
        assert set(cloud) == {"points", "colors", "normals"}
        assert all(v.shape == (200, 3) for v in cloud.values())
        assert (cloud["colors"] >= 0).all() and (cloud["colors"] <= 1).all()
        torch.testing.assert_close(cloud["normals"].norm(dim=-1), torch.ones(200))


def test_test_time_refinement_recovers_a_moved_pose(make):
    from pegasus.train.build import fit_corrections

    hm = make.head_model()
    batch = make.batch(hm, 2, 24)
    _, model = build(hm, batch)
    model.eval()
    with torch.no_grad():
        target = model(batch)
    truth = batch.replace(rgb=target.rgb, mask=target.mask)  # what the model renders at the tracked pose
    pose = truth.pose.clone()
    pose[:, 3:6] += torch.tensor([0.0, 0.08, 0.03])  # a tracking error of the head rotation
    moved = truth.replace(pose=pose)

    def error(corrections=None) -> float:
        with torch.no_grad():
            return float((model(moved, corrections=corrections).rgb - truth.rgb).abs().mean())

    before = error()
    corrections = fit_corrections(model, moved, steps=40, lr=0.01)
    after = error(corrections)
    assert after < 0.5 * before, (before, after)
    assert not corrections[1][:, :3].any()  # the global slot stays zero
    assert all(p.grad is None for p in model.parameters())  # the model itself was not trained


def test_mesh_fill_seeds_on_the_reference_mesh(make):
    from pegasus.geometry.surface import face_areas

    hm = make.head_model()
    batch = make.batch(hm, 2, 16, seed=5)
    _, model = build(hm, batch, "model.points.mesh_fill=true", "model.points.upsample_freq=1",
                     "model.points.max_points=5000")
    reference = model.reference_vertices()
    with torch.no_grad():  # every point on one side of the head: the other side is bare
        model.points.points = torch.nn.Parameter(reference[reference[:, 0] > 0.5 * reference[:, 0].max()])
    original = model.points.points.detach().clone()
    before = original.shape[0]
    assert model.end_epoch(0, None)
    seeded = model.points.num_points // 2 - before  # seeds first, then every point duplicated (cap not reached)
    seeds = model.points.points.detach()[before:before + seeded]
    spacing = torch.cdist(original, original).topk(2, dim=1, largest=False).values[:, 1].median()
    assert seeds.shape[0] > 0 and bool((seeds[:, 0] < 0.5 * reference[:, 0].max()).float().mean() > 0.75)
    assert bool((torch.cdist(seeds, original).min(1).values > 2.0 * spacing - 1e-6).all())
    # each seed lies on a triangle of the reference mesh: its barycentric residual is ~0
    faces = hm.faces.long()
    a, b, c = (reference[faces[:, i]] for i in range(3))
    normal = torch.linalg.cross(b - a, c - a)
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    plane_distance = ((seeds[:, None] - a[None]) * normal[None]).sum(-1).abs()  # (S, F)
    centroid_distance = (seeds[:, None] - ((a + b + c) / 3)[None]).norm(dim=-1)
    nearest_faces = centroid_distance.topk(8, dim=1, largest=False).indices
    assert float(plane_distance.gather(1, nearest_faces).min(1).values.max()) < 1e-5
    assert bool((face_areas(reference, hm.faces) > 0).all())
