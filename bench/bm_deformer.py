"""Benchmark: the avatar's deformation with its Jacobian, and whole training steps (CPU/CUDA).

Part 1, deformation: per-point deformer MLP (default 4 × 128) → FLAME-guided deformation of
N canonical points into B = 4 frames → Jacobian → deformed normals, then backward of a fixed
random weighting of points and normals w.r.t. the points and the MLP. Ours
(:meth:`FlameDeformer.with_tangents` + :func:`deform_points_with_jacobian`, forward mode
written out) against the reference :func:`jacobian_by_forward_ad` (``torch.func`` vmapped
``jvp``, what the avatar used before), in the same run, on the stand-in head with 12
expression components (its own) and 50 (FLAME's count, zero-padded).

Part 2, a whole training step of :class:`PointAvatar` (forward, losses, backward, Adam) with
the configured sizes, batch 4, on the first frames of the embedded target's training video
(needs the database: ``pegasus synth-db``; skipped otherwise), for several point counts.

Reported: median wall time of the timed repeats after one warm-up, and the speed-up of
ours over the reference. Timings need an otherwise idle machine: PyTorch's OpenMP threads
spin, so shared cores distort them (the load average is printed).

Usage (from the repository root)::

    python bench/bm_deformer.py [--repeats 5] [--threads 2] [--conf confs/embedded.conf] [overrides...]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from pegasus.avatar.deformer import (
    FlameDeformer,
    deform_normals,
    deform_points,
    deform_points_with_jacobian,
    flame_state,
    jacobian_by_forward_ad,
)
from pegasus.config import load_config
from pegasus.data.batch import collate_frames
from pegasus.data.images import DataError
from pegasus.headmodel import head_model_from_config
from pegasus.train.build import new_avatar

REPO = Path(__file__).resolve().parents[1]
FRAMES = 4
DEFORM_POINTS = (2_500, 10_000)
# (points, extra overrides) of the training-step table
STEP_CASES = [(400, []), (2_500, []), (10_000, []), (10_000, ["model.normal_jacobian_grad=false"]),
              (10_000, ["loss.eikonal=0"]), (10_000, ["head_model.n_expr=50"])]


def median_seconds(step, repeats: int) -> float:
    """Median wall time of ``step()`` over ``repeats`` calls after one warm-up."""
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def deformation_steps(conf: str, overrides: list[str], n_expr: int, num_points: int, device: torch.device):
    """(ours, reference) closures: one forward+backward of the deformation each."""
    cfg = load_config(conf, [*overrides, f"head_model.n_expr={n_expr}"])
    hm = head_model_from_config(cfg).to(device)
    g = torch.Generator().manual_seed(0)
    deformer = FlameDeformer(n_expr, cfg.model.deformer.hidden_layers, cfg.model.deformer.width).to(device)
    with torch.no_grad():  # a trained deformer is not zero: random small outputs
        deformer.mlp.out.weight.normal_(0, 0.05, generator=g)
    expression = (torch.randn(FRAMES, n_expr, generator=g) * 0.5).to(device)
    pose = torch.zeros(FRAMES, 15)
    pose[:, 3:6] = torch.randn(FRAMES, 3, generator=g) * 0.2
    frame = flame_state(hm, None, expression, pose.to(device))
    canonical = flame_state(hm, None, torch.zeros(1, n_expr, device=device),
                            hm.canonical_pose(cfg.head_model.canonical_jaw_opening)[None])
    index = torch.randint(0, hm.n_vertices, (num_points,), generator=g).to(device)
    points = (canonical.vertices[0, index] + 0.01 * torch.randn(num_points, 3, generator=g).to(device))
    points = points[None].requires_grad_(True)
    canonical_normals = torch.nn.functional.normalize(torch.randn(1, num_points, 3, generator=g), dim=-1).to(device)
    weight_points = torch.randn(FRAMES, num_points, 3, generator=g).to(device)
    weight_normals = torch.randn(FRAMES, num_points, 3, generator=g).to(device)

    def finish(deformed, jacobian):
        normals = deform_normals(canonical_normals, jacobian)
        ((deformed * weight_points).sum() + (normals * weight_normals).sum()).backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def ours():
        bases, tangents = deformer.with_tangents(points)
        finish(*deform_points_with_jacobian(points, bases, tangents, frame, canonical))

    def reference():
        finish(*jacobian_by_forward_ad(lambda x: deform_points(x, deformer(x), frame, canonical), points))

    return ours, reference


def training_step(conf: str, overrides: list[str], num_points: int, device: torch.device):
    """One PointAvatar training step on the first frames of the configured dataset, or None."""
    cfg = load_config(conf, overrides)
    try:
        model, data = new_avatar(cfg, torch.device("cpu"))
    except DataError as error:
        print(f"training step skipped: no dataset ({error}); run `pegasus synth-db` first")
        return None
    hm = model.head_model
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # points on the canonical head surface at the schedule's radius for N
        vertices = hm(expression=model.canonical_expression[:1]).vertices[0]
        index = torch.randint(0, hm.n_vertices, (num_points,), generator=g)
        model.points.points = torch.nn.Parameter(vertices[index].cpu() + 0.005 * torch.randn(num_points, 3, generator=g))
        model.to(device)
        s = model.points.schedule
        upsamplings = max(0.0, torch.log2(torch.tensor(num_points / s.init_count)).item())
        model.points.radius = max(s.init_radius * s.radius_factor ** upsamplings, s.min_radius)
    optimizer = torch.optim.Adam(model.parameter_groups())
    batch = collate_frames([data[i] for i in range(FRAMES)]).to(device)
    epoch = cfg.train.epochs - 1

    def step():
        out = model(batch, epoch=epoch)
        total = model.losses(batch, out, epoch)["total"]
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--conf", default=str(REPO / "confs" / "embedded.conf"))
    parser.add_argument("--quick", action="store_true", help="only the smaller cases")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = load_config(args.conf, args.overrides)
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {device}, {args.threads} threads, load avg {os.getloadavg()[0]:.2f}\n")

    print(f"Deformation + Jacobian + normals, forward + backward, {FRAMES} frames, deformer "
          f"{cfg.model.deformer.hidden_layers} × {cfg.model.deformer.width}\n")
    print("| points | expression components | ours | torch.func jvp (reference) | speed-up |")
    print("|---|---|---|---|---|")
    for num_points in DEFORM_POINTS[:1] if args.quick else DEFORM_POINTS:
        for n_expr in (12, 50):
            ours, reference = deformation_steps(args.conf, args.overrides, n_expr, num_points, device)
            t_ours, t_ref = median_seconds(ours, args.repeats), median_seconds(reference, args.repeats)
            print(f"| {num_points:,} | {n_expr} | {t_ours * 1e3:.0f} ms | {t_ref * 1e3:.0f} ms | "
                  f"{t_ref / t_ours:.1f}× |", flush=True)

    print(f"\nPointAvatar training step (forward, losses, backward, Adam), batch {FRAMES}, "
          f"{cfg.dataset.resolution}², head_model.n_expr = {cfg.head_model.n_expr or 'all of the model'}\n")
    print("| points | settings | step |")
    print("|---|---|---|")
    for num_points, extra in STEP_CASES[:2] if args.quick else STEP_CASES:
        step = training_step(args.conf, [*args.overrides, *extra], num_points, device)
        if step is None:
            break
        print(f"| {num_points:,} | {', '.join(extra) or 'defaults'} | {median_seconds(step, args.repeats) * 1e3:.0f} ms |",
              flush=True)
    print(f"\nload avg after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
