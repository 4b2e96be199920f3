"""Benchmark: how well an avatar holds up on frames and views it never trained on.

Two parts, each a set of ``pegasus`` jobs run as their own processes (what ``run/*.sh`` run):

* **synthetic** — the embedded target's avatar (``confs/embedded.conf``): its held-out test
  video, and the database's novel sets (``novel/target/target/{views,expressions}``): the
  head turned by yaw and pitch offsets around the mean training pose, and expressions beyond
  the training range, each scored against ground truth (PSNR, SSIM) with the **hole
  fraction**: the share of the ground-truth silhouette where the avatar's coverage < 0.5;
* **real** — one real clip split by frame ranges (first 80 % train, last 20 % test) for each
  of ``--clips`` (``../shared/data/real``) and each head model of ``--heads`` (the stand-in,
  and ICT-FaceKit light from ``../shared/data/heads/ict_light``): the clip is preprocessed
  (cached: complete stages are skipped), the avatar trained on the first frames and scored on
  the last ones (mean, worst frame) and, for the train/test gap, on every 4th training frame;
  its yaw turn (no ground truth) at 20–30° by the share of the posed head model's silhouette
  it leaves uncovered (``head_holes``) and by its own enclosed holes (``interior_holes``).

Usage (from the repository root)::

    python bench/bm_fidelity.py [--parts synthetic real] [--clips d18 d19 d20] [--heads standin ict]
                                [--threads 2] [--jobs 1] [--out DIR] [--reuse] [section.key=value ...]

The overrides apply to every training job (e.g. ``model.points.max_points=24000``). Results:
``<out>/results.json`` and a markdown table on stdout.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _runs import REPO, add_run_arguments, output_folder

SHARED = REPO.parent / "shared" / "data"
#: head models and their overrides: ICT-FaceKit's expressions are blendshape activations in [0, 1]
#: (its README), and its jaw joint opens the mouth, so the fit holds jawOpen at zero
HEADS = {"standin": [], "ict": [f"head_model.path={SHARED / 'heads' / 'ict_light' / 'ict_light.npz'}",
                                "head_model.expression_range=[0, 1]",
                                "preprocess.tracking.fixed_expressions=[jawOpen]"]}
TRAIN_FRACTION = 0.8
TRAIN_FRAME_STRIDE = 4  # training frames scored for the train/test gap


def run(argv: list[str], log_path: Path, threads: int) -> float:
    """Runs one ``pegasus`` job (exit on failure); returns its wall seconds."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    begin = time.perf_counter()
    with open(log_path, "w") as log:
        code = subprocess.run([sys.executable, "-m", "pegasus.cli.main", *argv], cwd=REPO, env=env, stdout=log,
                              stderr=subprocess.STDOUT).returncode
    if code:
        sys.exit(f"pegasus {' '.join(argv[:1])} failed (exit {code}); see {log_path}")
    return time.perf_counter() - begin


def mean_scores(path: Path) -> dict:
    """Means and the worst frame's PSNR of a set's ``metrics.json``."""
    report = json.loads(path.read_text())
    psnrs = [f["psnr"] for f in report["frames"]]
    return {**report["mean"], "worst_psnr": min(psnrs), "frames": report["count"]}


def synthetic(out: Path, args, overrides: list[str]) -> dict:
    conf = str(REPO / "confs" / "embedded.conf")
    common = [f"experiment.output_root={out}", "experiment.name=synthetic", f"experiment.num_threads={args.threads}",
              *overrides]
    run(["synth-db", "--conf", conf, *common], out / "synth_db.log", args.threads)
    wall = run(["train", "--conf", conf, "--overwrite", *common], out / "synthetic_train.log", args.threads)
    run(["test", "--conf", conf, *common, "test.sets=[test, novel]"], out / "synthetic_test.log", args.threads)
    tested = out / "synthetic" / "test" / "latest"
    views = {}
    for name in ("views", "expressions"):
        summary = tested / "novel" / "target" / name / "views.json"
        views[name] = json.loads(summary.read_text())["views"] if summary.is_file() else []
    return {"train_wall_s": wall, "test": mean_scores(tested / "test" / "metrics.json"), "novel": views}


