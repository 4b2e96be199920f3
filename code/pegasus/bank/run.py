"""Builds the DB avatar bank: trains its jobs, renders them cross-driven, scores the renders.

:func:`build_bank` does the jobs of one shard (all of them by default), each step skipped
where its output is complete, so the same command resumes an interrupted bank, runs as one
task of a cluster array (``--shard i/n``) or as one of several local processes. The summary
``<bank.root>/bank.json`` lists every job's training cost and every render folder's scores
found on disk (so each shard's call updates it with what is finished so far).
"""
from __future__ import annotations

import json
import logging
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import Config, ConfigError, save_config
from ..data.dataset import VideoDataset
from ..data.imavatar import subject_dir, with_identity
from ..data.settings import VideoEntry
from ..data.videos import VideoTable
from ..synthdb.build import cross_driven_name
from ..train.build import trained_avatar
from ..train.checkpoint import load_checkpoint
from ..train.distributed import resolve_device
from ..train.run import finished_checkpoint, train_avatar
from ..train.trainer import run_dir_of
from ..utils import write_json
from .cross_drive import CrossDriveJob, driver_params, render_complete, render_cross_driven, render_folder
from .jobs import BankJob, bank_jobs, job_config, shard_of
from .preview import preview_sheet
from .score import score_cross_driven

__all__ = ["BANK_STEPS", "JOB_RECORD", "SUMMARY_FILE", "BankReport", "build_bank", "bank_summary"]

log = logging.getLogger(__name__)

BANK_STEPS: tuple[str, ...] = ("train", "render")
JOB_RECORD = "bank_job.json"
SUMMARY_FILE = "bank.json"


@dataclass
class BankReport:
    """What one call did: jobs trained now, folders rendered now, the summary written."""

    trained: list[str]
    rendered: list[Path]
    summary: Path


def _train(cfg: Config, job: BankJob) -> bool:
    """Trains (or finishes) one job; False when it was already complete."""
    if finished_checkpoint(cfg) is not None:
        log.info("bank: %s is trained (%s); skipped", job.name, run_dir_of(cfg))
        return False
    wall, cpu = time.perf_counter(), time.process_time()
    resumed = (run_dir_of(cfg) / "checkpoints").is_dir()
    train_avatar(cfg, "resume")
    record = {"job": job.name, "people": [f"{e.subject}/{e.video}" for e in job.people],
              "train_wall_s": time.perf_counter() - wall, "train_cpu_s": time.process_time() - cpu,
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "resumed": resumed,
              "threads": torch.get_num_threads()}
    write_json(run_dir_of(cfg) / JOB_RECORD, record, indent=1)
    return True


def _render(cfg: Config, job: BankJob, device: torch.device) -> list[Path]:
    """Renders every person of a trained job with every driver; scores where ground truth exists."""
    checkpoint = finished_checkpoint(cfg)
    if checkpoint is None:
        raise ConfigError(f"bank: {run_dir_of(cfg)} is not trained to train.epochs = {cfg.train.epochs}; run the "
                          "train step first (bash run/db_avatar.sh)")
    bank, model = cfg.bank, None
    stat = checkpoint.stat()
    rendered = []
    first_videos: dict[str, VideoEntry] = {}  # one render per person: its first video gives its shape
    for entry in job.people:
        first_videos.setdefault(entry.subject, entry)
    for person in first_videos.values():
        own = None  # the person's own video, indexed by the run: read once, when a render is due
        for driver in bank.drivers:
            folder = render_folder(bank.root, person.subject, driver)
            record = {"run": str(run_dir_of(cfg)), "checkpoint": checkpoint.name, "checkpoint_bytes": stat.st_size,
                      "checkpoint_mtime_ns": stat.st_mtime_ns, "person": f"{person.subject}/{person.video}",
                      "driver": f"{driver.subject}/{driver.video}", "driver_frames": list(driver.frames or ()),
                      "driver_stride": driver.stride * bank.driver_stride, "resolution": cfg.dataset.resolution}
            if not render_complete(folder, record):
                if model is None:
                    model = trained_avatar(cfg, load_checkpoint(checkpoint, map_location=device), device)
                if own is None:
                    table = VideoTable([person], cfg.dataset.root)
                    own = VideoDataset(table, model.index.video_indices(table), resolution=cfg.dataset.resolution,
                                       n_expr=model.head_model.n_expr, n_shape=model.head_model.n_shape)
                params = with_identity(driver_params(driver, cfg.dataset.root, bank.driver_stride),
                                       own.table[0].video.shape_params)
                render_cross_driven(model, device, CrossDriveJob(own[0], params, folder, record), own.image_size,
                                    bank.render_batch)
                rendered.append(folder)
            truth = (None if bank.ground_truth is None else
                     subject_dir(bank.ground_truth, person.subject) / cross_driven_name(driver.subject, driver.video))
            if truth is not None and truth.is_dir() and not (folder / "metrics.json").is_file():
                means = score_cross_driven(folder, truth, person.subject, erode=cfg.test.erode_dilate)
                log.info("bank: %s vs ground truth: psnr %.2f dB, ssim %.4f", folder, means["psnr"], means["ssim"])
    return rendered


