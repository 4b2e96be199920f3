"""One training run from a config: what ``pegasus train`` and the DB avatar bank call."""
from __future__ import annotations

import logging
from pathlib import Path

from ..config import Config
from .build import new_avatar
from .distributed import init_distributed, seed_everything
from .trainer import Trainer, run_dir_of

__all__ = ["train_avatar", "finished_checkpoint"]

log = logging.getLogger(__name__)


def finished_checkpoint(cfg: Config) -> Path | None:
    """The checkpoint written after the run's last epoch (``train.epochs``), or None while the
    run is missing or unfinished."""
    path = run_dir_of(cfg) / "checkpoints" / f"epoch_{cfg.train.epochs:04d}.pt"
    return path if path.is_file() else None


def train_avatar(cfg: Config, mode: str = "new") -> Path:
    """Trains the avatar of ``cfg`` (``mode``: new, resume or overwrite, see
    :class:`~pegasus.train.trainer.Trainer`); returns the run folder."""
    env = init_distributed(cfg.experiment.device)
    seed_everything(cfg.experiment.seed, env.rank)
    model, train_set = new_avatar(cfg, env.device)
    trainer = Trainer(cfg, env, model, train_set, mode=mode)
    trainer.fit()
    log.info("training done: %s", trainer.run_dir)
    return trainer.run_dir
