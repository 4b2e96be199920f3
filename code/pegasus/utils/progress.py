"""Progress bars that suit both a terminal and a log file.

On a terminal a bar redraws as usual. When standard error is not a terminal (a cluster job's
log file), a bar writes at most one line a minute, so long runs leave a few lines instead of
hundreds of kilobytes of carriage returns.
"""
from __future__ import annotations

import sys
from typing import Iterable

from tqdm import tqdm

__all__ = ["progress", "LOG_INTERVAL_S"]

LOG_INTERVAL_S = 60.0
"""Seconds between updates of a bar whose output is not a terminal."""


def progress(iterable: Iterable | None = None, **kwargs) -> tqdm:
    """``tqdm(iterable, **kwargs)``, updating at most every :data:`LOG_INTERVAL_S` when standard
    error is not a terminal (the caller's ``disable`` still wins)."""
    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
        kwargs.setdefault("maxinterval", LOG_INTERVAL_S)
        kwargs["dynamic_ncols"] = False
    return tqdm(iterable, **kwargs)
