"""The training loop: data order, optimisation, point-cloud growth, checkpoints, logging.

The trainer owns no math: the model computes outputs and losses
(``docs/design/avatar_contract.md``); the trainer orders frames, steps the optimizer,
merges per-point visibility across batches and ranks before the model grows or prunes its
cloud, writes atomic checkpoints and TensorBoard logs, and resumes exactly.

A run folder is never overwritten by accident: training into a folder that holds
checkpoints needs ``mode="resume"`` (continue) or ``mode="overwrite"`` (start again, the old
checkpoints and logs deleted); anything else is a :class:`RunFolderError`.
"""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ..config import Config, save_config
from ..data.batch import FrameBatch, collate_frames
from ..data.dataset import VideoDataset
from ..render.display import normal_to_display
from ..utils.progress import progress
from .checkpoint import (latest_checkpoint, list_checkpoints, load_checkpoint, remove_stale_temporaries, rng_state,
                         save_checkpoint, set_rng_state)
from .distributed import DistEnv, all_reduce_max, barrier, broadcast_object, gather_objects
from .sampling import EpochOrder, VideoBatches, batch_size_for

log = logging.getLogger(__name__)

__all__ = ["MODES", "RunFolderError", "Trainer", "run_dir_of"]

MODES = ("new", "resume", "overwrite")
"""How a run starts: a new run (the folder must hold no checkpoints), resume from the latest
checkpoint (a new run when there is none), or overwrite an earlier run."""


class RunFolderError(RuntimeError):
    """Training would overwrite an earlier run's checkpoints."""


def run_dir_of(cfg: Config) -> Path:
    """``<experiment.output_root>/<experiment.name>``."""
    return Path(cfg.experiment.output_root) / cfg.experiment.name


