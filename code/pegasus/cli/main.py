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
from ..headmodel import HeadModelError

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


COMMANDS: dict[str, Callable[[Config, argparse.Namespace], int]] = {
    "config": _cmd_config,
    "standin": _cmd_standin,
    "picture": _cmd_picture,
    "synth-db": _cmd_synth_db,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pegasus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in COMMANDS.items():
        cmd = sub.add_parser(name, help=func.__doc__, description=func.__doc__)
        cmd.add_argument("--conf", default=DEFAULT_CONF, help=f"HOCON config (default {DEFAULT_CONF})")
        cmd.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        cfg = load_config(Path(args.conf), args.overrides)
        return COMMANDS[args.command](cfg, args)
    except (ConfigError, HeadModelError) as err:
        log.error("%s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())
