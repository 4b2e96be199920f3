"""The `pegasus` command: one entry point, one subcommand per job.

Every subcommand reads a HOCON config (``--conf``, default ``confs/embedded.conf``) plus
``section.key=value`` overrides, and jobs that write outputs save the resolved config
next to them.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable

from ..config import Config, ConfigError, load_config, save_config
from ..data.images import DataError
from ..headmodel import HeadModelError
from ..train.checkpoint import CheckpointError
from ..train.trainer import RunFolderError

log = logging.getLogger("pegasus")

DEFAULT_CONF = "confs/embedded.conf"


def _cmd_config(cfg: Config, args: argparse.Namespace) -> int:
    """Print the resolved config."""
    sys.stdout.write(cfg.to_hocon())
    return 0


def _cmd_standin(cfg: Config, args: argparse.Namespace) -> int:
    """Generate (or reuse) the stand-in head model file."""
    from ..headmodel.factory import ensure_standin

    log.info("stand-in head model: %s", ensure_standin(cfg.standin))
    return 0


def _cmd_picture(cfg: Config, args: argparse.Namespace) -> int:
    """Render the configured head model (neutral, samples, landmarks) to a PNG grid."""
    from ..eval.head_picture import write_head_picture
    from ..headmodel import head_model_from_config

    model = head_model_from_config(cfg)
    path = write_head_picture(model, cfg)
    save_config(cfg, path.with_suffix(".conf"))
    log.info("head-model picture: %s (%d vertices, from %s)", path, model.n_vertices, model.source)
    return 0


def _reads_synth_db(cfg: Config, section: str = "dataset") -> bool:
    """Whether any video entry of the dataset (or of the bank, its people and drivers) lives in
    the synthetic database's folder."""
    ds = cfg.dataset
    entries = (*ds.train, *ds.test) if section == "dataset" else (*cfg.bank.people, *cfg.bank.drivers)
    roots = {Path(entry.root or ds.root).resolve() for entry in entries if entry.manifest is None}
    return Path(cfg.synth_db.root).resolve() in roots


def _cmd_synth_db(cfg: Config, args: argparse.Namespace) -> int:
    """Generate (or complete) the synthetic multi-person video database with ground truth."""
    from ..synthdb.build import build_database

    if args.when_used and not _reads_synth_db(cfg, args.when_used):
        log.info("synth-db: the %s does not read from %s; nothing to generate", args.when_used, cfg.synth_db.root)
        return 0

    report = build_database(cfg)
    for stage in report.stages:
        log.info("synth-db %s: %.1f s, %d frames (%.1f frames/s), %d jobs, %d skipped", stage.name, stage.seconds,
                 stage.frames, stage.frames_per_second, stage.jobs, stage.skipped)
    log.info("synthetic database: %s (%d people, %.1f s); contact sheet %s", report.root, len(report.people),
             report.seconds, report.contact_sheet)
    return 0


def _cmd_train(cfg: Config, args: argparse.Namespace) -> int:
    """Train an avatar on cfg.dataset.train, or with generative.enabled the two PEGASUS stages
    (torchrun for several processes)."""
    mode = "resume" if args.resume else "overwrite" if args.overwrite else "new"
    if cfg.generative.enabled:
        from ..generative.stages import train_generative

        train_generative(cfg, mode)
    else:
        from ..train.run import train_avatar

        train_avatar(cfg, mode)
    return 0


def _cmd_db_avatar(cfg: Config, args: argparse.Namespace) -> int:
    """Build the DB avatar bank: train its avatars, render them driven by the target, score the renders."""
    from ..bank.jobs import parse_shard
    from ..bank.run import build_bank

    report = build_bank(cfg, parse_shard(args.shard), tuple(args.steps))
    log.info("bank: trained %d job(s), rendered %d folder(s) now; summary %s", len(report.trained),
             len(report.rendered), report.summary)
    return 0


