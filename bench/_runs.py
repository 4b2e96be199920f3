"""What the benchmarks that run whole jobs share: their common arguments and output folder."""
from __future__ import annotations

import argparse
import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def add_run_arguments(parser: argparse.ArgumentParser, name: str, threads: int) -> None:
    """``--threads``, ``--out`` (default ``data/experiments/<name>/<date-time>``; the same folder
    continues a run), ``--repeats`` (accepted for ``bm_main.py``, ignored) and the overrides."""
    parser.add_argument("--threads", type=int, default=threads, help="torch threads of each process")
    parser.add_argument("--out", default=None, help=f"output folder (default data/experiments/{name}/<date-time>); "
                                                    "the same folder continues a run")
    parser.add_argument("--repeats", type=int, default=1, help="ignored (accepted for bm_main.py)")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")


def output_folder(args: argparse.Namespace, name: str) -> Path:
    """``args.out`` or a new ``data/experiments/<name>/<date-time>``, created."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or REPO / "data" / "experiments" / name / stamp).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return out
