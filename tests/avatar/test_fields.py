import pytest
import torch

from pegasus.avatar.fields import GeometryField, ShadingField, WeightNormLinear, latent_linear, shade


def test_geometric_init_is_a_sphere_of_radius_0_6():
    """SDF ≈ |x| − 0.6: exact in the mean, within the init's random ripple pointwise."""
    torch.manual_seed(0)
    field = GeometryField(hidden_layers=4, width=128, num_freqs=6, init_radius=0.6)
    x = torch.randn(2000, 3)
    norm = torch.empty(2000).uniform_(0.1, 1.5)
    x = x / x.norm(dim=-1, keepdim=True) * norm[:, None]
    out, gradient = field.with_gradient(x, create_graph=False)
    error = out.sdf - (norm - 0.6)
    assert error.mean().abs() < 0.03 and error.abs().median() < 0.15
    assert (out.sdf[norm < 0.3] < 0).float().mean() > 0.97 and (out.sdf[norm > 1.0] > 0).float().mean() > 0.97
    radial = torch.nn.functional.normalize(x, dim=-1)
    assert torch.nn.functional.cosine_similarity(gradient, radial, dim=-1).mean() > 0.9
    torch.testing.assert_close(out.albedo, torch.full_like(out.albedo, 0.5), atol=0.02, rtol=0)
    assert out.part is None and out.semantic is None


def test_gradient_is_differentiable_in_training_and_detached_otherwise():
    field = GeometryField(hidden_layers=2, width=16, num_freqs=2)
    x = torch.randn(10, 3)
    _, gradient = field.with_gradient(x, create_graph=True)
    gradient.sum().backward()
    assert field.layers[0].weight_v.grad is not None
    with torch.no_grad():
        _, gradient = field.with_gradient(x)
    assert not gradient.requires_grad


def test_latent_inputs_start_muted_and_latent_dim_zero_is_unchanged():
    torch.manual_seed(1)
    plain = GeometryField(hidden_layers=2, width=16, num_freqs=2, part_logit=True, semantic_classes=4)
    torch.manual_seed(1)
    conditioned = GeometryField(hidden_layers=2, width=16, num_freqs=2, part_logit=True, semantic_classes=4,
                                latent_dim=5)
    x = torch.randn(2, 7, 3)
    z1, z2 = torch.randn(2, 5), torch.randn(5)
    a, b = conditioned(x, z1), conditioned(x, z2)
    torch.testing.assert_close(a.sdf, b.sdf)  # latent columns start at zero
    assert a.part.shape == (2, 7) and a.semantic.shape == (2, 7, 4)
    with torch.no_grad():  # once trained, the latent matters
        conditioned.layers[0].weight_v[:, -5:].normal_()
    assert not torch.allclose(conditioned(x, z1).sdf, conditioned(x, z2).sdf)
    with pytest.raises(ValueError, match="latent_dim"):
        plain(x, z2[:3])
    with pytest.raises(ValueError, match="latent_dim"):
        conditioned(x)


def test_weight_norm_linear_equals_its_weight():
    layer = WeightNormLinear(4, 3)
    x = torch.randn(5, 4)
    torch.testing.assert_close(layer(x), x @ layer.weight.t() + layer.bias)
    torch.testing.assert_close(layer.weight.norm(dim=1, keepdim=True), layer.weight_g)


def test_shading_range_and_colour():
    shading = ShadingField((8, 8), latent_dim=3)
    n = torch.nn.functional.normalize(torch.randn(2, 5, 3), dim=-1)
    s = shading(n, torch.randn(2, 3))
    assert s.shape == (2, 5, 3) and (s > 0).all() and (s < 1).all()
    albedo = torch.tensor([0.2, 0.6, 0.9])
    torch.testing.assert_close(shade(albedo, torch.full((3,), 0.5)), albedo)
    torch.testing.assert_close(shade(albedo, torch.full((3,), 0.75)), torch.tensor([0.3, 0.9, 1.0]))


@pytest.mark.parametrize("layer", [torch.nn.Linear(5 + 7, 4), WeightNormLinear(5 + 7, 4)])
def test_latent_linear_equals_the_layer_on_the_concatenated_input(layer):
    torch.manual_seed(0)
    x = torch.randn(3, 10, 5)
    per_item = torch.randn(3, 7)  # one latent per leading item, shared by its 10 points
    concatenated = torch.cat([x, per_item[:, None].expand(3, 10, 7)], dim=-1)
    assert torch.allclose(latent_linear(layer, x, per_item), layer(concatenated), atol=1e-6)
    shared = torch.randn(7)
    assert torch.allclose(latent_linear(layer, x, shared), layer(torch.cat([x, shared.expand(3, 10, 7)], -1)),
                          atol=1e-6)
    plain = torch.nn.Linear(5, 4)
    assert torch.equal(latent_linear(plain, x, None), plain(x))


def test_fields_with_a_latent_match_their_concatenated_reference():
    """The geometry field's skip layer re-injects [encoding ‖ latent] / √2: its latent part too."""
    torch.manual_seed(1)
    field = GeometryField(hidden_layers=4, width=16, num_freqs=2, latent_dim=6)
    with torch.no_grad():
        for layer in field.layers:  # unmute the latent inputs so that they matter
            layer.weight_v.add_(0.3 * torch.randn_like(layer.weight_v))
    x, latent = torch.randn(2, 9, 3), torch.randn(2, 6)
    out = field(x, latent)
    inputs = torch.cat([field.encoding(x), latent[:, None].expand(2, 9, 6)], dim=-1)
    h = inputs
    for i, layer in enumerate(field.layers):
        if i == field.skip_layer:
            h = torch.cat([h, inputs], dim=-1) / 2 ** 0.5
        h = layer(h)
        if i < len(field.layers) - 1:
            h = torch.nn.functional.softplus(h, beta=100.0)
    assert torch.allclose(out.sdf, h[..., 0], atol=1e-5)
    assert not torch.allclose(field(x, latent.flip(0)).sdf, out.sdf)
