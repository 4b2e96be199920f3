"""Benchmark: quality and cost of the default single-person avatar (``pegasus train`` + ``test``).

For each resolution, trains the embedded target's avatar with the default schedule of
``confs/embedded.conf`` (or ``--conf``) from scratch, then renders and scores its held-out
test video. Each job runs as its own process (exactly what ``bash run/train.sh`` /
``run/test.sh`` run), so the reported peak memory is that job's resident set.

Reported per resolution: training wall time and CPU time (user + system of the process,
robust to other jobs sharing the machine), steps, final point count, training peak memory
(max RSS), test-video PSNR / SSIM / L1 (white background, with the configured erode/dilate, as in
``metrics.json``), test wall time.

Usage (from the repository root)::

    python bench/bm_avatar.py [--resolutions 128 256] [--threads 2] [--out DIR] [section.key=value ...]

The synthetic database is generated first when missing (``pegasus synth-db``, timed apart).
``--repeats`` is accepted for ``bm_main.py`` and ignored (one run takes minutes).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from pegasus.config import load_config
from pegasus.train.checkpoint import latest_checkpoint, load_checkpoint
from pegasus.train.trainer import run_dir_of

REPO = Path(__file__).resolve().parents[1]


def run_job(argv: list[str], env: dict[str, str], log_path: Path) -> dict:
    """Runs one ``pegasus`` job; returns wall s, CPU s, peak RSS (MiB) of the process and the
    machine's 1-minute load average at its start and end (other jobs sharing the cores)."""
    load_start, begin = os.getloadavg()[0], time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - begin
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(argv)} failed; see {log_path}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024,
            "load": (load_start, os.getloadavg()[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each job")
    parser.add_argument("--conf", default=str(REPO / "confs" / "embedded.conf"))
    parser.add_argument("--out", default=None, help="folder of the benchmark's runs (default: "
                        "data/experiments/bench_avatar/<date-time>)")
    parser.add_argument("--repeats", type=int, default=1, help="ignored (accepted for bm_main.py)")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    args = parser.parse_args()

    pegasus = [sys.executable, "-m", "pegasus.cli.main"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or REPO / "data" / "experiments" / "bench_avatar" / stamp).resolve()
    out.mkdir(parents=True, exist_ok=True)
    database = run_job([*pegasus, "synth-db", "--conf", args.conf, *args.overrides], env, out / "synth_db.log")
    rows = []
    for resolution in args.resolutions:
        overrides = [f"experiment.output_root={out}", f"experiment.name=res{resolution}",
                     f"experiment.num_threads={args.threads}", f"dataset.resolution={resolution}", *args.overrides]
        cfg = load_config(args.conf, overrides)
        run_dir = run_dir_of(cfg)
        if run_dir.exists():
            sys.exit(f"{run_dir} exists; remove it or pass --out to a new folder (the benchmark trains from scratch)")
        train = run_job([*pegasus, "train", "--conf", args.conf, *overrides], env, out / f"train_{resolution}.log")
        test = run_job([*pegasus, "test", "--conf", args.conf, *overrides], env, out / f"test_{resolution}.log")
        checkpoint = load_checkpoint(latest_checkpoint(run_dir))
        report = json.loads((run_dir / "test" / "latest" / "test" / "metrics.json").read_text())
        rows.append({"resolution": resolution, "train": train, "test": test, "steps": checkpoint["iteration"],
                     "points": int(checkpoint["model"]["points.points"].shape[0]), "metrics": report["mean"],
                     "scoring": report["settings"]})
        (out / "results.json").write_text(json.dumps(rows, indent=2))

    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {args.threads} threads")
    print(f"database (pegasus synth-db, generated or found complete): {database['wall_s']:.0f} s wall\n")
    print("| image | epochs / steps | train wall | train CPU | load avg | final points | train peak RSS | "
          "test PSNR | test SSIM | test L1 | test wall |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        m, t = row["metrics"], row["train"]
        print(f"| {row['resolution']}² | {cfg.train.epochs} / {row['steps']} | {t['wall_s'] / 60:.1f} min | "
              f"{t['cpu_s'] / 60:.1f} min | {t['load'][0]:.1f}→{t['load'][1]:.1f} | {row['points']:,} | {t['peak_rss_mib']:.0f} MiB | "
              f"{m['psnr']:.2f} dB | {m['ssim']:.4f} | {m['mae']:.4f} | {row['test']['wall_s']:.0f} s |")
    print(f"\nscores: {row['scoring']}")


if __name__ == "__main__":
    main()