def yaw_holes(metrics: Path, low: float = 20.0, centre: float = 10.0) -> dict:
    """Mean holes of the yaw set's frames at yaw ≤ −low, ≥ +low and within ±centre degrees:
    ``head`` (share of the posed head model's silhouette left uncovered) and ``interior`` (the
    render's own enclosed holes)."""
    rows = json.loads(metrics.read_text())["frames"]
    sides = {"left": [r for r in rows if r["yaw_deg"] <= -low], "right": [r for r in rows if r["yaw_deg"] >= low],
             "centre": [r for r in rows if abs(r["yaw_deg"]) <= centre]}
    return {kind: {side: sum(r[f"{kind}_holes"] for r in chosen) / len(chosen) for side, chosen in sides.items()}
            for kind in ("head", "interior")}


def _train_frame_scores(conf: str, overrides: list[str], run_dir: Path, n_train: int, clip: str) -> dict:
    """Scores of every TRAIN_FRAME_STRIDE-th training frame (rendered in this process)."""
    import torch

    from pegasus.config import load_config
    from pegasus.eval.render_sets import Scoring, render_dataset
    from pegasus.train.build import avatar_render_fn, split_dataset, trained_avatar, video_table
    from pegasus.train.checkpoint import load_checkpoint

    cfg = load_config(conf, [
        *overrides, f"dataset.test=[{{subject={clip}, video={clip}, frames=[0, {n_train}], stride={TRAIN_FRAME_STRIDE}}}]",
        "dataset.train=[{subject=x, video=y}]"])  # the test entry may overlap no training entry
    device = torch.device("cpu")
    model = trained_avatar(cfg, load_checkpoint(run_dir / "checkpoints" / "latest.pt"), device)
    dataset = split_dataset(cfg, video_table(cfg, "test"), model.index, model.head_model, "test")
    folder = run_dir / "test" / "latest" / "train_frames"
    render_dataset(avatar_render_fn(model, device), dataset, folder, ("rgb", "mask"), gt=True, progress=False,
                   scoring=Scoring(erode_dilate=cfg.test.erode_dilate))
    return mean_scores(folder / "metrics.json")


def real_clip(out: Path, clip: str, head: str, args, overrides: list[str]) -> dict:
    data = out / f"data_{head}"
    run(["preprocess", "--conf", str(REPO / "confs" / "preprocess.conf"), "--video", str(SHARED / "real" / f"{clip}.mp4"),
         "--subject", clip, f"preprocess.output_root={data}", *HEADS[head]], out / f"{clip}_{head}_preprocess.log",
        args.threads)
    params = json.loads((data / clip / clip / clip / "flame_params.json").read_text())
    count = len(params["frames"])
    n_train = round(TRAIN_FRACTION * count)
    name = f"{clip}_{head}"
    common = [f"dataset.root={data}", f"dataset.train=[{{subject={clip}, video={clip}, frames=[0, {n_train}]}}]",
              f"dataset.test=[{{subject={clip}, video={clip}, frames=[{n_train}, {count}]}}]",
              f"experiment.output_root={out}", f"experiment.name={name}", f"experiment.num_threads={args.threads}",
              "test.sets=[test, yaw]", *HEADS[head], *overrides]
    conf = str(REPO / "confs" / "base.conf")
    tested = out / name / "test" / "latest" / "test" / "metrics.json"
    wall = None
    if not (args.reuse and tested.is_file()):
        wall = run(["train", "--conf", conf, "--overwrite", *common], out / f"{name}_train.log", args.threads)
        run(["test", "--conf", conf, *common], out / f"{name}_test.log", args.threads)
    yaw = out / name / "test" / "latest" / "yaw" / "metrics.json"
    if not (yaw.is_file() and "head_holes" in json.loads(yaw.read_text())["mean"]):  # tested before it was scored
        run(["test", "--conf", conf, *common, "test.sets=[yaw]"], out / f"{name}_yaw.log", args.threads)
    summary = json.loads((data / clip / "preprocess" / "summary.json").read_text())["videos"][clip]
    return {"clip": clip, "head": head, "frames": count, "train_frames": n_train, "train_wall_s": wall,
            "fit_error_px": summary["reprojection_error_px"]["mean"],
            "test": mean_scores(tested), "train": _train_frame_scores(conf, common, out / name, n_train, clip),
            "yaw_holes": yaw_holes(yaw)}


