"""Writes the synthetic database: people's videos, ground truth, manifest, contact sheet.

Layout under ``synth_db.root`` (see docs/synth_db.md)::

    <person>/<person>/<video>/            IMavatar video folders (image, mask, semantic,
                                          keypoint.json, iris.json, flame_params.json)
    <person>/<person>/synth_db.json       record: the person and a settings hash per video
    ground_truth/<person>/<person>/<category>_<db>/   "person wearing db's part": image,
                                          mask, semantic, mask_object (the part), flame_params
    ground_truth/<person>/<person>/synth_db.json       record of the entries
    ground_truth/manifest.json            the entries: person, video, category, db person, frames, paths;
                                          and the novel sets
    novel/<person>/<person>/{views,expressions}/   the target and the new person at novel head
                                          rotations and expressions (views.json: each frame's offsets)
    cross_driven/<db>/<db>/<target>_<test video>/  each DB person driven by the target's test
                                          video: the target's cameras, expressions and poses, the DB
                                          person's own shape, look and light (every
                                          ``driven_frame_stride``-th frame; the DB avatar bank's
                                          cross-driven renders are scored against it)
    people.json                           the population: roles, identities, parts, videos
    contact_sheet.png, previews/<person>_<video>.mp4, synth_db.conf (the resolved config)

Work is split into jobs (a video, a person's ground truth with one DB person, a contact
sheet card) run by ``synth_db.workers`` processes. A job whose recorded settings hash
matches is skipped; every video folder is written atomically (``write_video``), and the
records are written by this process after the job's folders are in place, so an
interrupted run never leaves a half video that loads or a record that lies.
"""
from __future__ import annotations

import logging
import multiprocessing
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..config import Config, ConfigError, save_config
from ..data.images import to_uint8
from ..data.imavatar import (FLAME_PARAMS_FILE, VIEWS_FILE, FlameFrame, FlameParams, keypoint_fields,
                             numbered_frame_names, read_video, subject_dir, video_dir, with_identity, write_video)
from ..utils.media import write_mp4, write_png
from ..geometry.camera import cameras_from_imavatar
from ..headmodel import head_model_from_config, resolve_head_model_path
from ..utils.records import digest, file_digest, read_record, write_record
from ..utils.progress import progress
from .motion import sample_motion
from .novel import NOVEL_DIR, NOVEL_SETS, novel_motion
from .people import Person, sample_population
from ..data.parts import colour_labels
from .previews import contact_sheet, person_card, preview_frame
from .scene import SceneRenderer, orbit_camera, video_cameras
from .settings import SynthDbSettings

__all__ = ["GROUND_TRUTH_DIR", "CROSS_DRIVEN_DIR", "RECORD_FILE", "MANIFEST_FILE", "PEOPLE_FILE", "CONTACT_SHEET_FILE", "PREVIEW_DIR",
           "StageTiming", "BuildReport", "build_database", "ground_truth_name", "cross_driven_name"]

log = logging.getLogger(__name__)

GROUND_TRUTH_DIR = "ground_truth"
CROSS_DRIVEN_DIR = "cross_driven"
RECORD_FILE = "synth_db.json"
MANIFEST_FILE = "manifest.json"
PEOPLE_FILE = "people.json"
CONTACT_SHEET_FILE = "contact_sheet.png"
PREVIEW_DIR = "previews"
_CARD_YAWS_DEG = (0.0, 40.0)
_CARD_LIGHT = np.array([0.35, -0.45, -1.0])
_SHEET_COLUMNS = 2
_STANDIN_EXTRAS = ("vertex_region", "region_names", "shape_names", "expr_names")


def ground_truth_name(category: str, db_person: str) -> str:
    """Folder name of "a person wearing ``db_person``'s ``category``" (METHOD §5/§6)."""
    return f"{category}_{db_person}"


def cross_driven_name(driver: str, video: str) -> str:
    """Folder name of "a person driven by ``driver``'s ``video``" (its motion and cameras)."""
    return f"{driver}_{video}"


# ---------------------------------------------------------------------------------------
# Jobs (run in worker processes or in this one)


@dataclass(frozen=True)
class _VideoJob:
    person: Person
    video: str


@dataclass(frozen=True)
class _GroundTruthJob:
    person: Person
    donor: Person
    categories: tuple[str, ...]


@dataclass(frozen=True)
class _DrivenJob:
    person: Person  # the DB person rendered
    driver: Person  # whose test video's motion and cameras drive it


