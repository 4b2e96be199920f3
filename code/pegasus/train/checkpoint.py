"""Checkpoints: atomic writes, RNG states, and safe loading (``weights_only``).

A checkpoint is one ``.pt`` file holding plain containers of tensors and numbers:
``model``, ``optimizer``, ``scheduler`` state dicts, ``epoch`` (epochs completed),
``iteration`` (optimizer steps done), ``rng`` (one python / numpy / torch / cuda state per
rank, in rank order), ``config`` (resolved HOCON text) and ``extra`` (anything else the
trainer keeps, e.g. the run index). Files are written to a temporary sibling and renamed, so
a crash never leaves a partial checkpoint under a final name; ``latest.pt`` always points at
a complete file, and :func:`remove_stale_temporaries` clears what a killed write left.
"""
from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..utils import atomic_path

log = logging.getLogger(__name__)

__all__ = ["rng_state", "set_rng_state", "save_checkpoint", "load_checkpoint", "latest_checkpoint",
           "list_checkpoints", "remove_stale_temporaries", "CheckpointError"]

LATEST = "latest.pt"
_TEMPORARY = re.compile(r"\.[^/]+\.[A-Za-z0-9_]{8}(\.[A-Za-z0-9]+)?")  # atomic_path: .<stem>.<mkstemp><suffix>


class CheckpointError(RuntimeError):
    """A checkpoint is missing or unreadable."""


def rng_state() -> dict[str, Any]:
    """Snapshot of every RNG the training loop uses (numpy's as plain lists/ints)."""
    py_version, py_internal, py_gauss = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restores a :func:`rng_state` snapshot."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict[str, Any], update_latest: bool = True) -> Path:
    """Writes ``payload`` atomically to ``path`` and (atomically) refreshes ``latest.pt``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    if update_latest:
        latest = path.parent / LATEST
        with atomic_path(latest) as tmp:
            torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Loads a checkpoint with ``weights_only=True`` (no arbitrary objects are unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: unreadable checkpoint ({err})") from err


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The run's ``latest.pt`` if present."""
    path = Path(run_dir) / "checkpoints" / LATEST
    return path if path.is_file() else None


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Every checkpoint file of a run (``checkpoints/*.pt``, temporaries excluded), sorted."""
    folder = Path(run_dir) / "checkpoints"
    return sorted(p for p in folder.glob("*.pt") if not p.name.startswith(".")) if folder.is_dir() else []


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Deletes what killed atomic writes left in ``folder`` (hidden ``.<name>.*`` temporaries
    of :func:`pegasus.utils.atomic_path`); returns them. Call only while no write is running."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.is_file() and _TEMPORARY.fullmatch(p.name)]
    for path in stale:
        path.unlink(missing_ok=True)
        log.info("removed %s (left by an interrupted write)", path)
    return stale
