"""Point clouds as PLY files: binary little-endian writer and a small reader.

:func:`write_ply` writes one ``vertex`` element with, in this order,

=================  ========  =========================================================
properties         type      from
=================  ========  =========================================================
``x y z``          float32   ``points`` (N, 3), scaled head units
``nx ny nz``       float32   ``normals`` (N, 3), when given
``red green blue`` uchar     ``colors`` (N, 3) in [0, 1] (×255, rounded) or uint8
``<name>``         float32   each of ``scalars`` {name: (N,)}, in the given order
=================  ========  =========================================================

which MeshLab, CloudCompare, Open3D and trimesh read. Files are written atomically
(:func:`pegasus.utils.atomic_path`). :func:`read_ply` reads that layout back (binary
little-endian or ASCII PLY with a single ``vertex`` element of scalar properties).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

import numpy as np

from ..utils import atomic_path

__all__ = ["write_ply", "read_ply", "PlyError"]

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
_RESERVED = {"x", "y", "z", "nx", "ny", "nz", "red", "green", "blue"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_COLOR_TOLERANCE = 1e-6


class PlyError(ValueError):
    """A PLY file cannot be read; the message names the file and the problem."""


def _to_numpy(value, name: str) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"write_ply: {name} is not array-like ({err})") from None


def _checked(value, name: str, n: int | None, columns: int | None) -> np.ndarray:
    array = _to_numpy(value, name)
    shape = "(N,)" if columns is None else f"(N, {columns})"
    ok_ndim = array.ndim == (1 if columns is None else 2)
    if not ok_ndim or (columns is not None and array.shape[1] != columns):
        raise ValueError(f"write_ply: {name} must have shape {shape}, got {array.shape}")
    if n is not None and array.shape[0] != n:
        raise ValueError(f"write_ply: {name} has {array.shape[0]} rows, points has {n}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"write_ply: {name} must be numeric, got dtype {array.dtype}")
    finite = np.isfinite(array.astype(np.float64))
    bad = ~(finite.all(axis=1) if finite.ndim == 2 else finite)
    if bad.any():
        raise ValueError(f"write_ply: {name} has NaN or infinite values in {int(bad.sum())} row(s), "
                         f"first at row {int(np.argmax(bad))}")
    return array


def write_ply(
    path: str | os.PathLike,
    points,
    colors=None,
    normals=None,
    scalars: Mapping[str, object] | None = None,
) -> Path:
    """Writes a point cloud as a binary little-endian PLY, atomically.

    Args:
        path: output file (``.ply``).
        points: (N, 3) positions (numpy or torch), written as float32.
        colors: (N, 3) float in [0, 1] or uint8, or None.
        normals: (N, 3) normals, or None.
        scalars: optional {name: (N,) values} written as float32 properties (names are
            identifiers other than x, y, z, nx, ny, nz, red, green, blue).

    Returns:
        ``path``.

    Raises:
        ValueError: naming the argument, for a wrong shape, NaN/inf, colours outside
            [0, 1], or a bad scalar name.
    """
    path = Path(path)
    xyz = _checked(points, "points", None, 3)
    n = xyz.shape[0]
    fields: list[tuple[str, str, np.ndarray]] = [(a, "<f4", xyz[:, i]) for i, a in enumerate("xyz")]
    if normals is not None:
        nrm = _checked(normals, "normals", n, 3)
        fields += [(a, "<f4", nrm[:, i]) for i, a in enumerate(("nx", "ny", "nz"))]
    if colors is not None:
        rgb = _checked(colors, "colors", n, 3)
        if rgb.dtype != np.uint8:
            if rgb.size and (rgb.min() < -_COLOR_TOLERANCE or rgb.max() > 1 + _COLOR_TOLERANCE):
                raise ValueError(f"write_ply: colors must be in [0, 1] (or uint8), got [{rgb.min()}, {rgb.max()}]")
            rgb = np.rint(np.clip(rgb.astype(np.float64), 0, 1) * 255).astype(np.uint8)
        fields += [(a, "u1", rgb[:, i]) for i, a in enumerate(("red", "green", "blue"))]
    for name, values in (scalars or {}).items():
        if not isinstance(name, str) or not _NAME.match(name) or name in _RESERVED:
            raise ValueError(f"write_ply: scalar name {name!r} must be an identifier other than {sorted(_RESERVED)}")
        fields.append((name, "<f4", _checked(values, f"scalars[{name!r}]", n, None)))
    record = np.empty(n, dtype=[(name, dtype) for name, dtype, _ in fields])
    for name, _, values in fields:
        record[name] = values
    ply_type = {"<f4": "float", "u1": "uchar"}
    header = "\n".join(
        ["ply", "format binary_little_endian 1.0", "comment written by pegasus.eval.export_ply", f"element vertex {n}"]
        + [f"property {ply_type[dtype]} {name}" for name, dtype, _ in fields]
        + ["end_header"]
    ) + "\n"
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as file:
            file.write(header.encode("ascii"))
            file.write(record.tobytes())
    return path


def _parse_header(path: Path, data: bytes) -> tuple[str, int, list[tuple[str, str]], int]:
    """(format, vertex count, [(name, numpy dtype)], body offset)."""
    if not data.startswith(b"ply"):
        raise PlyError(f"{path}: not a PLY file (no 'ply' magic)")
    end = data.find(b"end_header")
    if end < 0:
        raise PlyError(f"{path}: header has no end_header line")
    body = data.index(b"\n", end) + 1
    lines = data[:end].decode("ascii", errors="replace").splitlines()[1:]
    fmt, count, props, elements = None, None, [], []
    for line in lines:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format":
            fmt = words[1]
        elif words[0] == "element":
            elements.append(words[1])
            if words[1] == "vertex":
                count = int(words[2])
        elif words[0] == "property":
            if elements[-1:] != ["vertex"]:
                continue
            if words[1] == "list" or words[1] not in _PLY_TYPES:
                raise PlyError(f"{path}: unsupported vertex property {' '.join(words[1:])!r}")
            props.append((words[2], _PLY_TYPES[words[1]]))
        else:
            raise PlyError(f"{path}: unexpected header line {line!r}")
    if elements != ["vertex"] or count is None:
        raise PlyError(f"{path}: expected exactly one 'vertex' element, found {elements}")
    if fmt not in ("binary_little_endian", "ascii"):
        raise PlyError(f"{path}: unsupported format {fmt!r} (binary_little_endian or ascii)")
    return fmt, count, props, body


def read_ply(path: str | os.PathLike) -> dict:
    """Reads a point-cloud PLY (one ``vertex`` element; binary little-endian or ASCII).

    Returns:
        ``{"points": (N, 3) float32, "normals": (N, 3) float32 or None, "colors": (N, 3)
        float32 in [0, 1] (uchar / 255) or None, "scalars": {name: (N,) float32}}``.

    Raises:
        PlyError: naming the file, for anything but that layout.
    """
    path = Path(path)
    data = path.read_bytes()
    fmt, n, props, body = _parse_header(path, data)
    dtype = np.dtype([(name, np.dtype(t).newbyteorder("<")) for name, t in props])
    if fmt == "binary_little_endian":
        if len(data) - body < n * dtype.itemsize:
            raise PlyError(f"{path}: truncated: {len(data) - body} bytes for {n} vertices of {dtype.itemsize}")
        record = np.frombuffer(data, dtype=dtype, count=n, offset=body)
    else:
        rows = data[body:].decode("ascii").split("\n")
        rows = [r.split() for r in rows if r.strip()][:n]
        if len(rows) < n or any(len(r) != len(props) for r in rows):
            raise PlyError(f"{path}: ASCII body does not hold {n} rows of {len(props)} values")
        record = np.empty(n, dtype=dtype)
        for j, (name, _) in enumerate(props):
            record[name] = [float(r[j]) for r in rows]
    names = [name for name, _ in props]
    missing = [a for a in "xyz" if a not in names]
    if missing:
        raise PlyError(f"{path}: vertex element lacks {missing}")

    def stack(keys, scale=1.0):
        if not all(k in names for k in keys):
            return None
        return np.stack([record[k].astype(np.float32) for k in keys], axis=1) / np.float32(scale)

    return {
        "points": stack("xyz"),
        "normals": stack(("nx", "ny", "nz")),
        "colors": stack(("red", "green", "blue"), 255.0),
        "scalars": {k: record[k].astype(np.float32) for k in names if k not in _RESERVED},
    }