@dataclass(frozen=True)
class _NovelJob:
    person: Person
    which: str


@dataclass(frozen=True)
class _CardJob:
    person: Person


@dataclass
class _JobResult:
    """What a job did: frames rendered, wall seconds per step and CPU seconds in all."""

    frames: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    card: np.ndarray | None = None

    def add(self, step: str, seconds: float) -> None:
        self.seconds[step] = self.seconds.get(step, 0.0) + seconds


@dataclass
class _WorkerState:
    settings: SynthDbSettings
    renderer: SceneRenderer


_STATE: _WorkerState | None = None


def _init_worker(cfg_data: dict, source: str, threads: int) -> None:
    """Loads the head model and builds the renderer once per process."""
    global _STATE
    torch.set_num_threads(threads)
    cfg = Config.from_data(cfg_data, source)
    settings = cfg.synth_db
    _STATE = _WorkerState(settings, SceneRenderer(head_model_from_config(cfg), settings))


def _render_batches(scene, motion, intrinsics: np.ndarray, world_mats: np.ndarray, indices: Sequence[int],
                    categories: Sequence[str], result: _JobResult) -> dict[str, list]:
    """Renders frames ``indices`` of a video in batches → lists of uint8 images, uint8 masks,
    labels, part masks per category and (70, 2) pixel landmarks."""
    state = _STATE
    size = state.settings.image_size
    out = {"images": [], "masks": [], "labels": [], "landmarks": [], **{c: [] for c in categories}}
    for start in range(0, len(indices), state.settings.batch_size):
        batch = np.asarray(indices[start:start + state.settings.batch_size])
        begin = time.perf_counter()
        cameras = cameras_from_imavatar(torch.from_numpy(intrinsics).float(),
                                        torch.from_numpy(world_mats[batch]).float(), (size, size))
        frames = state.renderer.render(scene, motion.expression[batch], motion.pose[batch], cameras,
                                       motion.light_direction, categories)
        result.add("render", time.perf_counter() - begin)
        result.frames += len(batch)
        out["images"] += list(to_uint8(frames.images))
        out["masks"] += list(to_uint8(frames.masks))
        out["labels"] += list(frames.labels)
        out["landmarks"] += list(frames.landmarks)
        for name in categories:
            out[name] += list(to_uint8(frames.part_masks[name]))
    return out


def _flame_params(shape: np.ndarray, motion, intrinsics: np.ndarray, world_mats: np.ndarray,
                  landmarks: Sequence[np.ndarray], size: int) -> FlameParams:
    """flame_params.json of a rendered video (bbox: the 68 landmarks' box, normalised)."""
    frames = tuple(FlameFrame(name, world_mats[k], motion.expression[k], motion.pose[k],
                              *keypoint_fields(landmarks[k], (size, size)))
                   for k, name in enumerate(numbered_frame_names(len(motion))))
    return FlameParams(intrinsics, shape, frames)


def _run_video(job: _VideoJob) -> _JobResult:
    state, result = _STATE, _JobResult()
    settings, renderer = state.settings, state.renderer
    begin = time.perf_counter()
    motion = sample_motion(settings, job.person.name, job.video, settings.frame_count(job.video), renderer.expr_names,
                           renderer.model.n_expr)
    intrinsics, world_mats = video_cameras(settings, motion)
    scene = renderer.scene(job.person)
    result.add("scene", time.perf_counter() - begin)
    frames = _render_batches(scene, motion, intrinsics, world_mats, range(len(motion)), (), result)
    begin = time.perf_counter()
    params = _flame_params(scene.shape.double().numpy(), motion, intrinsics, world_mats, frames["landmarks"],
                           settings.image_size)
    write_video(video_dir(settings.root, job.person.name, job.video), params, frames["images"], frames["masks"],
                semantics=frames["labels"], keypoints=[lm[:68] for lm in frames["landmarks"]],
                iris=[lm[68:70] for lm in frames["landmarks"]], overwrite=True)
    result.add("write", time.perf_counter() - begin)
    if settings.previews:
        begin = time.perf_counter()
        write_mp4(Path(settings.root) / PREVIEW_DIR / f"{job.person.name}_{job.video}.mp4",
                  (preview_frame(image, labels) for image, labels in zip(frames["images"], frames["labels"])),
                  settings.fps)
        result.add("preview", time.perf_counter() - begin)
    return result


