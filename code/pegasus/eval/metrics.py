"""Image metrics of PointAvatar's evaluation protocol: MAE, PSNR, SSIM, LPIPS (AlexNet).

Images are torch tensors (numpy arrays are accepted) of shape (H, W, 3) or (B, H, W, 3),
float in [0, 1], RGB, **composited on white** (the ground truth with its soft mask, the
render with its own alpha). Every metric returns one value per image: a 0-d tensor for an
(H, W, 3) input, a (B,) tensor for a batch; values are float64 (LPIPS: float32).

- MAE: mean |pred − gt| over pixels and channels (PointAvatar's "L1").
- PSNR: ``10·log10(1 / MSE)`` dB, data range 1, MSE over pixels and channels; the MSE is
  floored at 1e-16, so identical images give 160 dB instead of infinity (JSON-safe).
- SSIM: Wang et al. 2004 with an 11×11 Gaussian window (σ = 1.5, normalised to sum 1),
  ``C1 = 0.01²``, ``C2 = 0.03²`` (data range 1), population (biased) variances, computed
  per channel over the *valid* window positions only (no padding) and averaged over those
  positions and the channels. Equal to ``skimage.metrics.structural_similarity(...,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1,
  channel_axis=-1)`` and to PointAvatar's ``img_ssim``. Images must be at least 11×11.
- LPIPS v0.1 with the AlexNet trunk (Zhang et al. 2018, the ``lpips`` package's
  ``LPIPS(net="alex")`` with ``normalize=True``), only when a weights file is supplied:
  see :class:`LPIPS` and :func:`load_lpips`; otherwise ``None``.

Options of the protocol (applied in this order by :func:`frame_metrics`):

- ``erode_dilate``: PointAvatar scores ``rgb_erode_dilate`` renders: the rendered RGB image
  (already composited on white) is grey-scale **eroded then dilated** with a 3×3 square,
  each channel on its own (``cv2.erode`` then ``cv2.dilate``, border pixels ignored). That
  is a morphological opening of the intensities: isolated bright pixels (splat holes that
  show the white background through the head) take the colour of their darker neighbours,
  and dark regions keep their outline. Only the prediction is filtered, never the ground
  truth, and the filter acts on the composited image itself, so no re-compositing happens
  (:func:`erode_dilate`). For the foreground mask the matching operation is a closing
  (dilate, then erode), :func:`close_mask`; it is not used for scoring.
- ``no_cloth``: pixels whose **ground-truth** label is in
  :data:`pegasus.data.parts.CLOTH_LABEL_IDS` (necklace, cloth) are set to white in both
  images before scoring (:func:`whiten_labels`); averages still run over the full image.
"""
from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import binary_fill_holes
from torch import nn

from ..data.parts import CLOTH_LABEL_IDS

__all__ = [
    "METRIC_NAMES",
    "mae",
    "psnr",
    "masked_psnr",
    "dilate_mask",
    "ssim",
    "gaussian_window",
    "erode_dilate",
    "close_mask",
    "whiten_labels",
    "LPIPS",
    "LPIPSWeightsError",
    "load_lpips",
    "combine_lpips_weights",
    "frame_metrics",
    "hole_fraction",
    "interior_hole_fraction",
    "interior_hole_mask",
    "mean_metrics",
]

log = logging.getLogger(__name__)

METRIC_NAMES: tuple[str, ...] = ("mae", "psnr", "ssim", "lpips")
"""Metric names in report order."""

PSNR_MSE_FLOOR = 1e-16
"""MSE floor of :func:`psnr` (identical images → 160 dB)."""

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


# ---------------------------------------------------------------------------------------
# Inputs


