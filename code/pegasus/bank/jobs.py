"""The bank's training jobs: which avatars, their configs, shards of them, what is finished.

Per-video mode has one job per DB video (independent: spread them over local GPUs, a Slurm
array or any cluster array with ``--shard i/n``); shared mode has one job over every DB
video (one multi-identity model, DDP as any run). A job is an ordinary training run under
``<bank.root>/avatars/<job>/``, so ``pegasus test`` and ``--resume`` work on it as on any run.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import Config, ConfigError
from ..data.settings import VideoEntry

__all__ = ["AVATARS_DIR", "BankJob", "bank_jobs", "parse_shard", "shard_of", "job_config"]

AVATARS_DIR = "avatars"


@dataclass(frozen=True)
class BankJob:
    """One training run of the bank: its run-folder name and the DB videos it trains on."""

    name: str
    people: tuple[VideoEntry, ...]


def bank_jobs(cfg: Config) -> list[BankJob]:
    """The jobs of ``cfg.bank`` in a fixed order (per_video: one per entry of ``bank.people``)."""
    bank = cfg.bank
    if bank.mode == "shared":
        if not cfg.model.shape_cancel or cfg.model.latent.code_dim == 0:
            raise ConfigError(f"{cfg.source}: bank.mode = shared trains one model of many people in the generic "
                              "canonical space: it needs model.shape_cancel = true and model.latent.code_dim > 0 "
                              "(confs/db_bank_shared.conf)")
        return [BankJob("shared", bank.people)]
    return [BankJob(f"{entry.subject}_{entry.video}", (entry,)) for entry in bank.people]


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` → (i, n) with 0 ≤ i < n: this process takes every n-th job from the i-th."""
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not sep or not 0 <= i < n:
        raise ConfigError(f"--shard {text!r}: expected i/n with 0 ≤ i < n (e.g. 0/4 … 3/4)")
    return i, n


def shard_of(jobs: list[BankJob], index: int, count: int) -> list[BankJob]:
    """Shard ``index`` of ``count``: jobs index, index + count, … (disjoint; together all jobs)."""
    return jobs[index::count]


def _entries_value(entries: tuple[VideoEntry, ...]) -> str:
    return json.dumps([entry.to_dict() for entry in entries])


def job_config(cfg: Config, job: BankJob) -> Config:
    """The training config of ``job``: ``cfg`` training on the job's DB videos (tested on their
    ``bank.test_video``), its run folder ``<bank.root>/avatars/<job>``."""
    test = []
    if cfg.bank.test_video is not None:
        held_out = tuple(replace(entry, video=cfg.bank.test_video, frames=None) for entry in job.people)
        test = [f"dataset.test={_entries_value(held_out)}"]
    return cfg.with_overrides([
        f"dataset.train={_entries_value(job.people)}", *test,
        f"experiment.output_root={json.dumps(str(Path(cfg.bank.root) / AVATARS_DIR))}",
        f"experiment.name={json.dumps(job.name)}",
    ])
