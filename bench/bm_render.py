"""Benchmark: point renderer forward+backward, ours vs PyTorch3D (CPU, and CUDA if present).

Scene: :func:`pegasus.render.testing.make_head_scene` (a head-sized bumpy ellipsoid of N
points 4 units in front of the camera, covering ~60 % of the image), radius from
PointAvatar's schedule for that N, K = 10 points per pixel, 4 feature channels, batch 1.
One step = render + backward of a fixed random weighting of the image (so the gradient is
dense), w.r.t. points and features. PyTorch3D runs ``PointsRasterizer`` (its CPU path is
the naive one: every pixel tests every point) + ``AlphaCompositor`` on the same inputs via
:func:`pegasus.render.testing.render_points_pytorch3d`.

Reported per case: median wall time and median process CPU time of the timed repeats after
one warm-up (with one thread the CPU time is robust to other processes sharing the
machine), the speed-ups PyTorch3D/ours computed in the same run, and the peak memory of
live tensors during one step (CPU: from the profiler's allocation records; CUDA: the
allocator's peak). PyTorch3D's C++ scratch memory outside tensors is not counted.

Usage (from the repository root, in the PyTorch3D environment for the comparison)::

    python bench/bm_render.py [--quick] [--repeats 5] [--threads 1] [--output FILE]

Without PyTorch3D only our timings are reported.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the memory profiler: no GPU-probe errors
import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from pegasus.render import render_points  # noqa: E402
from pegasus.render.testing import make_head_scene, render_points_pytorch3d  # noqa: E402

warnings.filterwarnings("ignore", message="Warning: Profiler clears events")

FULL_CASES = [(n, s, None) for n in (5_000, 20_000, 100_000) for s in (128, 256, 512)]
# Extremes of a training run: 400 initial points with a large radius, and the point cap of
# PointAvatar at the radius floor (PyTorch3D is skipped there: minutes per step on CPU).
EXTRA_CASES = [(400, 512, None), (409_600, 512, 0.005)]
QUICK_CASES = [(5_000, 128, None), (20_000, 256, None), (100_000, 256, None)]
PYTORCH3D_MAX_PAIRS = 3e10  # skip PyTorch3D on CPU when N·H·W exceeds this (naive path)
POINTS_PER_PIXEL = 10
CHANNELS = 4


@dataclass
class Timing:
    wall_ms: float
    cpu_ms: float
    peak_mb: float


def peak_tensor_memory_mb(step, device: torch.device) -> float:
    """Peak memory of live tensors during ``step()``, in MiB, above what was live before.

    CUDA: the caching allocator's peak. CPU: the running sum of the profiler's allocation
    records (allocations attributed to each op, frees as they happen), time-ordered.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        step()
    live = peak = 0
    for event in sorted(profiler.events(), key=lambda e: e.time_range.start):
        live += event.self_cpu_memory_usage
        peak = max(peak, live)
    return peak / 2**20


def _step(renderer: str, scene, radius, weights):
    points = scene.points.clone().requires_grad_(True)
    features = scene.features.clone().requires_grad_(True)
    if renderer == "ours":
        image = render_points(points, features, scene.cameras, radius, POINTS_PER_PIXEL).features
    else:
        image = render_points_pytorch3d(points, features, scene.cameras, radius, POINTS_PER_PIXEL)[0]
    (image * weights).sum().backward()
    return points.grad, features.grad


def time_renderer(renderer: str, scene, radius, repeats: int, budget_s: float, device) -> Timing:
    """Warm-up, up to ``repeats`` timed steps within ``budget_s`` (at least one), and one
    profiled step for the peak memory."""
    generator = torch.Generator().manual_seed(1)
    shape = (scene.features.shape[0], *scene.cameras.image_size, CHANNELS)
    weights = torch.rand(shape, generator=generator).to(device=device, dtype=scene.features.dtype)

    def step():
        _step(renderer, scene, radius, weights)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    start = time.perf_counter()
    step()
    warmup_s = time.perf_counter() - start
    walls, cpus = [], []
    for index in range(repeats):
        if index > 0 and (index + 1) * warmup_s > budget_s:
            break
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    peak = peak_tensor_memory_mb(step, device)
    return Timing(1000 * statistics.median(walls), 1000 * statistics.median(cpus), peak)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _fmt(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def run(cases, device, repeats: int, with_pytorch3d: bool) -> list[str]:
    header = ("| N points | image | radius (NDC) | ours ms | PyTorch3D ms | speed-up | ours CPU ms "
              "| PyTorch3D CPU ms | CPU speed-up | ours peak MiB | PyTorch3D peak MiB |")
    rows = [header, "|" + "---|" * (header.count("|") - 1)]
    print(rows[0], flush=True)
    print(rows[1], flush=True)
    for num_points, size, radius in cases:
        scene = make_head_scene(num_points, (size, size), channels=CHANNELS, device=device)
        radius = scene.radius if radius is None else radius
        ours = time_renderer("ours", scene, radius, repeats, budget_s=20.0, device=device)
        theirs = None
        naive_too_slow = device.type == "cpu" and num_points * size * size > PYTORCH3D_MAX_PAIRS
        if with_pytorch3d and not naive_too_slow:
            theirs = time_renderer("pytorch3d", scene, radius, repeats, budget_s=30.0, device=device)
        speed = cpu_speed = None
        if theirs is not None:
            speed, cpu_speed = theirs.wall_ms / ours.wall_ms, theirs.cpu_ms / ours.cpu_ms
        row = (
            f"| {num_points:,} | {size}² | {radius:.4f} | {_fmt(ours.wall_ms, 1)} "
            f"| {_fmt(theirs and theirs.wall_ms, 1)} | {_fmt(speed, 1)}{'×' if speed else ''} "
            f"| {_fmt(ours.cpu_ms, 1)} | {_fmt(theirs and theirs.cpu_ms, 1)} "
            f"| {_fmt(cpu_speed, 1)}{'×' if cpu_speed else ''} | {_fmt(ours.peak_mb)} "
            f"| {_fmt(theirs and theirs.peak_mb)} |"
        )
        print(row, flush=True)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small subset of the cases")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per case (after warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--output", type=Path, default=None, help="also write the markdown here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        import pytorch3d

        pytorch3d_version = pytorch3d.__version__
    except ImportError:
        pytorch3d_version = None

    cases = QUICK_CASES if args.quick else FULL_CASES + EXTRA_CASES
    lines = [
        f"Point renderer, forward+backward, batch 1, K={POINTS_PER_PIXEL}, {CHANNELS} channels "
        f"({datetime.date.today().isoformat()}).",
        f"Machine: {_cpu_name()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"PyTorch3D {pytorch3d_version or 'not installed'}.",
        "",
    ]
    print("\n".join(lines), flush=True)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        title = f"**{device.type.upper()}**"
        if device.type == "cuda":
            title += f" ({torch.cuda.get_device_name(device)})"
        print(title + "\n", flush=True)
        lines += [title, ""]
        lines += run(cases, device, args.repeats, with_pytorch3d=pytorch3d_version is not None)
        lines.append("")
        print(flush=True)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
