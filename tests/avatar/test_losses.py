import pytest
import torch

from pegasus.avatar import losses as L


def test_image_terms_by_hand():
    pred = torch.zeros(1, 2, 2, 3)
    target = torch.ones(1, 2, 2, 3)
    target[0, 0, 0] = 0.0
    assert float(L.rgb_l1(pred, target)) == pytest.approx(0.75)
    assert float(L.mask_l1(torch.tensor([[[0.5, 1.0]]]), torch.tensor([[[1.0, 1.0]]]))) == pytest.approx(0.25)
    p = torch.tensor([[[0.8, 0.2]]])
    expected = -(torch.log(torch.tensor(0.8)) + torch.log(torch.tensor(0.8))) / 2
    assert float(L.part_bce(p, torch.tensor([[[1.0, 0.0]]]))) == pytest.approx(float(expected))


def test_semantic_cross_entropy_by_hand():
    probabilities = torch.tensor([[[[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]]])  # (1, 1, 2, 3)
    classes = torch.tensor([[[0, 2]]])
    expected = -(torch.log(torch.tensor(0.7)) + torch.log(torch.tensor(0.8))) / 2
    assert float(L.semantic_cross_entropy(probabilities, classes)) == pytest.approx(float(expected))


def test_geometry_terms_by_hand():
    assert float(L.sdf_loss(torch.tensor([0.1, -0.3]))) == pytest.approx((0.01 + 0.09) / 2)
    gradients = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]])  # norms 5 and 1
    assert float(L.eikonal_loss(gradients)) == pytest.approx(16.0 / 2)
    offsets = torch.tensor([[-0.05, -0.01, 0.0, 0.02, 0.1]])  # signed offsets from the head-model surface
    assert float(L.surface_hinge(offsets, 0.02, -1)) == pytest.approx(0.03 / 5)  # only −0.05 is too deep
    assert float(L.surface_hinge(offsets, 0.05, +1)) == pytest.approx(0.05 / 5)  # only 0.1 is too far out


def test_flame_priors_by_hand():
    w = torch.tensor([[[0.5, 0.5, 0, 0, 0, 0]]])
    w_flame = torch.tensor([[[0.0, 1.0, 0, 0, 0, 0]]])
    assert float(L.skinning_prior(w, w_flame)) == pytest.approx((0.25 + 0.25) / 6)
    pose = torch.zeros(1, 1, 3, 36)
    pose_flame = torch.zeros(1, 1, 3, 36)
    pose_flame[..., 0, 0] = 0.1
    assert float(L.pose_basis_prior(pose, pose_flame)) == pytest.approx(1.0 / 108)  # (10·0.1)² over 108 entries
    expr = torch.zeros(1, 1, 3, 2)
    expr_flame = torch.zeros(1, 1, 3, 2)
    expr_flame[..., 0, 1] = 0.2  # (10·0.2)² = 4, divided by 50·var[1] = 50·0.5
    variance = torch.tensor([2.0, 0.5])
    assert float(L.expression_basis_prior(expr, expr_flame, variance, 50.0)) == pytest.approx(4.0 / 25.0 / 6)


def test_prior_weight_halving_schedule():
    weights = [L.prior_weight(10.0, (10, 20, 30, 40), e) for e in (0, 9, 10, 19, 20, 35, 40, 100)]
    assert weights == [10.0, 10.0, 5.0, 5.0, 2.5, 1.25, 0.625, 0.625]
    assert L.prior_weight(3.0, (), 50) == 3.0


def test_vgg_loads_a_state_dict_file_and_gives_a_perceptual_loss(tmp_path):
    torch.manual_seed(0)
    reference = L.VGG16Features()
    for p in reference.parameters():
        p.data.normal_(0, 0.05)
    # torchvision layout: features.<i>.*, plus classifier keys that must be ignored
    state = {f"features.{k}": v for k, v in reference.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    vgg = L.load_vgg16(path)
    for a, b in zip(vgg.parameters(), reference.parameters()):
        assert torch.equal(a, b)
    assert not any(p.requires_grad for p in vgg.parameters())
    image = torch.rand(1, 16, 16, 3)
    pred = image.clone().requires_grad_(True)
    assert float(L.perceptual_loss(vgg, pred, image).detach()) == 0.0
    loss = L.perceptual_loss(vgg, (pred + 0.1 * torch.rand_like(pred)).clamp(0, 1), image)
    assert float(loss.detach()) > 0
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_vgg_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        L.load_vgg16(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="bad.pth: not a VGG16 state dict"):
        L.load_vgg16(bad)
