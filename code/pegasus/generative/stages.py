"""PEGASUS's two training stages in one run folder (METHOD §5, schedule).

Stage 1 trains the target's own avatar on its real video(s) (``generative.stage1``) into
``<run>/stage1/``; its avatar then renders the target's own normals
(:func:`pegasus.generative.normals.render_own_normals`). Stage 2 trains on ``dataset.train``
(the synthetic collection and the target's video) into ``<run>/``, starting from stage 1's
weights (:func:`init_from_stage1`: networks, points, the target's codes). A requeued job
resumes where it stopped, across the boundary: stage 2's checkpoints win, then a finished
stage 1 goes straight to stage 2, else stage 1 continues.
"""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..avatar.index import RunIndex
from ..avatar.model import PointAvatar
from ..config import Config, ConfigError
from ..data.videos import VideoTable
from ..train.build import new_avatar, split_dataset, trained_avatar
from ..train.checkpoint import CheckpointError, list_checkpoints, load_checkpoint
from ..train.distributed import DistEnv, barrier, init_distributed, seed_everything
from ..train.run import finished_checkpoint
from ..train.trainer import RunFolderError, Trainer, run_dir_of
from .normals import OWN_NORMALS_FILE, NormalTargets, render_own_normals

__all__ = ["STAGE1_DIR", "stage1_config", "check_generative", "init_from_stage1", "train_generative"]

log = logging.getLogger(__name__)

STAGE1_DIR = "stage1"


def stage1_config(cfg: Config) -> Config:
    """Stage 1's config: ``cfg`` training on ``generative.stage1.train`` for its epochs, in
    ``<run>/stage1/``, without the normal loss (its targets come from this stage)."""
    stage = cfg.generative.stage1
    return cfg.with_overrides([
        f"dataset.train={json.dumps([entry.to_dict() for entry in stage.train])}",
        f"experiment.output_root={json.dumps(str(run_dir_of(cfg)))}",
        f"experiment.name={STAGE1_DIR}",
        f"train.epochs={stage.epochs}",
        f"train.lr_milestones={json.dumps(list(stage.lr_milestones))}",
        "loss.normal=0",
    ])


def check_generative(cfg: Config) -> None:
    """Settings a generative run needs beyond each section's own checks.

    Raises:
        ConfigError: naming the keys.
    """
    problems = []
    if cfg.model.latent.code_dim == 0:
        problems.append("model.latent.code_dim: 0, but the generative avatar's parts are latent codes (PEGASUS 32)")
    if not cfg.model.shape_cancel:
        problems.append("model.shape_cancel: false, but the synthetic videos share the generic canonical space")
    if problems:
        raise ConfigError(f"{cfg.source}: generative.enabled needs:\n" + "\n".join(f"  - {p}" for p in problems))


def init_from_stage1(model: PointAvatar, checkpoint: dict[str, Any]) -> None:
    """Loads stage 1's weights into a stage-2 model: every network, the points and their radius,
    the per-subject tables, and the latent codes stage 1 has (matched by owner and category;
    the synthetic videos' codes keep their fresh initialisation). Per-frame refinement rows
    are not carried over (they belong to other frames).

    Raises:
        CheckpointError: the checkpoint has no run index or other subjects than the model.
    """
    if "run_index" not in checkpoint.get("extra", {}):
        raise CheckpointError("stage-1 checkpoint has no run index (written by an older version); retrain stage 1")
    before = RunIndex.from_json(checkpoint["extra"]["run_index"])
    if before.subjects != model.index.subjects:
        raise CheckpointError(f"stage 1 trained {list(before.subjects)}, stage 2 trains {list(model.index.subjects)}: "
                              "every stage-2 video must be of the target (generative.target)")
    own = model.state_dict()
    state = {k: v for k, v in checkpoint["model"].items() if not k.startswith("refinement.") and k in own}
    codes_key = "latent_codes.codes"
    if codes_key in state:
        codes, old = own[codes_key].clone(), state[codes_key]
        codes[0] = old[0]  # the shared absent code
        table = model.index.latent
        for row, owner in enumerate(before.latent.owners, start=1):
            if owner in table.owners:
                codes[table.row(*owner)] = old[row]
        state[codes_key] = codes
    model.load_state_dict({**own, **state})