class Trainer:
    """Trains a model that follows the avatar contract on a training dataset.

    Seed with :func:`~pegasus.train.distributed.seed_everything` *before* building the
    model, so its initialisation is reproducible (DDP then broadcasts rank 0's weights).

    Args:
        cfg: the resolved config (saved to ``<run_dir>/config.conf`` on rank 0).
        env: this process's :class:`DistEnv`.
        model: the avatar (already on ``env.device``).
        train_set: the training dataset.
        mode: one of :data:`MODES`.

    Raises:
        RunFolderError: ``mode="new"`` and the run folder holds checkpoints.
    """

    def __init__(self, cfg: Config, env: DistEnv, model: torch.nn.Module, train_set: VideoDataset,
                 mode: str = "new"):
        if mode not in MODES:
            raise ValueError(f"Trainer: mode must be one of {MODES}, got {mode!r}")
        self.cfg, self.env, self.model, self.train_set = cfg, env, model, train_set
        self.run_dir = run_dir_of(cfg)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.optimizer, self.scheduler = self._make_optimizer()
        self.epoch = 0  # epochs completed
        self.iteration = 0  # optimizer steps done
        self.batch_in_epoch = 0  # batches of the current epoch already done
        self.visible: torch.Tensor | None = None  # (N,) visibility accumulated this epoch
        self._ddp: DistributedDataParallel | None = None
        self._ddp_points_id: int | None = None
        self.writer = None
        resume_from = self._prepare_run_folder(mode)
        if resume_from is not None:
            self._restore(load_checkpoint(resume_from, map_location=env.device))
            log.info("resumed from %s at epoch %d, iteration %d", resume_from, self.epoch, self.iteration)
        if env.is_main:
            save_config(cfg, self.run_dir / "config.conf")
            from torch.utils.tensorboard import SummaryWriter

            # Events of steps after the checkpoint (written before an interruption) are purged;
            # the checkpoint's own step was logged before it was saved and stays.
            purge = self.iteration + 1 if resume_from is not None else None
            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=purge)

    # ------------------------------------------------------------------ run folder
    def _prepare_run_folder(self, mode: str) -> Path | None:
        """Rank 0 checks the folder and decides; every rank learns the checkpoint to resume."""
        decision: Any = None
        if self.env.is_main:
            for folder in (self.ckpt_dir, self.run_dir):
                remove_stale_temporaries(folder)
            existing = list_checkpoints(self.run_dir)
            latest = latest_checkpoint(self.run_dir)
            if mode == "new" and existing:
                decision = (f"{self.run_dir}: holds {len(existing)} checkpoint(s) of an earlier run; pass --resume to "
                            "continue it or --overwrite to start again (deleting its checkpoints and logs), or "
                            "choose another experiment.name")
            elif mode == "overwrite" and self.run_dir.exists():
                for name in ("checkpoints", "tensorboard"):
                    shutil.rmtree(self.run_dir / name, ignore_errors=True)
                log.info("overwrite: deleted the checkpoints and logs of the earlier run in %s", self.run_dir)
            elif mode == "resume" and latest is None:
                log.info("resume: no checkpoint in %s; starting a new run", self.ckpt_dir)
            if mode == "resume" and latest is not None:
                decision = str(latest)
        decision = broadcast_object(decision)
        barrier()
        if decision is not None and not decision.endswith(".pt"):
            raise RunFolderError(decision)
        return None if decision is None else Path(decision)

    # ------------------------------------------------------------------ state
    def _make_optimizer(self) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.MultiStepLR]:
        optimizer = torch.optim.Adam(self.model.parameter_groups())
        scheduler = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=list(self.cfg.train.lr_milestones), gamma=self.cfg.train.lr_gamma)
        return optimizer, scheduler

    def _state(self, rng: list) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "iteration": self.iteration,
            "batch_in_epoch": self.batch_in_epoch,
            "visible": self.visible,
            "rng": rng,
            "config": self.cfg.to_hocon(),
            "extra": {"run_index": self.model.index.to_json(), "world_size": self.env.world_size},
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        # The point parameter may have been resized: rebuild optimizer and scheduler over the
        # live parameters *before* loading their states (a scheduler's constructor resets
        # every group's lr to its initial value, which would silently undo the decay).
        self.optimizer, self.scheduler = self._make_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.iteration = state["epoch"], state["iteration"]
        self.batch_in_epoch, self.visible = state["batch_in_epoch"], state["visible"]
        states = state["rng"]
        if len(states) == self.env.world_size:
            set_rng_state(states[self.env.rank])
        else:
            log.warning("the checkpoint was written by %d ranks, this run has %d: random states are not restored "
                        "(the run continues, but not bit for bit)", len(states), self.env.world_size)

    def save(self, name: str) -> Path | None:
        """Every rank hands over its RNG state; rank 0 writes ``checkpoints/<name>.pt`` and
        ``latest.pt`` atomically (call it on every rank)."""
        rng = gather_objects(rng_state())
        if not self.env.is_main:
            return None
        return save_checkpoint(self.ckpt_dir / f"{name}.pt", self._state(rng))

    # ------------------------------------------------------------------ loop
    def _forward_module(self) -> torch.nn.Module:
        """The model, wrapped in DDP when distributed (re-wrapped after the cloud changes)."""
        if not self.env.distributed:
            return self.model
        points_id = id(self.model.points.points)
        if self._ddp is None or self._ddp_points_id != points_id:
            device_ids = [self.env.device.index] if self.env.device.type == "cuda" else None
            self._ddp = DistributedDataParallel(self.model, device_ids=device_ids, find_unused_parameters=True)
            self._ddp_points_id = points_id
        return self._ddp

    def train_step(self, batch: FrameBatch, epoch: int) -> dict[str, float]:
        """One optimizer step on a batch; returns the detached loss terms."""
        self.model.train()
        output = self._forward_module()(batch, epoch)
        losses = self.model.losses(batch, output, epoch)
        self.optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        if self.model.latent_codes is not None and not self.model.latent_codes_trained(epoch):
            self.model.latent_codes.codes.grad = None  # codes are optimised from model.latent.start_epoch
        self.optimizer.step()
        visible = output.visible.any(0)
        self.visible = visible if self.visible is None else self.visible | visible
        self.iteration += 1
        self._log_images(batch, output)
        return {k: float(v.detach()) for k, v in losses.items()}

    def _epoch_loader(self, epoch: int) -> tuple[DataLoader, int]:
        train, seed = self.cfg.train, self.cfg.experiment.seed
        batch_size = batch_size_for(self.model.points.num_points, train.max_points_per_batch, train.max_batch)
        # Its own generator: a DataLoader otherwise draws a seed from the global RNG whenever
        # it is iterated, which would shift every random number after a mid-epoch resume.
        common = dict(collate_fn=collate_frames, num_workers=train.num_workers,
                      generator=torch.Generator().manual_seed(seed + epoch))
        if train.batch_by_video:
            batches = VideoBatches(self.train_set.video_ids(), batch_size, epoch, seed, self.env.rank,
                                   self.env.world_size, start=self.batch_in_epoch)
            return DataLoader(self.train_set, batch_sampler=batches, **common), batch_size
        order = EpochOrder(len(self.train_set), epoch, seed, self.env.rank, self.env.world_size, shuffle=True,
                           start=self.batch_in_epoch * batch_size)
        return DataLoader(self.train_set, batch_size=batch_size, sampler=order, drop_last=False, **common), batch_size

    def end_epoch(self, epoch: int) -> None:
        """Merges visibility over ranks, lets the model grow/prune, steps the LR schedule.

        After the last epoch the point cloud is left as trained: growing it there would leave
        untrained jittered copies and a smaller radius in the final checkpoint.
        """
        if epoch + 1 < self.cfg.train.epochs:
            visible = self.visible
            if visible is None:
                visible = torch.zeros(self.model.points.num_points, dtype=torch.bool, device=self.env.device)
            visible = all_reduce_max(visible.to(torch.uint8)).bool()
            self.model.end_epoch(epoch, visible, self.optimizer)
        self.scheduler.step()
        self.epoch, self.batch_in_epoch, self.visible = epoch + 1, 0, None

    def fit(self, stop_after_iterations: int | None = None) -> None:
        """Trains until ``train.epochs`` (or for ``stop_after_iterations`` more steps)."""
        train = self.cfg.train
        stop_at = None if stop_after_iterations is None else self.iteration + stop_after_iterations
        while self.epoch < train.epochs:
            epoch = self.epoch
            loader, batch_size = self._epoch_loader(epoch)
            tick = time.perf_counter()
            bar = progress(loader, desc=f"epoch {epoch}", disable=not self.env.is_main, leave=False)
            for batch in bar:
                terms = self.train_step(batch.to(self.env.device), epoch)
                self.batch_in_epoch += 1
                now = time.perf_counter()
                self._log_scalars(terms, batch_size, now - tick)
                tick = now
                bar.set_postfix(loss=f"{terms['total']:.4f}", points=self.model.points.num_points, refresh=False)
                if train.checkpoint_every_iters and self.iteration % train.checkpoint_every_iters == 0:
                    self.save(f"iter_{self.iteration:07d}")
                if stop_at is not None and self.iteration >= stop_at:
                    return
            self.end_epoch(epoch)
            self.save(f"epoch_{self.epoch:04d}")
            log.info("epoch %d done: %d points, radius %.4f", epoch, self.model.points.num_points,
                     self.model.points.radius)
        if self.writer is not None:
            self.writer.flush()

    def _log_images(self, batch: FrameBatch, output) -> None:
        """TensorBoard grid of the batch's first frame: GT | rgb | normal | mask."""
        every = self.cfg.train.image_every_iters
        if self.writer is None or not every or self.iteration % every:
            return
        with torch.no_grad():
            tiles = [batch.rgb[0], output.rgb[0], normal_to_display(output.normal[:1], output.mask[:1])[0],
                     output.mask[0, ..., None].expand(-1, -1, 3)]
            grid = torch.cat([t.detach().float().clamp(0, 1).cpu() for t in tiles], dim=1)
        self.writer.add_image("train/gt_rgb_normal_mask", grid, self.iteration, dataformats="HWC")

    def _log_scalars(self, terms: dict[str, float], batch_size: int, seconds: float) -> None:
        if self.writer is None or self.iteration % self.cfg.train.log_every_iters:
            return
        for name, value in terms.items():
            self.writer.add_scalar(f"loss/{name}", value, self.iteration)
        self.writer.add_scalar("points/count", self.model.points.num_points, self.iteration)
        self.writer.add_scalar("points/radius", self.model.points.radius, self.iteration)
        for group in self.optimizer.param_groups:
            self.writer.add_scalar(f"lr/{group.get('name', 'group')}", group["lr"], self.iteration)
        self.writer.add_scalar("speed/iterations_per_s", 1.0 / max(seconds, 1e-9), self.iteration)
        self.writer.add_scalar("speed/frames_per_s", batch_size * self.env.world_size / max(seconds, 1e-9),
                               self.iteration)