def _as_images(x, name: str) -> torch.Tensor:
    """Tensor/array (H, W, 3) or (B, H, W, 3) → (B, H, W, 3) tensor, checked finite."""
    x = torch.as_tensor(x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"{name}: expected (H, W, 3) or (B, H, W, 3) RGB, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name}: expected float values in [0, 1], got dtype {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return x


def _pair(pred, gt) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Checked (B, H, W, 3) float64 pair and whether the input was a single image."""
    single = torch.as_tensor(pred).ndim == 3
    p, g = _as_images(pred, "pred"), _as_images(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt differ in shape: {tuple(p.shape)} vs {tuple(g.shape)}")
    return p.double(), g.to(p.device).double(), single


def _out(values: torch.Tensor, single: bool) -> torch.Tensor:
    return values[0] if single else values


# ---------------------------------------------------------------------------------------
# MAE, PSNR, SSIM


def mae(pred, gt) -> torch.Tensor:
    """Mean absolute error over pixels and channels → 0-d or (B,) float64."""
    p, g, single = _pair(pred, gt)
    return _out((p - g).abs().flatten(1).mean(1), single)


def psnr(pred, gt) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB for data range 1 → 0-d or (B,) float64.

    ``10·log10(1 / max(MSE, 1e-16))``; identical images give 160 dB.
    """
    p, g, single = _pair(pred, gt)
    mse = (p - g).square().flatten(1).mean(1)
    return _out(-10.0 * torch.log10(mse.clamp_min(PSNR_MSE_FLOOR)), single)


def masked_psnr(pred, gt, region) -> torch.Tensor:
    """PSNR (dB, data range 1) of the mean squared error over the pixels of ``region`` only.

    Args:
        pred, gt: (B, H, W, 3) or (H, W, 3) images in [0, 1].
        region: (B, H, W) or (H, W) bool (or 0/1) pixels to score.

    Returns:
        0-d or (B,) float64; NaN for a frame whose region is empty.
    """
    p, g, single = _pair(pred, gt)
    r = torch.as_tensor(region).to(p.device).bool()
    r = r[None] if r.ndim == 2 else r
    if tuple(r.shape) != tuple(p.shape[:3]):
        raise ValueError(f"masked_psnr: region of shape {tuple(r.shape)} for images of shape {tuple(p.shape)}")
    squared = (p - g).square().mean(-1) * r
    count = r.flatten(1).sum(1).double()
    mse = squared.flatten(1).sum(1).double() / count.clamp_min(1)
    values = -10.0 * torch.log10(mse.clamp_min(PSNR_MSE_FLOOR))
    return _out(torch.where(count > 0, values, torch.full_like(values, float("nan"))), single)


def dilate_mask(mask, radius: int) -> torch.Tensor:
    """(B, H, W) or (H, W) bool mask grown by ``radius`` pixels (a (2r+1)² square) → bool."""
    m = torch.as_tensor(mask).bool()
    single = m.ndim == 2
    m = m[None] if single else m
    if radius > 0:
        m = F.max_pool2d(m[:, None].float(), 2 * radius + 1, stride=1, padding=radius)[:, 0] > 0.5
    return m[0] if single else m


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """(size,) float64 1-D Gaussian ``exp(−x²/2σ²)`` centred on the middle tap, summing to 1."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-x.square() / (2 * sigma**2))
    return w / w.sum()


def _filter_valid(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' filtering of (B, C, H, W) with a 1-D window along H then W."""
    c = x.shape[1]
    k = window.numel()
    x = F.conv2d(x, window.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return F.conv2d(x, window.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)


def ssim(pred, gt) -> torch.Tensor:
    """Structural similarity (11×11 Gaussian window, σ 1.5, data range 1) → 0-d or (B,) float64.

    Means over the valid window positions and the three channels; see the module docstring.
    """
    p, g, single = _pair(pred, gt)
    h, w = p.shape[1:3]
    if min(h, w) < SSIM_WINDOW:
        raise ValueError(f"ssim: images of {h}×{w} are smaller than the {SSIM_WINDOW}×{SSIM_WINDOW} window")
    p, g = p.permute(0, 3, 1, 2), g.permute(0, 3, 1, 2)
    window = gaussian_window().to(p.device)
    mu_p, mu_g = _filter_valid(p, window), _filter_valid(g, window)
    var_p = _filter_valid(p * p, window) - mu_p.square()
    var_g = _filter_valid(g * g, window) - mu_g.square()
    cov = _filter_valid(p * g, window) - mu_p * mu_g
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    ssim_map = ((2 * mu_p * mu_g + c1) * (2 * cov + c2)) / (
        (mu_p.square() + mu_g.square() + c1) * (var_p + var_g + c2)
    )
    return _out(ssim_map.flatten(1).mean(1), single)


# ---------------------------------------------------------------------------------------
# Protocol options


def erode_dilate(rgb, size: int = 3) -> torch.Tensor:
    """Grey-scale opening of an image: ``size``×``size`` erosion (min), then dilation (max).

    Each channel is filtered on its own; pixels outside the image are ignored (OpenCV's
    default border for ``cv2.erode``/``cv2.dilate``). On a render composited on white this
    fills splat holes (bright specks) from their neighbours: PointAvatar's ``*_erode_dilate``
    images. Commutes with any monotone quantisation (e.g. to 8 bits).

    Args:
        rgb: (H, W, 3) or (B, H, W, 3) float in [0, 1].

    Returns:
        Same shape and dtype.
    """
    single = torch.as_tensor(rgb).ndim == 3
    x = _as_images(rgb, "rgb").permute(0, 3, 1, 2)
    pad = size // 2
    eroded = -F.max_pool2d(-x, size, stride=1, padding=pad)
    opened = F.max_pool2d(eroded, size, stride=1, padding=pad)
    out = opened.permute(0, 2, 3, 1)
    return out[0] if single else out


def close_mask(mask, size: int = 3) -> torch.Tensor:
    """Morphological closing of a soft mask (dilate, then erode) — the mask counterpart of
    :func:`erode_dilate` on a white-composited image.

    Args:
        mask: (H, W) or (B, H, W) float in [0, 1].

    Returns:
        Same shape and dtype.
    """
    m = torch.as_tensor(mask)
    if m.ndim not in (2, 3):
        raise ValueError(f"mask: expected (H, W) or (B, H, W), got shape {tuple(m.shape)}")
    x = (m[None] if m.ndim == 2 else m)[:, None]
    pad = size // 2
    dilated = F.max_pool2d(x, size, stride=1, padding=pad)
    closed = -F.max_pool2d(-dilated, size, stride=1, padding=pad)
    return closed[:, 0][0] if m.ndim == 2 else closed[:, 0]


def whiten_labels(
    pred, gt, semantic, label_ids: Iterable[int] = CLOTH_LABEL_IDS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sets both images to white where the ground-truth label map has one of ``label_ids``.

    Args:
        pred, gt: (H, W, 3) or (B, H, W, 3) float in [0, 1].
        semantic: (H, W) or (B, H, W) integer ids of the **ground truth** (0..18).
        label_ids: ids to remove; the cloth labels {15, 16} by default.

    Returns:
        (pred, gt) copies of the input shapes.
    """
    single = torch.as_tensor(pred).ndim == 3
    p, g = _as_images(pred, "pred"), _as_images(gt, "gt")
    labels = torch.as_tensor(semantic, device=p.device)
    if labels.ndim == 2:
        labels = labels[None]
    if labels.shape != p.shape[:3] or p.shape != g.shape:
        raise ValueError(
            f"whiten_labels: pred {tuple(p.shape)}, gt {tuple(g.shape)} and semantic "
            f"{tuple(labels.shape)} must share (B, H, W)"
        )
    if labels.is_floating_point():
        raise ValueError(f"semantic: expected integer label ids, got dtype {labels.dtype}")
    ids = torch.tensor(sorted(label_ids), dtype=labels.dtype, device=labels.device)
    hit = torch.isin(labels, ids)[..., None]
    p, g = p.masked_fill(hit, 1.0), g.masked_fill(hit, 1.0)
    return (p[0], g[0]) if single else (p, g)


# ---------------------------------------------------------------------------------------
# LPIPS (AlexNet, v0.1)


class LPIPSWeightsError(ValueError):
    """An LPIPS weights file is missing keys or has wrong shapes; the message names the file."""


class LPIPS(nn.Module):
    """LPIPS v0.1 distance with the AlexNet trunk, in plain torch (no torchvision).

    Mirrors ``lpips.LPIPS(net="alex", version="0.1")`` called with ``normalize=True``:
    inputs in [0, 1] are mapped to [−1, 1], shifted and scaled by the fixed ImageNet
    constants of the package's ``ScalingLayer``, passed through AlexNet's five conv+ReLU
    stages (taps after each ReLU: 64, 192, 384, 256, 256 channels), unit-normalised along
    channels (``x / (‖x‖ + 1e−10)``), squared differences weighted by one 1×1 linear head
    per tap, averaged over space and summed over taps.

    Weights (state-dict keys of this module): ``features.{0,3,6,8,10}.{weight,bias}`` (the
    AlexNet trunk) and ``lins.{0..4}.weight`` (the linear heads, shape (1, C, 1, 1)).
    :func:`load_lpips` builds them from the published files; a fresh module has random
    weights (tests only).
    """

    CHANNELS = (64, 192, 384, 256, 256)
    TAPS = (1, 4, 7, 9, 11)  # indices in ``features`` after which a ReLU output is tapped
    CONV_INDICES = (0, 3, 6, 8, 10)
    MIN_SIZE = 31  # smallest image side the trunk accepts

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(),
        )
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in self.CHANNELS)
        self.requires_grad_(False)
        self.eval()

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.TAPS:
                taps.append(x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return taps

    def forward(self, pred, gt) -> torch.Tensor:
        """LPIPS distance of (H, W, 3) or (B, H, W, 3) images in [0, 1] → 0-d or (B,) float32."""
        single = torch.as_tensor(pred).ndim == 3
        p, g = _as_images(pred, "pred"), _as_images(gt, "gt")
        if p.shape != g.shape:
            raise ValueError(f"pred and gt differ in shape: {tuple(p.shape)} vs {tuple(g.shape)}")
        if min(p.shape[1:3]) < self.MIN_SIZE:
            raise ValueError(f"LPIPS: images of {tuple(p.shape[1:3])} are smaller than {self.MIN_SIZE} pixels a side")
        param = self.lins[0].weight
        x = torch.cat([p, g]).to(param).permute(0, 3, 1, 2)
        x = (2 * x - 1 - self.shift) / self.scale
        total = x.new_zeros(p.shape[0])
        for tap, lin in zip(self._taps(x), self.lins, strict=True):
            a, b = tap.chunk(2)
            total = total + lin((a - b).square()).mean(dim=(1, 2, 3))
        return total[0] if single else total


_LPIPS_KEY = re.compile(r"^(?:lins?)\.?(\d)\.(?:model\.1\.)?weight$")
_SLICE_KEY = re.compile(r"^net\.slice\d\.(\d+)\.(weight|bias)$")
_TRUNK_KEY = re.compile(r"^(?:features|net\.features)\.(\d+)\.(weight|bias)$")


def _lpips_state(raw: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Maps keys of the published files onto :class:`LPIPS` keys (others are ignored)."""
    state: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        if not isinstance(value, torch.Tensor):
            continue
        if m := _LPIPS_KEY.match(key):
            state[f"lins.{m.group(1)}.weight"] = value
        elif m := _SLICE_KEY.match(key) or _TRUNK_KEY.match(key):
            state[f"features.{m.group(1)}.{m.group(2)}"] = value
    return state


def _read_state(path: Path) -> Mapping[str, torch.Tensor]:
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises assorted types for bad files
        raise LPIPSWeightsError(f"{path}: cannot read as a torch state dict ({err})") from None
    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        raw = raw["state_dict"]
    if not isinstance(raw, Mapping):
        raise LPIPSWeightsError(f"{path}: expected a state dict (mapping of tensors), got {type(raw).__name__}")
    return raw


_WEIGHT_SUFFIXES = (".pth", ".pt")


def load_lpips(path: str | os.PathLike | None, device: str | torch.device = "cpu") -> LPIPS | None:
    """The LPIPS (AlexNet) metric from local weights, or None (one logged line) when ``path`` is None.

    ``path`` is one ``.pth`` file or a folder whose ``.pth``/``.pt`` files are merged; together
    they must provide

    - the AlexNet trunk: torchvision's ``alexnet-owt-7be5be79.pth`` (keys
      ``features.{0,3,6,8,10}.{weight,bias}``; ``classifier.*`` is ignored), or the trunk
      keys of a saved ``lpips.LPIPS(net="alex")`` state dict (``net.slice{1..5}.{i}.*``);
    - the linear heads: the ``lpips`` package's ``weights/v0.1/alex.pth`` (keys
      ``lin{0..4}.model.1.weight``; ``lins.{k}.model.1.weight`` is accepted too).

    :func:`combine_lpips_weights` merges the two published files into one.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        LPIPSWeightsError: keys missing or of the wrong shape (the message lists them).
    """
    if path is None:
        log.info("LPIPS unavailable: no weights configured (test.lpips_weights = null); reported as null")
        return None
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in _WEIGHT_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"{path}: folder holds no .pth/.pt LPIPS weight files")
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"{path}: LPIPS weights not found (set test.lpips_weights to a file or null)")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(_lpips_state(_read_state(file)))
    model = LPIPS()
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise LPIPSWeightsError(
            f"{path}: LPIPS weights lack {missing}; supply torchvision's AlexNet file "
            "(alexnet-owt-7be5be79.pth) and lpips' weights/v0.1/alex.pth (see docs/evaluation.md)"
        )
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items() if state[k].shape != v.shape
    ]
    if wrong:
        raise LPIPSWeightsError(f"{path}: LPIPS weights of the wrong shape: {wrong}")
    model.load_state_dict({k: state[k].float() for k in expected})
    log.info("LPIPS (AlexNet, v0.1) weights loaded from %s", path)
    return model.to(device)