def _run_ground_truth(job: _GroundTruthJob) -> _JobResult:
    state, result = _STATE, _JobResult()
    settings, renderer = state.settings, state.renderer
    test = read_video(video_dir(settings.root, job.person.name, settings.test_video), require_images=False)
    indices = list(range(0, len(test.frames), settings.gt_frame_stride))
    params = FlameParams(test.intrinsics, test.shape_params, tuple(test.frames[i].flame for i in indices))
    motion = sample_motion(settings, job.person.name, settings.test_video, len(test.frames), renderer.expr_names,
                           renderer.model.n_expr)
    world_mats = np.stack([f.flame.world_mat for f in test.frames])
    for name in job.categories:
        begin = time.perf_counter()
        scene = renderer.scene(job.person.with_part(name, job.donor.part(name)))
        result.add("scene", time.perf_counter() - begin)
        frames = _render_batches(scene, motion, test.intrinsics, world_mats, indices, (name,), result)
        begin = time.perf_counter()
        folder = video_dir(Path(settings.root) / GROUND_TRUTH_DIR, job.person.name,
                           ground_truth_name(name, job.donor.name))
        write_video(folder, params, frames["images"], frames["masks"], semantics=frames["labels"],
                    extra_folders={"mask_object": frames[name]}, overwrite=True)
        result.add("write", time.perf_counter() - begin)
    return result


def _run_driven(job: _DrivenJob) -> _JobResult:
    state, result = _STATE, _JobResult()
    settings, renderer = state.settings, state.renderer
    begin = time.perf_counter()
    test = read_video(video_dir(settings.root, job.driver.name, settings.test_video), require_images=False)
    indices = list(range(0, len(test.frames), settings.driven_frame_stride))
    motion = sample_motion(settings, job.driver.name, settings.test_video, len(test.frames), renderer.expr_names,
                           renderer.model.n_expr)
    own = sample_motion(settings, job.person.name, settings.train_video, 1, renderer.expr_names, renderer.model.n_expr)
    motion = replace(motion, light_direction=own.light_direction)  # the DB person's light, as its avatar learnt it
    scene = renderer.scene(job.person)
    result.add("scene", time.perf_counter() - begin)
    world_mats = np.stack([f.flame.world_mat for f in test.frames])
    frames = _render_batches(scene, motion, test.intrinsics, world_mats, indices, (), result)
    begin = time.perf_counter()
    driven = with_identity(FlameParams(test.intrinsics, test.shape_params, tuple(test.frames[i].flame for i in indices)),
                           scene.shape.double().numpy())
    size = (settings.image_size, settings.image_size)
    params = replace(driven, frames=tuple(
        replace(frame, **dict(zip(("bbox", "flame_keypoints"), keypoint_fields(landmarks, size))))
        for frame, landmarks in zip(driven.frames, frames["landmarks"])))
    folder = video_dir(Path(settings.root) / CROSS_DRIVEN_DIR, job.person.name,
                       cross_driven_name(job.driver.name, settings.test_video))
    write_video(folder, params, frames["images"], frames["masks"], semantics=frames["labels"],
                keypoints=[lm[:68] for lm in frames["landmarks"]], iris=[lm[68:70] for lm in frames["landmarks"]],
                overwrite=True)
    result.add("write", time.perf_counter() - begin)
    return result


def _run_novel(job: _NovelJob) -> _JobResult:
    state, result = _STATE, _JobResult()
    settings, renderer = state.settings, state.renderer
    begin = time.perf_counter()
    train = sample_motion(settings, job.person.name, settings.train_video, settings.train_frames, renderer.expr_names,
                          renderer.model.n_expr)
    motion, described = novel_motion(settings, job.person.name, train, job.which, renderer.expr_names)
    intrinsics, world_mats = video_cameras(settings, motion)
    scene = renderer.scene(job.person)
    result.add("scene", time.perf_counter() - begin)
    frames = _render_batches(scene, motion, intrinsics, world_mats, range(len(motion)), (), result)
    begin = time.perf_counter()
    params = _flame_params(scene.shape.double().numpy(), motion, intrinsics, world_mats, frames["landmarks"],
                           settings.image_size)
    folder = video_dir(Path(settings.root) / NOVEL_DIR, job.person.name, job.which)
    write_video(folder, params, frames["images"], frames["masks"], semantics=frames["labels"],
                keypoints=[lm[:68] for lm in frames["landmarks"]], iris=[lm[68:70] for lm in frames["landmarks"]],
                overwrite=True)
    names = [f.name for f in params.frames]
    write_record(folder / VIEWS_FILE, {"frames": [{"frame": n, **d} for n, d in zip(names, described)]})
    result.add("write", time.perf_counter() - begin)
    return result


