"""Benchmark: the DB avatar bank, per-video against shared, on the embedded database.

Builds the bank of ``confs/db_bank.conf`` (one avatar per DB video) and of
``confs/db_bank_shared.conf`` (one multi-identity model) with ``pegasus db-avatar`` (each
mode its own process; ``--jobs n`` runs the per-video bank as n shard processes side by
side), then reads ``<bank.root>/bank.json``: training wall and CPU time and peak memory of
every job (recorded by the job itself), final points, render time, and the cross-driven
renders of the target's test video scored against the database's cross-driven ground truth —
PSNR / SSIM over the image and PSNR inside each part region (docs/bank.md, "Scores").

Usage (from the repository root)::

    python bench/bm_bank.py [--modes per_video shared] [--threads 2] [--jobs 1] [--out DIR]
                            [section.key=value ...]

An interrupted benchmark continues where it stopped when given the same ``--out`` (complete
jobs and renders are skipped; their recorded times are reported). ``--repeats`` is accepted
for ``bm_main.py`` and ignored.
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

from pegasus.bank.score import part_categories
from pegasus.train.checkpoint import load_checkpoint

from _runs import REPO, add_run_arguments, output_folder

CONFS = {"per_video": REPO / "confs" / "db_bank.conf", "shared": REPO / "confs" / "db_bank_shared.conf"}


def run(argv: list[str], env: dict[str, str], log_path: Path) -> float:
    """Runs one ``pegasus`` process; returns its wall seconds (exits on failure)."""
    begin = time.perf_counter()
    with open(log_path, "a") as log:
        if subprocess.run(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
            sys.exit(f"{' '.join(argv)} failed; see {log_path}")
    return time.perf_counter() - begin


def build(mode: str, args, out: Path, env: dict[str, str]) -> dict:
    """Trains (``--jobs`` shard processes) and renders one mode's bank; returns its summary."""
    pegasus = [sys.executable, "-m", "pegasus.cli.main", "db-avatar", "--conf", str(CONFS[mode]),
               f"bank.root={out / mode}", f"experiment.num_threads={args.threads}", *args.overrides]
    jobs = args.jobs if mode == "per_video" else 1
    begin = time.perf_counter()
    procs = [subprocess.Popen([*pegasus, "--shard", f"{i}/{jobs}", "--steps", "train"], cwd=REPO, env=env,
                              stdout=open(out / f"{mode}_train_{i}.log", "a"), stderr=subprocess.STDOUT)
             for i in range(jobs)]
    if any(p.wait() != 0 for p in procs):
        sys.exit(f"{mode}: training failed; see {out}/{mode}_train_*.log")
    train_wall = time.perf_counter() - begin
    render_wall = run([*pegasus, "--steps", "render"], env, out / f"{mode}_render.log")
    summary = json.loads((out / mode / "bank.json").read_text())
    for job in summary["jobs"]:
        job["points"] = int(load_checkpoint(Path(job["run"]) / "checkpoints" / "latest.pt")["model"]
                            ["points.points"].shape[0])
    return {**summary, "train_wall_s": train_wall, "render_wall_s": render_wall}


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _cell(value, fmt: str = "{:.2f}") -> str:
    return "—" if value is None else fmt.format(value)


def print_tables(results: dict, args) -> None:
    parts = part_categories()
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {args.threads} threads per process, per-video shards side by side: "
          f"{args.jobs}\n")
    print("| bank | jobs | training wall (this call) | training CPU (jobs) | peak RSS | points | render wall | "
          "PSNR | SSIM | holes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mode, summary in results.items():
        jobs = summary["jobs"]
        cpu = sum(j["training"]["train_cpu_s"] for j in jobs if j["training"])
        rss = max((j["training"]["peak_rss_mib"] for j in jobs if j["training"]), default=None)
        scored = [r["scores"] for r in summary["renders"] if r["scores"]]
        print(f"| {mode} | {len(jobs)} | {summary['train_wall_s'] / 60:.1f} min | {cpu / 60:.1f} min | "
              f"{_cell(rss, '{:.0f} MiB')} | {sum(j['points'] for j in jobs):,} | {summary['render_wall_s'] / 60:.1f} min | "
              f"{_cell(_mean(s['psnr'] for s in scored))} dB | {_cell(_mean(s['ssim'] for s in scored), '{:.4f}')} | "
              f"{_cell(_mean(100 * s['holes'] for s in scored), '{:.2f} %')} |")
    print("\nPSNR inside each part region (dB; — where no DB person has the part in the scored frames):\n")
    print("| bank | person | " + " | ".join(parts) + " | image |")
    print("|---|---|" + "---|" * (len(parts) + 1))
    for mode, summary in results.items():
        for render in summary["renders"]:
            if render["scores"]:
                s = render["scores"]
                print(f"| {mode} | {render['person']} | "
                      + " | ".join(_cell(s.get(f"psnr_{p}")) for p in parts) + f" | {s['psnr']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=["per_video", "shared"], choices=sorted(CONFS))
    parser.add_argument("--jobs", type=int, default=1, help="per-video shard processes side by side")
    add_run_arguments(parser, "bench_bank", threads=2)
    args = parser.parse_args()
    out = output_folder(args, "bench_bank")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    run([sys.executable, "-m", "pegasus.cli.main", "synth-db", "--conf", str(CONFS["per_video"]), "--when-used",
         "bank", *args.overrides], env, out / "synth_db.log")
    results = {mode: build(mode, args, out, env) for mode in args.modes}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print_tables(results, args)


if __name__ == "__main__":
    main()