def combine_lpips_weights(
    alexnet_path: str | os.PathLike, lins_path: str | os.PathLike, out_path: str | os.PathLike
) -> Path:
    """Merges torchvision's AlexNet file and lpips' ``alex.pth`` into one file for
    ``test.lpips_weights`` (keys of :class:`LPIPS`), written atomically; returns ``out_path``."""
    from ..utils import atomic_path

    state: dict[str, torch.Tensor] = {}
    for file in (alexnet_path, lins_path):
        state.update(_lpips_state(_read_state(Path(file))))
    with atomic_path(out_path) as tmp:
        torch.save(state, tmp)
    load_lpips(out_path)  # validate what was written
    return Path(out_path)


# ---------------------------------------------------------------------------------------
# Per-frame scores


def frame_metrics(
    pred,
    gt,
    *,
    semantic=None,
    erode_dilate_pred: bool = False,
    no_cloth: bool = False,
    lpips: LPIPS | None = None,
) -> dict[str, torch.Tensor | None]:
    """Scores of each frame under the protocol options.

    Args:
        pred: (B, H, W, 3) or (H, W, 3) render in [0, 1], composited on white.
        gt: same shape, ground truth composited on white.
        semantic: (B, H, W) / (H, W) ground-truth label ids; needed when ``no_cloth``.
        erode_dilate_pred: apply :func:`erode_dilate` to ``pred`` first.
        no_cloth: then whiten the cloth labels in both images (:func:`whiten_labels`).
        lpips: the LPIPS module or None (the ``"lpips"`` entry is then None).

    Returns:
        {"mae", "psnr", "ssim", "lpips"}: (B,) / 0-d float64 tensors (lpips float32 or None).
    """
    if erode_dilate_pred:
        pred = erode_dilate(pred)
    if no_cloth:
        if semantic is None:
            raise ValueError("frame_metrics: no_cloth needs the ground-truth semantic label map")
        pred, gt = whiten_labels(pred, gt, semantic)
    return {
        "mae": mae(pred, gt),
        "psnr": psnr(pred, gt),
        "ssim": ssim(pred, gt),
        "lpips": None if lpips is None else lpips(pred, gt).detach(),
    }