def _minutes(seconds: float | None) -> str:
    return "(reused)" if seconds is None else f"{seconds / 60:.1f} min"


def print_tables(results: dict) -> None:
    if "synthetic" in results:
        s = results["synthetic"]
        print(f"\nSynthetic target (confs/embedded.conf): test video {s['test']['psnr']:.2f} dB, SSIM "
              f"{s['test']['ssim']:.3f}, worst frame {s['test']['worst_psnr']:.2f} dB; training {s['train_wall_s'] / 60:.1f} "
              "min\n")
        print("| novel view (yaw / pitch, degrees) | PSNR | SSIM | hole fraction |")
        print("|---|---|---|---|")
        for v in s["novel"]["views"]:
            print(f"| {v['yaw_deg']:+.0f} / {v['pitch_deg']:+.0f} | {v['psnr']:.2f} dB | {v['ssim']:.3f} | "
                  f"{100 * v['holes']:.2f} % |")
        for v in s["novel"]["expressions"]:
            print(f"| novel expressions ({v['frames']} frames) | {v['psnr']:.2f} dB | {v['ssim']:.3f} | "
                  f"{100 * v['holes']:.2f} % |")
    if results.get("real"):
        print("\n| clip | head | frames train / test | fit error | test PSNR | test SSIM | worst test frame | "
              "training frames PSNR | yaw holes −30…−20° / +20…+30° (±10°) | train wall |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in results["real"]:
            t, holes = r["test"], r["yaw_holes"]["head"]
            print(f"| {r['clip']} | {r['head']} | {r['train_frames']} / {r['frames'] - r['train_frames']} | "
                  f"{r['fit_error_px']:.1f} px | {t['psnr']:.2f} dB | {t['ssim']:.3f} | {t['worst_psnr']:.2f} dB | "
                  f"{r['train']['psnr']:.2f} dB | {100 * holes['left']:.1f} % / {100 * holes['right']:.1f} % "
                  f"({100 * holes['centre']:.1f} %) | {_minutes(r['train_wall_s'])} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["synthetic", "real"], choices=["synthetic", "real"])
    parser.add_argument("--clips", nargs="+", default=["d18", "d19", "d20"])
    parser.add_argument("--heads", nargs="+", default=["standin", "ict"], choices=sorted(HEADS))
    parser.add_argument("--jobs", type=int, default=1, help="real-clip jobs run at once")
    parser.add_argument("--reuse", action="store_true", help="keep runs of --out that were already tested (real part)")
    add_run_arguments(parser, "bench_fidelity", threads=2)
    args = parser.parse_args()
    out = output_folder(args, "bench_fidelity")
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{args.threads} threads × {args.jobs} jobs, overrides {args.overrides}, out {out}")
    results: dict = {"overrides": args.overrides}
    if "real" in args.parts:
        cases = [(clip, head) for head in args.heads for clip in args.clips]
        with ThreadPoolExecutor(args.jobs) as pool:
            results["real"] = list(pool.map(lambda case: real_clip(out, *case, args, args.overrides), cases))
    if "synthetic" in args.parts:
        results["synthetic"] = synthetic(out, args, args.overrides)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print_tables(results)


if __name__ == "__main__":
    main()
