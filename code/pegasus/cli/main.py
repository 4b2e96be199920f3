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


def _cmd_synth_db(cfg: Config, args: argparse.Namespace) -> int:
    """Generate (or complete) the synthetic multi-person video database with ground truth."""
    from ..synthdb.build import build_database

    report = build_database(cfg)
    for stage in report.stages:
        log.info("synth-db %s: %.1f s, %d frames (%.1f frames/s), %d jobs, %d skipped", stage.name, stage.seconds,
                 stage.frames, stage.frames_per_second, stage.jobs, stage.skipped)
    log.info("synthetic database: %s (%d people, %.1f s); contact sheet %s", report.root, len(report.people),
             report.seconds, report.contact_sheet)
    return 0


def _cmd_train(cfg: Config, args: argparse.Namespace) -> int:
    """Train a single-person avatar on cfg.dataset (torchrun for several processes)."""
    from ..train.build import build_avatar
    from ..train.distributed import init_distributed, seed_everything
    from ..train.trainer import Trainer, dataset_from_config

    env = init_distributed(cfg.experiment.device)
    seed_everything(cfg.experiment.seed, env.rank)
    train_set = dataset_from_config(cfg, "train")
    model = build_avatar(cfg, train_set, env.device)
    trainer = Trainer(cfg, env, model, train_set, resume=args.resume)
    trainer.fit()
    log.info("training done: %s", trainer.run_dir)
    return 0


def _load_trained(cfg: Config, args: argparse.Namespace):
    """The run's model with its checkpoint loaded, on the configured device."""
    from ..train.build import build_avatar
    from ..train.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
    from ..train.distributed import resolve_device
    from ..train.trainer import dataset_from_config, run_dir_of

    device = resolve_device(cfg.experiment.device)
    path = Path(args.checkpoint) if args.checkpoint else latest_checkpoint(run_dir_of(cfg))
    if path is None:
        raise CheckpointError(f"{run_dir_of(cfg)}: no checkpoint; train first (bash run/train.sh) "
                              "or pass --checkpoint")
    model = build_avatar(cfg, dataset_from_config(cfg, "train"), device)
    model.load_state_dict(load_checkpoint(path, map_location=device)["model"])
    log.info("loaded %s (%d points)", path, model.points.num_points)
    return model.eval(), device, path


def _cmd_test(cfg: Config, args: argparse.Namespace) -> int:
    """Render the test video, driving and yaw sets of a trained run; write metrics."""
    from ..data.dataset import ImavatarDataset
    from ..eval.metrics import METRIC_NAMES, mean_metrics
    from ..eval.render_sets import TestSettings, run_test_sets
    from ..train.build import avatar_render_fn
    from ..train.trainer import run_dir_of

    model, device, path = _load_trained(cfg, args)
    ds = cfg.dataset
    test_set = ImavatarDataset(ds.root, ds.subject, list(ds.test_videos), resolution=ds.resolution,
                               n_expr=cfg.head_model.n_expr, n_shape=cfg.head_model.n_shape,
                               load_semantic=cfg.test.no_cloth)
    out_dir = run_dir_of(cfg) / "test" / path.stem
    results = run_test_sets(avatar_render_fn(model, device), TestSettings.from_config(cfg.test), out_dir,
                            test_dataset=test_set)
    save_config(cfg, out_dir / "config.conf")
    _cmd_export(cfg, args, model=model)
    for name, rows in results.items():
        if rows:
            means = mean_metrics(rows, METRIC_NAMES)
            log.info("%s set: %s", name, ", ".join(f"{k} {v:.4f}" for k, v in means.items() if v is not None))
    log.info("test outputs: %s", out_dir)
    return 0


def _cmd_export(cfg: Config, args: argparse.Namespace, model=None) -> int:
    """Export the trained run's canonical and first-test-frame point clouds as .ply."""
    from ..data.dataset import collate_frames
    from ..eval.export_ply import write_ply
    from ..train.trainer import batch_to_device, dataset_from_config, run_dir_of

    if model is None:
        model, device, _ = _load_trained(cfg, args)
    device = next(model.parameters()).device
    first = batch_to_device(collate_frames([dataset_from_config(cfg, "test")[0]]), device)
    out_dir = run_dir_of(cfg) / "export"
    for name, batch in (("canonical", None), ("posed_test_frame0", first)):
        cloud = model.export_points(batch)
        path = write_ply(out_dir / f"{name}.ply", cloud["points"], colors=cloud.get("colors"),
                         normals=cloud.get("normals"))
        log.info("wrote %s (%d points)", path, len(cloud["points"]))
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
            cmd.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
        if name in ("test", "export"):
            cmd.add_argument("--checkpoint", help="checkpoint file (default: the run's latest.pt)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        cfg = load_config(Path(args.conf), args.overrides)
        if cfg.experiment.num_threads > 0:
            import torch

            torch.set_num_threads(cfg.experiment.num_threads)
        return COMMANDS[args.command](cfg, args)
    except (ConfigError, HeadModelError, DataError, CheckpointError) as err:
        log.error("%s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())