def hole_fraction(pred_mask, gt_mask, threshold: float = 0.5) -> torch.Tensor:
    """Share of the ground-truth silhouette that the render leaves uncovered (holes, torn sheets,
    missing parts): pixels with ``gt_mask ≥ threshold`` and render coverage ``< threshold``.

    Args:
        pred_mask, gt_mask: (B, H, W) or (H, W) coverage / soft masks in [0, 1].

    Returns:
        (B,) or 0-d float64 in [0, 1]; 0 for an empty silhouette.
    """
    pred, gt = torch.as_tensor(pred_mask), torch.as_tensor(gt_mask)
    if pred.shape != gt.shape:
        raise ValueError(f"hole_fraction: masks of shapes {tuple(pred.shape)} and {tuple(gt.shape)}")
    single = pred.ndim == 2
    pred, gt = (pred[None], gt[None]) if single else (pred, gt)
    silhouette = gt.double() >= threshold
    holes = (silhouette & (pred.double() < threshold)).flatten(1).sum(1).double()
    values = holes / silhouette.flatten(1).sum(1).clamp_min(1).double()
    return values[0] if single else values


def _render_envelopes(mask, threshold: float, close_size: int | None, what: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """(B, H, W) bool coverage and envelope (coverage closed, enclosed holes filled) of renders."""
    m = torch.as_tensor(mask).detach().cpu()
    single = m.ndim == 2
    if m.ndim not in (2, 3):
        raise ValueError(f"{what}: expected (H, W) or (B, H, W), got shape {tuple(m.shape)}")
    m = m[None] if single else m
    size = close_size if close_size is not None else 2 * round(m.shape[-2] / 64) + 1
    if size < 1 or size % 2 == 0:
        raise ValueError(f"{what}: close_size must be odd and ≥ 1, got {size}")
    covered = m.double() >= threshold
    closed = (close_mask(covered.double(), size) >= 0.5).numpy()
    envelope = np.stack([binary_fill_holes(frame) for frame in closed])
    return covered.numpy(), envelope, single


def interior_hole_mask(mask, threshold: float = 0.5, close_size: int | None = None) -> torch.Tensor:
    """The holes of renders without ground truth as pixels: inside the render's own envelope
    (see :func:`interior_hole_fraction`) and uncovered. (B, H, W) or (H, W) bool."""
    covered, envelope, single = _render_envelopes(mask, threshold, close_size, "interior_hole_mask")
    holes = torch.from_numpy(envelope & ~covered)
    return holes[0] if single else holes


def interior_hole_fraction(mask, threshold: float = 0.5, close_size: int | None = None) -> torch.Tensor:
    """Holes of a render without ground truth (yaw turns, driving): the share of the render's own
    envelope that it leaves uncovered. The envelope is the covered set (coverage ≥ ``threshold``)
    closed by a ``close_size`` square (cracks and torn sheets up to that width) with every
    enclosed hole filled; gaps open to the background wider than ``close_size`` are not counted.

    Args:
        mask: (B, H, W) or (H, W) coverage in [0, 1].
        close_size: odd closing width in pixels; default ``2·round(H / 64) + 1`` (5 px at 128²).

    Returns:
        (B,) or 0-d float64 in [0, 1]; 0 for an empty render.
    """
    covered, envelope, single = _render_envelopes(mask, threshold, close_size, "interior_hole_fraction")
    area = envelope.reshape(len(envelope), -1).sum(1)
    holes = (envelope & ~covered).reshape(len(envelope), -1).sum(1)
    out = torch.from_numpy(np.where(area > 0, holes / np.maximum(area, 1), 0.0)).double()
    return out[0] if single else out


def mean_metrics(rows: Sequence[Mapping[str, object]], keys: Sequence[str]) -> dict[str, float | None]:
    """Mean of each key over per-frame rows (None values skipped; None when none are left)."""
    means: dict[str, float | None] = {}
    for key in keys:
        values = [float(r[key]) for r in rows if r.get(key) is not None]
        means[key] = math.fsum(values) / len(values) if values else None
    return means