def _cmd_synth(cfg: Config, args: argparse.Namespace) -> int:
    """Part-swap synthesis: the target's videos wearing every DB person's parts, from the bank's renders."""
    from ..synth.run import run_synthesis

    save_config(cfg, Path(cfg.synth.root) / "synth.conf")
    records = run_synthesis(cfg, args.videos, args.categories, tuple(args.steps or ("source", "parts")))
    made = [r for r in records if not r["skipped"]]
    log.info("synth: %d job(s) run now, %d skipped as complete; %d frames kept, %d dropped", len(made),
             len(records) - len(made), sum(r["kept"] for r in records), sum(r["dropped"] for r in records))
    return 0


def _cmd_score_parts(cfg: Config, args: argparse.Namespace) -> int:
    """Part-control score (METHOD §8.1) of edited images against the synthetic database's ground truth."""
    from ..data.imavatar import video_dir
    from ..eval.metrics import load_lpips
    from ..eval.part_control import part_contact_sheets, read_ground_truth, score_part_control
    from ..synth.run import video_root

    settings = cfg.synth
    if settings.ground_truth is None:
        log.info("score-parts: synth.ground_truth is null (real data): nothing to score against")
        return 0
    person = args.person or settings.target
    own = video_dir(cfg.dataset.root, person, settings.score_video)
    edited = Path(args.edited) if args.edited else video_root(settings, settings.score_video)
    unedited = Path(args.unedited) if args.unedited else own
    entries = read_ground_truth(settings.ground_truth, person, [c.name for c in settings.categories])
    report = score_part_control(entries, edited, unedited, own, settings.resolution,
                                load_lpips(cfg.test.lpips_weights))
    part_contact_sheets(entries, edited, unedited, settings.resolution, edited / "contact")
    for category, row in report["summary"].items():
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        log.info("%-10s in %s (unedited %s)  out %s  removed %s  ssim %s  frames %d", category, fmt(row["psnr_in"]),
                 fmt(row["ref_psnr_in"]), fmt(row["psnr_out"]), fmt(row["psnr_removed"]), fmt(row["ssim"]),
                 row["frames"])
    log.info("part scores: %s", edited / "part_scores.json")
    return 0


def _run_config(cfg: Config, args: argparse.Namespace) -> Config:
    """The config a trained run saved (``--run DIR``, else the run folder of ``cfg``), with the
    command line's overrides: testing uses the settings the run was trained with. Without a
    saved config (or one an older version wrote), ``cfg`` itself."""
    from ..train.trainer import run_dir_of

    saved = Path(args.run or run_dir_of(cfg)) / "config.conf"
    if not saved.is_file():
        if args.run:
            raise ConfigError(f"{saved}: no saved config; is {args.run} a run folder?")
        return cfg
    try:
        run_cfg = load_config(saved, args.overrides)
    except ConfigError as err:
        if args.run:
            raise
        log.warning("%s cannot be read by this version (%s); testing with %s instead", saved,
                    str(err).splitlines()[0], cfg.source)
        return cfg
    log.info("settings of the run: %s%s", saved, f" (+ {len(args.overrides)} override(s))" if args.overrides else "")
    return run_cfg


def _load_trained(cfg: Config, args: argparse.Namespace):
    """The run's model with its checkpoint loaded, on the configured device."""
    from ..train.build import trained_avatar
    from ..train.checkpoint import latest_checkpoint, load_checkpoint
    from ..train.distributed import resolve_device
    from ..train.trainer import run_dir_of

    device = resolve_device(cfg.experiment.device)
    path = Path(args.checkpoint) if args.checkpoint else latest_checkpoint(run_dir_of(cfg))
    if path is None:
        raise CheckpointError(f"{run_dir_of(cfg)}: no checkpoint; train first (bash run/train.sh) "
                              "or pass --checkpoint")
    model = trained_avatar(cfg, load_checkpoint(path, map_location=device), device)
    log.info("loaded %s (%d points)", path, model.points.num_points)
    return model, device, path


def _test_set(cfg: Config, model):
    from ..train.build import split_dataset, video_table

    return split_dataset(cfg, video_table(cfg, "test"), model.index, model.head_model, "test")


