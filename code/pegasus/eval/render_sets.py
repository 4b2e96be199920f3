"""Render sets for evaluation: test frames against ground truth, novel driving, a yaw turn.

Evaluation knows nothing of the model: it calls ``render_fn(batch) -> dict[str, Tensor]``
(see ``docs/design/avatar_contract.md``) and writes what comes back. Channels are
(B, H, W, 3) or (B, H, W) float **display values in [0, 1]**: ``rgb`` composited on white,
``normal`` mapped from [−1, 1] (:func:`normal_to_display`), ``albedo``, ``shading``,
``mask``. Frames are rendered one batch at a time and streamed to disk, so memory does
not grow with the number of frames.

Outputs of one set (``out_dir``; ``<frame>`` is ``<video>/<frame_name>`` for dataset
frames and ``<frame_name>`` for driving / yaw frames):

- ``<channel>/<frame>.png``: every rendered frame of every requested channel;
- ``<channel>.mp4``: each channel as a video, in frame order;
- ``comparison.mp4``: ground truth | rgb side by side (sets with ground truth);
- ``grid.png``: a few evenly spaced frames (rows) × GT, rgb, normal, albedo, shading, mask;
- ``metrics.json`` / ``metrics.csv``: per-frame scores, their means and the settings
  (:func:`write_metrics`); sets without ground truth get the render's own holes there
  (``interior_holes``, and ``head_holes`` against a ``head_mask`` from render_fn; the yaw set
  also each frame's ``yaw_deg``).

Scores use :mod:`pegasus.eval.metrics` on the rgb render *as written to PNG* (8-bit), so
re-scoring the PNGs gives the same numbers.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ..data.batch import NO_ROW, FrameBatch, collate_frames
from ..data.images import to_uint8
from ..data.imavatar import FLAME_PARAMS_FILE, read_flame_params
from ..data.videos import fit_length
from ..geometry.camera import PinholeCameras
from ..headmodel.lbs import POSE_DIM, POSE_SLOTS, mean_pose, turn_head
from ..utils import atomic_path
from ..utils.media import Mp4Writer, image_grid, put_label, write_png
from ..utils.progress import progress as progress_bar
from .metrics import (METRIC_NAMES, LPIPS, frame_metrics, hole_fraction, interior_hole_fraction, load_lpips,
                      mean_metrics)
from .settings import TestSettings

__all__ = [
    "RenderFn",
    "CHANNELS",
    "Scoring",
    "HOLES",
    "INTERIOR_HOLES",
    "HEAD_HOLES",
    "Animation",
    "render_batches",
    "render_dataset",
    "driving_batches",
    "yaw_angles",
    "yaw_turn_batches",
    "write_metrics",
    "NovelSet",
    "write_view_summary",
    "run_test_sets",
]

log = logging.getLogger(__name__)

RenderFn = Callable[[FrameBatch], Mapping[str, torch.Tensor]]
"""``render_fn(batch) -> {channel: (B, H, W, 3) or (B, H, W) tensor in [0, 1]}``."""

CHANNELS: tuple[str, ...] = ("rgb", "normal", "albedo", "shading", "mask")
"""Channels a render_fn usually returns, in the column order of the grid."""

HOLES = "holes"
"""Column of :func:`pegasus.eval.metrics.hole_fraction` (when render_fn returns ``mask``)."""
INTERIOR_HOLES = "interior_holes"
"""Column of :func:`pegasus.eval.metrics.interior_hole_fraction` (sets without ground truth)."""
HEAD_HOLES = "head_holes"
"""Column of :func:`pegasus.eval.metrics.hole_fraction` against the render_fn's ``head_mask``
(the posed head model's silhouette), in sets without ground truth."""

_RANGE_TOLERANCE = 1e-3
_LABEL_MIN_WIDTH = 96  # tiles narrower than this get no text label


# ---------------------------------------------------------------------------------------
# Scoring


@dataclass(frozen=True)
class Scoring:
    """How a set with ground truth is scored (:func:`pegasus.eval.metrics.frame_metrics`).

    Attributes:
        erode_dilate: open the rgb render (3×3 erode, then dilate) before scoring.
        no_cloth: also report ``<metric>_no_cloth`` with cloth labels whitened in both images
            (needs ``semantic`` in the batches: ``VideoDataset(load_semantic=True)``).
        lpips: the LPIPS module, or None (LPIPS reported as null).
    """

    erode_dilate: bool = True
    no_cloth: bool = False
    lpips: LPIPS | None = None

    def columns(self, holes: bool = False) -> tuple[str, ...]:
        """Metric columns of a row, in order (``holes`` last when the render has a mask)."""
        cols = METRIC_NAMES
        if self.no_cloth:
            cols = cols + tuple(f"{m}_no_cloth" for m in METRIC_NAMES)
        return cols + (HOLES,) if holes else cols

    def describe(self) -> dict:
        return {
            "erode_dilate": self.erode_dilate,
            "no_cloth": self.no_cloth,
            "lpips": None if self.lpips is None else "alexnet-v0.1",
        }


# ---------------------------------------------------------------------------------------
# Synthetic batches: driving video and yaw turn


@dataclass(frozen=True, eq=False)
class Animation:
    """Frames to render with one target frame's identity, person and codes but other motion.

    Iterating yields :class:`FrameBatch` es without images: the target frame's subject and
    latent rows repeated, its camera and shape unless ``cameras`` / ``shape`` are given, the
    animation's ``expression`` and ``pose``, no per-frame refinement (:data:`NO_ROW`) and the
    animation's frame names.

    Attributes:
        expression: (N, E) float32 per-frame expressions (E = the target dataset's n_expr).
        pose: (N, 15) float32 per-frame poses (global | neck | jaw | eyes, axis-angle).
        target: the target frame (a batch of one).
        frame_names: N names, used for file names.
        batch_size: frames per batch.
        cameras: None (the target frame's camera) or N per-frame cameras (another video's).
        shape: None (the target frame's identity) or (S,) identity coefficients.
    """

    expression: torch.Tensor
    pose: torch.Tensor
    target: FrameBatch
    frame_names: tuple[str, ...]
    batch_size: int = 1
    cameras: PinholeCameras | None = None
    shape: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = len(self.frame_names)
        if self.expression.shape[0] != n or self.pose.shape != (n, POSE_DIM) or len(self.target) != 1:
            raise ValueError(
                f"Animation: expression {tuple(self.expression.shape)}, pose {tuple(self.pose.shape)}, "
                f"{len(self.target)} target frames for {n} frames (expected (N, E), (N, {POSE_DIM}), 1 frame)"
            )
        if self.cameras is not None and len(self.cameras) != n:
            raise ValueError(f"Animation: {len(self.cameras)} cameras for {n} frames")
        if self.shape is not None and tuple(self.shape.shape) != tuple(self.target.shape.shape[1:]):
            raise ValueError(f"Animation: shape {tuple(self.shape.shape)}, expected "
                             f"{tuple(self.target.shape.shape[1:])} like the target's")
        if self.batch_size < 1:
            raise ValueError(f"Animation: batch_size must be ≥ 1, got {self.batch_size}")

    def __len__(self) -> int:
        return len(self.frame_names)

    def __iter__(self) -> Iterator[FrameBatch]:
        t = self.target
        for start in range(0, len(self), self.batch_size):
            stop = min(start + self.batch_size, len(self))
            b = stop - start
            repeat = t.select([0] * b)
            yield FrameBatch(
                cameras=repeat.cameras if self.cameras is None else self.cameras[start:stop],
                expression=self.expression[start:stop], pose=self.pose[start:stop],
                shape=repeat.shape if self.shape is None else self.shape.to(repeat.shape)[None].expand(b, -1),
                video_id=repeat.video_id, subject_id=repeat.subject_id,
                frame_index=torch.full((b,), NO_ROW, dtype=torch.int64),
                refine_row=torch.full((b,), NO_ROW, dtype=torch.int64),
                frame_name=tuple(self.frame_names[start:stop]), video=("",) * b, latent_rows=repeat.latent_rows,
            )


def _target_frame(target: Dataset, camera_frame: int) -> FrameBatch:
    if not 0 <= camera_frame < len(target):
        raise ValueError(f"test.camera_frame = {camera_frame} is outside the target's {len(target)} frames")
    return target[camera_frame]


def driving_batches(
    target: Dataset,
    driving_flame_params: str | os.PathLike,
    *,
    stride: int = 1,
    camera_frame: int = 0,
    batch_size: int = 1,
) -> Animation:
    """Batches with the target's camera and identity and a driving video's expression and pose.

    Args:
        target: the target's dataset (a :class:`pegasus.data.VideoDataset` or a
            ``Subset`` of one); its frame ``camera_frame`` provides the camera (at the
            dataset's resolution) and the identity ``shape``.
        driving_flame_params: the driving video's ``flame_params.json`` or its folder.
        stride: use every ``stride``-th driving frame.
        camera_frame: index into ``target`` of the frame whose camera is used.
        batch_size: frames per batch.

    Returns:
        An :class:`Animation`: per frame the driving ``expression`` (padded/truncated to the
        target's length) and full 15-D ``pose``; frame names are the driving frame stems.
    """
    path = Path(driving_flame_params)
    if path.is_dir():
        path = path / FLAME_PARAMS_FILE
    params = read_flame_params(path)
    frames = params.frames[::stride]
    item = _target_frame(target, camera_frame)
    expression = fit_length(np.stack([f.expression for f in frames]), item.expression.shape[1])
    pose = np.stack([f.pose for f in frames]).astype(np.float32)
    log.info("driving: %d frames of %s on the target's frame %d camera", len(frames), path, camera_frame)
    return Animation(torch.from_numpy(expression), torch.from_numpy(pose), item, tuple(f.name for f in frames),
                     batch_size)


def yaw_angles(max_yaw_deg: float, n_frames: int) -> np.ndarray:
    """(n_frames,) yaw of each frame of the yaw turn, degrees, −max … +max (n = 1: [−max])."""
    return np.linspace(-max_yaw_deg, max_yaw_deg, n_frames)


def yaw_turn_batches(
    target: Dataset,
    *,
    max_yaw_deg: float = 30.0,
    n_frames: int = 60,
    expression_frame: int | None = None,
    camera_frame: int = 0,
    batch_size: int = 1,
) -> Animation:
    """Batches turning the head from −``max_yaw_deg`` to +``max_yaw_deg`` (evenly spaced)
    around the target's mean head rotation.

    The turn adds a yaw about FLAME's y (up) axis to the mean neck rotation of the target's
    frames (``pegasus.headmodel.lbs.turn_head``; positive yaw turns the face towards the
    subject's left, +x), so that it stays within the pitch and roll the avatar saw. The
    global slot is zero.

    Args:
        target: the target's :class:`VideoDataset`; frame ``camera_frame`` gives the camera
            and identity, its frames the mean pose.
        max_yaw_deg: end yaw in degrees; the turn goes from −max to +max.
        n_frames: frames of the turn (≥ 1; one frame renders yaw −max).
        expression_frame: None: the mean expression, jaw and eye poses of the target's
            frames; an index into ``target``: that frame's expression, jaw and eye poses.
        camera_frame: index into ``target`` of the frame whose camera is used.
        batch_size: frames per batch.

    Returns:
        An :class:`Animation` with frame names ``"0001"``, ``"0002"``, ….
    """
    if n_frames < 1:
        raise ValueError(f"yaw_turn_batches: n_frames must be ≥ 1, got {n_frames}")
    item = _target_frame(target, camera_frame)
    n_expr = item.expression.shape[1]
    expressions, poses = target.motion()
    base_pose = mean_pose(poses.numpy())
    expression = expressions.mean(0)
    if expression_frame is not None:
        source = _target_frame(target, expression_frame)
        expression = source.expression[0].float()
        kept = [POSE_SLOTS[name] for name in ("jaw", "left_eye", "right_eye")]
        for slot in kept:
            base_pose[slot] = source.pose[0, slot].double().numpy()
    base_pose[POSE_SLOTS["global"]] = 0
    pose = torch.from_numpy(turn_head(base_pose, yaw_angles(max_yaw_deg, n_frames), 0.0)).float()
    names = tuple(f"{k + 1:04d}" for k in range(n_frames))
    return Animation(expression.float().expand(n_frames, n_expr).clone(), pose, item, names, batch_size)


# ---------------------------------------------------------------------------------------
# Rendering


def _frame_ids(batch: FrameBatch) -> list[str]:
    """``<video key>/<frame>`` of dataset frames, ``<frame>`` of animation frames."""
    return [f"{v}/{n}" if v else str(n) for v, n in zip(batch.video, batch.frame_name, strict=True)]


def _channel_images(name: str, value, b: int, size: tuple[int, int] | None, warned: set) -> np.ndarray:
    """A render_fn channel → (B, H, W, 3) float32 numpy in [0, 1], checked."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"render_fn: channel {name!r} is a {type(value).__name__}, expected a tensor")
    x = value.detach().float().cpu()
    if x.ndim == 3:
        x = x[..., None].expand(*x.shape, 3)
    if x.ndim != 4 or x.shape[0] != b or x.shape[-1] not in (1, 3):
        raise ValueError(
            f"render_fn: channel {name!r} has shape {tuple(value.shape)}; expected ({b}, H, W, 3) or ({b}, H, W)"
        )
    if x.shape[-1] == 1:
        x = x.expand(*x.shape[:3], 3)
    if size is not None and tuple(x.shape[1:3]) != tuple(size):
        raise ValueError(f"render_fn: channel {name!r} is {tuple(x.shape[1:3])}, the batch's images are {tuple(size)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"render_fn: channel {name!r} contains NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if (lo < -_RANGE_TOLERANCE or hi > 1 + _RANGE_TOLERANCE) and name not in warned:
        warned.add(name)
        log.warning("render_fn: channel %r spans [%.3g, %.3g], clipped to [0, 1] (normals: use "
                    "normal_to_display)", name, lo, hi)
    return x.clamp(0, 1).numpy()


def evenly_spaced_indices(n_frames: int, rows: int) -> list[int]:
    """Up to ``rows`` distinct positions spread over 0..n_frames−1, first and last included."""
    rows = min(rows, n_frames)
    if rows <= 1:
        return [0][:n_frames]
    return sorted({round(k * (n_frames - 1) / (rows - 1)) for k in range(rows)})


def _labelled(tile: np.ndarray, text: str) -> np.ndarray:
    return put_label(tile, text) if tile.shape[1] >= _LABEL_MIN_WIDTH else to_uint8(tile)


def render_batches(
    render_fn: RenderFn,
    batches: Iterable[FrameBatch],
    out_dir: str | os.PathLike,
    channels: Sequence[str] = CHANNELS,
    *,
    n_frames: int,
    gt: bool = False,
    scoring: Scoring | None = None,
    fps: float = 25.0,
    grid_rows: int = 4,
    settings: Mapping | None = None,
    progress: bool = True,
    description: str = "render",
    frame_info: Sequence[Mapping] | None = None,
) -> list[dict]:
    """Renders batches one at a time and writes PNGs, mp4s, a grid and metrics: scores against
    ground truth with ``gt``, else the render's own holes (``interior_holes``,
    :func:`pegasus.eval.metrics.interior_hole_fraction`) when render_fn returns ``mask``, and
    the share of the posed head model's silhouette it leaves uncovered (``head_holes``) when
    render_fn also returns ``head_mask``.

    Args:
        render_fn: ``batch -> {channel: tensor}``, display values in [0, 1]; called under
            ``torch.no_grad()``.
        batches: collated batches (a DataLoader over a dataset, or an :class:`Animation`).
        out_dir: the set's output folder.
        channels: channels to write; each must be in every render_fn output.
        n_frames: total frames in ``batches`` (for the grid rows and progress).
        gt: batches carry ground truth ``rgb`` (and ``semantic`` for no-cloth): score the
            ``rgb`` channel and write ``comparison.mp4``, ``metrics.json``, ``metrics.csv``.
        scoring: options of the scores (default :class:`Scoring`).
        fps: frame rate of the mp4s.
        grid_rows: frames (rows) of ``grid.png``, evenly spaced.
        settings: extra settings recorded in ``metrics.json``.
        progress: show a tqdm bar.
        description: tqdm label.
        frame_info: optional per-frame values added to the rows (e.g. ``{"yaw_deg": …}``).

    Returns:
        Per-frame rows ``{"index", "frame", <frame_info>, <metrics>}`` (``[]`` without ``gt``
        when the render has no mask).
    """

    out_dir = Path(out_dir)
    channels = tuple(channels)
    if gt and "rgb" not in channels:
        raise ValueError(f"render_batches: scoring needs the 'rgb' channel, got {list(channels)}")
    scoring = scoring or Scoring()
    grid_at = set(evenly_spaced_indices(n_frames, grid_rows))
    grid_tiles: list[np.ndarray] = []
    rows: list[dict] = []
    warned: set[str] = set()
    frame = 0
    descriptive = tuple(frame_info[0]) if frame_info else ()

    def row_start(index: int, frame_id: str) -> dict:
        return {"index": index, "frame": frame_id, **(frame_info[index] if frame_info else {})}

    with contextlib.ExitStack() as stack:
        videos = {c: stack.enter_context(Mp4Writer(out_dir / f"{c}.mp4", fps)) for c in channels}
        comparison = stack.enter_context(Mp4Writer(out_dir / "comparison.mp4", fps)) if gt else None
        bar = stack.enter_context(progress_bar(total=n_frames, desc=description, unit="frame", disable=not progress))
        for batch in batches:
            b = len(batch)
            gt_rgb = batch.rgb if gt else None
            if gt and gt_rgb is None:
                raise ValueError("render_batches: gt=True but the batch has no 'rgb' ground truth")
            if gt and scoring.no_cloth and batch.semantic is None:
                raise ValueError("render_batches: no_cloth scoring needs 'semantic' in the batches "
                                 "(build the dataset with load_semantic=True or set test.no_cloth=false)")
            size = tuple(batch.cameras.image_size)
            with torch.no_grad():
                out = render_fn(batch)
            missing = [c for c in channels if c not in out]
            if missing:
                raise KeyError(f"render_fn returned {sorted(out)}; missing requested channel(s) {missing}")
            images = {c: _channel_images(c, out[c], b, size, warned) for c in channels}
            ids = _frame_ids(batch)
            for k in range(b):
                for c in channels:
                    tile = to_uint8(images[c][k])
                    write_png(out_dir / c / f"{ids[k]}.png", tile)
                    videos[c].write(tile)
            if gt:
                # the PNG's values, as pegasus.data.images reads them (float32 k / 255)
                pred = torch.from_numpy(to_uint8(images["rgb"]).astype(np.float32) / np.float32(255.0))
                truth = gt_rgb.detach().cpu().float()
                scores = [frame_metrics(pred, truth, erode_dilate_pred=scoring.erode_dilate,
                                        lpips=scoring.lpips)]
                if scoring.no_cloth:
                    scores.append(frame_metrics(pred, truth, semantic=batch.semantic.cpu(),
                                                erode_dilate_pred=scoring.erode_dilate, no_cloth=True,
                                                lpips=scoring.lpips))
                holes = (hole_fraction(out["mask"].detach().float().cpu(), batch.mask.cpu())
                         if "mask" in out and batch.mask is not None else None)
                for k in range(b):
                    row = row_start(frame + k, ids[k])
                    for suffix, score in zip(("", "_no_cloth"), scores):
                        for m in METRIC_NAMES:
                            row[m + suffix] = None if score[m] is None else float(score[m][k])
                    if holes is not None:
                        row[HOLES] = float(holes[k])
                    rows.append(row)
                    truth_k = truth[k].numpy()
                    comparison.write(image_grid([_labelled(truth_k, "ground truth"),
                                                 _labelled(images["rgb"][k], "rgb")], n_cols=2, pad=0))
            elif "mask" in out:
                coverage = out["mask"].detach().float().cpu()
                own_holes = interior_hole_fraction(coverage)
                head_holes = (hole_fraction(coverage, out["head_mask"].detach().float().cpu())
                              if "head_mask" in out else None)
                for k in range(b):
                    row = {**row_start(frame + k, ids[k]), INTERIOR_HOLES: float(own_holes[k])}
                    if head_holes is not None:
                        row[HEAD_HOLES] = float(head_holes[k])
                    rows.append(row)
            for k in range(b):
                if frame + k in grid_at:
                    if gt:
                        grid_tiles.append(_labelled(gt_rgb[k].detach().cpu().numpy(), "GT"))
                    grid_tiles.extend(_labelled(images[c][k], c) for c in channels)
            frame += b
            bar.update(b)
    if frame != n_frames:
        log.warning("%s: rendered %d frames, expected n_frames=%d", description, frame, n_frames)
    if grid_tiles:
        write_png(out_dir / "grid.png", image_grid(grid_tiles, n_cols=len(channels) + int(gt)))
    if gt:
        columns = scoring.columns(holes=bool(rows) and HOLES in rows[0])
        write_metrics(out_dir, rows, {"scoring": scoring.describe(), "columns": list(columns),
                                      **dict(settings or {})}, descriptive=descriptive)
        means = mean_metrics(rows, columns)
        log.info("%s: %d frames, %s", description, len(rows),
                 ", ".join(f"{k} {v:.4f}" if v is not None else f"{k} n/a" for k, v in means.items()))
    elif rows:
        write_metrics(out_dir, rows, {"columns": [c for c in (INTERIOR_HOLES, HEAD_HOLES) if c in rows[0]],
                                      **dict(settings or {})}, descriptive=descriptive)
        log.info("%s: %d frames, interior holes %.4f (max %.4f)", description, len(rows),
                 float(np.mean([r[INTERIOR_HOLES] for r in rows])), max(r[INTERIOR_HOLES] for r in rows))
    return rows


def render_dataset(
    render_fn: RenderFn,
    dataset: Dataset,
    out_dir: str | os.PathLike,
    channels: Sequence[str] = CHANNELS,
    batch_size: int = 1,
    gt: bool = True,
    *,
    scoring: Scoring | None = None,
    fps: float = 25.0,
    grid_rows: int = 4,
    settings: Mapping | None = None,
    progress: bool = True,
) -> list[dict]:
    """Renders every frame of a dataset (in order) with :func:`render_batches`.

    Args:
        dataset: a :class:`pegasus.data.VideoDataset` (or a ``Subset`` of one); with
            ``gt`` its ``rgb`` is the ground truth, and ``semantic`` is needed for no-cloth
            scores (``load_semantic=True``).
        batch_size: frames per ``render_fn`` call.

    Returns:
        Per-frame metric rows (``[]`` without ``gt``); see :func:`render_batches`.
    """
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_frames)
    return render_batches(
        render_fn, loader, out_dir, channels, n_frames=len(dataset), gt=gt, scoring=scoring, fps=fps,
        grid_rows=grid_rows, settings=settings, progress=progress, description=Path(out_dir).name,
    )


# ---------------------------------------------------------------------------------------
# Metric files


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_json_and_csv(json_path: Path, report: Mapping, csv_path: Path, columns: Sequence[str],
                        rows: Sequence[Mapping]) -> None:
    """Writes a JSON report and a CSV table (empty cells for null; floats by ``repr``, exactly
    the JSON's values), each atomically."""
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else repr(row[c]) if isinstance(row[c], float) else row[c]
                         for c in columns])
    with atomic_path(csv_path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")


def write_metrics(out_dir: str | os.PathLike, rows: Sequence[Mapping], settings: Mapping,
                  descriptive: Sequence[str] = ()) -> tuple[Path, Path]:
    """Writes ``metrics.json`` and ``metrics.csv`` atomically (``descriptive`` columns, e.g.
    ``yaw_deg``, are written but not averaged).

    ``metrics.json``: ``{"count": N, "mean": {metric: mean over frames or null},
    "frames": [row, …], "settings": {…}}``. ``metrics.csv``: one line per frame with the
    row keys as header; empty cells for null values; floats written with ``repr`` (exactly
    the values of the JSON file).

    Returns:
        (json path, csv path).
    """
    out_dir = Path(out_dir)
    columns = list(rows[0]) if rows else ["index", "frame"]
    metric_columns = [c for c in columns if c not in ("index", "frame", *descriptive)]
    clean = [{k: _json_value(v) for k, v in row.items()} for row in rows]
    report = {
        "count": len(rows),
        "mean": mean_metrics(clean, metric_columns),
        "frames": clean,
        "settings": dict(settings),
    }
    json_path, csv_path = out_dir / "metrics.json", out_dir / "metrics.csv"
    _write_json_and_csv(json_path, report, csv_path, columns, clean)
    return json_path, csv_path


# ---------------------------------------------------------------------------------------
# All sets of the ``test`` config section


@dataclass(frozen=True, eq=False)
class NovelSet:
    """A set of generated views with ground truth (e.g. the synthetic database's novel views).

    Attributes:
        name: ``<subject>/<set>``, the output folder under ``novel/``.
        dataset: its frames, indexed by the run.
        views: per frame, in dataset order, what it shows (``views.json``: ``yaw_deg``,
            ``pitch_deg``, …).
    """

    name: str
    dataset: Dataset
    views: tuple[Mapping, ...]


_VIEW_KEYS = ("set", "yaw_deg", "pitch_deg")


def write_view_summary(out_dir: str | os.PathLike, rows: Sequence[Mapping], views: Sequence[Mapping]) -> list[dict]:
    """Means of the metric rows of a novel set per view (``set``, ``yaw_deg``, ``pitch_deg``),
    written to ``views.csv`` and ``views.json``; returns the summary rows."""
    if len(rows) != len(views):
        raise ValueError(f"write_view_summary: {len(rows)} metric rows for {len(views)} views")
    groups: dict[tuple, list[Mapping]] = {}
    for row, view in zip(rows, views):
        groups.setdefault(tuple(view.get(k) for k in _VIEW_KEYS), []).append(row)
    metrics = [c for c in rows[0] if c not in ("index", "frame")] if rows else []
    summary = [{**dict(zip(_VIEW_KEYS, key)), "frames": len(group), **mean_metrics(group, metrics)}
               for key, group in groups.items()]
    summary = [{k: _json_value(v) for k, v in r.items()} for r in summary]
    out_dir = Path(out_dir)
    _write_json_and_csv(out_dir / "views.json", {"views": summary}, out_dir / "views.csv",
                        [*_VIEW_KEYS, "frames", *metrics], summary)
    return summary


def run_test_sets(
    render_fn: RenderFn,
    settings: TestSettings,
    out_dir: str | os.PathLike,
    *,
    test_dataset: Dataset,
    target_dataset: Dataset | None = None,
    novel_sets: Sequence[NovelSet] = (),
    refined_render_fn: RenderFn | None = None,
    progress: bool = True,
) -> dict[str, list[dict]]:
    """Renders the sets of ``settings.sets`` into ``out_dir/<set>/``.

    Args:
        render_fn: the model in eval mode (see the module docstring).
        settings: the ``test`` config section (``cfg.test``).
        out_dir: parent folder of the sets.
        test_dataset: the held-out test video(s) of the subject, *all* frames (stride 1):
            ``test.frame_stride`` is applied here. Build it with ``load_semantic=True`` when
            ``test.no_cloth`` is on.
        target_dataset: gives the camera and identity of the driving and yaw sets (frame
            ``test.camera_frame``); default ``test_dataset``.
        novel_sets: the sets of the ``novel`` set (each rendered and scored into
            ``out_dir/novel/<name>/`` with a per-view summary, :func:`write_view_summary`).
        refined_render_fn: with ``test.refine_steps > 0``, the render_fn that refines each
            test frame's motion first; the test frames are then also rendered and scored with
            it into ``out_dir/test_refined/`` (reported apart, never instead of ``test``).

    Returns:
        {set name: per-frame metric rows} (scores for ``test`` and ``novel/<name>``, interior
        holes for driving and yaw).
    """
    out_dir = Path(out_dir)
    target_dataset = target_dataset if target_dataset is not None else test_dataset
    scoring = Scoring(settings.erode_dilate, settings.no_cloth,
                      load_lpips(settings.lpips_weights) if "test" in settings.sets else None)
    recorded = {"test": {k: v for k, v in asdict(settings).items()}}
    common = dict(fps=settings.fps, grid_rows=settings.grid_rows, progress=progress)
    results: dict[str, list[dict]] = {}
    if "test" in settings.sets:
        frames = Subset(test_dataset, range(0, len(test_dataset), settings.frame_stride))
        results["test"] = render_dataset(render_fn, frames, out_dir / "test", settings.channels,
                                         settings.batch_size, gt=True, scoring=scoring, settings=recorded,
                                         **common)
        if refined_render_fn is not None and settings.refine_steps > 0:
            results["test_refined"] = render_dataset(refined_render_fn, frames, out_dir / "test_refined",
                                                     settings.channels, settings.batch_size, gt=True, scoring=scoring,
                                                     settings=recorded, **common)
    if "driving" in settings.sets:
        if settings.driving_flame_params is None:
            log.info("driving set skipped: test.driving_flame_params is null")
        else:
            animation = driving_batches(target_dataset, settings.driving_flame_params,
                                        stride=settings.frame_stride, camera_frame=settings.camera_frame,
                                        batch_size=settings.batch_size)
            results["driving"] = render_batches(render_fn, animation, out_dir / "driving", settings.channels,
                                                n_frames=len(animation), description="driving", **common)
    if "yaw" in settings.sets:
        animation = yaw_turn_batches(target_dataset, max_yaw_deg=settings.yaw_max_deg,
                                     n_frames=settings.yaw_frames, expression_frame=settings.yaw_expression_frame,
                                     camera_frame=settings.camera_frame, batch_size=settings.batch_size)
        results["yaw"] = render_batches(render_fn, animation, out_dir / "yaw", settings.channels,
                                        n_frames=len(animation), description="yaw",
                                        frame_info=[{"yaw_deg": float(y)}
                                                    for y in yaw_angles(settings.yaw_max_deg, settings.yaw_frames)],
                                        **common)
    if "novel" in settings.sets:
        if not novel_sets:
            log.info("novel set skipped: no novel view sets (test.novel_root = %s)", settings.novel_root)
        for novel in novel_sets:
            folder = out_dir / "novel" / novel.name
            rows = render_dataset(render_fn, novel.dataset, folder, settings.channels, settings.batch_size, gt=True,
                                  scoring=scoring, settings=recorded, **common)
            results[f"novel/{novel.name}"] = rows
            write_view_summary(folder, rows, novel.views)
    return results
