"""Metrics of the evaluation protocol against skimage, OpenCV, hand values and an LPIPS twin."""
from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity
from torch import nn

from pegasus.eval import metrics as M


def _skimage_ssim(pred: torch.Tensor, gt: torch.Tensor) -> float:
    return structural_similarity(
        pred.numpy(), gt.numpy(), gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        data_range=1.0, channel_axis=-1,
    )


@pytest.mark.parametrize("size", [(32, 32), (40, 27), (11, 11)])
def test_ssim_matches_skimage(size):
    gt = torch.rand(3, *size, 3, dtype=torch.float64)
    pred = (gt + 0.15 * torch.randn_like(gt)).clamp(0, 1)
    ours = M.ssim(pred, gt)
    assert ours.shape == (3,)
    for k in range(3):
        assert abs(float(ours[k]) - _skimage_ssim(pred[k], gt[k])) < 1e-4
    single = M.ssim(pred[1].float(), gt[1].float())  # float32 input, one image
    assert single.shape == () and abs(float(single) - _skimage_ssim(pred[1], gt[1])) < 1e-4


def test_ssim_hand_values():
    gt = torch.rand(16, 16, 3)
    assert float(M.ssim(gt, gt)) == pytest.approx(1.0, abs=1e-12)
    # constant images: variances vanish, SSIM = (2ab + C1) / (a² + b² + C1)
    a, b, c1 = 0.3, 0.6, 0.01**2
    value = M.ssim(torch.full((16, 16, 3), a), torch.full((16, 16, 3), b))
    assert float(value) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-6)
    with pytest.raises(ValueError, match="smaller than the 11"):
        M.ssim(torch.rand(10, 30, 3), torch.rand(10, 30, 3))


def test_psnr_and_mae_hand_values():
    gt = torch.full((2, 8, 8, 3), 0.5)
    pred = gt + 0.1  # MSE 0.01 → 20 dB, MAE 0.1
    np.testing.assert_allclose(M.psnr(pred, gt).numpy(), [20.0, 20.0], atol=1e-5)
    np.testing.assert_allclose(M.mae(pred, gt).numpy(), [0.1, 0.1], atol=1e-6)
    half = gt.clone()
    half[1, :4] += 0.2  # half of frame 1 off by 0.2: MSE 0.02, MAE 0.1
    assert float(M.psnr(half, gt)[1]) == pytest.approx(10 * np.log10(1 / 0.02), abs=1e-4)
    assert float(M.mae(half, gt)[1]) == pytest.approx(0.1, abs=1e-6)
    assert float(M.psnr(half, gt)[0]) == pytest.approx(160.0)  # identical frame: MSE floor
    assert M.psnr(gt[0], gt[0]).shape == ()


def test_inputs_are_checked():
    with pytest.raises(ValueError, match="differ in shape"):
        M.mae(torch.rand(8, 8, 3), torch.rand(8, 9, 3))
    with pytest.raises(ValueError, match="pred: contains NaN"):
        M.psnr(torch.full((8, 8, 3), float("nan")), torch.rand(8, 8, 3))
    with pytest.raises(ValueError, match=r"gt: expected \(H, W, 3\)"):
        M.mae(torch.rand(8, 8, 3), torch.rand(8, 8))
    with pytest.raises(ValueError, match="float values"):
        M.mae(torch.zeros(8, 8, 3, dtype=torch.uint8), torch.zeros(8, 8, 3, dtype=torch.uint8))


def test_erode_dilate_matches_opencv():
    image = (np.random.rand(2, 20, 17, 3) * 255).astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    ours = M.erode_dilate(torch.from_numpy(image.astype(np.float32) / 255))
    for k in range(2):
        ref = cv2.dilate(cv2.erode(image[k], kernel), kernel)
        np.testing.assert_array_equal(np.rint(ours[k].numpy() * 255).astype(np.uint8), ref)


