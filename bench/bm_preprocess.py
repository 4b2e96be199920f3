"""Benchmark: milliseconds per 512² frame of each stage of the preprocessing chain.

Runs ``pegasus.preprocess.preprocess_subject`` with ``confs/preprocess.conf`` on real clips
(``../shared/data/real``, or ``--clips``) into a temporary folder and reports, per stage,
wall and process-CPU milliseconds per frame (median over ``--repeats`` runs; CPU time
counts every thread of the process and, unlike wall time, not the time other processes
hold the cores), the sub-steps of ``analyse``, and the default chain's total without
fitting (detect + crop + analyse + filter + write) next to the 50 ms target. FLAME fitting
(``track``, all clips together) and the preview are reported on their own rows.

Usage (from the repository root)::

    python bench/bm_preprocess.py [--frames 120] [--repeats 1] [--threads 1] [--clips DIR] [section.key=value ...]

``--threads`` sets torch's threads (the fitting) and OMP_NUM_THREADS before MediaPipe and
OpenCV load.
"""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "confs" / "preprocess.conf"
CLIPS = REPO.parent / "shared" / "data" / "real"
CHAIN = ("detect", "crop", "analyse", "filter", "write")  # the default chain without fitting
TARGET_MS = 50.0


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120, help="frames per clip (preprocess.max_frames)")
    parser.add_argument("--repeats", type=int, default=1, help="runs; the median per stage is reported")
    parser.add_argument("--threads", type=int, default=1, help="torch threads and OMP_NUM_THREADS")
    parser.add_argument("--clips", type=Path, default=CLIPS, help="folder of .mp4 clips")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    return parser.parse_args()


def _per_frame(report) -> dict[str, tuple[float, float]]:
    """{stage, or "analyse · step": (wall ms, CPU ms) per frame} of one run, over all clips
    (steps have wall time only: CPU is NaN)."""
    rows = {}
    for stage in {run.stage for run in report.stages}:
        runs = [run for run in report.stages if run.stage == stage]
        frames = sum(run.frames for run in runs)
        rows[stage] = (1000 * sum(r.seconds for r in runs) / frames, 1000 * sum(r.cpu_seconds for r in runs) / frames)
        for step in runs[0].steps:
            rows[f"{stage} · {step}"] = (1000 * sum(r.steps[step] for r in runs) / frames, float("nan"))
    return rows


def main() -> int:
    args = _parse()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    from pegasus.config import load_config
    from pegasus.preprocess.pipeline import find_videos, preprocess_subject

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    if not args.clips.is_dir():
        print(f"no clips at {args.clips}; pass --clips", file=sys.stderr)
        return 1
    runs = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as scratch:
            cfg = load_config(CONF, [f"preprocess.output_root={scratch}", f"preprocess.max_frames={args.frames}",
                                     f"standin.output={Path(scratch) / 'standin.npz'}", *args.overrides])
            sources = find_videos(args.clips, cfg.preprocess.video_suffixes)
            report = preprocess_subject(cfg, "bench", sources)
            runs.append(_per_frame(report))
    rows = {key: tuple(statistics.median(values) for values in zip(*(run[key] for run in runs))) for key in runs[0]}
    chain = [sum(rows[stage][k] for stage in CHAIN) for k in (0, 1)]
    settings = cfg.preprocess
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {args.threads} thread(s), load average {os.getloadavg()[0]:.2f} at the end")
    frames = {run.video: run.frames for run in report.stages if run.stage == "detect"}
    print(f"clips: {', '.join(f'{name} ({count} frames)' for name, count in frames.items())}, "
          f"crop {settings.image_size}², "
          f"landmarks {settings.landmarks.backend}, matte {settings.matte.backend}, "
          f"parsing {settings.parsing.backend}, "
          f"median of {args.repeats} run(s)\n")
    print("| stage | wall ms/frame | CPU ms/frame |")
    print("|---|---|---|")
    order = [*CHAIN[:2], *sorted(k for k in rows if k.startswith("analyse")), *CHAIN[3:]]
    for key in order:
        wall, cpu = rows[key]
        print(f"| {key} | {wall:.1f} | {'' if cpu != cpu else f'{cpu:.1f}'} |")
    print(f"| **chain without fitting** (target ≤ {TARGET_MS:.0f}) | **{chain[0]:.1f}** | **{chain[1]:.1f}** |")
    for key, label in (("track", "track (FLAME fitting, all clips together)"), ("preview", "preview")):
        if key in rows:
            print(f"| {label} | {rows[key][0]:.1f} | {rows[key][1]:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