def _run_card(job: _CardJob) -> _JobResult:
    state, result = _STATE, _JobResult()
    settings, renderer = state.settings, state.renderer
    begin = time.perf_counter()
    scene = renderer.scene(job.person)
    views = [renderer.render(scene, np.zeros((1, renderer.model.n_expr)), np.zeros((1, 15)),
                             orbit_camera(settings, yaw, settings.contact_tile), _CARD_LIGHT) for yaw in _CARD_YAWS_DEG]
    tiles = [to_uint8(view.images[0]) for view in views] + [colour_labels(views[0].labels[0])]
    result.card = person_card(job.person, tiles)
    result.frames = len(_CARD_YAWS_DEG)
    result.add("render", time.perf_counter() - begin)
    return result


def _run_job(job) -> _JobResult:
    runner = {_VideoJob: _run_video, _GroundTruthJob: _run_ground_truth, _DrivenJob: _run_driven,
              _NovelJob: _run_novel, _CardJob: _run_card}[type(job)]
    begin = time.process_time()
    result = runner(job)
    result.cpu_seconds = time.process_time() - begin
    return result


# ---------------------------------------------------------------------------------------
# Records, hashes and the driver


def _read_hashes(path: Path) -> dict:
    """A record's hashes ({} when absent or unreadable: everything is redone)."""
    hashes = (read_record(path) or {}).get("hashes", {})
    return dict(hashes) if isinstance(hashes, dict) else {}


@dataclass
class StageTiming:
    """Wall-clock time of one stage and the work it did.

    Attributes:
        name: stage name; seconds: wall-clock seconds; frames: frames rendered;
        jobs: jobs run; skipped: jobs skipped as complete; steps: worker wall seconds per
        step (scene building, rendering, writing, previews), summed over workers;
        cpu_seconds: CPU time of the jobs, summed over workers (robust to other processes
        sharing the machine).
    """

    name: str
    seconds: float
    frames: int
    jobs: int
    skipped: int
    steps: dict[str, float]
    cpu_seconds: float = 0.0

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class BuildReport:
    """What :func:`build_database` did: the root, the stages and the written summary files."""

    root: Path
    stages: list[StageTiming]
    people: tuple[Person, ...]
    manifest: Path
    contact_sheet: Path

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)


class _Runner:
    """Runs jobs in a pool of worker processes (or in this process for one worker).

    Every job runs on one torch thread: workers, not threads, use the cores (the
    rasterizer's threads slow down badly when a core is busy), and the output does not
    depend on the number of workers.
    """

    def __init__(self, cfg: Config, settings: SynthDbSettings):
        args = (cfg.to_dict(), cfg.source, 1)
        self.pool = None
        self.threads = torch.get_num_threads()
        if settings.workers > 1:
            self.pool = multiprocessing.get_context("spawn").Pool(settings.workers, initializer=_init_worker,
                                                                  initargs=args)
        else:
            _init_worker(*args)

    def run(self, name: str, jobs: list, on_done: Callable[[object, _JobResult], None], skipped: int) -> StageTiming:
        begin = time.perf_counter()
        timing = StageTiming(name, 0.0, 0, len(jobs), skipped, {})
        results = self.pool.imap_unordered(_run_indexed, list(enumerate(jobs))) if self.pool else (
            (k, _run_job(job)) for k, job in enumerate(jobs))
        for index, result in progress(results, total=len(jobs), desc=name, unit="job", leave=False):
            on_done(jobs[index], result)
            timing.frames += result.frames
            timing.cpu_seconds += result.cpu_seconds
            for step, seconds in result.seconds.items():
                timing.steps[step] = timing.steps.get(step, 0.0) + seconds
        timing.seconds = time.perf_counter() - begin
        log.info("%s: %d jobs (%d skipped as complete), %d frames in %.1f s", name, len(jobs), skipped, timing.frames,
                 timing.seconds)
        return timing

    def close(self, abort: bool = False) -> None:
        """Stops the workers (at once when ``abort``) and restores this process's threads."""
        if self.pool is not None:
            if abort:
                self.pool.terminate()
            else:
                self.pool.close()
            self.pool.join()
        torch.set_num_threads(self.threads)


