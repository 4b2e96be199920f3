"""Benchmark: part-swap synthesis on the embedded database, its speed and its part score.

For each source of renders it runs ``pegasus synth`` (one process: wall time, peak memory,
ms per frame per category from the job records) and scores the edited test video against
the database's ground truth with the part-control scorer of METHOD §8.1
(``pegasus.eval.part_control``): PSNR inside the part region (in), in the removed-part region,
outside it, and the unedited target's PSNR inside (ref), per category, with the frames kept.

Sources (``--renders NAME=PATH``, repeatable; the DB people are those with a render folder):

- ``oracle``: the database's own cross-driven ground truth (each DB person rendered exactly
  with the target's test motion, every 4th frame): the synthesis alone, without bank errors;
- ``shared`` / ``per_video``: a DB avatar bank's ``renders/`` (``run/db_avatar.sh``): the chain.

Usage (from the repository root)::

    python bench/bm_synth.py [--renders NAME=PATH ...] [--threads 1] [--out DIR] [section.key=value ...]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from pegasus.config import load_config
from pegasus.data.imavatar import video_dir
from pegasus.eval.part_control import read_ground_truth, score_part_control
from pegasus.synth.run import RECORDS_DIR, video_root

from _runs import REPO, add_run_arguments, output_folder

CONF = REPO / "confs" / "db_bank_shared.conf"


def _people(renders: Path, driver: str) -> list[str]:
    people = sorted(p.name for p in renders.iterdir() if video_dir(renders, p.name, driver).is_dir()) \
        if renders.is_dir() else []
    if not people:
        sys.exit(f"{renders}: no renders driven by {driver}; build the bank first (bash run/db_avatar.sh "
                 "confs/db_bank_shared.conf) or pass --renders NAME=PATH")
    return people


def run_source(name: str, renders: Path, args, out: Path) -> dict:
    """Synthesizes from one render source and scores it; returns its summary."""
    cfg = load_config(CONF, args.overrides)
    test = cfg.synth.score_video
    people = _people(renders, f"{cfg.synth.target}_{test}")
    videos = [test] if name == "oracle" else list(cfg.synth.videos)
    overrides = [f"synth.renders={renders}", f"synth.root={out / name}", f"synth.videos=[{','.join(videos)}]",
                 f"synth.db_people=[{','.join(people)}]", f"experiment.num_threads={args.threads}", *args.overrides]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    begin = time.perf_counter()
    with open(out / f"{name}.log", "a") as log:
        done = subprocess.run([sys.executable, "-m", "pegasus.cli.main", "synth", "--conf", str(CONF), *overrides],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.exit(f"{name}: synthesis failed; see {out / (name + '.log')}")
    wall = time.perf_counter() - begin
    cfg = load_config(CONF, overrides)
    speed, frames, kept = defaultdict(list), 0, 0
    for video in videos:
        for path in sorted((video_root(cfg.synth, video) / RECORDS_DIR).glob("*.json")):
            record = json.loads(path.read_text())
            if not record.get("skipped"):
                speed[record["category"]].append(record["ms_per_frame"])
            frames, kept = frames + record["frames"], kept + record["kept"]
    own = video_dir(cfg.dataset.root, cfg.synth.target, test)
    entries = [e for e in read_ground_truth(cfg.synth.ground_truth, cfg.synth.target,
                                            [c.name for c in cfg.synth.categories]) if e.db_person in people]
    report = score_part_control(entries, video_root(cfg.synth, test), own, own, cfg.synth.resolution)
    return {"renders": str(renders), "people": people, "videos": videos, "wall_s": wall,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "frame_jobs": frames, "kept": kept,
            "ms_per_frame": {c: sum(v) / len(v) for c, v in speed.items()}, "summary": report["summary"]}


def _cell(value, fmt="{:.2f}") -> str:
    return "—" if value is None else fmt.format(value)


def print_tables(results: dict) -> None:
    print("\n| renders | DB people | videos | wall | peak RSS | frame-jobs kept |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {len(r['people'])} | {'+'.join(r['videos'])} | {r['wall_s'] / 60:.1f} min | "
              f"{r['peak_rss_mb']:.0f} MB | {r['kept']} / {r['frame_jobs']} |")
    print("\nms per frame per category (compose, align, filter; reading and writing excluded):\n")
    categories = sorted({c for r in results.values() for c in r["ms_per_frame"]})
    print("| renders | " + " | ".join(categories) + " |")
    print("|---|" + "---|" * len(categories))
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(_cell(r["ms_per_frame"].get(c), "{:.1f}") for c in categories) + " |")
    print("\nPart score of the edited test frames (dB; in / unedited in / removed / out; frames scored):\n")
    print("| renders | category | in | unedited in | gain | removed | out | SSIM | frames | worst entry |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        for category, s in r["summary"].items():
            gain = None if s["psnr_in"] is None or s["ref_psnr_in"] is None else s["psnr_in"] - s["ref_psnr_in"]
            worst = s.get("worst")
            cells = [name, category, _cell(s["psnr_in"]), _cell(s["ref_psnr_in"]), _cell(gain, "{:+.2f}"),
                     _cell(s["psnr_removed"]), _cell(s["psnr_out"]), _cell(s["ssim"], "{:.3f}"), str(s["frames"]),
                     "" if not worst else f"{worst['entry']} {_cell(worst['psnr_in'])}"]
            print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cfg = load_config(CONF, [])
    default = [f"oracle={Path(cfg.synth_db.root) / 'cross_driven'}", f"shared={cfg.synth.renders}"]
    parser.add_argument("--renders", action="append", metavar="NAME=PATH",
                        help=f"render sources (default: {' '.join(default)})")
    add_run_arguments(parser, "bench_synth", threads=1)
    args = parser.parse_args()
    out = output_folder(args, "bench_synth")
    results = {}
    for item in args.renders or default:
        name, _, path = item.partition("=")
        results[name] = run_source(name, Path(path).resolve(), args, out)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print_tables(results)


if __name__ == "__main__":
    main()
