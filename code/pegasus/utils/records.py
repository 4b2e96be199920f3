"""Records of restartable jobs: stable digests of what made an output, and JSON records that
read back tolerantly (a missing or unreadable record means "do it again").

Every job runner of the project — preprocessing stages, the synthetic database, the bank's
renders, the part-swap synthesis — decides "complete, skip it" the same way: the record next
to an output holds the digest of the settings and sources that made it, and the output is
reused only when the digest matches.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

from .atomic import write_json

__all__ = ["digest", "file_digest", "read_record", "write_record"]


def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def digest(data, length: int = 20) -> str:
    """Hex prefix (``length`` characters) of the SHA-256 of ``data`` as canonical JSON (sorted
    keys, no spaces; dataclasses as dicts, other non-JSON values as ``str``)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_digest(path: str | os.PathLike, length: int = 20) -> str:
    """Hex prefix of the SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    sha = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:length]


def read_record(path: str | os.PathLike) -> dict | None:
    """The JSON object at ``path``; None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_record(path: str | os.PathLike, record: dict) -> None:
    """Writes a record atomically (indented, sorted keys)."""
    write_json(path, record, indent=1, sort_keys=True)