def _cmd_test(cfg: Config, args: argparse.Namespace) -> int:
    """Render the test video, driving and yaw sets of a trained run; write metrics."""
    from ..eval.metrics import METRIC_NAMES, mean_metrics
    from ..eval.render_sets import run_test_sets
    from ..train.build import avatar_render_fn, novel_sets, refined_render_fn
    from ..train.trainer import run_dir_of

    model, device, path = _load_trained(cfg, args)
    test_set = _test_set(cfg, model)
    out_dir = run_dir_of(cfg) / "test" / path.stem
    refined = (refined_render_fn(model, device, cfg.test.refine_steps, cfg.test.refine_lr)
               if cfg.test.refine_steps else None)
    results = run_test_sets(avatar_render_fn(model, device), cfg.test, out_dir, test_dataset=test_set,
                            novel_sets=novel_sets(cfg, model), refined_render_fn=refined)
    save_config(cfg, out_dir / "config.conf")
    _export(cfg, model, test_set)
    means = {}
    for name, rows in results.items():
        if rows and "psnr" in rows[0]:  # sets without ground truth log their holes when rendered
            means[name] = mean_metrics(rows, METRIC_NAMES)
            log.info("%s set: %s", name, ", ".join(f"{k} {v:.4f}" for k, v in means[name].items() if v is not None))
    if cfg.generative.enabled:
        from ..eval.metrics import load_lpips
        from ..generative.outputs import score_generative, write_control

        write_control(model, cfg, test_set, out_dir / "control")
        table = score_generative(model, cfg, test_set, out_dir / "part_control", load_lpips(cfg.test.lpips_weights),
                                 means.get("test", {}).get("psnr"))
        for category, row in table.get("categories", {}).items():
            log.info("part control %-10s in %.2f (unedited %.2f)  out − reconstruction %+.2f", category,
                     row["psnr_in"] or float("nan"), row["unedited_psnr_in"] or float("nan"),
                     row["out_vs_reconstruction"] if row["out_vs_reconstruction"] is not None else float("nan"))
    log.info("test outputs: %s", out_dir)
    return 0


def _export(cfg: Config, model, test_set) -> None:
    from ..avatar.export import canonical_points, posed_points
    from ..eval.export_ply import write_ply
    from ..train.trainer import run_dir_of

    device = model.points.points.device
    first = test_set[0].to(device)
    out_dir = run_dir_of(cfg) / "export"
    latent = None if model.latent_codes is None else model.latent_of(first)
    for name, cloud in (("canonical", canonical_points(model, latent)), ("posed_test_frame0", posed_points(model, first))):
        path = write_ply(out_dir / f"{name}.ply", cloud["points"], colors=cloud["colors"], normals=cloud["normals"])
        log.info("wrote %s (%d points)", path, len(cloud["points"]))


def _cmd_export(cfg: Config, args: argparse.Namespace) -> int:
    """Export the trained run's canonical and first-test-frame point clouds as .ply."""
    model, _, _ = _load_trained(cfg, args)
    _export(cfg, model, _test_set(cfg, model))
    return 0


def _cmd_preprocess(cfg: Config, args: argparse.Namespace) -> int:
    """Turn raw videos (one file, or every video in a folder) into one subject's IMavatar dataset."""
    from ..preprocess.pipeline import VideoSource, find_videos, preprocess_subject

    if args.video:
        source = Path(args.video)
        sources = [VideoSource(args.name or source.stem, source)]
        subject = args.subject or source.stem
    else:
        if not args.subject or args.name:
            raise ConfigError("pegasus preprocess --folder needs --subject (the person's name) and takes no --name "
                              "(each video folder is named after its file)")
        sources, subject = find_videos(args.folder, cfg.preprocess.video_suffixes), args.subject
    report = preprocess_subject(cfg, subject, sources)
    save_config(cfg, report.work_path / "config.conf")
    for name, video in report.summary["videos"].items():
        error = video["reprojection_error_px"]
        log.info("%s: %d frames, %d kept, %d dropped %s; reprojection error %.2f px (median %.2f)", name,
                 video["frames"], video["kept"], video["dropped"],
                 {reason: len(names) for reason, names in video["dropped_by_reason"].items()}, error["mean"],
                 error["median"])
    log.info("dataset: %s", report.subject_path)
    return 0