def bank_summary(cfg: Config) -> Path:
    """Writes ``<bank.root>/bank.json`` from what is on disk: each job's training record and each
    render folder's mean scores (null where not yet done); and per driver a preview sheet
    ``preview_<driver>_<video>.png`` of the complete renders (:func:`preview_sheet`)."""
    bank = cfg.bank
    jobs, renders = [], []
    for job in bank_jobs(cfg):
        run = run_dir_of(job_config(cfg, job))
        record = run / JOB_RECORD
        jobs.append({"job": job.name, "run": str(run),
                     "training": json.loads(record.read_text()) if record.is_file() else None})
        for person in dict.fromkeys(entry.subject for entry in job.people):
            for driver in bank.drivers:
                folder = render_folder(bank.root, person, driver)
                metrics = folder / "metrics.json"
                renders.append({"person": person, "driver": f"{driver.subject}/{driver.video}",
                                "folder": str(folder), "complete": (folder / "render.json").is_file(),
                                "scores": json.loads(metrics.read_text())["mean"] if metrics.is_file() else None})
    path = Path(bank.root) / SUMMARY_FILE
    write_json(path, {"mode": bank.mode, "jobs": jobs, "renders": renders}, indent=1)
    for driver in bank.drivers:
        done = [(r["person"], Path(r["folder"])) for r in renders
                if r["complete"] and r["driver"] == f"{driver.subject}/{driver.video}"]
        if done:
            driver_folder = VideoTable([driver], cfg.dataset.root)[0].video.path
            preview_sheet(Path(bank.root) / f"preview_{cross_driven_name(driver.subject, driver.video)}.png",
                          driver_folder, done)
    return path


def build_bank(cfg: Config, shard: tuple[int, int] = (0, 1), steps: tuple[str, ...] = BANK_STEPS) -> BankReport:
    """Trains and renders the jobs of ``shard`` (index, count) of the bank of ``cfg``.

    Each job's training resumes from its latest checkpoint and is skipped when finished; each
    render folder is skipped when its record matches (:func:`render_cross_driven`).
    """
    unknown = [s for s in steps if s not in BANK_STEPS]
    if unknown:
        raise ConfigError(f"bank steps {unknown} unknown; steps are {list(BANK_STEPS)}")
    if not cfg.model.semantic:
        log.warning("bank: model.semantic is false: the renders get no label maps (part-swap synthesis needs them; "
                    "confs/db_bank.conf turns it on)")
    device = resolve_device(cfg.experiment.device)
    trained, rendered = [], []
    jobs = shard_of(bank_jobs(cfg), *shard)
    log.info("bank (%s): %d job(s) in shard %d/%d: %s", cfg.bank.mode, len(jobs), shard[0], shard[1],
             [job.name for job in jobs])
    save_config(cfg, Path(cfg.bank.root) / "bank.conf")
    for job in jobs:
        job_cfg = job_config(cfg, job)
        if "train" in steps and _train(job_cfg, job):
            trained.append(job.name)
        if "render" in steps:
            rendered += _render(job_cfg, job, device)
    return BankReport(trained, rendered, bank_summary(cfg))
