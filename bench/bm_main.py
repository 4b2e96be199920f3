"""Runs every ``bench/bm_*.py`` benchmark, one process each, with this interpreter.

Usage (from the repository root)::

    python bench/bm_main.py [--filter NAME] [ARGS...]

``--filter`` keeps the scripts whose name contains NAME; any other arguments (e.g.
``--repeats 3 --threads 1``, which every benchmark accepts) are passed on to each script.
Exits non-zero when a benchmark fails.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def benchmark_scripts(folder: Path, name_filter: str | None = None) -> list[Path]:
    """The ``bm_*.py`` files of ``folder`` (this runner excluded), sorted by name."""
    return [
        script for script in sorted(folder.glob("bm_*.py"))
        if script.name != Path(__file__).name and (name_filter is None or name_filter in script.stem)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--filter", default=None, help="only scripts whose name contains this")
    args, passed_on = parser.parse_known_args(argv)
    scripts = benchmark_scripts(Path(__file__).resolve().parent, args.filter)
    if not scripts:
        parser.error(f"no bench/bm_*.py matches --filter {args.filter!r}")
    failed = []
    for script in scripts:
        print(f"\n## {script.stem}\n", flush=True)
        if subprocess.run([sys.executable, str(script), *passed_on]).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