COMMANDS: dict[str, Callable[[Config, argparse.Namespace], int]] = {
    "config": _cmd_config,
    "standin": _cmd_standin,
    "picture": _cmd_picture,
    "synth-db": _cmd_synth_db,
    "preprocess": _cmd_preprocess,
    "train": _cmd_train,
    "db-avatar": _cmd_db_avatar,
    "synth": _cmd_synth,
    "score-parts": _cmd_score_parts,
    "test": _cmd_test,
    "export": _cmd_export,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pegasus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in COMMANDS.items():
        cmd = sub.add_parser(name, help=func.__doc__, description=func.__doc__)
        cmd.add_argument("--conf", default=DEFAULT_CONF, help=f"HOCON config (default {DEFAULT_CONF})")
        cmd.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides")
        if name == "preprocess":
            source = cmd.add_mutually_exclusive_group(required=True)
            source.add_argument("--video", help="one raw video file")
            source.add_argument("--folder", help="a folder of raw videos of one person (one video folder each)")
            cmd.add_argument("--subject", help="subject name (default with --video: the file stem)")
            cmd.add_argument("--name", help="video folder name with --video (default: the file stem)")
        if name == "train":
            start = cmd.add_mutually_exclusive_group()
            start.add_argument("--resume", action="store_true",
                               help="continue from the run's latest checkpoint (a new run when there is none)")
            start.add_argument("--overwrite", action="store_true",
                               help="start again in a run folder that holds checkpoints (deletes them and its logs)")
        if name == "synth-db":
            cmd.add_argument("--when-used", choices=("dataset", "bank"),
                             help="generate only when the config's dataset (or the DB avatar bank) reads videos "
                                  "from synth_db.root")
        if name == "db-avatar":
            from ..bank.run import BANK_STEPS

            cmd.add_argument("--shard", default="0/1",
                             help="i/n: do every n-th job from the i-th (cluster arrays, several local processes)")
            cmd.add_argument("--steps", nargs="*", default=list(BANK_STEPS), choices=BANK_STEPS,
                             help="train the avatars and/or render them cross-driven (default: both; none: only "
                                  "write the summary <bank.root>/bank.json)")
        if name == "synth":
            cmd.add_argument("--video", dest="videos", action="append", help="only this one of synth.videos "
                                                                              "(repeatable)")
            cmd.add_argument("--category", dest="categories", action="append",
                             help="only this one of synth.categories (repeatable)")
            cmd.add_argument("--step", dest="steps", action="append", choices=("source", "parts"),
                             help="source: the target's own video with its part masks; parts: the swaps "
                                  "(repeatable; default both)")
        if name == "score-parts":
            cmd.add_argument("--edited", help="root of <person>/<person>/<category>_<db>/ edited images "
                                              "(default: <synth.root>/<synth.score_video>)")
            cmd.add_argument("--unedited", help="folder of the method's unedited images (default: the person's own "
                                                "test video)")
            cmd.add_argument("--person", help="the edited person (default synth.target)")
        if name in ("test", "export"):
            cmd.add_argument("--checkpoint", help="checkpoint file (default: the run's latest.pt)")
            cmd.add_argument("--run", help="a run folder: its saved config.conf is used (default: the run folder of "
                                           "--conf, whose saved config is used when it has one)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        cfg = load_config(Path(args.conf), args.overrides)
        if args.command in ("test", "export"):
            cfg = _run_config(cfg, args)
        if cfg.experiment.num_threads > 0:
            import torch

            torch.set_num_threads(cfg.experiment.num_threads)
        return COMMANDS[args.command](cfg, args)
    except (ConfigError, HeadModelError, DataError, CheckpointError, RunFolderError) as err:
        log.error("%s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())