def _run_indexed(item):
    index, job = item
    return index, _run_job(job)


@dataclass
class _Plan:
    """What a build has to do: the hashes of every video and ground-truth entry, the records
    found on disk, and the jobs for what is missing or outdated."""

    video_hashes: dict[tuple[str, str], str]
    video_records: dict[str, dict[str, str]]
    video_jobs: list[_VideoJob]
    entries: dict[tuple[str, str], tuple[Person, Person, str]]  # (person, entry) → (person, db person, category)
    entry_hashes: dict[tuple[str, str], str]
    entry_records: dict[str, dict[str, str]]
    gt_jobs: list[_GroundTruthJob]
    novel_hashes: dict[tuple[str, str], str]
    novel_records: dict[str, dict[str, str]]
    novel_jobs: list[_NovelJob]
    driven_hashes: dict[tuple[str, str], str]
    driven_records: dict[str, dict[str, str]]
    driven_jobs: list[_DrivenJob]


def _plan(cfg: Config, settings: SynthDbSettings, people: Sequence[Person], model_path: Path) -> _Plan:
    root, gt_root = Path(settings.root), Path(settings.root) / GROUND_TRUTH_DIR
    source = {"head_model": file_digest(model_path), "head_model_settings": cfg.head_model.to_dict(),
              "standin": cfg.standin.to_dict()}
    video_base = {**settings.video_fingerprint(), **source}
    gt_base = {**settings.ground_truth_fingerprint(), **source}
    videos = (settings.train_video, settings.test_video)

    video_hashes = {(p.name, v): digest([video_base, p.to_json(), v]) for p in people for v in videos}
    video_records = {p.name: _read_hashes(subject_dir(root, p.name) / RECORD_FILE) for p in people}
    video_jobs = [_VideoJob(p, v) for v in videos for p in people
                  if video_records[p.name].get(v) != video_hashes[p.name, v]
                  or not (video_dir(root, p.name, v) / FLAME_PARAMS_FILE).is_file()]
    video_jobs.sort(key=lambda job: -settings.frame_count(job.video))  # long jobs first

    gt_people = [p for p in people if p.role != "db"]
    donors = [p for p in people if p.role == "db"]
    entries = {(p.name, ground_truth_name(c, d.name)): (p, d, c) for p in gt_people for d in donors
               for c in settings.gt_categories if d.has_part(c)}
    entry_hashes = {key: digest([gt_base, video_hashes[p.name, settings.test_video], p.to_json(), c,
                                  d.part(c).describe()]) for key, (p, d, c) in entries.items()}
    entry_records = {p.name: _read_hashes(subject_dir(gt_root, p.name) / RECORD_FILE) for p in gt_people}
    outdated = {key for key in entries if entry_records[key[0]].get(key[1]) != entry_hashes[key]
                or not (video_dir(gt_root, *key) / FLAME_PARAMS_FILE).is_file()}
    gt_jobs = []
    for person in gt_people:
        for donor in donors:
            categories = tuple(c for c in settings.gt_categories
                               if (person.name, ground_truth_name(c, donor.name)) in outdated)
            if categories:
                gt_jobs.append(_GroundTruthJob(person, donor, categories))
    gt_jobs.sort(key=lambda job: -len(job.categories))

    sets = [which for which, wanted in zip(NOVEL_SETS, (settings.novel_angles_deg, settings.novel_expressions))
            if wanted]
    novel_base = {**settings.novel_fingerprint(), **source}
    novel_hashes = {(p.name, which): digest([novel_base, video_hashes[p.name, settings.train_video], p.to_json(),
                                              which]) for p in gt_people for which in sets}
    novel_root = root / NOVEL_DIR
    novel_records = {p.name: _read_hashes(subject_dir(novel_root, p.name) / RECORD_FILE) for p in gt_people}
    by_name = {p.name: p for p in gt_people}
    novel_jobs = [_NovelJob(by_name[name], which) for (name, which), digest in novel_hashes.items()
                  if novel_records[name].get(which) != digest
                  or not (video_dir(novel_root, name, which) / VIEWS_FILE).is_file()]

    driven_base = {**settings.driven_fingerprint(), **source}
    target = next(p for p in people if p.name == settings.target)
    driven_name = cross_driven_name(target.name, settings.test_video)
    driven_hashes = {(d.name, driven_name): digest([driven_base, video_hashes[target.name, settings.test_video],
                                                     video_hashes[d.name, settings.train_video], d.to_json()])
                     for d in donors}
    driven_root = root / CROSS_DRIVEN_DIR
    driven_records = {d.name: _read_hashes(subject_dir(driven_root, d.name) / RECORD_FILE) for d in donors}
    driven_jobs = [_DrivenJob(d, target) for d in donors
                   if driven_records[d.name].get(driven_name) != driven_hashes[d.name, driven_name]
                   or not (video_dir(driven_root, d.name, driven_name) / FLAME_PARAMS_FILE).is_file()]
    return _Plan(video_hashes, video_records, video_jobs, entries, entry_hashes, entry_records, gt_jobs,
                 novel_hashes, novel_records, novel_jobs, driven_hashes, driven_records, driven_jobs)


