"""PLY export: round trip, an independent parser, ASCII equivalence and argument errors."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from pegasus.eval.export_ply import PlyError, read_ply, write_ply


def _cloud(n: int = 6):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(n, 3)).astype(np.float32)
    normals = rng.normal(size=(n, 3)).astype(np.float32)
    colors = rng.integers(0, 256, (n, 3)).astype(np.float32) / 255  # exactly representable in uchar
    radius = rng.uniform(0, 1, n).astype(np.float32)
    return points, colors, normals, radius


def test_round_trip(tmp_path):
    points, colors, normals, radius = _cloud()
    path = write_ply(tmp_path / "cloud.ply", torch.from_numpy(points), colors, torch.from_numpy(normals),
                     scalars={"radius": radius})
    back = read_ply(path)
    np.testing.assert_array_equal(back["points"], points)
    np.testing.assert_array_equal(back["normals"], normals)
    np.testing.assert_allclose(back["colors"], colors, atol=1e-7)
    np.testing.assert_array_equal(back["scalars"]["radius"], radius)
    only_points = read_ply(write_ply(tmp_path / "p.ply", points.astype(np.float64)))
    assert only_points["colors"] is None and only_points["normals"] is None and only_points["scalars"] == {}
    empty = read_ply(write_ply(tmp_path / "e.ply", np.zeros((0, 3))))
    assert empty["points"].shape == (0, 3)
    assert not list(tmp_path.glob(".*"))  # atomic writes leave no temporaries


def _independent_parse(path):
    """A minimal third-party-style reader: header lines, then struct-unpacked records."""
    data = path.read_bytes()
    head, body = data.split(b"end_header\n", 1)
    lines = head.decode("ascii").splitlines()
    assert lines[0] == "ply" and lines[1] == "format binary_little_endian 1.0"
    count = next(int(line.split()[2]) for line in lines if line.startswith("element vertex"))
    props = [line.split()[1:] for line in lines if line.startswith("property")]
    fmt = "<" + "".join({"float": "f", "uchar": "B"}[t] for t, _ in props)
    assert len(body) == count * struct.calcsize(fmt)
    records = list(struct.iter_unpack(fmt, body))
    return [name for _, name in props], np.array(records, dtype=np.float64)


def test_independent_parser_and_ascii_agree(tmp_path):
    points, colors, normals, radius = _cloud(4)
    path = write_ply(tmp_path / "cloud.ply", points, colors, normals, scalars={"radius": radius})
    names, records = _independent_parse(path)
    assert names == ["x", "y", "z", "nx", "ny", "nz", "red", "green", "blue", "radius"]
    np.testing.assert_array_equal(records[:, 0:3], points)
    np.testing.assert_array_equal(records[:, 3:6], normals)
    np.testing.assert_array_equal(records[:, 6:9], np.rint(colors * 255))
    np.testing.assert_array_equal(records[:, 9], radius)
    # the same data written by hand as ASCII PLY reads back identically
    lines = ["ply", "format ascii 1.0", f"element vertex {len(points)}"]
    lines += [f"property float {n}" for n in ("x", "y", "z", "nx", "ny", "nz")]
    lines += [f"property uchar {n}" for n in ("red", "green", "blue")] + ["property float radius", "end_header"]
    for k in range(len(points)):
        values = [repr(float(v)) for v in (*points[k], *normals[k])]
        values += [str(int(v)) for v in np.rint(colors[k] * 255)] + [repr(float(radius[k]))]
        lines.append(" ".join(values))
    ascii_path = tmp_path / "cloud_ascii.ply"
    ascii_path.write_text("\n".join(lines) + "\n")
    a, b = read_ply(ascii_path), read_ply(path)
    for key in ("points", "normals", "colors"):
        np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_array_equal(a["scalars"]["radius"], b["scalars"]["radius"])


def test_colors_uint8_and_float_agree(tmp_path):
    points, colors, _, _ = _cloud()
    as_uint8 = read_ply(write_ply(tmp_path / "u.ply", points, np.rint(colors * 255).astype(np.uint8)))
    as_float = read_ply(write_ply(tmp_path / "f.ply", points, colors))
    np.testing.assert_array_equal(as_uint8["colors"], as_float["colors"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"points": np.zeros((4, 2))}, r"points must have shape \(N, 3\)"),
        ({"normals": np.zeros((5, 3))}, "normals has 5 rows, points has 4"),
        ({"normals": np.array([[0, 0, 1]] * 3 + [[np.nan, 0, 0]])}, "normals has NaN or infinite values in 1 row"),
        ({"points": np.array([[0, 0, 0]] * 3 + [[0, np.inf, 0]])}, "points has NaN"),
        ({"colors": np.full((4, 3), 1.5)}, r"colors must be in \[0, 1\]"),
        ({"scalars": {"red": np.zeros(4)}}, "scalar name 'red'"),
        ({"scalars": {"bad name": np.zeros(4)}}, "scalar name 'bad name'"),
        ({"scalars": {"radius": np.zeros((4, 1))}}, r"scalars\['radius'\] must have shape \(N,\)"),
    ],
)
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    args = {"points": np.zeros((4, 3)), **kwargs}
    with pytest.raises(ValueError, match=message):
        write_ply(tmp_path / "bad.ply", **args)
    assert not (tmp_path / "bad.ply").exists()


def test_read_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.ply"
    bad.write_bytes(b"solid cube\n")
    with pytest.raises(PlyError, match="bad.ply: not a PLY"):
        read_ply(bad)
    mesh = tmp_path / "mesh.ply"
    mesh.write_text("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                    "property float z\nelement face 0\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n")
    with pytest.raises(PlyError, match="exactly one 'vertex' element"):
        read_ply(mesh)
    short = tmp_path / "short.ply"
    write_ply(short, np.zeros((3, 3)))
    short.write_bytes(short.read_bytes()[:-4])
    with pytest.raises(PlyError, match="truncated"):
        read_ply(short)