def _check_run_folder(cfg: Config, mode: str) -> None:
    run = run_dir_of(cfg)
    if mode == "new" and (list_checkpoints(run) or list_checkpoints(run / STAGE1_DIR)):
        raise RunFolderError(f"{run}: holds checkpoints of an earlier generative run; pass --resume to continue it or "
                             "--overwrite to start again, or choose another experiment.name")
    if mode == "overwrite" and run.is_dir():
        for name in ("checkpoints", "tensorboard", STAGE1_DIR):
            shutil.rmtree(run / name, ignore_errors=True)
        log.info("overwrite: deleted both stages of the earlier run in %s", run)


def _train_stage1(cfg: Config, env: DistEnv, mode: str) -> Path:
    """Stage 1 (skipped when finished); returns its final checkpoint."""
    stage = stage1_config(cfg)
    done = finished_checkpoint(stage)
    if done is not None:
        log.info("stage 1 is finished: %s", done)
        return done
    seed_everything(stage.experiment.seed, env.rank)
    model, train_set = new_avatar(stage, env.device)
    log.info("stage 1: the target's own avatar (%d frames)", len(train_set))
    Trainer(stage, env, model, train_set, mode="resume" if mode == "resume" else "new").fit()
    return finished_checkpoint(stage)


def _own_normals(cfg: Config, env: DistEnv) -> Path | None:
    """The finished stage-1 avatar's normals of the target's frames (rank 0 renders them once)."""
    if not cfg.generative.own_normals or cfg.loss.normal == 0:
        return None
    stage = stage1_config(cfg)
    path = run_dir_of(stage) / OWN_NORMALS_FILE
    if env.is_main and not path.is_file():
        checkpoint = finished_checkpoint(stage)
        if checkpoint is None:
            raise CheckpointError(f"{run_dir_of(stage)}: stage 1 is not finished; its normals cannot be rendered")
        model = trained_avatar(stage, load_checkpoint(checkpoint, map_location=env.device), env.device)
        every_frame = [replace(entry, stride=1) for entry in cfg.generative.stage1.train]  # stage 2 may use others
        table = VideoTable(every_frame, cfg.dataset.root, require_semantic=False)
        dataset = split_dataset(stage, table, model.index, model.head_model)
        render_own_normals(model, dataset, path, cfg.train.max_batch)
    barrier()
    return path


def train_generative(cfg: Config, mode: str = "new") -> Path:
    """Stage 1, the own normals, then stage 2 (``mode``: new, resume or overwrite, as for
    :class:`~pegasus.train.trainer.Trainer`, for both stages); returns the run folder."""
    check_generative(cfg)
    env = init_distributed(cfg.experiment.device)
    if env.is_main:
        _check_run_folder(cfg, mode)
    barrier()
    run = run_dir_of(cfg)
    resuming_stage2 = mode == "resume" and bool(list_checkpoints(run))
    stage1 = None
    if not resuming_stage2:
        stage1 = _train_stage1(cfg, env, mode)
    normals = _own_normals(cfg, env)
    seed_everything(cfg.experiment.seed, env.rank)
    model, train_set = new_avatar(cfg, env.device, normal_targets=None if normals is None else NormalTargets(normals))
    if model.index.subjects != (cfg.generative.target,):
        raise ConfigError(f"{cfg.source}: stage 2 trains {list(model.index.subjects)}; dataset.train must hold only "
                          f"videos of generative.target = {cfg.generative.target!r} (its own and synthetic ones)")
    if not resuming_stage2:
        init_from_stage1(model, load_checkpoint(stage1, map_location=env.device))
        log.info("stage 2 starts from %s: %d points; %d synthetic codes", stage1, model.points.num_points,
                 sum(1 for owner, _ in model.index.latent.owners if owner != cfg.generative.target))
    trainer = Trainer(cfg, env, model, train_set, mode="resume" if resuming_stage2 else "new")
    trainer.fit()
    log.info("generative avatar done: %s", run)
    return run