def build_database(cfg: Config) -> BuildReport:
    """Generates (or completes) the synthetic database of ``cfg.synth_db``; see the module doc."""
    settings = cfg.synth_db
    root, gt_root = Path(settings.root), Path(settings.root) / GROUND_TRUTH_DIR
    root.mkdir(parents=True, exist_ok=True)
    model_path = resolve_head_model_path(cfg)  # generates the stand-in once, before the workers start
    model = head_model_from_config(cfg)
    missing = [key for key in _STANDIN_EXTRAS if key not in model.extras] + (["vt"] if model.vt is None else [])
    if missing:
        raise ConfigError(f"head_model.path: {model_path} has no {missing}; the synthetic database is built on the "
                          "stand-in head (set head_model.path = null)")
    people = sample_population(settings, model.extras["shape_names"])
    plan = _plan(cfg, settings, people, model_path)

    def video_done(job: _VideoJob, _) -> None:
        record = plan.video_records[job.person.name]
        record[job.video] = plan.video_hashes[job.person.name, job.video]
        write_record(subject_dir(root, job.person.name) / RECORD_FILE,
                    {"person": job.person.to_json(), "hashes": record})

    def entries_done(job: _GroundTruthJob, _) -> None:
        name = job.person.name
        record = plan.entry_records[name]
        record.update({entry: plan.entry_hashes[name, entry]
                       for entry in (ground_truth_name(c, job.donor.name) for c in job.categories)})
        record = {entry: value for entry, value in record.items() if (name, entry) in plan.entries}
        plan.entry_records[name] = record
        write_record(subject_dir(gt_root, name) / RECORD_FILE, {"person": job.person.to_json(), "hashes": record})

    def novel_done(job: _NovelJob, _) -> None:
        name = job.person.name
        record = plan.novel_records[name]
        record[job.which] = plan.novel_hashes[name, job.which]
        record = {which: value for which, value in record.items() if (name, which) in plan.novel_hashes}
        plan.novel_records[name] = record
        write_record(subject_dir(root / NOVEL_DIR, name) / RECORD_FILE, {"person": job.person.to_json(),
                                                                         "hashes": record})

    def driven_done(job: _DrivenJob, _) -> None:
        name = job.person.name
        record = plan.driven_records[name]
        record[cross_driven_name(job.driver.name, settings.test_video)] = \
            plan.driven_hashes[name, cross_driven_name(job.driver.name, settings.test_video)]
        record = {entry: value for entry, value in record.items() if (name, entry) in plan.driven_hashes}
        plan.driven_records[name] = record
        write_record(subject_dir(root / CROSS_DRIVEN_DIR, name) / RECORD_FILE, {"person": job.person.to_json(),
                                                                               "hashes": record})

    cards: dict[str, np.ndarray] = {}
    runner = _Runner(cfg, settings)
    try:
        stages = [
            runner.run("videos", plan.video_jobs, video_done, 2 * len(people) - len(plan.video_jobs)),
            runner.run("ground truth", plan.gt_jobs, entries_done,
                       len(plan.entries) - sum(len(job.categories) for job in plan.gt_jobs)),
            runner.run("novel views", plan.novel_jobs, novel_done, len(plan.novel_hashes) - len(plan.novel_jobs)),
            runner.run("cross-driven", plan.driven_jobs, driven_done,
                       len(plan.driven_hashes) - len(plan.driven_jobs)),
            runner.run("contact sheet", [_CardJob(p) for p in people],
                       lambda job, result: cards.__setitem__(job.person.name, result.card), 0),
        ]
    except BaseException:
        runner.close(abort=True)
        raise
    runner.close()

    gt_people = [p for p in people if p.role != "db"]
    _remove_unexpected_entries(gt_root, gt_people, {key[1] for key in plan.entries})
    _remove_unexpected_entries(root / NOVEL_DIR, gt_people, {key[1] for key in plan.novel_hashes})
    _remove_unexpected_entries(root / CROSS_DRIVEN_DIR, [p for p in people if p.role == "db"],
                               {key[1] for key in plan.driven_hashes})
    sheet = write_png(root / CONTACT_SHEET_FILE, contact_sheet([cards[p.name] for p in people], _SHEET_COLUMNS))
    manifest = gt_root / MANIFEST_FILE
    write_record(manifest, {**_manifest(settings, plan.entries), "novel": _novel_manifest(plan.novel_hashes),
                           "cross_driven": _driven_manifest(settings, plan.driven_hashes)})
    write_record(root / PEOPLE_FILE, _people_summary(settings, people))
    save_config(cfg, root / "synth_db.conf")
    return BuildReport(root, stages, tuple(people), manifest, sheet)


