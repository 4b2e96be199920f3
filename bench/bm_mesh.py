"""Benchmark: per-frame time of the mesh rasterizer and the anti-aliased renderer.

Scene: a 9,800-face unit sphere (the size of the stand-in head's mesh) seen from 4 units,
its silhouette covering ~40 % of the image, with two face labels, a headlight and no
vertex colours. Cases: output size 128/256/512, supersampling s ∈ {1, 2} (so the
rasterizer works at s·size), batch 1 and 4 (frames with slightly shifted spheres).

Reported per case, per frame: ``rasterize_mesh`` at the internal resolution and the whole
``render_mesh`` (rasterize, normals, shading, box filter, labels): median wall time and
median process CPU time of the timed repeats after two warm-ups. CPU time sums all
threads; it is the steadier number when other processes share the machine.

Usage (from the repository root)::

    python bench/bm_mesh.py [--repeats 15] [--threads 2] [--device cpu]
"""
from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from pegasus.geometry.camera import PinholeCameras
from pegasus.render.mesh import rasterize_mesh, render_mesh, uv_sphere

CAMERA_DISTANCE = 4.0
COVERED_FRACTION = 0.4
IMAGE_SIZES = (128, 256, 512)
SUPERSAMPLING = (1, 2)
BATCH_SIZES = (1, 4)


@dataclass
class Scene:
    vertices: torch.Tensor  # (B, V, 3)
    faces: torch.Tensor  # (F, 3)
    cameras: PinholeCameras  # batch B, output resolution
    labels: torch.Tensor  # (F,)


def sphere_scene(image_size: int, batch: int, device: str) -> Scene:
    """A unit sphere of 9,800 faces whose silhouette covers ~40 % of a square image."""
    vertices, faces = uv_sphere(1.0, rings=50, segments=100)
    # Silhouette radius in pixels = f·R/√(d² − R²) for a sphere of radius R at distance d.
    radius_px = math.sqrt(COVERED_FRACTION / math.pi) * image_size
    focal = radius_px * math.sqrt(CAMERA_DISTANCE**2 - 1.0)
    K = torch.tensor([[focal, 0.0, image_size / 2], [0.0, focal, image_size / 2], [0.0, 0.0, 1.0]])
    cameras = PinholeCameras(
        K.expand(batch, 3, 3).clone(),
        torch.eye(3).expand(batch, 3, 3).clone(),
        torch.tensor([0.0, 0.0, CAMERA_DISTANCE]).expand(batch, 3).clone(),
        (image_size, image_size),
    )
    shift = torch.linspace(-0.05, 0.05, batch)[:, None, None] * torch.tensor([1.0, 0.5, 0.0])
    labels = (vertices[faces].mean(1)[:, 1] > 0).long() + 1
    return Scene((vertices + shift).to(device), faces.to(device), cameras.to(device), labels.to(device))


def supersampled(cameras: PinholeCameras, factor: int) -> PinholeCameras:
    """The same cameras at ``factor`` × the resolution (what render_mesh rasterizes)."""
    height, width = cameras.image_size
    scale = cameras.K.new_tensor([factor, factor, 1.0])[:, None]
    return PinholeCameras(cameras.K * scale, cameras.R, cameras.t, (height * factor, width * factor))


def time_per_frame(run: Callable[[], object], frames: int, repeats: int, device: str) -> tuple[float, float]:
    """Median (wall, CPU) milliseconds per frame of ``run()`` after two warm-up calls."""
    wall, cpu = [], []
    for index in range(repeats + 2):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        run()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if index >= 2:
            wall.append(time.perf_counter() - wall_start)
            cpu.append(time.process_time() - cpu_start)
    return statistics.median(wall) * 1e3 / frames, statistics.median(cpu) * 1e3 / frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"device {args.device}, torch {torch.__version__}; ms per frame, median wall (CPU)\n"
    )
    print("| image | s | batch | rasterize_mesh | render_mesh | mask mean |")
    print("|---|---|---|---|---|---|")
    for image_size in IMAGE_SIZES:
        for factor in SUPERSAMPLING:
            for batch in BATCH_SIZES:
                scene = sphere_scene(image_size, batch, args.device)
                hires = supersampled(scene.cameras, factor)

                def rasterize() -> object:
                    return rasterize_mesh(scene.vertices, scene.faces, hires)

                def render() -> object:
                    return render_mesh(
                        scene.vertices, scene.faces, scene.cameras, face_labels=scene.labels, supersample=factor
                    )

                raster_wall, raster_cpu = time_per_frame(rasterize, batch, args.repeats, args.device)
                render_wall, render_cpu = time_per_frame(render, batch, args.repeats, args.device)
                coverage = render().mask.mean().item()
                print(
                    f"| {image_size}² | {factor} | {batch} | {raster_wall:.1f} ({raster_cpu:.1f}) "
                    f"| {render_wall:.1f} ({render_cpu:.1f}) | {coverage:.2f} |"
                )


if __name__ == "__main__":
    main()