def _head_with_holes() -> tuple[torch.Tensor, torch.Tensor]:
    """GT: a dark 10×10 'head' on white; render: the same with isolated white splat holes."""
    gt = torch.ones(32, 32, 3)
    gt[10:20, 12:22] = torch.tensor([0.6, 0.4, 0.3])
    render = gt.clone()
    for y, x in ((12, 14), (15, 18), (18, 13)):
        render[y, x] = 1.0
    return render, gt


def test_erode_dilate_fills_splat_holes_and_raises_scores():
    render, gt = _head_with_holes()
    filled = M.erode_dilate(render)
    torch.testing.assert_close(filled, gt)  # holes take the head colour, outline kept
    raw = M.frame_metrics(render, gt)
    opened = M.frame_metrics(render, gt, erode_dilate_pred=True)
    assert float(opened["psnr"]) == pytest.approx(160.0) and float(raw["psnr"]) < 40
    assert float(opened["mae"]) == 0 < float(raw["mae"])
    assert float(opened["ssim"]) > float(raw["ssim"])
    assert opened["lpips"] is None
    # the gt is never filtered: a gt with a hole still differs from the filled render
    assert float(M.frame_metrics(gt, render, erode_dilate_pred=True)["mae"]) > 0


def test_close_mask_fills_holes():
    mask = torch.zeros(2, 16, 16)
    mask[:, 4:12, 4:12] = 1
    holed = mask.clone()
    holed[:, 7, 7] = 0
    torch.testing.assert_close(M.close_mask(holed), mask)
    assert M.close_mask(holed[0]).shape == (16, 16)


def test_no_cloth_whitens_cloth_labels_in_both_images():
    gt = torch.rand(2, 32, 32, 3)
    semantic = torch.ones(2, 32, 32, dtype=torch.int64)  # skin
    semantic[:, 24:, :] = 16  # cloth
    semantic[1, 22:24, :] = 15  # necklace
    pred = gt.clone()
    pred[:, 22:, :] = torch.rand(2, 10, 32, 3)  # wrong only on cloth and necklace
    p, g = M.whiten_labels(pred, gt, semantic)
    assert (p[:, 24:] == 1).all() and (g[:, 24:] == 1).all()
    torch.testing.assert_close(g[:, :22], gt[:, :22])
    full = M.frame_metrics(pred, gt)
    no_cloth = M.frame_metrics(pred, gt, semantic=semantic, no_cloth=True)
    assert float(no_cloth["psnr"][1]) == pytest.approx(160.0) and float(no_cloth["mae"][1]) == 0
    assert float(full["psnr"][1]) < 30
    # frame 0 has no necklace label: rows 22-23 still count
    assert 0 < float(no_cloth["mae"][0]) < float(full["mae"][0])
    with pytest.raises(ValueError, match="semantic"):
        M.frame_metrics(pred, gt, no_cloth=True)


def test_mean_metrics_skips_missing_values():
    rows = [{"psnr": 20.0, "lpips": None}, {"psnr": 30.0, "lpips": None}]
    assert M.mean_metrics(rows, ["psnr", "lpips"]) == {"psnr": 25.0, "lpips": None}


# ---------------------------------------------------------------------------------------
# LPIPS: a twin laid out like the `lpips` package (slices, ScalingLayer, NetLinLayer)


