"""Shared pytest fixtures and switches.

`pytorch3d`-marked tests run only in the PyTorch3D environment (`make test-pytorch3d`);
there `PEGASUS_REQUIRE_PYTORCH3D=1` turns a missing PyTorch3D into a failure rather than a
skip, so CI cannot silently lose the parity tests.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pegasus.config import load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "real"
CONFS = REPO_ROOT / "confs"

TINY_DB = ["synth_db.n_db=1", "synth_db.image_size=32", "synth_db.train_frames=6", "synth_db.test_frames=3",
           "synth_db.gt_frame_stride=3", "synth_db.gt_categories=[hair]", "synth_db.texture_size=128",
           "synth_db.workers=1", "synth_db.previews=false", "synth_db.contact_tile=32"]
TINY_MODEL = ["dataset.resolution=32", "model.points.init_count=200", "model.points.max_points=800",
              "model.points.upsample_freq=1", "model.points.settle_epochs=0", "model.geometry.hidden_layers=2",
              "model.geometry.width=32", "model.deformer.hidden_layers=2", "model.deformer.width=32",
              "model.shading.hidden=[16]", "model.lr.points=1e-2", "model.lr.geometry=1e-2", "model.lr.deformer=3e-3",
              "model.lr.shading=1e-2", "train.epochs=2", "train.max_batch=2", "train.lr_milestones=[1]",
              "train.log_every_iters=1", "train.image_every_iters=2", "test.yaw_frames=3", "test.sets=[test, yaw]",
              "test.fps=5"]


@pytest.fixture(scope="session")
def tiny_sizes() -> dict[str, list[str]]:
    """The overrides of a tiny database (``db``) and a tiny avatar (``model``)."""
    return {"db": list(TINY_DB), "model": list(TINY_MODEL)}


@pytest.fixture(scope="session")
def tiny_db_overrides(tmp_path_factory) -> list[str]:
    """Overrides pointing at a tiny generated database (built once per session)."""
    from pegasus.synthdb.build import build_database

    root = tmp_path_factory.mktemp("train_db")
    overrides = [f"synth_db.root={root / 'db'}", f"dataset.root={root / 'db'}",
                 f"standin.output={root / 'standin.npz'}", *TINY_DB]
    build_database(load_config(CONFS / "embedded.conf", overrides))
    return overrides


@pytest.fixture
def tiny_train_config(tiny_db_overrides, tmp_path):
    """config(*extra) for a tiny avatar run writing into this test's tmp_path."""
    def make(*extra: str):
        return load_config(CONFS / "embedded.conf", [*tiny_db_overrides, *TINY_MODEL,
                                                     f"experiment.output_root={tmp_path / 'runs'}", *extra])
    return make


@pytest.fixture(scope="session")
def settings():
    """``settings(section, *overrides, **fields)``: a typed section of confs/base.conf with
    ``section.key=value`` overrides, and fields replaced (unvalidated) by keyword."""
    import dataclasses

    def make(section: str, *overrides: str, **fields):
        value = load_config(CONFS / "base.conf", overrides)[section]
        return dataclasses.replace(value, **fields) if fields else value

    return make


@pytest.fixture
def pytorch3d():
    """The pytorch3d module, or a skip (a failure under PEGASUS_REQUIRE_PYTORCH3D=1)."""
    try:
        import pytorch3d  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the environment
        if os.environ.get("PEGASUS_REQUIRE_PYTORCH3D") == "1":
            pytest.fail(f"PyTorch3D required but not importable: {err}")
        pytest.skip("PyTorch3D not installed (run `make test-pytorch3d`)")
    import pytorch3d

    return pytorch3d


@pytest.fixture
def real_data_dir() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real clips not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(autouse=True)
def _seed_everything():
    import numpy as np
    import torch

    torch.manual_seed(0)
    np.random.seed(0)
    yield
    # building an avatar flushes denormals for its process (pegasus.train.build); MediaPipe's
    # XNNPack models then fail to load, so no test leaves it on for the next
    torch.set_flush_denormal(False)
