"""Benchmark: the generative avatar (confs/pegasus.conf) on the embedded default, its cost and
its part-control score.

Runs ``pegasus train`` (stage 1 then stage 2, one process) and ``pegasus test`` (test renders,
the part control, the part-control score) and reports per stage: optimizer steps, wall time
(from the stage's TensorBoard events), points at the end; for the whole training: wall and
CPU time and peak memory of the process; then the part-control table
(``<run>/test/latest/part_control/part_control.json``) and a profile of one stage-2 step (the
share of the per-point pass, the render and the backward pass).

``--collect RUN_DIR`` reads a run made by hand instead (``--time-log`` a ``/usr/bin/time -v``
log of its training for CPU time and peak memory); nothing is trained then.

Usage (from the repository root)::

    python bench/bm_generative.py [--threads 2] [--out DIR] [section.key=value ...]
    python bench/bm_generative.py --collect RUN_DIR [--time-log FILE] [section.key=value ...]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from pegasus.config import load_config
from pegasus.data.batch import collate_frames
from pegasus.train.build import new_avatar

from _runs import REPO, add_run_arguments, output_folder

CONF = REPO / "confs" / "pegasus.conf"


def _stage(run_dir: Path) -> dict:
    """Steps, wall time and final points of one stage's run folder (TensorBoard events)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = sorted((run_dir / "tensorboard").glob("events.*"))
    if not events:
        return {}
    scalars = EventAccumulator(str(events[-1]), size_guidance={"scalars": 0}).Reload()
    total = scalars.Scalars("loss/total")
    points = scalars.Scalars("points/count")
    return {"steps": total[-1].step, "wall_min": (total[-1].wall_time - total[0].wall_time) / 60,
            "points": int(points[-1].value), "loss_first": total[0].value, "loss_last": total[-1].value}


def _time_log(path: Path) -> dict:
    """Wall, CPU time and peak memory from a ``/usr/bin/time -v`` log."""
    text = path.read_text(errors="replace")

    def value(label: str) -> str:
        return re.search(rf"{re.escape(label)}: ([\d.:]+)", text).group(1)

    wall = value("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")
    seconds = sum(float(v) * 60 ** i for i, v in enumerate(reversed(wall)))
    cpu = float(value("User time (seconds)")) + float(value("System time (seconds)"))
    return {"wall_min": seconds / 60, "cpu_min": cpu / 60,
            "peak_rss_mb": float(value("Maximum resident set size (kbytes)")) / 1024}


def _step_profile(cfg, threads: int, repeats: int = 3) -> dict:
    """Seconds of the per-point pass, the render and the backward pass of a stage-2 step at
    the cap of points (a fresh model; the cost does not depend on the weights)."""
    torch.set_num_threads(threads)
    cfg = cfg.with_overrides([f"model.points.init_count={cfg.model.points.max_points}"])
    model, dataset = new_avatar(cfg, torch.device("cpu"))
    model.train()
    video = dataset.video_ids()
    first = [i for i, v in enumerate(video) if v == video[-1]][:cfg.train.max_batch]
    batch = collate_frames([dataset[i] for i in first])
    times = {"point_pass_s": [], "render_s": [], "loss_s": [], "backward_s": []}
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        state = model.point_pass(batch, epoch=0)
        t1 = time.perf_counter()
        out = model.render_pass(batch, state)
        t2 = time.perf_counter()
        loss = model.losses(batch, out, 0)["total"]
        t3 = time.perf_counter()
        loss.backward()
        t4 = time.perf_counter()
        for key, value in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            times[key].append(value)
    return {key: sorted(values[1:])[len(values[1:]) // 2] for key, values in times.items()} | {
        "points": model.points.num_points, "frames": len(first)}


def _unlocked_score(cfg, run: Path, reconstruction_psnr: float | None) -> dict:
    """The part-control table without the identity lock (the lock's effect, same renders)."""
    from pegasus.eval.metrics import load_lpips
    from pegasus.generative.outputs import score_generative
    from pegasus.train.build import split_dataset, trained_avatar, video_table
    from pegasus.train.checkpoint import latest_checkpoint, load_checkpoint

    cfg = cfg.with_overrides(["generative.control.identity_lock=false"])
    model = trained_avatar(cfg, load_checkpoint(latest_checkpoint(run)), torch.device("cpu"))
    test_set = split_dataset(cfg, video_table(cfg, "test"), model.index, model.head_model, "test")
    return score_generative(model, cfg, test_set, run / "test" / "latest" / "part_control_unlocked",
                            load_lpips(cfg.test.lpips_weights), reconstruction_psnr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser, "bench_generative", threads=2)
    parser.add_argument("--collect", help="an existing run folder: only collect its numbers")
    parser.add_argument("--time-log", help="with --collect: the /usr/bin/time -v log of its training")
    args = parser.parse_args()
    if args.collect:
        run = Path(args.collect).resolve()
        out = run.parent
        overrides = [f"experiment.output_root={run.parent}", f"experiment.name={run.name}", *args.overrides]
        cfg = load_config(CONF, overrides)
        training = _time_log(Path(args.time_log)) if args.time_log else {}
    else:
        out = output_folder(args, "bench_generative")
        overrides = [f"experiment.output_root={out}", f"experiment.num_threads={args.threads}", *args.overrides]
        cfg = load_config(CONF, overrides)
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        pegasus = [sys.executable, "-m", "pegasus.cli.main"]
        start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        with open(out / "train.log", "a") as log:
            subprocess.run([*pegasus, "train", "--conf", str(CONF), "--resume", *overrides], check=True, env=env,
                           stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        training = {"wall_min": (time.perf_counter() - start) / 60,
                    "cpu_min": (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / 60,
                    "peak_rss_mb": after.ru_maxrss / 1024}
        run = out / cfg.experiment.name
        start = time.perf_counter()
        with open(out / "test.log", "a") as log:
            subprocess.run([*pegasus, "test", "--conf", str(CONF), *overrides], check=True, env=env, stdout=log,
                           stderr=subprocess.STDOUT, cwd=REPO)
        training["test_wall_min"] = (time.perf_counter() - start) / 60
    table_path = run / "test" / "latest" / "part_control" / "part_control.json"
    table = json.loads(table_path.read_text()) if table_path.is_file() else None
    results = {"config": str(CONF), "overrides": overrides, "training": training,
               "stage1": _stage(run / "stage1"), "stage2": _stage(run), "part_control": table,
               "part_control_unlocked": _unlocked_score(cfg, run, table and table["reconstruction_psnr"]),
               "step_profile": _step_profile(cfg, args.threads), "load_average": os.getloadavg()}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps({k: v for k, v in results.items() if not k.startswith("part_control")}, indent=1))
    for folder in ("part_control", "part_control_unlocked"):
        markdown = run / "test" / "latest" / folder / "part_control.md"
        if markdown.is_file():
            print(f"{folder}:\n{markdown.read_text()}")


if __name__ == "__main__":
    main()
