"""Benchmark: time of generating the synthetic database (``pegasus synth-db``), per stage.

Builds the database of ``confs/embedded.conf`` from scratch into a temporary folder (or
``--root``), then runs the build again to time the check that skips complete work.
Reported per stage: wall time, frames rendered, frames per second, jobs, CPU seconds of
the workers (robust to other processes sharing the machine) and worker seconds per step
(scene building, rendering, writing PNGs, encoding previews).

Usage (from the repository root)::

    python bench/bm_synth_db.py [--threads 2] [--quick] [--root DIR] [section.key=value ...]

``--threads`` is the number of worker processes (each renders on one torch thread);
``--quick`` builds a small database (2 DB people, 32 frames per video); ``--repeats`` is
accepted for ``bm_main.py`` and ignored (one build takes minutes).
"""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from pegasus.config import load_config
from pegasus.synthdb.build import build_database

CONF = Path(__file__).resolve().parents[1] / "confs" / "embedded.conf"
QUICK = ["synth_db.n_db=2", "synth_db.train_frames=32", "synth_db.test_frames=32"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="worker processes")
    parser.add_argument("--quick", action="store_true", help="a small database")
    parser.add_argument("--root", default=None, help="output folder (default: a temporary folder)")
    parser.add_argument("--repeats", type=int, default=1, help="ignored (accepted for bm_main.py)")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.root or Path(scratch) / "synth_db")
        overrides = [f"synth_db.root={root}", f"synth_db.workers={args.threads}", *(QUICK if args.quick else []),
                     *args.overrides]
        cfg = load_config(CONF, overrides)
        begin = time.perf_counter()
        first = build_database(cfg)
        total = time.perf_counter() - begin
        begin = time.perf_counter()
        again = build_database(cfg)
        rerun = time.perf_counter() - begin
    db = cfg.synth_db
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {args.threads} workers")
    print(f"database: {len(first.people)} people, {db.train_frames}+{db.test_frames} frames per person at "
          f"{db.image_size}², supersample {db.supersample}, ground truth every {db.gt_frame_stride}th test frame\n")
    print("| stage | wall s | frames | frames/s | jobs | worker CPU s | scene s | render s | write s | preview s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for stage in first.stages:
        steps = [f"{stage.steps.get(step, 0.0):.1f}" for step in ("scene", "render", "write", "preview")]
        print(f"| {stage.name} | {stage.seconds:.1f} | {stage.frames} | {stage.frames_per_second:.1f} | {stage.jobs} | "
              f"{stage.cpu_seconds:.1f} | " + " | ".join(steps) + " |")
    print(f"| **total** (with set-up: head model, workers) | **{total:.1f}** | {sum(s.frames for s in first.stages)} "
          f"| | | {sum(s.cpu_seconds for s in first.stages):.1f} | | | | |")
    print(f"\nsecond run (everything complete; only the contact sheet is redrawn): {rerun:.1f} s, "
          f"{sum(s.jobs for s in again.stages[:2])} video/ground-truth jobs")


if __name__ == "__main__":
    main()