class _Twin(nn.Module):
    """The lpips package's LPIPS(net="alex") structure and key names, with random weights."""

    def __init__(self) -> None:
        super().__init__()
        features = [
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
        ]
        self.net = nn.Module()
        for k, (lo, hi) in enumerate(((0, 2), (2, 5), (5, 8), (8, 10), (10, 12)), start=1):
            part = nn.Sequential()
            for i in range(lo, hi):
                part.add_module(str(i), features[i])
            setattr(self.net, f"slice{k}", part)
        self.scaling_layer = nn.Module()
        self.scaling_layer.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.scaling_layer.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])
        for k, c in enumerate((64, 192, 384, 256, 256)):
            lin = nn.Module()
            lin.model = nn.Sequential(nn.Dropout(), nn.Conv2d(c, 1, 1, bias=False))
            with torch.no_grad():
                lin.model[1].weight.abs_()  # published heads are non-negative
            setattr(self, f"lin{k}", lin)
        self.eval()

    def forward(self, in0, in1):  # (B, 3, H, W) in [0, 1], as lpips with normalize=True
        outs = []
        for x in (in0, in1):
            h = ((2 * x - 1) - self.scaling_layer.shift) / self.scaling_layer.scale
            taps = []
            for k in range(1, 6):
                h = getattr(self.net, f"slice{k}")(h)
                taps.append(h / (torch.sqrt(torch.sum(h**2, dim=1, keepdim=True)) + 1e-10))
            outs.append(taps)
        val = 0
        for k in range(5):
            val = val + getattr(self, f"lin{k}").model((outs[0][k] - outs[1][k]) ** 2).mean([2, 3], keepdim=True)
        return val


@pytest.fixture
def twin_weights(tmp_path):
    torch.manual_seed(1)
    twin = _Twin()
    path = tmp_path / "lpips_alex_full.pth"
    torch.save(twin.state_dict(), path)
    return twin, path


def test_lpips_matches_package_layout_twin(twin_weights):
    twin, path = twin_weights
    lpips = M.load_lpips(path)
    x, y = torch.rand(2, 48, 40, 3), torch.rand(2, 48, 40, 3)
    with torch.no_grad():
        ref = twin(x.permute(0, 3, 1, 2), y.permute(0, 3, 1, 2)).flatten()
    torch.testing.assert_close(lpips(x, y), ref, rtol=1e-5, atol=1e-7)
    assert float(ref.min()) > 0


def test_lpips_identity_and_symmetry(twin_weights):
    lpips = M.load_lpips(twin_weights[1])
    x, y = torch.rand(3, 32, 32, 3), torch.rand(3, 32, 32, 3)
    assert torch.equal(lpips(x, x), torch.zeros(3))
    torch.testing.assert_close(lpips(x, y), lpips(y, x))
    assert lpips(x[0], y[0]).shape == ()
    scores = M.frame_metrics(x, y, lpips=lpips)
    torch.testing.assert_close(scores["lpips"], lpips(x, y))


def test_lpips_from_published_files_split_in_a_folder(twin_weights, tmp_path):
    twin, full = twin_weights
    state = twin.state_dict()
    folder = tmp_path / "lpips"
    folder.mkdir()
    # torchvision's alexnet-owt-*.pth: features.<i>.* (+ classifier), lpips' alex.pth: lin<k>.model.1.weight
    alexnet = {f"features.{k.split('.')[2]}.{k.split('.')[3]}": v for k, v in state.items() if k.startswith("net.")}
    alexnet["classifier.1.weight"] = torch.zeros(2, 2)  # ignored
    torch.save(alexnet, folder / "alexnet-owt-7be5be79.pth")
    torch.save({k: v for k, v in state.items() if k.startswith("lin")}, folder / "alex.pth")
    x, y = torch.rand(1, 32, 32, 3), torch.rand(1, 32, 32, 3)
    expected = M.load_lpips(full)(x, y)
    torch.testing.assert_close(M.load_lpips(folder)(x, y), expected)
    combined = M.combine_lpips_weights(folder / "alexnet-owt-7be5be79.pth", folder / "alex.pth", tmp_path / "c.pth")
    torch.testing.assert_close(M.load_lpips(combined)(x, y), expected)


def test_lpips_unavailable_and_bad_files(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="pegasus.eval.metrics"):
        assert M.load_lpips(None) is None
    assert len([r for r in caplog.records if "LPIPS unavailable" in r.getMessage()]) == 1
    with pytest.raises(FileNotFoundError, match="lpips_weights"):
        M.load_lpips(tmp_path / "absent.pth")
    only_lins = tmp_path / "alex.pth"
    torch.save({f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(M.LPIPS.CHANNELS)}, only_lins)
    with pytest.raises(M.LPIPSWeightsError, match=r"features\.0\.weight"):
        M.load_lpips(only_lins)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(M.LPIPSWeightsError, match="junk.pth"):
        M.load_lpips(junk)