def _remove_unexpected_entries(gt_root: Path, gt_people: Sequence[Person], expected_names: set[str]) -> None:
    """Deletes ground-truth (or novel-set) video folders no longer planned (e.g. after n_db shrank)."""
    for person in gt_people:
        folder = subject_dir(gt_root, person.name)
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.is_dir() and (entry / FLAME_PARAMS_FILE).is_file() and entry.name not in expected_names:
                log.info("removing stale ground truth %s", entry)
                shutil.rmtree(entry)


def _manifest(settings: SynthDbSettings, expected: dict) -> dict:
    """The ground-truth manifest (paths relative to the database root), sorted by person and name."""
    entries, frames_of = [], {}
    for (person_name, name), (person, donor, category_name) in sorted(expected.items()):
        if person_name not in frames_of:
            test = read_video(video_dir(settings.root, person_name, settings.test_video), require_images=False)
            frames_of[person_name] = [test.frames[i].name for i in range(0, len(test.frames), settings.gt_frame_stride)]
        entries.append({
            "person": person_name, "video": settings.test_video, "category": category_name, "db_person": donor.name,
            "name": name, "part": donor.part(category_name).describe(),
            "own_part": person.part(category_name).describe(),
            "frames": frames_of[person_name],
            "path": f"{GROUND_TRUTH_DIR}/{person_name}/{person_name}/{name}",
            "source_video": f"{person_name}/{person_name}/{settings.test_video}",
        })
    return {"root_layout": f"{GROUND_TRUTH_DIR}/<person>/<person>/<category>_<db person>",
            "gt_frame_stride": settings.gt_frame_stride, "entries": entries}


def _novel_manifest(novel_hashes: dict[tuple[str, str], str]) -> list[dict]:
    """The novel sets (paths relative to the database root), sorted by person and set."""
    return [{"person": person, "set": which, "path": f"{NOVEL_DIR}/{person}/{person}/{which}",
             "views": f"{NOVEL_DIR}/{person}/{person}/{which}/{VIEWS_FILE}"} for person, which in sorted(novel_hashes)]


def _driven_manifest(settings: SynthDbSettings, driven_hashes: dict[tuple[str, str], str]) -> list[dict]:
    """The cross-driven entries (paths relative to the database root), sorted by person."""
    test = read_video(video_dir(settings.root, settings.target, settings.test_video), require_images=False)
    frames = [test.frames[i].name for i in range(0, len(test.frames), settings.driven_frame_stride)]
    return [{"person": person, "driver": settings.target, "video": settings.test_video, "frames": frames,
             "path": f"{CROSS_DRIVEN_DIR}/{person}/{person}/{name}",
             "driver_video": f"{settings.target}/{settings.target}/{settings.test_video}"}
            for person, name in sorted(driven_hashes)]


def _people_summary(settings: SynthDbSettings, people: Sequence[Person]) -> dict:
    return {
        "target": settings.target, "new_person": settings.new_person, "db": list(settings.db_names),
        "videos": {"train": settings.train_video, "test": settings.test_video},
        "frames": {settings.train_video: settings.train_frames, settings.test_video: settings.test_frames},
        "image_size": settings.image_size,
        "people": [p.to_json() for p in people],
    }
