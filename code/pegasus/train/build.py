"""Builds a run's pieces from its config: video tables, datasets, the avatar, its render_fn.

A new run reads its training split once (:func:`new_avatar`): the run index (subjects,
latent codes, per-frame rows) and each subject's canonical expression come from it. A trained
run is rebuilt from its checkpoint alone (:func:`trained_avatar`), which stores the index and
those tables, so testing never re-reads the training data.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import torch

from ..avatar.index import RunIndex
from ..avatar.model import PointAvatar
from ..config import Config
from ..data import parts
from ..data.batch import FrameBatch
from ..data.dataset import VideoDataset
from ..data.images import DataError
from ..data.imavatar import VIEWS_FILE, list_videos, read_views, subject_dir, video_dir
from ..data.settings import VideoEntry
from ..data.videos import VideoTable
from ..eval.render_sets import NovelSet
from ..headmodel import HeadModel, head_model_from_config
from ..render.display import normal_to_display
from .checkpoint import CheckpointError

__all__ = ["video_table", "split_dataset", "subject_statistics", "new_avatar", "trained_avatar", "novel_sets",
           "avatar_render_fn", "fit_corrections", "refined_render_fn"]

log = logging.getLogger(__name__)


def video_table(cfg: Config, split: str) -> VideoTable:
    """The ``train`` or ``test`` split of ``cfg.dataset`` (entries expanded, frames selected)."""
    ds = cfg.dataset
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    entries = ds.train if split == "train" else ds.test
    if not entries:
        raise DataError(f"{cfg.source}: dataset.{split} lists no videos")
    return VideoTable(entries, ds.root, require_semantic=_loads_semantic(cfg, split))


def _loads_semantic(cfg: Config, split: str) -> bool:
    if split == "train":
        return cfg.dataset.load_semantic or cfg.model.semantic
    return cfg.dataset.load_semantic or cfg.test.no_cloth


def split_dataset(cfg: Config, table: VideoTable, index: RunIndex, head_model: HeadModel,
                  split: str = "train", normal_targets=None) -> VideoDataset:
    """The dataset of a split's table, indexed by the run (subjects, codes, per-frame rows);
    ``normal_targets`` as for :class:`VideoDataset` (the generative stage 2)."""
    return VideoDataset(table, index.video_indices(table), resolution=cfg.dataset.resolution,
                        n_expr=head_model.n_expr, n_shape=head_model.n_shape,
                        load_semantic=_loads_semantic(cfg, split), load_part_masks=cfg.model.part_logit,
                        normal_targets=normal_targets)


def subject_statistics(table: VideoTable, subjects, n_expr: int, n_shape: int) -> dict[str, torch.Tensor]:
    """The tables a new avatar starts from: ``canonical_expression`` (S, E) each subject's mean
    training expression (its canonical state), ``expression_variance`` (E,) the variance of all
    training expressions (the expression prior's scale), ``expression_mean`` (E,) their mean and
    ``shape_mean`` (n_shape,) the frames' mean identity (the reference canonical mesh)."""
    by_subject = {s: [] for s in subjects}
    for record in table:
        by_subject[record.subject].append(record.expressions(n_expr))
    every = torch.cat([e for rows in by_subject.values() for e in rows])
    shapes = torch.cat([record.shape(n_shape).expand(len(record.video.frames), -1) for record in table])
    return {"canonical_expression": torch.stack([torch.cat(by_subject[s]).mean(0) for s in subjects]),
            "expression_variance": every.var(0, unbiased=False) if len(every) > 1 else torch.ones(n_expr),
            "expression_mean": every.mean(0), "shape_mean": shapes.mean(0)}


def _avatar(cfg: Config, head_model: HeadModel, index: RunIndex, tables: dict[str, torch.Tensor],
            device: torch.device) -> PointAvatar:
    """The avatar with its per-run tables (:func:`subject_statistics`, or a checkpoint's buffers)."""
    if device.type == "cpu":  # Softplus(β=100) yields denormals; flushing them speeds MLPs up 2–4×
        torch.set_flush_denormal(True)
    model = PointAvatar(head_model, cfg.model, cfg.loss, index, tables["canonical_expression"],
                        tables["expression_variance"], tables["reference_shape"], tables["reference_expression"],
                        cfg.head_model.canonical_jaw_opening,
                        last_upsample_epoch=cfg.train.epochs - 1 - cfg.model.points.settle_epochs,
                        seed=cfg.experiment.seed)
    return model.to(device)


def new_avatar(cfg: Config, device: torch.device, normal_targets=None) -> tuple[PointAvatar, VideoDataset]:
    """The configured avatar for the training split, and that split's dataset (with
    ``normal_targets``, see :class:`VideoDataset`).

    Per-frame refinement gets one row per (video, frame) of the split and the latent table one
    code per person and category (and per synthetic swap) when ``model.latent.code_dim > 0``.
    """
    head_model = head_model_from_config(cfg).to(device)
    table = video_table(cfg, "train")
    index = RunIndex.from_table(table, refine=cfg.model.refine.enabled, latent=cfg.model.latent.code_dim > 0)
    stats = subject_statistics(table, index.subjects, head_model.n_expr, head_model.n_shape)
    log.info("training split: %d videos of %s, %d frames", len(table), list(index.subjects), table.frame_count)
    reference_shape = torch.zeros_like(stats["shape_mean"]) if cfg.model.shape_cancel else stats["shape_mean"]
    tables = {**stats, "reference_shape": reference_shape, "reference_expression": stats["expression_mean"]}
    model = _avatar(cfg, head_model, index, tables, device)
    return model, split_dataset(cfg, table, index, head_model, "train", normal_targets)


def trained_avatar(cfg: Config, checkpoint: dict[str, Any], device: torch.device) -> PointAvatar:
    """The avatar of a checkpoint (its run index and weights), in eval mode."""
    if "run_index" not in checkpoint.get("extra", {}):
        raise CheckpointError("checkpoint has no run index (written by an older version); retrain the run")
    index = RunIndex.from_json(checkpoint["extra"]["run_index"])
    head_model = head_model_from_config(cfg).to(device)
    state = checkpoint["model"]
    model = _avatar(cfg, head_model, index, state, device)
    model.load_state_dict(state)
    return model.eval()


def novel_sets(cfg: Config, model: PointAvatar) -> list[NovelSet]:
    """The generated view sets of ``test.novel_root`` (folders with a ``views.json``) of the run's
    subjects, as datasets indexed by the run; none when the root is null or absent."""
    root = cfg.test.novel_root
    if root is None or "novel" not in cfg.test.sets:
        return []
    if not Path(root).is_dir():
        log.warning("test.novel_root = %s: no such folder; the novel set is skipped", root)
        return []
    sets = []
    for subject in model.index.subjects:
        if not subject_dir(root, subject).is_dir():
            continue
        for name in list_videos(root, subject):
            if not (video_dir(root, subject, name) / VIEWS_FILE).is_file():
                continue
            table = VideoTable([VideoEntry(subject=subject, video=name, root=str(root))], root,
                               require_semantic=_loads_semantic(cfg, "test"))
            views = read_views(video_dir(root, subject, name))
            described = tuple(views.get(frame.name, {}) for frame in table[0].video.frames)
            sets.append(NovelSet(f"{subject}/{name}", split_dataset(cfg, table, model.index, model.head_model,
                                                                     "test"), described))
    return sets


def _display(out) -> dict[str, torch.Tensor]:
    """An :class:`AvatarOutput` → display channels in [0, 1] on the CPU."""
    white = 1.0 - out.mask[..., None]
    channels = {
        "rgb": out.rgb,
        "normal": normal_to_display(out.normal, out.mask),
        "albedo": out.albedo + white,
        "shading": out.shading + white,
        "mask": out.mask,
    }
    if out.semantic is not None:
        labels = torch.tensor([c.label for c in parts.SEMANTIC_CLASSES])[out.semantic.argmax(-1).cpu()]
        channels["labels"] = torch.from_numpy(parts.colour_labels(labels.numpy())).float() / 255.0
        for category in parts.LATENT_CATEGORIES:
            classes = list(parts.category_classes(category.name))
            if classes:
                channels[f"part_{category.name}"] = out.semantic[..., classes].sum(-1)
    return {k: v.detach().clamp(0, 1).cpu() for k, v in channels.items()}


def avatar_render_fn(model: PointAvatar, device: torch.device) -> Callable[[FrameBatch], dict]:
    """``render_fn(batch)`` for :mod:`pegasus.eval.render_sets`: display channels in [0, 1]
    (``labels`` and ``part_<category>`` too when the model has a semantic head), and for
    batches without ground truth ``head_mask``, the posed head model's silhouette
    (:meth:`PointAvatar.head_model_coverage`)."""

    @torch.no_grad()
    def render(batch: FrameBatch) -> dict[str, torch.Tensor]:
        model.eval()
        batch = batch.to(device)
        channels = _display(model(batch))
        if batch.rgb is None:  # no ground truth (driving, yaw): the silhouette to score holes against
            channels["head_mask"] = model.head_model_coverage(batch).cpu()
        return channels

    return render


def fit_corrections(model: PointAvatar, batch: FrameBatch, steps: int, lr: float
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Test-time refinement: corrections of each frame's expression (B, E), pose (B, 15; the
    global slot stays zero) and translation (B, 3) fitted to its images (L1 of rgb and mask,
    Adam, ``steps`` steps of ``lr``), the model frozen."""
    b, device = len(batch), model.canonical_expression.device
    expression = torch.zeros(b, model.head_model.n_expr, device=device, requires_grad=True)
    joints = torch.zeros(b, 12, device=device, requires_grad=True)  # neck, jaw, eyes
    translation = torch.zeros(b, 3, device=device, requires_grad=True)
    optimizer = torch.optim.Adam([expression, joints, translation], lr=lr)
    rgb, mask = batch.rgb.to(device), batch.mask.to(device)
    was_training = model.training
    model.eval().requires_grad_(False)
    try:
        with torch.enable_grad():
            for _ in range(steps):
                pose = torch.cat([torch.zeros(b, 3, device=device), joints], dim=1)
                out = model(batch, corrections=(expression, pose, translation))
                loss = (out.rgb - rgb).abs().mean() + (out.mask - mask).abs().mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    finally:
        model.requires_grad_(True).train(was_training)
    pose = torch.cat([torch.zeros(b, 3, device=device), joints.detach()], dim=1)
    return expression.detach(), pose, translation.detach()


def refined_render_fn(model: PointAvatar, device: torch.device, steps: int, lr: float
                      ) -> Callable[[FrameBatch], dict]:
    """``render_fn(batch)`` rendering each frame after test-time refinement of its expression,
    pose and translation (:func:`fit_corrections`; needs the batch's ground truth)."""

    def render(batch: FrameBatch) -> dict[str, torch.Tensor]:
        batch = batch.to(device)
        corrections = fit_corrections(model, batch, steps, lr)
        with torch.no_grad():
            return _display(model.eval()(batch, corrections=corrections))

    return render