def test_hole_fraction_by_hand():
    gt = torch.zeros(2, 4, 4)
    gt[:, 1:3, 1:3] = 1.0  # a 4-pixel silhouette
    pred = gt.clone()
    pred[0, 1, 1] = 0.2  # one hole
    pred[1] = 1.0  # no hole (coverage beyond the silhouette is not a hole)
    torch.testing.assert_close(M.hole_fraction(pred, gt), torch.tensor([0.25, 0.0], dtype=torch.float64))
    assert float(M.hole_fraction(torch.zeros(3, 3), torch.zeros(3, 3))) == 0.0  # empty silhouette


def test_interior_hole_fraction_counts_enclosed_holes_and_thin_cracks_only():
    mask = torch.zeros(64, 64)
    mask[8:56, 8:56] = 1.0                       # a 48×48 render: 2304 px
    assert float(M.interior_hole_fraction(mask)) == 0.0
    holed = mask.clone()
    holed[20:30, 20:30] = 0.0                    # an enclosed 10×10 hole
    assert float(M.interior_hole_fraction(holed)) == pytest.approx(100 / 2304)
    cracked = mask.clone()
    cracked[30, 8:40] = 0.2                      # a 1-px crack open to the background (coverage < 0.5)
    assert float(M.interior_hole_fraction(cracked, close_size=3)) == pytest.approx(32 / 2304)
    notched = mask.clone()
    notched[8:40, 8:24] = 0.0                    # a wide bite out of the edge: not a hole of the render
    assert float(M.interior_hole_fraction(notched, close_size=3)) == 0.0
    batch = torch.stack([mask, holed, torch.zeros(64, 64)])
    torch.testing.assert_close(M.interior_hole_fraction(batch),
                               torch.tensor([0.0, 100 / 2304, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="odd"):
        M.interior_hole_fraction(mask, close_size=4)


def test_masked_psnr_scores_only_the_region():
    from pegasus.eval.metrics import masked_psnr

    gt = torch.full((2, 8, 8, 3), 0.5)
    pred = gt.clone()
    pred[0, :4] += 0.1  # error in the top half of frame 0 only
    region = torch.zeros(2, 8, 8, dtype=torch.bool)
    region[0, :4] = True  # frame 0: exactly the wrong pixels; frame 1: empty
    values = masked_psnr(pred, gt, region)
    assert float(values[0]) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01 over the region
    assert torch.isnan(values[1])
    assert float(masked_psnr(pred[0], gt[0], ~region[0])) > 150  # the rest is exact
    with pytest.raises(ValueError, match="region of shape"):
        masked_psnr(pred, gt, region[:, :4])


def test_interior_hole_mask_marks_the_pixels_the_fraction_counts():
    from pegasus.eval.metrics import interior_hole_fraction, interior_hole_mask

    coverage = torch.zeros(2, 32, 32)
    coverage[:, 4:28, 4:28] = 1.0
    coverage[0, 10:14, 10:14] = 0.0  # an enclosed 4×4 hole
    holes = interior_hole_mask(coverage)
    assert holes.dtype == torch.bool and int(holes[0].sum()) == 16 and int(holes[1].sum()) == 0
    assert bool(holes[0, 10:14, 10:14].all())
    torch.testing.assert_close(interior_hole_fraction(coverage), holes.flatten(1).sum(1).double() / 24 ** 2)


def test_dilate_mask_grows_by_the_radius():
    from pegasus.eval.metrics import dilate_mask

    mask = torch.zeros(9, 9, dtype=torch.bool)
    mask[4, 4] = True
    grown = dilate_mask(mask, 2)
    assert int(grown.sum()) == 25 and bool(grown[2:7, 2:7].all())
    assert torch.equal(dilate_mask(mask[None], 0)[0], mask)
